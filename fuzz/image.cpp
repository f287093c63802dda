// Image decoding as `synapse predict` and `synapse serve` use it: decode_image (whose errors name the image), then
// mnist_style on what it decoded.
//
// The budget is 64 KiB here, not the harness's 64 MiB: an input declaring a large image is decoded up to the
// budget and then goes through mnist_style (grey, ink, bounding box, resize), whose passes over every pixel
// took the time (perf: to_grey, ink and their fresh buffers' page faults): 60 exec/s at 64 MiB, 150 at 1 MiB.
// The decoders' size checks are the same code at any budget; 64 KiB (stb_image's pixels and the tensor's)
// still admits 128 x 128 grey or 90 x 90 RGBA.
#include "fuzz.h"
#include "synapse/budget.h"
#include "synapse/data.h"

SYNAPSE_FUZZ_TARGET(image) {
  static const bool small_budget = (synapse::set_read_budget(std::uint64_t{64} << 10), true);
  (void)small_budget;
  synapse::Tensor image;
  synapse::fuzz::expect_error_naming("fuzz.png", [&] { image = synapse::data::decode_image(data, size, "fuzz.png"); });
  if (image.defined()) synapse::fuzz::expect_error_naming("", [&] { synapse::data::mnist_style(image); });
}
