// Files of an integration test: its temporary directories and whole-file reads.
#pragma once

#include <cstddef>
#include <string>

namespace ferry::testing {

// A new directory PARENT/PREFIXXXXXXX (mkdtemp, mode 0700); "" if it cannot be made.
std::string MakeTempDir(const std::string& parent, const std::string& prefix);
// The whole file, byte for byte; "" if it cannot be read.
std::string ReadFile(const std::string& path);
// Its last `max_bytes` bytes (all of it when shorter); "" if it cannot be read.
std::string ReadFileTail(const std::string& path, size_t max_bytes);

}  // namespace ferry::testing
