#include "ops/registry.h"

#include <algorithm>
#include <map>
#include <mutex>

namespace pacer::ops {

namespace {

struct Registry {
  std::mutex m;
  std::map<std::string, OpDef*> ops;
  std::vector<std::tuple<std::string, DeviceType, KernelFn>> pending;
};

Registry& registry() {
  static Registry r;
  return r;
}

}  // namespace

OpDef& register_op(OpDef& def) {
  Registry& r = registry();
  std::lock_guard<std::mutex> g(r.m);
  PACER_CHECK(r.ops.emplace(def.name, &def).second, "op '{}' registered twice", def.name);
  for (auto& [name, dev, fn] : r.pending)
    if (name == def.name) def.kernels[int(dev)] = fn;
  return def;
}

void register_kernel(const char* name, DeviceType device, KernelFn fn) {
  Registry& r = registry();
  std::lock_guard<std::mutex> g(r.m);
  auto it = r.ops.find(name);
  if (it != r.ops.end()) it->second->kernels[int(device)] = fn;
  else r.pending.emplace_back(name, device, fn);
}

const OpDef& find_op(const std::string& name) {
  Registry& r = registry();
  std::lock_guard<std::mutex> g(r.m);
  auto it = r.ops.find(name);
  PACER_CHECK(it != r.ops.end(), "no op named '{}'", name);
  return *it->second;
}

std::vector<const OpDef*> all_ops() {
  Registry& r = registry();
  std::lock_guard<std::mutex> g(r.m);
  std::vector<const OpDef*> out;
  for (auto& [n, d] : r.ops) out.push_back(d);
  return out;
}

}  // namespace pacer::ops
