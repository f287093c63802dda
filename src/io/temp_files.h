// Internal: the temporary files of the atomic writer (write_file_atomic, src/io/checkpoint.cpp).
#pragma once
#include <string>

namespace synapse::io {

// Removes the temporary files "<name>.tmp.<pid>" that writers killed before their rename (kill -9, power
// loss) left in `dir`: only files of that pattern whose process no longer runs. Returns how many it
// removed. write_file_atomic calls it on the first write into each folder; a resumed run (zoo/run.cpp)
// calls it on its log folder and checkpoint folder.
int remove_stale_temp_files(const std::string& dir);

}  // namespace synapse::io
