#include "nn/module_list.h"

#include <string>

namespace pacer::nn {

ModuleList::ModuleList(std::initializer_list<std::shared_ptr<Module>> modules) {
  for (const auto& m : modules) push_back(m);
}

void ModuleList::push_back(std::shared_ptr<Module> m) {
  PACER_CHECK(m != nullptr, "ModuleList: module {} is null", modules_.size());
  register_module(std::to_string(modules_.size()), m);
  modules_.push_back(std::move(m));
}

const std::shared_ptr<Module>& ModuleList::operator[](size_t i) const {
  PACER_CHECK(i < modules_.size(), "ModuleList: index {} is out of range for {} modules", i, modules_.size());
  return modules_[i];
}

void ModuleList::throw_wrong_type(size_t i) const {
  PACER_FAIL("ModuleList: module {} is not of the requested type", i);
}

}  // namespace pacer::nn
