#include "crypto/key_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

namespace ferry::crypto {

namespace {
std::string Errno() { return std::strerror(errno); }
}  // namespace

Status WriteNewFile(const std::string& path, const std::string& contents, int mode) {
  struct stat st;
  if (::lstat(path.c_str(), &st) == 0) {
    return Status::AlreadyExists(path + " exists already; refusing to overwrite it");
  }
  std::string tmp = path + ".tmp";
  ::unlink(tmp.c_str());  // a leftover from a crash: never reuse its mode or owner
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode);
  if (fd < 0) return Status::Internal("cannot create " + tmp + ": " + Errno());
  Status st_out;
  if (::fchmod(fd, mode) != 0) st_out = Status::Internal("cannot chmod " + tmp + ": " + Errno());
  size_t done = 0;
  while (st_out.ok() && done < contents.size()) {
    ssize_t n = ::write(fd, contents.data() + done, contents.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      st_out = (errno == ENOSPC ? Status::ResourceExhausted
                                : Status::Internal)("cannot write " + tmp + ": " + Errno());
      break;
    }
    done += static_cast<size_t>(n);
  }
  if (st_out.ok() && ::fsync(fd) != 0) {
    st_out = Status::Internal("cannot flush " + tmp + ": " + Errno());
  }
  if (::close(fd) != 0 && st_out.ok()) {
    st_out = Status::Internal("cannot close " + tmp + ": " + Errno());
  }
  if (st_out.ok() && ::link(tmp.c_str(), path.c_str()) != 0) {
    st_out = errno == EEXIST
                 ? Status::AlreadyExists(path + " exists already; refusing to overwrite it")
                 : Status::Internal("cannot create " + path + ": " + Errno());
  }
  ::unlink(tmp.c_str());
  return st_out;
}

Status CheckKeyFileMode(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return Status::NotFound(path + ": key file is missing");
    return Status::Internal("cannot stat " + path + ": " + Errno());
  }
  if (!S_ISREG(st.st_mode)) {
    return Status::InvalidArgument(path + ": key file is not a regular file");
  }
  mode_t loose = st.st_mode & 066;
  if (loose == 0) return Status::Ok();
  const char* lets = (loose & 044) && (loose & 022) ? "read and write"
                     : (loose & 044)                ? "read"
                                                    : "write";
  char mode[8];
  std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
  return Status::FailedPrecondition(path + ": key file mode " + mode + " lets other users " + lets +
                                    " it; chmod 600 it");
}

}  // namespace ferry::crypto
