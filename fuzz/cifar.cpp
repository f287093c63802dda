// CIFAR-10 and CIFAR-100 binary batches (data::read_cifar10 / read_cifar100, what `synapse train cifar-cnn`
// reads through load_cifar10) on the same bytes: fixed-size records, label bytes checked against the classes.
#include "fuzz.h"
#include "synapse/data.h"

SYNAPSE_FUZZ_TARGET(cifar) {
  const std::string path = synapse::fuzz::temp_file("cifar.bin", data, size);
  synapse::fuzz::expect_error_naming(path, [&] { synapse::data::read_cifar10(path); });
  synapse::fuzz::expect_error_naming(path, [&] { synapse::data::read_cifar100(path); });
}
