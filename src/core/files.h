// Small filesystem helpers over POSIX: every failure is a Status naming the path.
#pragma once

#include <sys/uio.h>

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

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

// Writes all of `bytes` to `fd`, retrying short and interrupted writes. A full disk or quota
// (ENOSPC, EDQUOT) is ResourceExhausted, so callers can tell "free some space" from a fault;
// any other failure is Internal. Messages read "cannot write <what>: <errno text>".
Status WriteAllTo(int fd, std::string_view bytes, const std::string& what);
Status WriteAllTo(int fd, std::span<const uint8_t> bytes, const std::string& what);
// The same with writev(2): all the buffers in order, as one gathered write where possible.
Status WriteAllTo(int fd, std::span<const struct iovec> buffers, const std::string& what);

// A directory only this process's user may use: created with mode 0700 if missing (its parents
// as needed); refused with one line naming `what` and the path when it exists as a symlink or
// non-directory, owned by another user, or with any group or other permission bit, since
// another local user could then plant, swap or read the files ferryd keeps there.
Status EnsurePrivateDir(const std::string& path, const std::string& what);
// Creates a new file for writing (O_CREAT|O_EXCL|O_NOFOLLOW|O_CLOEXEC): never follows a planted
// symlink, never reuses a file someone else made. Returns the descriptor.
Result<int> CreateExclusive(const std::string& path, int flags, int mode);
// Bytes the writable sparse files directly in `dir` (running VMs' RAM files) may still grow
// into: their size minus what is allocated. Read-only files (snapshot images) never grow.
uint64_t UnallocatedBytesIn(const std::string& dir);
// Space a new file in `dir` may take without starving the sparse files already there: free
// space minus UnallocatedBytesIn(dir), 0 when they are owed more than is free.
Result<uint64_t> HeadroomIn(const std::string& dir);

}  // namespace ferry
