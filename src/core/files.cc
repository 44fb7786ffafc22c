#include "core/files.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <vector>

namespace ferry {

namespace {
std::string Errno() { return std::strerror(errno); }

// write(2) or writev(2) returning 0 for a non-empty request means no progress is possible:
// treated as a full disk rather than looping forever.
Status WriteFailure(ssize_t n, const std::string& what) {
  const int err = n < 0 ? errno : ENOSPC;
  std::string msg = "cannot write " + what + ": " + std::strerror(err);
  if (err == ENOSPC || err == EDQUOT) return Status::ResourceExhausted(msg);
  return Status::Internal(msg);
}
}  // namespace

Status WriteAllTo(int fd, std::string_view bytes, const std::string& what) {
  size_t done = 0;
  while (done < bytes.size()) {
    ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return WriteFailure(n, what);
    done += static_cast<size_t>(n);
  }
  return Status::Ok();
}

Status WriteAllTo(int fd, std::span<const uint8_t> bytes, const std::string& what) {
  return WriteAllTo(fd, std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()),
                    what);
}

Status WriteAllTo(int fd, std::span<const struct iovec> buffers, const std::string& what) {
  std::vector<struct iovec> v(buffers.begin(), buffers.end());
  size_t i = 0;
  while (i < v.size() && v[i].iov_len == 0) ++i;
  while (i < v.size()) {
    ssize_t n = ::writev(fd, v.data() + i, static_cast<int>(v.size() - i));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return WriteFailure(n, what);
    size_t done = static_cast<size_t>(n);
    while (i < v.size() && done >= v[i].iov_len) done -= v[i++].iov_len;
    if (i < v.size()) {
      v[i].iov_base = static_cast<char*>(v[i].iov_base) + done;
      v[i].iov_len -= done;
    }
    while (i < v.size() && v[i].iov_len == 0) ++i;
  }
  return Status::Ok();
}

Result<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::NotFound("cannot open " + path + ": " + Errno());
  std::ostringstream out;
  out << in.rdbuf();
  if (in.bad()) return Status::Internal("cannot read " + path + ": " + Errno());
  return out.str();
}

Status WriteFileAtomic(const std::string& path, const std::string& contents, int mode) {
  std::string tmp = path + ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  if (fd < 0) return Status::Internal("cannot create " + tmp + ": " + Errno());
  if (Status written = WriteAllTo(fd, contents, tmp); !written.ok()) {
    ::close(fd);
    ::unlink(tmp.c_str());
    return written;
  }
  if (::fsync(fd) != 0 || ::close(fd) != 0) {
    ::unlink(tmp.c_str());
    return Status::Internal("cannot flush " + tmp + ": " + Errno());
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    ::unlink(tmp.c_str());
    return Status::Internal("cannot rename " + tmp + " to " + path + ": " + Errno());
  }
  return Status::Ok();
}

Status MakeDirs(const std::string& path, int mode) {
  std::error_code ec;
  std::filesystem::create_directories(path, ec);
  if (ec) return Status::Internal("cannot create directory " + path + ": " + ec.message());
  ::chmod(path.c_str(), mode);
  return Status::Ok();
}

Status RemoveAll(const std::string& path) {
  std::error_code ec;
  std::filesystem::remove_all(path, ec);
  if (ec) return Status::Internal("cannot remove " + path + ": " + ec.message());
  return Status::Ok();
}

bool PathExists(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0;
}

std::string TailFile(const std::string& path, size_t max_bytes) {
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  if (!in) return "";
  std::streamoff size = in.tellg();
  if (size < 0) return "";  // not a file with a size (a pipe): nothing to take the tail of
  std::streamoff start = size > static_cast<std::streamoff>(max_bytes)
                             ? size - static_cast<std::streamoff>(max_bytes)
                             : 0;
  in.seekg(start);
  // Only the bytes there were at open: a file still growing (a guest flooding its console) would
  // otherwise be read to its new end, past max_bytes.
  std::string text(static_cast<size_t>(size - start), '\0');
  in.read(text.data(), static_cast<std::streamsize>(text.size()));
  text.resize(static_cast<size_t>(in.gcount()));
  if (start > 0) {
    size_t nl = text.find('\n');
    if (nl != std::string::npos && nl + 1 < text.size()) text.erase(0, nl + 1);
  }
  return text;
}

Result<uint64_t> FreeBytesOn(const std::string& path) {
  struct statvfs vfs;
  if (::statvfs(path.c_str(), &vfs) != 0)
    return Status::Internal("statvfs " + path + ": " + Errno());
  return static_cast<uint64_t>(vfs.f_bavail) * vfs.f_frsize;
}

Status EnsurePrivateDir(const std::string& path, const std::string& what) {
  const std::string parent = std::filesystem::path(path).parent_path().string();
  if (!parent.empty() && !PathExists(parent)) FERRY_RETURN_IF_ERROR(MakeDirs(parent, 0755));
  if (::mkdir(path.c_str(), 0700) != 0 && errno != EEXIST) {
    return Status::Internal(what + " " + path + ": cannot create it: " + Errno());
  }
  struct stat st;
  if (::lstat(path.c_str(), &st) != 0) {
    return Status::Internal(what + " " + path + ": cannot inspect it: " + Errno());
  }
  const std::string fix = "; remove it or choose another path, ferryd creates it itself";
  if (S_ISLNK(st.st_mode))
    return Status::FailedPrecondition(what + " " + path + " is a symlink" + fix);
  if (!S_ISDIR(st.st_mode)) {
    return Status::FailedPrecondition(what + " " + path + " is not a directory" + fix);
  }
  if (st.st_uid != ::geteuid()) {
    return Status::FailedPrecondition(what + " " + path + " is owned by uid " +
                                      std::to_string(st.st_uid) + ", not ferryd's uid " +
                                      std::to_string(::geteuid()) + fix);
  }
  if ((st.st_mode & 077) != 0) {
    char mode[8];
    std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
    return Status::FailedPrecondition(what + " " + path + " has mode " + mode +
                                      ", other users may use it; make it 0700 (chmod 700 " + path +
                                      ") or remove it");
  }
  return Status::Ok();
}

Result<int> CreateExclusive(const std::string& path, int flags, int mode) {
  int fd = ::open(path.c_str(), flags | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
  if (fd < 0) {
    const int err = errno;
    return (err == ENOSPC ? Status::ResourceExhausted : Status::Internal)(
        "cannot create " + path + ": " + std::strerror(err) +
        (err == EEXIST ? " (a file of that name already exists)" : ""));
  }
  return fd;
}

uint64_t UnallocatedBytesIn(const std::string& dir) {
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return 0;
  uint64_t owed = 0;
  while (struct dirent* e = ::readdir(d)) {
    struct stat st;
    if (::fstatat(::dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0) continue;
    if (!S_ISREG(st.st_mode) || (st.st_mode & S_IWUSR) == 0) continue;
    const uint64_t size = static_cast<uint64_t>(st.st_size);
    const uint64_t allocated = static_cast<uint64_t>(st.st_blocks) * 512;
    if (size > allocated) owed += size - allocated;
  }
  ::closedir(d);
  return owed;
}

Result<uint64_t> HeadroomIn(const std::string& dir) {
  FERRY_ASSIGN_OR_RETURN(uint64_t free_bytes, FreeBytesOn(dir));
  const uint64_t owed = UnallocatedBytesIn(dir);
  return free_bytes > owed ? free_bytes - owed : 0;
}

}  // namespace ferry
