// optim/: SGD, Adam, AdamW and LARS against PyTorch goldens (tests/golden/optim.safetensors,
// made by tests/golden/make_optim_goldens.py) in f64 and f32, clip_grad_norm_, the LR
// schedules against their references (tests/golden/schedules.safetensors), parameter
// groups, state_dict round trips through safetensors (the next step must be bitwise the
// same), and the errors for bad options and bad state dicts.
#include <unistd.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>

#include <doctest/doctest.h>
#include <pacer/pacer.h>

#include "nn/safetensors.h"
#include "optim/adam.h"
#include "optim/clip.h"
#include "optim/lars.h"
#include "optim/schedules.h"
#include "optim/sgd.h"
#include "tests/test_util.h"

namespace pacer {

using optim::NamedTensors;
using test::error_of;

namespace {

std::map<std::string, Tensor> golden(const std::string& file) {
  std::map<std::string, Tensor> out;
  for (auto& [name, t] : nn::load_safetensors(std::string(PACER_GOLDEN_DIR) + "/" + file)) out.emplace(name, t);
  return out;
}

const std::map<std::string, Tensor>& optim_golden() {
  static const std::map<std::string, Tensor> g = golden("optim.safetensors");
  return g;
}

const Tensor& at(const std::map<std::string, Tensor>& m, const std::string& key) {
  auto it = m.find(key);
  REQUIRE_MESSAGE(it != m.end(), "golden key " << key << " missing");
  return it->second;
}

bool contains(const std::string& text, const std::string& part) {
  if (text.find(part) != std::string::npos) return true;
  MESSAGE("'" << text << "' does not contain '" << part << "'");
  return false;
}

bool bitwise_equal(const Tensor& a, const Tensor& b) {
  const Tensor x = contiguous(a), y = contiguous(b);
  return x.sizes() == y.sizes() && x.dtype() == y.dtype() && std::memcmp(x.data(), y.data(), x.nbytes()) == 0;
}

std::string temp_path(const std::string& name) {
  return (std::filesystem::temp_directory_path() / ("pacer_test_" + std::to_string(::getpid()) + "_" + name)).string();
}

// One golden case: K parameters, S steps, G groups (see make_optim_goldens.py).
struct GoldenCase {
  std::vector<Tensor> init, grads, after;  // grads / after: [S, *shape]
  Tensor lr;                               // [S, G]
  std::vector<int64_t> group;              // [K]
  int64_t steps() const { return lr.size(0); }
  int64_t groups() const { return lr.size(1); }
};

GoldenCase load_case(const std::string& name) {
  const auto& g = optim_golden();
  GoldenCase c;
  for (size_t k = 0; g.count(name + ".init." + std::to_string(k)); ++k) {
    c.init.push_back(at(g, name + ".init." + std::to_string(k)));
    c.grads.push_back(at(g, name + ".grads." + std::to_string(k)));
    c.after.push_back(at(g, name + ".after." + std::to_string(k)));
  }
  REQUIRE(!c.init.empty());
  c.lr = at(g, name + ".lr");
  c.group = at(g, name + ".group").to_vector<int64_t>();
  return c;
}

using Factory = std::function<std::unique_ptr<optim::Optimizer>(const std::vector<std::vector<Tensor>>&)>;

// Fresh leaf parameters (of `dtype`) holding the case's initial values.
std::vector<Tensor> make_params(const GoldenCase& c, DType dtype) {
  std::vector<Tensor> params;
  for (const Tensor& t : c.init) {
    Tensor p = clone(t.to(dtype));
    p.set_requires_grad(true);
    params.push_back(p);
  }
  return params;
}

std::vector<std::vector<Tensor>> split_groups(const GoldenCase& c, const std::vector<Tensor>& params) {
  std::vector<std::vector<Tensor>> groups(size_t(c.groups()));
  for (size_t k = 0; k < params.size(); ++k) groups[size_t(c.group[k])].push_back(params[k]);
  return groups;
}

// Sets the golden lrs and gradients of step s.
void prepare_step(const GoldenCase& c, optim::Optimizer& opt, std::vector<Tensor>& params, int64_t s) {
  for (int64_t g = 0; g < c.groups(); ++g)
    opt.set_group_lr(size_t(g), c.lr.to_vector<double>()[size_t(s * c.groups() + g)]);
  for (size_t k = 0; k < params.size(); ++k) params[k].set_grad(clone(select(c.grads[k], 0, s).to(params[k].dtype())));
}

// Runs every step of case `name` and compares each parameter after each step.
void check_against_golden(const std::string& name, const Factory& make, DType dtype, double rtol, double atol) {
  CAPTURE(name);
  CAPTURE(dtype);
  const GoldenCase c = load_case(name);
  std::vector<Tensor> params = make_params(c, dtype);
  std::unique_ptr<optim::Optimizer> opt = make(split_groups(c, params));
  for (int64_t s = 0; s < c.steps(); ++s) {
    prepare_step(c, *opt, params, s);
    opt->step();
    for (size_t k = 0; k < params.size(); ++k) {
      const Tensor want = select(c.after[k], 0, s).to(dtype);
      CHECK_MESSAGE(allclose(detach(params[k]), want, rtol, atol),
                    "step " << s << ", parameter " << k << ":\n got  " << detach(params[k]) << "\n want " << want);
    }
  }
}

void check_both_dtypes(const std::string& name, const Factory& make) {
  check_against_golden(name, make, DType::F64, 1e-12, 1e-12);
  check_against_golden(name, make, DType::F32, 1e-6, 1e-6);
}

// The options of each golden case (as in make_optim_goldens.py).
std::unique_ptr<optim::Optimizer> make_sgd(const std::vector<std::vector<Tensor>>& g) {
  return std::make_unique<optim::Sgd>(g[0], optim::SgdOptions{.lr = 0.1});
}

std::unique_ptr<optim::Optimizer> make_sgd_momentum(const std::vector<std::vector<Tensor>>& g) {
  return std::make_unique<optim::Sgd>(std::vector<optim::ParamGroup<optim::SgdOptions>>{
      {g[0], {.lr = 0.1, .momentum = 0.9, .weight_decay = 0.01, .nesterov = true}},
      {g[1], {.lr = 0.05, .momentum = 0.8, .dampening = 0.3, .weight_decay = 0.02}}});
}

std::unique_ptr<optim::Optimizer> make_adam(const std::vector<std::vector<Tensor>>& g) {
  return std::make_unique<optim::Adam>(
      g[0], optim::AdamOptions{.lr = 0.01, .betas = {0.9, 0.98}, .eps = 1e-6, .weight_decay = 0.1});
}

std::unique_ptr<optim::Optimizer> make_adamw(const std::vector<std::vector<Tensor>>& g) {
  return std::make_unique<optim::AdamW>(g[0], optim::AdamWOptions{.lr = 0.01, .weight_decay = 0.1});
}

std::unique_ptr<optim::Optimizer> make_lars(const std::vector<std::vector<Tensor>>& g) {
  return std::make_unique<optim::Lars>(std::vector<optim::ParamGroup<optim::LarsOptions>>{
      {g[0], {.lr = 1.0, .momentum = 0.9, .weight_decay = 0.01, .eta = 0.02}},
      {g[1], {.lr = 0.5, .momentum = 0.9, .eta = 0.02, .exclude_from_lars = true}}});
}

std::vector<std::string> keys(const NamedTensors& state) {
  std::vector<std::string> out;
  for (const auto& [name, t] : state) out.push_back(name);
  return out;
}

Tensor leaf(const Shape& shape, double value = 1.0) {
  Tensor p = full(shape, value);
  p.set_requires_grad(true);
  return p;
}

}  // namespace

// --- optimizers against PyTorch -------------------------------------------------------

TEST_CASE("optim: SGD matches torch.optim.SGD (f64 and f32, lr changed between steps)") {
  check_both_dtypes("sgd", make_sgd);
}

TEST_CASE("optim: SGD momentum with Nesterov + weight decay, and with dampening, in two groups matches torch") {
  check_both_dtypes("sgd_momentum", make_sgd_momentum);
}

TEST_CASE("optim: Adam matches torch.optim.Adam (bias correction, eps after sqrt, L2 weight decay)") {
  check_both_dtypes("adam", make_adam);
}

TEST_CASE("optim: AdamW matches torch.optim.AdamW (decoupled weight decay)") { check_both_dtypes("adamw", make_adamw); }

TEST_CASE("optim: LARS matches NVIDIA's MLPerf v0.6 SGDwLARS (excluded group, zero parameter, changing lr)") {
  check_both_dtypes("lars", make_lars);
}

// --- clip_grad_norm_ ------------------------------------------------------------------

TEST_CASE("optim: clip_grad_norm_ matches torch.nn.utils.clip_grad_norm_") {
  const auto& g = optim_golden();
  for (const std::string name : {"clip", "clip_noop"}) {
    for (DType dtype : {DType::F64, DType::F32}) {
      CAPTURE(name);
      CAPTURE(dtype);
      const double tol = dtype == DType::F64 ? 1e-12 : 1e-6;
      std::vector<Tensor> params;
      for (size_t k = 0; k < 2; ++k) {
        const Tensor before = at(g, name + ".before." + std::to_string(k));
        Tensor p = zeros(before.sizes(), {.dtype = dtype});
        p.set_requires_grad(true);
        p.set_grad(clone(before.to(dtype)));
        params.push_back(p);
      }
      params.push_back(leaf({4}));  // no gradient: skipped
      const Tensor total = optim::clip_grad_norm_(params, at(g, name + ".max_norm").item<double>());
      CHECK(total.dtype() == dtype);
      CHECK(total.dim() == 0);
      CHECK(total.item<double>() == doctest::Approx(at(g, name + ".total_norm").item<double>()).epsilon(tol));
      for (size_t k = 0; k < 2; ++k)
        CHECK(allclose(params[k].grad(), at(g, name + ".after." + std::to_string(k)).to(dtype), tol, tol));
      CHECK(!params[2].grad().defined());
    }
  }
}

TEST_CASE("optim: clip_grad_norm_ without gradients returns 0, and refuses a negative max_norm") {
  CHECK(optim::clip_grad_norm_({leaf({3})}, 1.0).item<double>() == 0.0);
  CHECK(optim::clip_grad_norm_({}, 1.0).item<double>() == 0.0);
  CHECK(error_of([] { optim::clip_grad_norm_({leaf({3})}, -1.0); }) ==
        "clip_grad_norm_: expected max_norm >= 0, got -1");
}

// --- parameter groups and the one-list API --------------------------------------------

TEST_CASE("optim: parameter groups update with their own options, set_lr and set_group_lr") {
  Tensor a = leaf({2}), b = leaf({3});
  optim::Sgd opt({{{a}, {.lr = 0.1}}, {{b}, {.lr = 0.2, .weight_decay = 0.5}}});
  CHECK(opt.num_groups() == 2);
  CHECK(opt.params().size() == 2);
  CHECK(opt.params()[1].is_same(b));
  CHECK(opt.lr(1) == 0.2);
  a.set_grad(ones({2}));
  b.set_grad(ones({3}));
  opt.step();
  CHECK(allclose(detach(a), full({2}, 0.9)));
  CHECK(allclose(detach(b), full({3}, 1.0 - 0.2 * 1.5)));
  opt.set_group_lr(0, 0.5);
  CHECK(opt.options(0).lr == 0.5);
  CHECK(opt.options(1).lr == 0.2);
  opt.set_lr(0.01);
  CHECK(opt.lr(0) == 0.01);
  CHECK(opt.lr(1) == 0.01);
  CHECK(error_of([&] { opt.options(2); }) == "SGD: no parameter group 2 (there are 2)");
}

TEST_CASE("optim: the one-list Sgd API (as the classifier recipe uses it)") {
  Tensor w = leaf({2});
  optim::Sgd opt({w}, {.lr = 0.1, .momentum = 0.9});
  CHECK(opt.num_groups() == 1);
  opt.options().lr = 0.5;
  w.set_grad(ones({2}));
  opt.step();
  CHECK(allclose(detach(w), full({2}, 0.5)));
  opt.zero_grad();
  CHECK(!w.grad().defined());
  opt.step();  // no gradient: nothing moves
  CHECK(allclose(detach(w), full({2}, 0.5)));
}

// --- state_dict -----------------------------------------------------------------------

TEST_CASE("optim: state_dict names follow torch's state / param_groups, state appears at the first step") {
  Tensor a = leaf({2, 2}), b = leaf({3});
  optim::Adam opt({{{a}, {.lr = 0.1}}, {{b}, {.betas = {0.8, 0.9}}}});
  std::vector<std::string> want = {"param_groups.0.params",      "param_groups.0.lr",           "param_groups.0.betas",
                                   "param_groups.0.eps",         "param_groups.0.weight_decay", "param_groups.1.params",
                                   "param_groups.1.lr",          "param_groups.1.betas",        "param_groups.1.eps",
                                   "param_groups.1.weight_decay"};
  CHECK(keys(opt.state_dict()) == want);
  a.set_grad(ones({2, 2}));  // b has no gradient: it gets no state
  opt.step();
  opt.step();
  const NamedTensors sd = opt.state_dict();
  want.insert(want.begin(), {"state.0.step", "state.0.exp_avg", "state.0.exp_avg_sq"});
  CHECK(keys(sd) == want);
  std::map<std::string, Tensor> m(sd.begin(), sd.end());
  CHECK(m["state.0.step"].dtype() == DType::I64);
  CHECK(m["state.0.step"].item<int64_t>() == 2);
  CHECK(m["state.0.exp_avg"].sizes() == Shape{2, 2});
  CHECK(m["param_groups.1.betas"].to_vector<double>() == std::vector<double>{0.8, 0.9});
  CHECK(m["param_groups.1.params"].to_vector<int64_t>() == std::vector<int64_t>{1});
  CHECK(m["param_groups.0.lr"].dtype() == DType::F64);
  CHECK(m["param_groups.0.lr"].dim() == 0);

  optim::Sgd sgd({leaf({1})}, {.nesterov = false});
  std::map<std::string, Tensor> s;
  for (auto& [k, v] : sgd.state_dict()) s.emplace(k, v);
  CHECK(s["param_groups.0.nesterov"].dtype() == DType::Bool);
}

// Two steps, a checkpoint through a safetensors file, a fresh optimizer (other options, same
// groups) loading it: the next step must match the original bitwise.
void check_round_trip(const std::string& name, const Factory& make, const Factory& make_other) {
  CAPTURE(name);
  const GoldenCase c = load_case(name);
  std::vector<Tensor> pa = make_params(c, DType::F32);
  std::unique_ptr<optim::Optimizer> a = make(split_groups(c, pa));
  for (int64_t s = 0; s < 2; ++s) {
    prepare_step(c, *a, pa, s);
    a->step();
  }
  a->set_group_lr(c.groups() - 1, 0.125);
  const std::string path = temp_path(name + "_opt.safetensors");
  nn::save_safetensors(path, a->state_dict());
  const NamedTensors loaded = nn::load_safetensors(path);
  std::filesystem::remove(path);

  std::vector<Tensor> pb;
  for (const Tensor& p : pa) {
    Tensor q = clone(detach(p));
    q.set_requires_grad(true);
    pb.push_back(q);
  }
  std::unique_ptr<optim::Optimizer> b = make_other(split_groups(c, pb));
  b->load_state_dict(loaded);
  for (int64_t g = 0; g < c.groups(); ++g) CHECK(b->lr(size_t(g)) == a->lr(size_t(g)));

  for (size_t k = 0; k < pa.size(); ++k) {
    const Tensor grad = clone(select(c.grads[k], 0, 2).to(DType::F32));
    pa[k].set_grad(grad);
    pb[k].set_grad(clone(grad));
  }
  a->step();
  b->step();
  for (size_t k = 0; k < pa.size(); ++k) CHECK_MESSAGE(bitwise_equal(pa[k], pb[k]), "parameter " << k);
  const NamedTensors sa = a->state_dict(), sb = b->state_dict();
  REQUIRE(keys(sa) == keys(sb));
  for (size_t i = 0; i < sa.size(); ++i) CHECK_MESSAGE(bitwise_equal(sa[i].second, sb[i].second), sa[i].first);
}

TEST_CASE("optim: state_dict round trip through safetensors: the next step is bitwise identical") {
  check_round_trip("sgd_momentum", make_sgd_momentum, [](const std::vector<std::vector<Tensor>>& g) {
    return std::make_unique<optim::Sgd>(
        std::vector<optim::ParamGroup<optim::SgdOptions>>{{g[0], {.momentum = 0.5}}, {g[1], {.momentum = 0.5}}});
  });
  check_round_trip("adam", make_adam, [](const std::vector<std::vector<Tensor>>& g) {
    return std::make_unique<optim::Adam>(g[0], optim::AdamOptions{});
  });
  check_round_trip("adamw", make_adamw, [](const std::vector<std::vector<Tensor>>& g) {
    return std::make_unique<optim::AdamW>(g[0], optim::AdamWOptions{});
  });
  check_round_trip("lars", make_lars, [](const std::vector<std::vector<Tensor>>& g) {
    return std::make_unique<optim::Lars>(std::vector<optim::ParamGroup<optim::LarsOptions>>{{g[0], {}}, {g[1], {}}});
  });
}

TEST_CASE("optim: load_state_dict rejects bad state dicts, naming the key, and changes nothing") {
  Tensor a = leaf({2, 2}), b = leaf({3});
  optim::Adam opt({a, b}, {.lr = 0.1});
  a.set_grad(ones({2, 2}));
  b.set_grad(ones({3}));
  opt.step();
  const NamedTensors good = opt.state_dict();
  const std::vector<float> a_state = opt.state_dict()[1].second.to_vector<float>();

  auto edited = [&](const std::string& key, const Tensor& value) {
    NamedTensors s;
    for (const auto& [k, v] : good)
      if (k != key) s.emplace_back(k, v);
    if (value.defined()) s.emplace_back(key, value);
    return s;
  };
  auto message = [&](const NamedTensors& s) { return error_of([&] { opt.load_state_dict(s); }); };

  CHECK(message(edited("state.7.exp_avg", zeros({2, 2}))) ==
        "Adam load_state_dict: unexpected key 'state.7.exp_avg' (this optimizer has 2 parameters in 1 groups, with "
        "state slots step, exp_avg, exp_avg_sq)");
  CHECK(message(edited("param_groups.0.lr", Tensor())) == "Adam load_state_dict: missing key 'param_groups.0.lr'");
  CHECK(message(edited("state.0.exp_avg", zeros({4}))) ==
        "Adam load_state_dict: 'state.0.exp_avg' expected shape [2, 2] (float32) like parameter 0, got shape [4] "
        "(float32)");
  CHECK(contains(message(edited("state.0.exp_avg", zeros({2, 2}, {.dtype = DType::F64}))), "'state.0.exp_avg'"));
  CHECK(contains(message(edited("param_groups.0.lr", scalar_tensor(0.1, DType::F32))),
                 "'param_groups.0.lr' expected shape [] (float64), got shape [] (float32)"));
  CHECK(contains(message(edited("param_groups.0.betas", zeros({3}, {.dtype = DType::F64}))),
                 "'param_groups.0.betas' expected shape [2]"));
  CHECK(contains(message(edited("state.1.step", scalar_tensor(1.0, DType::F32))),
                 "'state.1.step' expected shape [] (int64), got shape [] (float32)"));
  CHECK(message(edited("state.1.exp_avg_sq", Tensor())) ==
        "Adam load_state_dict: missing key 'state.1.exp_avg_sq': parameter 1 has 2 of its 3 state slots");
  CHECK(
      contains(message(edited("param_groups.0.params", from_vector<int64_t>({0}))),
               "'param_groups.0.params' lists parameters [0], but group 0 of this optimizer holds parameters [0, 1]"));
  NamedTensors twice = good;
  twice.push_back(good[0]);
  CHECK(message(twice) == "Adam load_state_dict: key 'state.0.step' appears twice in the state");
  NamedTensors undefined = good;
  undefined.emplace_back("state.9.exp_avg", Tensor());
  CHECK(message(undefined) == "Adam load_state_dict: value of 'state.9.exp_avg' is undefined");
  // Valid shapes but an invalid option: refused, and the options are put back.
  CHECK(message(edited("param_groups.0.betas", from_vector<double>({0.9, 1.5}))) ==
        "Adam load_state_dict: the state holds invalid options: Adam: expected 0 <= betas[1] < 1, got 1.5");
  CHECK(opt.options().betas[1] == 0.999);
  CHECK(opt.options().lr == 0.1);
  CHECK(opt.state_dict()[1].second.to_vector<float>() == a_state);
}

TEST_CASE("optim: loading a state without per-parameter state clears it") {
  Tensor a = leaf({2});
  optim::Sgd fresh({a}, {.lr = 0.1, .momentum = 0.9});
  const NamedTensors empty_state = fresh.state_dict();
  a.set_grad(ones({2}));
  fresh.step();
  CHECK(fresh.state_dict().size() == empty_state.size() + 1);
  fresh.load_state_dict(empty_state);
  CHECK(keys(fresh.state_dict()) == keys(empty_state));
}

// --- bad options ----------------------------------------------------------------------

TEST_CASE("optim: optimizers refuse bad options and bad parameter lists") {
  Tensor w = leaf({2});
  CHECK(error_of([&] { optim::Sgd({w}, {.lr = -1}); }) == "SGD: expected lr >= 0, got -1");
  CHECK(error_of([&] { optim::Sgd({w}, {.momentum = -0.5}); }) == "SGD: expected momentum >= 0, got -0.5");
  CHECK(error_of([&] { optim::Sgd({w}, {.weight_decay = -1}); }) == "SGD: expected weight_decay >= 0, got -1");
  CHECK(error_of([&] { optim::Sgd({w}, {.momentum = 0.9, .dampening = 0.1, .nesterov = true}); }) ==
        "SGD: Nesterov momentum needs momentum > 0 and zero dampening (got momentum 0.9, dampening 0.1)");
  CHECK(error_of([&] { optim::Sgd({w}, {.nesterov = true}); }) ==
        "SGD: Nesterov momentum needs momentum > 0 and zero dampening (got momentum 0, dampening 0)");
  CHECK(error_of([&] { optim::Adam({w}, {.lr = -0.1}); }) == "Adam: expected lr >= 0, got -0.1");
  CHECK(error_of([&] { optim::Adam({w}, {.betas = {1.0, 0.999}}); }) == "Adam: expected 0 <= betas[0] < 1, got 1");
  CHECK(error_of([&] { optim::Adam({w}, {.betas = {0.9, -0.1}}); }) == "Adam: expected 0 <= betas[1] < 1, got -0.1");
  CHECK(error_of([&] { optim::Adam({w}, {.eps = -1e-8}); }) == "Adam: expected eps >= 0, got -1e-08");
  CHECK(error_of([&] { optim::Adam({w}, {.weight_decay = -1}); }) == "Adam: expected weight_decay >= 0, got -1");
  CHECK(error_of([&] { optim::AdamW({w}, {.betas = {0.9, 1.0}}); }) == "AdamW: expected 0 <= betas[1] < 1, got 1");
  CHECK(error_of([&] { optim::Lars({w}, {.lr = -1}); }) == "LARS: expected lr >= 0, got -1");
  CHECK(error_of([&] { optim::Lars({w}, {.eta = 0}); }) == "LARS: expected eta > 0, got 0");
  CHECK(error_of([&] { optim::Lars({w}, {.epsilon = -1}); }) == "LARS: expected epsilon >= 0, got -1");
  CHECK(error_of([&] { optim::Lars({w}, {.weight_decay = 1e-4, .exclude_from_lars = true}); }) ==
        "LARS: a group with exclude_from_lars takes no weight decay; expected weight_decay 0, got 0.0001");
  // Groups are named when there are several.
  Tensor v = leaf({3});
  CHECK(error_of([&] {
          optim::Sgd({{{w}, {.lr = 0.1}}, {{v}, {.lr = -2}}});
        }) == "SGD parameter group 1: expected lr >= 0, got -2");
  CHECK(error_of([&] {
          optim::Sgd({{{w}, {}}, {{v, w}, {}}});
        }) == "SGD: parameter 2 appears more than once in the parameter groups");
  CHECK(error_of([&] { optim::Adam({w * 2.0}, {}); }) == "Adam: parameter 0 must be a leaf tensor that requires grad");
  CHECK(error_of([&] { optim::Sgd(std::vector<optim::ParamGroup<optim::SgdOptions>>{}); }) ==
        "SGD: expected at least one parameter group");
}

// --- schedules ------------------------------------------------------------------------

void check_schedule(const std::string& name, const optim::LrSchedule& schedule) {
  CAPTURE(name);
  static const std::map<std::string, Tensor> g = golden("schedules.safetensors");
  const std::vector<int64_t> steps = at(g, name + ".steps").to_vector<int64_t>();
  const std::vector<double> want = at(g, name + ".lr").to_vector<double>();
  for (size_t i = 0; i < steps.size(); ++i) {
    CAPTURE(steps[i]);
    const double got = schedule.lr(steps[i]);
    CHECK_MESSAGE(std::abs(got - want[i]) <= 1e-12 * std::abs(want[i]), got << " vs " << want[i]);
  }
}

TEST_CASE("optim: PolyWarmup matches NVIDIA's MLPerf ResNet PolySchedule (power 2 and 1)") {
  check_schedule("poly", optim::PolyWarmupSchedule(
                             {.base_lr = 5.0, .warmup_steps = 5, .total_steps = 20, .power = 2, .end_lr = 1e-4}));
  check_schedule("poly_linear", optim::PolyWarmupSchedule({.base_lr = 0.5, .total_steps = 10, .power = 1}));
}

TEST_CASE("optim: WarmupMultiStep matches maskrcnn-benchmark's WarmupMultiStepLR") {
  check_schedule(
      "multistep",
      optim::WarmupMultiStepSchedule(
          {.base_lr = 0.02, .milestones = {6, 9}, .gamma = 0.1, .warmup_steps = 4, .warmup_factor = 1.0 / 3}));
}

TEST_CASE("optim: InverseSqrt equals scale * min(step^-0.5, step * warmup^-1.5)") {
  check_schedule("inverse_sqrt", optim::InverseSqrtSchedule({.scale = 2 / std::sqrt(1024.0), .warmup_steps = 4}));
}

TEST_CASE("optim: Gnmt matches MLPerf GNMT's WarmupMultiStepLR (exponential warmup, 4 halvings)") {
  const optim::GnmtOptions o = optim::GnmtSchedule::for_iterations(2e-3, 30, 5);
  CHECK(o.remain_steps == 20);
  CHECK(o.decay_interval == 2);
  check_schedule("gnmt", optim::GnmtSchedule(o));
  // Default options never decay.
  CHECK(optim::GnmtSchedule({.base_lr = 1.0, .warmup_steps = 0}).lr(1'000'000) == 1.0);
}

TEST_CASE("optim: schedule counters start at the reference's first update and drive an optimizer") {
  optim::PolyWarmupSchedule poly({.base_lr = 1.0, .warmup_steps = 4, .total_steps = 10});
  CHECK(poly.current_step() == 1);
  CHECK(poly.lr() == 0.25);
  optim::GnmtSchedule gnmt(optim::GnmtSchedule::for_iterations(1.0, 30, 5));
  CHECK(gnmt.current_step() == 0);
  CHECK(gnmt.lr() == doctest::Approx(0.01));
  optim::InverseSqrtSchedule isqrt({.scale = 1, .warmup_steps = 4});
  CHECK(isqrt.lr() == 0.0);
  optim::WarmupMultiStepSchedule ms({.base_lr = 0.3, .warmup_steps = 3});
  CHECK(ms.current_step() == 1);

  Tensor w = leaf({1}, 0.0);
  optim::Sgd opt({w}, {.lr = 0});
  for (int i = 0; i < 3; ++i) {
    opt.set_lr(poly.lr());
    w.set_grad(full({1}, -1.0));
    opt.step();
    poly.step();
  }
  CHECK(poly.current_step() == 4);
  CHECK(detach(w).item<double>() == doctest::Approx(0.25 + 0.5 + 0.75));
}

TEST_CASE("optim: schedule state_dict round trip restores the counter and the settings") {
  optim::WarmupMultiStepSchedule a({.base_lr = 0.02, .milestones = {6, 9, 12}, .warmup_steps = 4});
  for (int i = 0; i < 7; ++i) a.step();
  const std::string path = temp_path("schedule.safetensors");
  nn::save_safetensors(path, a.state_dict());
  const NamedTensors loaded = nn::load_safetensors(path);
  std::filesystem::remove(path);
  optim::WarmupMultiStepSchedule b({.base_lr = 1.0, .milestones = {1}});
  b.load_state_dict(loaded);
  CHECK(b.current_step() == 8);
  CHECK(b.options().milestones == std::vector<int64_t>{6, 9, 12});
  CHECK(b.options().warmup_steps == 4);
  for (int64_t s = 0; s < 15; ++s) CHECK(b.lr(s) == a.lr(s));
  CHECK(keys(a.state_dict()) ==
        std::vector<std::string>{"step", "base_lr", "milestones", "gamma", "warmup_steps", "warmup_factor"});

  optim::PolyWarmupSchedule p({.base_lr = 5, .warmup_steps = 5, .total_steps = 20, .end_lr = 1e-4});
  p.set_step(12);
  optim::PolyWarmupSchedule q({.base_lr = 1, .total_steps = 2});
  q.load_state_dict(p.state_dict());
  CHECK(q.lr() == p.lr());
  optim::GnmtSchedule gp(optim::GnmtSchedule::for_iterations(2e-3, 300));
  optim::GnmtSchedule gq({});
  gq.load_state_dict(gp.state_dict());
  for (int64_t s : {0, 100, 250, 299}) CHECK(gq.lr(s) == gp.lr(s));
  optim::InverseSqrtSchedule ip({.scale = 3, .warmup_steps = 10});
  optim::InverseSqrtSchedule iq({});
  iq.load_state_dict(ip.state_dict());
  CHECK(iq.options().warmup_steps == 10);
}

TEST_CASE("optim: schedules refuse bad settings and bad state dicts") {
  CHECK(error_of([] { optim::PolyWarmupSchedule({.warmup_steps = 5, .total_steps = 5}); }) ==
        "PolyWarmup: expected total_steps > warmup_steps, got 5 and 5");
  CHECK(error_of([] { optim::PolyWarmupSchedule({.base_lr = -1}); }) == "PolyWarmup: expected base_lr >= 0, got -1");
  CHECK(error_of([] { optim::PolyWarmupSchedule({.total_steps = 3, .power = 0}); }) ==
        "PolyWarmup: expected power > 0, got 0");
  CHECK(error_of([] {
          optim::WarmupMultiStepSchedule({.milestones = {5, 3}});
        }) == "WarmupMultiStep: expected strictly increasing milestones, got [5, 3]");
  CHECK(error_of([] { optim::WarmupMultiStepSchedule({.warmup_factor = 2}); }) ==
        "WarmupMultiStep: expected 0 <= warmup_factor <= 1, got 2");
  CHECK(error_of([] { optim::InverseSqrtSchedule({.warmup_steps = 0}); }) ==
        "InverseSqrt: expected warmup_steps > 0, got 0");
  CHECK(error_of([] { optim::GnmtSchedule({.warmup_steps = 10, .remain_steps = 5}); }) ==
        "Gnmt: expected remain_steps >= warmup_steps, got 5 and 10");
  CHECK(error_of([] { optim::GnmtSchedule::for_iterations(1.0, 0); }) == "Gnmt: expected iterations > 0, got 0");

  optim::InverseSqrtSchedule s({.scale = 1, .warmup_steps = 4});
  NamedTensors state = s.state_dict();
  CHECK(error_of([&] {
          s.load_state_dict({state[0], state[1]});
        }) == "InverseSqrt load_state_dict: missing key 'warmup_steps'");
  CHECK(error_of([&] {
          s.load_state_dict({state[0], state[1], state[2], {"bogus", state[2].second}});
        }) == "InverseSqrt load_state_dict: unexpected key 'bogus'");
  CHECK(error_of([&] {
          s.load_state_dict({{"step", scalar_tensor(1.0, DType::F64)}, state[1], state[2]});
        }) == "InverseSqrt load_state_dict: 'step' expected shape [] (int64), got shape [] (float64)");
  CHECK(error_of([&] {
          s.load_state_dict({state[0], state[1], {"warmup_steps", scalar_tensor(int64_t(-3), DType::I64)}});
        }) ==
        "InverseSqrt load_state_dict: the state holds invalid settings: InverseSqrt: expected warmup_steps > 0, "
        "got -3");
  CHECK(s.options().warmup_steps == 4);
}

}  // namespace pacer
