#include "store/local_chunk_store.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "core/files.h"
#include "store/sealed_chunk.h"

namespace ferry::store {

namespace {

constexpr size_t kMaxFileBytes = kMaxChunkBytes + kSealedChunkOverhead;

std::string Errno(int err) { return std::strerror(err); }

std::string SubdirName(int index) {
  char name[3];
  std::snprintf(name, sizeof name, "%02x", index);
  return name;
}

// ENOSPC and EDQUOT are the store being full: the caller can free space and retry.
Status WriteError(const std::string& what, const std::string& path, int err) {
  std::string msg = "cannot " + what + " " + path + ": " + Errno(err);
  if (err == ENOSPC || err == EDQUOT) return Status::ResourceExhausted(msg);
  return Status::Internal(msg);
}

bool IsChunkName(const char* name) {
  return std::strlen(name) == 2 * ChunkId::kBytes && ChunkId::FromHex(name).ok();
}
bool IsTempName(const char* name) {
  const size_t n = std::strlen(name);
  return name[0] == '.' && n > 4 && std::strcmp(name + n - 4, ".tmp") == 0;
}

}  // namespace

Result<std::unique_ptr<LocalChunkStore>> LocalChunkStore::Open(const std::string& dir,
                                                               SyncMode mode) {
  FERRY_RETURN_IF_ERROR(EnsurePrivateDir(dir, "chunk directory"));
  for (int i = 0; i < 256; ++i) {
    const std::string sub = dir + "/" + SubdirName(i);
    if (::mkdir(sub.c_str(), 0700) != 0 && errno != EEXIST) {
      return WriteError("create", sub, errno);
    }
  }
  UniqueFd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW));
  if (!fd.valid()) return Status::Internal("cannot open " + dir + ": " + Errno(errno));
  return std::unique_ptr<LocalChunkStore>(new LocalChunkStore(dir, std::move(fd), mode));
}

std::string LocalChunkStore::PathOf(const ChunkId& id) const {
  return dir_ + "/" + SubdirName(id.bytes[0]) + "/" + id.Hex();
}

Status LocalChunkStore::WriteFile(const std::string& path, std::string_view bytes, bool flush) {
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
  if (!fd.valid()) return WriteError("create", path, errno);
  Status st;
  size_t done = 0;
  while (st.ok() && done < bytes.size()) {
    ssize_t n = ::write(fd.get(), bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) st = WriteError("write", path, errno);
    if (n > 0) done += static_cast<size_t>(n);
  }
  if (st.ok() && flush && ::fsync(fd.get()) != 0) st = WriteError("flush", path, errno);
  fd.Reset();
  if (!st.ok()) ::unlink(path.c_str());
  return st;
}

Status LocalChunkStore::Put(const ChunkId& id, std::string_view sealed) {
  const std::string final_path = PathOf(id);
  uint64_t n;
  {
    std::lock_guard<std::mutex> lock(mu_);
    n = next_temp_++;
  }
  const std::string temp =
      dir_ + "/" + SubdirName(id.bytes[0]) + "/." + id.Hex() + "." + std::to_string(n) + ".tmp";
  const bool each = mode_ == SyncMode::kFsyncEach;
  FERRY_RETURN_IF_ERROR(WriteFile(temp, sealed, each));
  if (each) {
    {
      // Marked before the rename: a seal that sees the file then flushes its directory too.
      std::lock_guard<std::mutex> lock(mu_);
      dirty_dirs_.insert(id.bytes[0]);
    }
    if (::rename(temp.c_str(), final_path.c_str()) != 0) {
      const int err = errno;
      ::unlink(temp.c_str());
      return WriteError("rename into", final_path, err);
    }
    return Status::Ok();
  }
  std::lock_guard<std::mutex> lock(mu_);
  pending_.emplace_back(temp, final_path);
  return Status::Ok();
}

Status LocalChunkStore::SyncFilesystem() {
  if (::syncfs(dir_fd_.get()) != 0) return WriteError("flush the filesystem of", dir_, errno);
  return Status::Ok();
}

Status LocalChunkStore::Sync() {
  // One Sync at a time, start to end: a Sync that finds nothing pending because another took
  // its chunks must not return before that other one has made them durable.
  std::lock_guard<std::mutex> one_at_a_time(sync_mu_);
  std::vector<std::pair<std::string, std::string>> batch;
  std::set<int> dirs;
  {
    // Taken before the flush: a Put that ends after this point is not covered by it.
    std::lock_guard<std::mutex> lock(mu_);
    batch.swap(pending_);
    dirs.swap(dirty_dirs_);
  }
  for (int d : dirs) {
    const std::string sub = dir_ + "/" + SubdirName(d);
    UniqueFd fd(::open(sub.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!fd.valid() || ::fsync(fd.get()) != 0) return WriteError("flush", sub, errno);
  }
  if (batch.empty()) return Status::Ok();
  FERRY_RETURN_IF_ERROR(SyncFilesystem());
  for (const auto& [temp, final_path] : batch) {
    if (::rename(temp.c_str(), final_path.c_str()) != 0) {
      return WriteError("rename into", final_path, errno);
    }
  }
  return SyncFilesystem();
}

Result<std::string> LocalChunkStore::Get(const ChunkId& id) {
  const std::string path = PathOf(id);
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
  if (!fd.valid()) {
    const int err = errno;
    if (err == ENOENT) return Status::NotFound(Describe(id) + " is missing");
    return Status::Internal("cannot open " + path + ": " + Errno(err));
  }
  std::string out(kMaxFileBytes + 1, '\0');
  size_t done = 0;
  while (done < out.size()) {
    ssize_t n = ::read(fd.get(), out.data() + done, out.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Status::Internal("cannot read " + path + ": " + Errno(errno));
    if (n == 0) break;
    done += static_cast<size_t>(n);
  }
  out.resize(done);  // one byte over the limit is enough for the format check to refuse it
  return out;
}

Result<bool> LocalChunkStore::Has(const ChunkId& id) {
  struct stat st;
  if (::lstat(PathOf(id).c_str(), &st) == 0) return S_ISREG(st.st_mode);
  if (errno == ENOENT) return false;
  return Status::Internal("cannot stat " + PathOf(id) + ": " + Errno(errno));
}

Result<uint64_t> LocalChunkStore::Remove(const ChunkId& id) {
  const std::string path = PathOf(id);
  struct stat st;
  if (::lstat(path.c_str(), &st) != 0) return uint64_t{0};
  if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
    return Status::Internal("cannot remove " + path + ": " + Errno(errno));
  }
  return static_cast<uint64_t>(st.st_size);
}

Result<std::vector<StoredChunk>> LocalChunkStore::List() {
  std::vector<StoredChunk> out;
  for (int i = 0; i < 256; ++i) {
    const std::string sub = dir_ + "/" + SubdirName(i);
    DIR* d = ::opendir(sub.c_str());
    if (d == nullptr) return Status::Internal("cannot list " + sub + ": " + Errno(errno));
    while (dirent* e = ::readdir(d)) {
      if (!IsChunkName(e->d_name)) continue;
      struct stat st;
      if (::fstatat(::dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0) continue;
      out.push_back({*ChunkId::FromHex(e->d_name), static_cast<uint64_t>(st.st_size)});
    }
    ::closedir(d);
  }
  return out;
}

Result<uint64_t> LocalChunkStore::DiscardUnsynced() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    pending_.clear();
  }
  uint64_t freed = 0;
  for (int i = 0; i < 256; ++i) {
    const std::string sub = dir_ + "/" + SubdirName(i);
    DIR* d = ::opendir(sub.c_str());
    if (d == nullptr) return Status::Internal("cannot list " + sub + ": " + Errno(errno));
    while (dirent* e = ::readdir(d)) {
      if (!IsTempName(e->d_name)) continue;
      struct stat st;
      if (::fstatat(::dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
          ::unlinkat(::dirfd(d), e->d_name, 0) == 0) {
        freed += static_cast<uint64_t>(st.st_size);
      }
    }
    ::closedir(d);
  }
  return freed;
}

}  // namespace ferry::store
