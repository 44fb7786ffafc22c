// Small filesystem helpers over POSIX: every failure is a Status naming the path.
#pragma once

#include <cstdint>
#include <string>

#include "core/status.h"

namespace ferry {

Result<std::string> ReadFile(const std::string& path);
// Writes via a temporary file and rename(2), so readers never see a half-written file.
Status WriteFileAtomic(const std::string& path, const std::string& contents, int mode = 0644);
Status MakeDirs(const std::string& path, int mode = 0755);
// Removes a file or a whole tree; a missing path is not an error.
Status RemoveAll(const std::string& path);
bool PathExists(const std::string& path);
// The last `max_bytes` of a file (starting at a line boundary when possible); "" if unreadable.
std::string TailFile(const std::string& path, size_t max_bytes);
// Bytes a new file could still take on the filesystem holding `path`.
Result<uint64_t> FreeBytesOn(const std::string& path);

}  // namespace ferry
