// Image decoding as `synapse predict` and `synapse serve` use it: decode_image (whose errors name the image), then
// mnist_style on what it decoded.
//
// The budget is 1 MiB here, not the harness's 64 MiB: an input declaring a large image is decoded (and
// resized) up to the budget, which under ASan made this target the slowest by far (60 exec/s at 64 MiB).
// The check itself is the same code at any budget; 1 MiB still admits 512 x 512 RGBA.
#include "fuzz.h"
#include "synapse/budget.h"
#include "synapse/data.h"

SYNAPSE_FUZZ_TARGET(image) {
  static const bool small_budget = (synapse::set_read_budget(std::uint64_t{1} << 20), true);
  (void)small_budget;
  synapse::Tensor image;
  synapse::fuzz::expect_error_naming("fuzz.png", [&] { image = synapse::data::decode_image(data, size, "fuzz.png"); });
  if (image.defined()) synapse::fuzz::expect_error_naming("", [&] { synapse::data::mnist_style(image); });
}
