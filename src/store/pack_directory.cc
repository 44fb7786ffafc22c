#include "store/pack_directory.h"

#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string_view>

namespace ferry::store {

std::string Errno(int err) { return std::strerror(err); }

std::string SeqName(uint64_t seq) {
  char name[17];
  std::snprintf(name, sizeof name, "%016llx", static_cast<unsigned long long>(seq));
  return name;
}

Status WriteError(const std::string& what, const std::string& path, int err) {
  std::string msg = "cannot " + what + " " + path + ": " + Errno(err);
  if (err == ENOSPC || err == EDQUOT) return Status::ResourceExhausted(msg);
  return Status::Internal(msg);
}

bool ParseSeq(const char* name, const char* suffix, bool dot, uint64_t& seq) {
  std::string_view n(name);
  if (dot) {
    if (n.empty() || n[0] != '.') return false;
    n.remove_prefix(1);
  }
  const size_t suffix_len = std::strlen(suffix);
  if (n.size() != 16 + suffix_len || n.substr(16) != suffix) return false;
  seq = 0;
  for (char c : n.substr(0, 16)) {
    int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
    if (d < 0) return false;
    seq = seq << 4 | static_cast<uint64_t>(d);
  }
  return true;
}

Result<std::string> ReadAt(int fd, uint64_t offset, size_t len, const std::string& path) {
  std::string out(len, '\0');
  size_t done = 0;
  while (done < len) {
    ssize_t n = ::pread(fd, out.data() + done, len - done, static_cast<off_t>(offset + done));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Status::Internal("cannot read " + path + ": " + Errno(errno));
    if (n == 0) break;
    done += static_cast<size_t>(n);
  }
  out.resize(done);
  return out;
}

}  // namespace ferry::store
