// IDX through the gzip path: the input is the IDX content, gzip-compressed here; its first byte chooses whether
// the compressed stream is cut short (and where), so truncated streams are covered too.
#include <zlib.h>

#include <string>

#include "fuzz.h"
#include "synapse/data.h"

SYNAPSE_FUZZ_TARGET(idx_gz) {
  if (size == 0) return;
  const unsigned cut = data[0];
  std::string gz(compressBound(static_cast<uLong>(size)) + 64, '\0');
  z_stream z{};
  if (deflateInit2(&z, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) return;
  z.next_in = const_cast<Bytef*>(data + 1);
  z.avail_in = static_cast<uInt>(size - 1);
  z.next_out = reinterpret_cast<Bytef*>(gz.data());
  z.avail_out = static_cast<uInt>(gz.size());
  deflate(&z, Z_FINISH);
  gz.resize(z.total_out);
  deflateEnd(&z);
  if (cut & 0x80) gz.resize(gz.size() * (cut & 0x7F) / 128);
  const std::string path = synapse::fuzz::temp_file("idx.gz", gz);
  synapse::fuzz::expect_error_naming(path, [&] { synapse::data::read_idx(path); });
}
