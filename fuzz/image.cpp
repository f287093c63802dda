// Image decoding as `synapse predict` and `synapse serve` use it: decode_image (whose errors name the image), then
// mnist_style on what it decoded.
#include "fuzz.h"
#include "synapse/data.h"

SYNAPSE_FUZZ_TARGET(image) {
  synapse::Tensor image;
  synapse::fuzz::expect_error_naming("fuzz.png", [&] { image = synapse::data::decode_image(data, size, "fuzz.png"); });
  if (image.defined()) synapse::fuzz::expect_error_naming("", [&] { synapse::data::mnist_style(image); });
}
