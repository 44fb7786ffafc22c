#include "vm/console_ring.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "core/files.h"

namespace ferry::vm {

namespace {
std::string Errno() { return std::strerror(errno); }
}  // namespace

Result<bool> RotateConsoleIfOver(const std::string& path, uint64_t cap_bytes) {
  int fd = ::open(path.c_str(), O_RDWR | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return false;
  struct stat st;
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) ||
      static_cast<uint64_t>(st.st_size) <= cap_bytes) {
    ::close(fd);
    return false;
  }
  std::string keep(cap_bytes, '\0');
  const off_t from = st.st_size - static_cast<off_t>(cap_bytes);
  size_t got = 0;
  while (got < keep.size()) {
    ssize_t n = ::pread(fd, keep.data() + got, keep.size() - got, from + static_cast<off_t>(got));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    got += static_cast<size_t>(n);
  }
  keep.resize(got);
  const std::string old = path + ".1";
  const std::string tmp = old + ".tmp";
  ::unlink(tmp.c_str());
  Status st_write = Status::Ok();
  auto out = CreateExclusive(tmp, O_WRONLY, 0600);
  if (!out.ok()) {
    st_write = out.status();
  } else {
    size_t done = 0;
    while (done < keep.size()) {
      ssize_t n = ::write(*out, keep.data() + done, keep.size() - done);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        st_write = Status::Internal("cannot write " + tmp + ": " + Errno());
        break;
      }
      done += static_cast<size_t>(n);
    }
    ::close(*out);
    if (st_write.ok() && ::rename(tmp.c_str(), old.c_str()) != 0) {
      st_write = Status::Internal("cannot rename " + tmp + ": " + Errno());
    }
    if (!st_write.ok()) ::unlink(tmp.c_str());
  }
  // Truncated even when the copy failed: a full disk must not also fill with console output.
  if (::ftruncate(fd, 0) != 0 && st_write.ok()) {
    st_write = Status::Internal("cannot truncate " + path + ": " + Errno());
  }
  ::close(fd);
  if (!st_write.ok()) return st_write;
  return true;
}

std::string ConsoleTail(const std::string& path, size_t max_bytes) {
  std::string now = TailFile(path, max_bytes);
  if (now.size() >= max_bytes) return now;
  return TailFile(path + ".1", max_bytes - now.size()) + now;
}

}  // namespace ferry::vm
