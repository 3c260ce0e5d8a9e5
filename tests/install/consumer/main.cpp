// Creates tensors, runs backward and prints a gradient, using only the installed package.
#include <pacer/pacer.h>

#include <iostream>

int main() {
  using namespace pacer;
  Tensor w = from_vector<double>({1.0, 2.0, 3.0}, {3}, {.dtype = f64, .requires_grad = true});
  Tensor x = from_vector<double>({0.5, -1.0, 2.0}, {3}, {.dtype = f64});
  Tensor loss = sum(w * w * x);  // d loss / d w = 2 w x
  loss.backward();
  std::cout << "loss " << loss.item<double>() << "\n";
  std::cout << "grad " << w.grad() << "\n";
  return 0;
}
