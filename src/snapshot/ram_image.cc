#include "snapshot/ram_image.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include "core/files.h"
#include "snapshot/ram_scan.h"

namespace ferry::snapshot {

using nlohmann::json;

namespace {

constexpr const char* kZeroMarker = "zero";

// Closes on scope exit; the RAM files here are too large to leave descriptors to chance.
struct Fd {
  explicit Fd(int f) : fd(f) {}
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int fd;
};

std::string Hex32(uint32_t v) {
  char buf[9];
  std::snprintf(buf, sizeof buf, "%08x", v);
  return buf;
}

bool ParseHex32(const std::string& s, uint32_t* out) {
  if (s.size() != 8) return false;
  uint32_t v = 0;
  for (char c : s) {
    int d = (c >= '0' && c <= '9') ? c - '0' : (c >= 'a' && c <= 'f') ? c - 'a' + 10 : -1;
    if (d < 0) return false;
    v = (v << 4) | static_cast<uint32_t>(d);
  }
  *out = v;
  return true;
}

uint64_t MiB(uint64_t bytes) { return (bytes + (uint64_t{1} << 20) - 1) >> 20; }

bool IsNoSpace(int err) { return err == ENOSPC || err == EDQUOT; }

// Messages below leave out RamCopyOptions::what: CopyRamFile adds it once, to every error.
Status NoSpace(const std::string& dst, uint64_t needs_bytes) {
  const std::string dir = std::filesystem::path(dst).parent_path().string();
  auto free_bytes = FreeBytesOn(dir);
  return Status::ResourceExhausted(
      "no space left in " + dir + " for the RAM image (needs up to " +
      std::to_string(MiB(needs_bytes)) + " MiB" +
      (free_bytes.ok() ? ", " + std::to_string(*free_bytes >> 20) + " MiB free" : "") +
      "); free memory or space there, or delete snapshots no longer needed");
}

Status WriteFully(const RamCopyOptions& options, int fd, const std::string& dst,
                  uint64_t needs_bytes, const char* data, size_t size, uint64_t offset) {
  size_t done = 0;
  while (done < size) {
    ssize_t n = options.pwrite(fd, data + done, size - done, static_cast<off_t>(offset + done));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && IsNoSpace(errno)) return NoSpace(dst, needs_bytes);
    if (n <= 0) {
      return Status::Internal("cannot write " + dst + ": " +
                              (n < 0 ? std::strerror(errno) : "no progress"));
    }
    done += static_cast<size_t>(n);
  }
  return Status::Ok();
}

// Everything after both files are open; the caller removes `dst` if this fails.
Result<RamImage> CopyOpenFiles(const std::string& src, int in, const std::string& dst, int out,
                               uint64_t size, uint64_t src_allocated,
                               const RamCopyOptions& options) {
  if (::ftruncate(out, static_cast<off_t>(size)) != 0) {
    if (IsNoSpace(errno)) return NoSpace(dst, src_allocated);
    return Status::Internal("cannot size " + dst + ": " + std::strerror(errno));
  }
  RamImage image;
  image.size_bytes = size;
  image.chunk_bytes = options.chunk_bytes;
  RamScanner scanner(in, src, size, options.chunk_bytes);
  image.chunks.reserve(scanner.chunk_count());
  auto write_run = [&](uint64_t offset, const char* data, size_t n) {
    image.data_bytes += n;
    return WriteFully(options, out, dst, src_allocated, data, n, offset);
  };
  for (uint64_t i = 0; i < scanner.chunk_count(); ++i) {
    FERRY_ASSIGN_OR_RETURN(ChunkDigest digest, scanner.ScanChunk(i, write_run));
    image.chunks.push_back(RamChunk{digest.zero, digest.crc32});
  }
  // A no-op on tmpfs, where RAM images normally live. On a disk it makes "the manifest exists"
  // (written after this, with its own fsync) imply "the RAM bytes survived a host crash".
  if (::fsync(out) != 0) {
    if (IsNoSpace(errno)) return NoSpace(dst, src_allocated);
    return Status::Internal("cannot flush " + dst + ": " + std::strerror(errno));
  }
  if (::fchmod(out, 0400) != 0) {
    return Status::Internal("cannot make " + dst + " read-only: " + std::strerror(errno));
  }
  return image;
}

// Opens both files, copies, and removes `dst` again if anything failed after creating it.
Result<RamImage> CopyFile(const std::string& src, const std::string& dst,
                          const RamCopyOptions& options) {
  if (options.chunk_bytes == 0 || options.chunk_bytes % kPageBytes != 0) {
    return Status::InvalidArgument("chunk size " + std::to_string(options.chunk_bytes) +
                                   " is not a multiple of 4096");
  }
  Fd in(::open(src.c_str(), O_RDONLY | O_CLOEXEC));
  if (in.fd < 0) {
    const int err = errno;
    return (err == ENOENT ? Status::NotFound : Status::Internal)("cannot open RAM file " + src +
                                                                 ": " + std::strerror(err));
  }
  struct stat st;
  if (::fstat(in.fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    return Status::InvalidArgument("RAM file " + src + " is not a regular file");
  }
  Fd out(::open(dst.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
  if (out.fd < 0) {
    const int err = errno;
    return (err == EEXIST ? Status::AlreadyExists
                          : Status::Internal)("cannot create " + dst + ": " + std::strerror(err));
  }
  // The source's allocated size bounds what the copy can need: zero pages are not written.
  const uint64_t src_allocated = static_cast<uint64_t>(st.st_blocks) * 512;
  auto image = CopyOpenFiles(src, in.fd, dst, out.fd, static_cast<uint64_t>(st.st_size),
                             src_allocated, options);
  const int close_rc = ::close(out.fd);
  const int close_errno = errno;
  out.fd = -1;
  if (image.ok() && close_rc != 0) {
    image = IsNoSpace(close_errno)
                ? NoSpace(dst, src_allocated)
                : Status::Internal("cannot close " + dst + ": " + std::strerror(close_errno));
  }
  if (!image.ok()) {
    ::unlink(dst.c_str());
    // Measure the free space again now the partial copy is gone, so the message tells the truth.
    if (image.status().code() == Status::Code::kResourceExhausted) {
      return NoSpace(dst, src_allocated);
    }
  }
  return image;
}

}  // namespace

json RamImage::ToJson() const {
  json table = json::array();
  for (const RamChunk& c : chunks) {
    table.push_back(c.zero ? std::string(kZeroMarker) : Hex32(c.crc32));
  }
  return {{"size", size_bytes},
          {"chunk_bytes", chunk_bytes},
          {"checksum", kChecksum},
          {"data_bytes", data_bytes},
          {"chunks", std::move(table)}};
}

Result<RamImage> RamImage::FromJson(const json& j, const std::string& file) {
  auto bad = [&](const std::string& why) {
    return Status::Corruption("snapshot manifest " + file + ": " + why +
                              "; the snapshot is damaged, take a new one");
  };
  if (!j.is_object()) return bad("\"ram\" is not an object");
  for (const char* key : {"size", "chunk_bytes", "data_bytes"}) {
    if (!j.contains(key) || !j[key].is_number_integer() || j[key].get<int64_t>() < 0) {
      return bad(std::string("\"ram.") + key + "\" is missing or not a whole number");
    }
  }
  if (!j.contains("checksum") || !j["checksum"].is_string()) {
    return bad("\"ram.checksum\" is missing");
  }
  if (j["checksum"] != kChecksum) {
    return Status::FailedPrecondition("snapshot manifest " + file + ": RAM checksum " +
                                      j["checksum"].dump() +
                                      " is unknown to this ferryd; upgrade ferry");
  }
  RamImage image;
  image.size_bytes = j["size"].get<uint64_t>();
  image.chunk_bytes = j["chunk_bytes"].get<uint64_t>();
  image.data_bytes = j["data_bytes"].get<uint64_t>();
  if (image.chunk_bytes == 0 || image.chunk_bytes % kPageBytes != 0) {
    return bad("\"ram.chunk_bytes\" is not a multiple of 4096");
  }
  if (image.data_bytes > image.size_bytes) return bad("\"ram.data_bytes\" exceeds \"ram.size\"");
  if (!j.contains("chunks") || !j["chunks"].is_array()) return bad("\"ram.chunks\" is missing");
  const json& table = j["chunks"];
  const uint64_t want = (image.size_bytes + image.chunk_bytes - 1) / image.chunk_bytes;
  if (table.size() != want) {
    return bad("\"ram.chunks\" has " + std::to_string(table.size()) + " entries, the size needs " +
               std::to_string(want));
  }
  image.chunks.reserve(table.size());
  for (size_t i = 0; i < table.size(); ++i) {
    RamChunk c;
    const std::string text = table[i].is_string() ? table[i].get<std::string>() : "";
    if (text != kZeroMarker) {
      c.zero = false;
      if (!ParseHex32(text, &c.crc32)) {
        return bad("\"ram.chunks[" + std::to_string(i) + "]\" is not \"zero\" or 8 hex digits");
      }
    }
    image.chunks.push_back(c);
  }
  return image;
}

Result<RamImage> CopyRamFile(const std::string& src, const std::string& dst,
                             const RamCopyOptions& options_in) {
  const auto start = std::chrono::steady_clock::now();
  RamCopyOptions options = options_in;
  if (!options.pwrite) options.pwrite = ::pwrite;
  auto image = CopyFile(src, dst, options);
  if (!image.ok()) return image.status().WithContext(options.what);
  image->copy_micros = std::chrono::duration_cast<std::chrono::microseconds>(
                           std::chrono::steady_clock::now() - start)
                           .count();
  return image;
}

Status VerifyRamFile(const std::string& path, const RamImage& expected) {
  const std::string what = "snapshot RAM file " + path;
  const std::string advice = "; the snapshot is damaged, take a new one";
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.fd < 0) {
    const int err = errno;
    return (err == ENOENT ? Status::Corruption : Status::Internal)(
        what + ": cannot open: " + std::strerror(err) + (err == ENOENT ? advice : ""));
  }
  struct stat st;
  if (::fstat(fd.fd, &st) != 0) {
    return Status::Internal(what + ": cannot stat: " + std::strerror(errno));
  }
  const uint64_t size = static_cast<uint64_t>(st.st_size);
  if (size != expected.size_bytes) {
    return Status::Corruption(
        what + ": " + (size < expected.size_bytes ? "truncated: " : "wrong size: ") +
        std::to_string(size) + " bytes, expected " + std::to_string(expected.size_bytes) + advice);
  }
  if (expected.chunk_bytes == 0 || expected.chunk_bytes % kPageBytes != 0) {
    return Status::InvalidArgument(what + ": expected chunk size is not a multiple of 4096");
  }
  RamScanner scanner(fd.fd, path, size, expected.chunk_bytes);
  if (expected.chunks.size() != scanner.chunk_count()) {
    return Status::InvalidArgument(what + ": the expected chunk table does not fit the file");
  }
  for (uint64_t i = 0; i < scanner.chunk_count(); ++i) {
    FERRY_ASSIGN_OR_RETURN(ChunkDigest got, scanner.ScanChunk(i));
    const RamChunk& want = expected.chunks[i];
    if (got.zero == want.zero && (got.zero || got.crc32 == want.crc32)) continue;
    return Status::Corruption(what + ": checksum mismatch at chunk " + std::to_string(i) +
                              " (offset " + std::to_string(scanner.chunk_offset(i)) + ")" +
                              (want.zero ? ", recorded as all zero but holds data" : "") + advice);
  }
  return Status::Ok();
}

}  // namespace ferry::snapshot
