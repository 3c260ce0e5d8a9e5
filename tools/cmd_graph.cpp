// `pacer graph <workload>`: captures one training step, runs the passes and shows what
// each did (nodes, fused groups, launches, planned peak memory), then compares one replay
// with an eager step: kernel launches and peak memory. --json prints one object per pass
// and a final summary object.
#include <fmt/core.h>

#include <cstdio>

#include "core/allocator.h"
#include "core/cuda/caching_allocator.h"
#include "core/cuda/runtime.h"
#include "core/thread_pool.h"
#include "models/graph_workloads.h"
#include "ops/dispatch.h"
#include "ops/graph/compiled_step.h"
#include "tools/cli_args.h"
#include "tools/commands.h"
#include "tools/json_line.h"

namespace pacer::cli {

namespace {

struct Measured {
  uint64_t launches = 0;
  size_t peak_bytes = 0;
};

// Launches and peak allocated bytes (absolute, on the step's device) of one call of `fn`.
template <class F>
Measured measure(Device device, F&& fn) {
  if (device.is_cuda()) {
    cuda::synchronize(device.index);
    cuda::reset_peak_memory_stats(device.index);
  } else {
    reset_cpu_peak_memory();
  }
  const uint64_t before = ops::kernel_launch_count();
  fn();
  Measured m;
  m.launches = ops::kernel_launch_count() - before;
  if (device.is_cuda()) {
    cuda::synchronize(device.index);
    m.peak_bytes = cuda::memory_stats(device.index).peak_allocated;
  } else {
    m.peak_bytes = cpu_memory_stats().peak;
  }
  return m;
}

std::string mib(size_t bytes) { return fmt::format("{:.1f} MiB", double(bytes) / (1 << 20)); }

}  // namespace

int run_graph(const std::vector<std::string>& argv) {
  Parser p("pacer graph <workload> [options]",
           "Captures one training step of a workload (resnet50, resnet34, resnet18, transformer-layer, lstm-layer),\n"
           "runs the graph passes, and reports per pass: nodes before/after, fused groups, launches and planned\n"
           "peak memory; then eager vs graph launches and peak memory of one step.");
  p.option("passes", "LIST", "comma-separated passes, 'default', or 'none'", "default")
      .option("dump", "DIR", "write the graph (text + DOT) before and after each pass (none: no dump)", "none")
      .option("batch", "N", "batch", "8")
      .option("image-size", "N", "image height = width (ResNet)", "224")
      .option("seq-len", "N", "sequence length (transformer-layer, lstm-layer)", "32")
      .option("precision", "P", "32, 16-mixed, bf16-mixed or 16-O2", "32")
      .option("device", "D", "cpu or cuda[:N]", "cpu")
      .option("threads", "N", "CPU threads (0 = PACER_NUM_THREADS or all cores)", "0")
      .flag("channels-last", "NHWC activations (ResNet)")
      .flag("list-passes", "list the registered passes and exit")
      .flag("profile", "time the replay per node kind and list the slowest kinds")
      .flag("json", "one JSON object per pass, then a summary object");
  if (!argv.empty() && argv[0] == "--list-passes") {
    for (const std::string& n : graph::registered_passes()) std::printf("%s\n", n.c_str());
    return 0;
  }
  if (argv.empty() || argv[0].rfind("--", 0) == 0) {
    if (!argv.empty() && (argv[0] == "--help" || argv[0] == "-h")) throw HelpRequested(p.help());
    throw UsageError("expected a workload: resnet50, resnet34, resnet18, transformer-layer or lstm-layer\n\n" + p.help());
  }
  const std::string workload = argv[0];
  Args a = p.parse(std::vector<std::string>(argv.begin() + 1, argv.end()));
  if (a.integer("threads") > 0) set_num_threads(int(a.integer("threads")));
  models::GraphWorkloadOptions o;
  std::string name = workload;
  if (workload == "resnet50" || workload == "resnet34" || workload == "resnet18") {
    o.depth = std::stoi(workload.substr(6));
    name = "resnet";
  } else if (workload != "transformer-layer" && workload != "lstm-layer") {
    throw UsageError("unknown workload '" + workload +
                     "'; expected resnet50, resnet34, resnet18, transformer-layer or lstm-layer");
  }
  o.batch = a.integer("batch");
  o.image_size = a.integer("image-size");
  o.seq_len = a.integer("seq-len");
  o.precision = a.str("precision");
  o.channels_last = a.flag("channels-last");
  try {
    o.device = Device(a.str("device"));
  } catch (const Error& e) {
    throw UsageError(e.what());
  }
  if (o.batch < 1 || o.image_size < 16 || o.seq_len < 1)
    throw UsageError("--batch and --seq-len must be >= 1 and --image-size >= 16");
  const bool json = a.flag("json");

  graph::PassManager pm;
  try {
    pm.add_list(a.str("passes"));
  } catch (const Error& e) {
    throw UsageError(e.what());
  }
  if (a.str("dump") != "none") pm.dump_to(a.str("dump"));
  models::GraphWorkload w = models::make_graph_workload(name, o);
  w.step(w.inputs);  // the optimizer makes its state
  // A capture that made persistent state (the optimizer's first update, late when dynamic
  // loss scaling skips the first steps) is not what replays run: capture again, as
  // CompiledStep does. The eager step is measured after that too, with the same state.
  graph::Captured captured = graph::capture(w.step, w.inputs, {.params = w.params});
  for (int tries = 1; !captured.not_replayable.empty(); ++tries) {
    if (tries == 30) throw Error("pacer graph: no replayable capture in 30 steps: " + captured.not_replayable);
    std::fprintf(stderr, "pacer graph: captured again (%s)\n", captured.not_replayable.c_str());
    captured = graph::capture(w.step, w.inputs, {.params = w.params});
  }
  const Measured eager = measure(o.device, [&] { w.step(w.inputs); });
  // The same eager step with the last step's gradients dropped before it (zero_grad() before
  // the forward, as many training loops do): a replay drops them when it starts, so this is
  // the eager figure that saving leaves out.
  for (const Tensor& p : w.params) {
    Tensor q = p;
    q.set_grad(Tensor());
  }
  const Measured eager_dropped = measure(o.device, [&] { w.step(w.inputs); });
  graph::Graph g = std::move(captured.graph);
  const int64_t captured_nodes = int64_t(g.nodes.size());

  const std::vector<graph::PassReport> reports = pm.run(g);
  for (const graph::PassReport& r : reports) {
    if (json) {
      JsonLine j;
      j.add("pass", r.pass).add("nodes_before", r.nodes_before).add("nodes_after", r.nodes_after);
      j.add("launches_before", r.launches_before).add("launches_after", r.launches_after);
      j.add("fused_groups", int64_t(r.fused_groups.size())).add("rejected", int64_t(r.rejected.size()));
      j.add("planned_peak_bytes", int64_t(r.planned_bytes_after)).add("seconds", r.seconds);
      std::printf("%s\n", j.str().c_str());
    } else {
      std::printf("%-18s nodes %5lld -> %5lld   launches %5lld -> %5lld   fused groups %4zu   planned peak %s   %.0f ms\n",
                  r.pass.c_str(), static_cast<long long>(r.nodes_before), static_cast<long long>(r.nodes_after),
                  static_cast<long long>(r.launches_before), static_cast<long long>(r.launches_after),
                  r.fused_groups.size(), mib(r.planned_bytes_after).c_str(), r.seconds * 1e3);
      for (const std::string& f : r.fused_groups) std::printf("    fused: %s\n", f.c_str());
      for (const std::string& x : r.rejected) std::printf("    rejected: %s\n", x.c_str());
    }
  }
  // Launches and memory of the planned replay itself, node by node: on CUDA, without its
  // CUDA graph (whose replays are one launch; `pacer bench resnet50-step --mode graph` times them).
  graph::Executor ex(std::move(g), {.profile = a.flag("profile"), .cuda_graph = false});
  ex.run(w.inputs);  // the arena is allocated (and its pages first touched) on the first run
  ex.clear_profile();
  const Measured replay = measure(o.device, [&] { ex.run(w.inputs); });
  if (a.flag("profile") && !json) {
    double total = 0;
    for (const graph::KindProfile& k : ex.profile()) total += k.seconds;
    // busy: CPU time over wall time x threads (CPU steps): below 100% the pool sat idle.
    const bool cpu = o.device.is_cpu();
    std::printf("\nreplay time per node kind (one run)%s:\n", cpu ? "; busy: the pool's threads at work" : "");
    for (const graph::KindProfile& k : ex.profile())
      if (k.seconds >= 0.002 * total) {
        std::printf("  %-32s %6lld calls %9.1f ms  %5.1f%%", k.kind.c_str(), static_cast<long long>(k.calls),
                    k.seconds * 1e3, 100 * k.seconds / total);
        if (cpu && k.seconds > 0) std::printf("   busy %3.0f%%", 100 * k.cpu_seconds / (k.seconds * num_threads()));
        std::printf("\n");
      }
  }
  JsonLine s;
  s.add("summary", true).add("workload", workload).add("device", o.device.str()).add("precision", o.precision);
  s.add("batch", o.batch).add("captured_nodes", captured_nodes).add("nodes", ex.stats().nodes);
  s.add("eager_launches", int64_t(eager.launches)).add("graph_launches", int64_t(replay.launches));
  s.add("launch_ratio", double(replay.launches) / double(std::max<uint64_t>(eager.launches, 1)));
  s.add("eager_peak_bytes", int64_t(eager.peak_bytes)).add("graph_peak_bytes", int64_t(replay.peak_bytes));
  s.add("peak_ratio", double(replay.peak_bytes) / double(std::max<size_t>(eager.peak_bytes, 1)));
  s.add("eager_peak_bytes_grads_dropped", int64_t(eager_dropped.peak_bytes));
  s.add("peak_ratio_grads_dropped", double(replay.peak_bytes) / double(std::max<size_t>(eager_dropped.peak_bytes, 1)));
  s.add("planned_bytes", int64_t(ex.stats().planned_bytes)).add("unplanned_bytes", int64_t(ex.stats().unplanned_bytes));
  if (json) {
    std::printf("%s\n", s.str().c_str());
  } else {
    std::printf("\n%s on %s, %s, batch %lld: %lld captured nodes -> %lld\n", workload.c_str(), o.device.str().c_str(),
                o.precision.c_str(), static_cast<long long>(o.batch), static_cast<long long>(captured_nodes),
                static_cast<long long>(ex.stats().nodes));
    std::printf("kernel launches per step: eager %llu, graph %llu (%.2fx)\n",
                static_cast<unsigned long long>(eager.launches), static_cast<unsigned long long>(replay.launches),
                double(replay.launches) / double(std::max<uint64_t>(eager.launches, 1)));
    std::printf("peak memory of a step:    eager %s, graph %s (%.2fx); planned intermediates %s (without reuse %s)\n",
                mib(eager.peak_bytes).c_str(), mib(replay.peak_bytes).c_str(),
                double(replay.peak_bytes) / double(std::max<size_t>(eager.peak_bytes, 1)),
                mib(ex.stats().planned_bytes).c_str(), mib(ex.stats().unplanned_bytes).c_str());
    std::printf("                          eager with the last step's gradients dropped first %s (graph %.2fx)\n",
                mib(eager_dropped.peak_bytes).c_str(),
                double(replay.peak_bytes) / double(std::max<size_t>(eager_dropped.peak_bytes, 1)));
    const graph::ExecutorStats& st = ex.stats();
    if (st.peak_position >= 0) {
      std::printf("held at the planned peak (node %lld of %lld):", static_cast<long long>(st.peak_position),
                  static_cast<long long>(st.nodes));
      for (size_t i = 0; i < st.peak_holders.size() && i < 6; ++i)
        std::printf("%s %s %s", i ? "," : "", st.peak_holders[i].first.c_str(), mib(st.peak_holders[i].second).c_str());
      std::printf("\n");
    }
    std::printf("%s\n", s.str().c_str());
  }
  return 0;
}

}  // namespace pacer::cli
