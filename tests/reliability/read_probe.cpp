// read_probe KIND FILE: reads FILE with one of the library's readers (for the bad-input catalogue's file types
// that no command reads directly, e.g. .npz). Prints "ok" or "error: MESSAGE" (exit 1).
#include <cstdio>
#include <string>

#include "synapse/data.h"
#include "synapse/io.h"
#include "synapse/error.h"

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: read_probe idx|npz|checkpoint FILE\n");
    return 2;
  }
  const std::string kind = argv[1], path = argv[2];
  try {
    if (kind == "idx") synapse::data::read_idx(path);
    else if (kind == "npz") synapse::io::load_npz(path);
    else if (kind == "checkpoint") synapse::io::load_checkpoint(path);
    else {
      std::fprintf(stderr, "read_probe: unknown kind '%s' (expected idx, npz or checkpoint)\n", kind.c_str());
      return 2;
    }
  } catch (const synapse::Error& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  std::printf("ok\n");
  return 0;
}
