// UTF-8 text files (read_utf8_file, decode_utf8) and the poem corpus reader (read_poems).
#include "fuzz.h"
#include "synapse/poem.h"
#include "synapse/text.h"

SYNAPSE_FUZZ_TARGET(text) {
  const std::string path = synapse::fuzz::temp_file("txt", data, size);
  synapse::fuzz::expect_error_naming(path, [&] {
    const std::u32string s = synapse::data::read_utf8_file(path);
    if (synapse::data::encode_utf8(s).size() > size) synapse::fuzz::finding("UTF-8 round trip grew the text");
  });
  synapse::fuzz::expect_error_naming(path, [&] { synapse::apps::read_poems(path); });
}
