#pragma once
/// ModuleList: an indexed list of child modules named "0", "1", ... (torch.nn.ModuleList).
/// It has no forward; the owner decides how to call its members.

#include <initializer_list>
#include <memory>
#include <vector>

#include "nn/module.h"

namespace pacer::nn {

class ModuleList : public Module {
 public:
  ModuleList() = default;
  ModuleList(std::initializer_list<std::shared_ptr<Module>> modules);

  /// Appends a module as child str(size()).
  void push_back(std::shared_ptr<Module> m);
  size_t size() const { return modules_.size(); }
  /// The i-th module; throws when i is out of range.
  const std::shared_ptr<Module>& operator[](size_t i) const;
  /// The i-th module as T; throws when i is out of range or the module is not a T.
  template <class T>
  std::shared_ptr<T> at(size_t i) const {
    auto p = std::dynamic_pointer_cast<T>((*this)[i]);
    if (!p) throw_wrong_type(i);
    return p;
  }
  auto begin() const { return modules_.begin(); }
  auto end() const { return modules_.end(); }

 private:
  [[noreturn]] void throw_wrong_type(size_t i) const;
  std::vector<std::shared_ptr<Module>> modules_;
};

}  // namespace pacer::nn
