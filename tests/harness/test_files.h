// Files of an integration test: its temporary directories (the test bed's) and whole-file reads
// that a test compares as strings.
#pragma once

#include <cstddef>
#include <string>

#include "testbed/scratch_dir.h"

namespace ferry::testing {

using testbed::MakeTempDir;  // PARENT/PREFIXXXXXXX, mode 0700; "" if it cannot be made
// The whole file, byte for byte; "" if it cannot be read.
std::string ReadFile(const std::string& path);
// Its last `max_bytes` bytes (all of it when shorter); "" if it cannot be read.
std::string ReadFileTail(const std::string& path, size_t max_bytes);

}  // namespace ferry::testing
