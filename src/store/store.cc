#include "store/store.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <ctime>

#include "core/files.h"
#include "crypto/host_identity.h"
#include "store/opened_hold.h"
#include "store/pack_chunk_store.h"

namespace ferry::store {

namespace {

constexpr char kHoldSuffix[] = ".hold";
constexpr size_t kMaxManifestBytes = (size_t{1} << 30) + (size_t{8} << 20);

std::string Errno(int err) { return std::strerror(err); }

Result<UniqueFd> LockStore(const std::string& dir) {
  const std::string path = dir + "/store.lock";
  UniqueFd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600));
  if (!fd.valid()) return Status::Internal("cannot open " + path + ": " + Errno(errno));
  if (::flock(fd.get(), LOCK_EX | LOCK_NB) != 0) {
    if (errno == EWOULDBLOCK) {
      return Status::FailedPrecondition("store " + dir +
                                        " is in use by another process (another ferryd?)");
    }
    return Status::Internal("cannot lock " + path + ": " + Errno(errno));
  }
  return fd;
}

// Leftovers of a manifest write that a crash interrupted.
void RemoveTemporaryManifests(const std::string& holds_dir) {
  DIR* d = ::opendir(holds_dir.c_str());
  if (d == nullptr) return;
  while (dirent* e = ::readdir(d)) {
    const size_t n = std::strlen(e->d_name);
    if (e->d_name[0] == '.' && n > 4 && std::strcmp(e->d_name + n - 4, ".tmp") == 0) {
      ::unlinkat(::dirfd(d), e->d_name, 0);
    }
  }
  ::closedir(d);
}

Status FsyncDir(const std::string& dir) {
  UniqueFd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd.valid() || ::fsync(fd.get()) != 0) {
    return Status::Internal("cannot flush directory " + dir + ": " + Errno(errno));
  }
  return Status::Ok();
}

}  // namespace

std::vector<BlobInfo> BlobInfos(const ChunkTable& table) {
  std::vector<BlobInfo> out;
  for (const BlobTable& b : table.blobs) {
    BlobInfo info{b.name, b.size, b.chunks.size(), 0};
    for (const ChunkRef& c : b.chunks) info.zero_chunks += c.hole ? 1 : 0;
    out.push_back(std::move(info));
  }
  return out;
}

HoldExport::~HoldExport() { crypto::Wipe(data_key); }

Store::Store(StoreOptions options, const crypto::HostSigner& signer, crypto::X509Ptr cert,
             std::string host_id, UniqueFd lock, std::unique_ptr<StoreKeys> keys,
             std::unique_ptr<ChunkStore> chunks)
    : options_(std::move(options)),
      signer_(signer),
      cert_(std::move(cert)),
      host_id_(std::move(host_id)),
      lock_(std::move(lock)),
      keys_(std::move(keys)),
      chunks_(std::move(chunks)) {}

Store::~Store() = default;

Result<std::unique_ptr<Store>> Store::Open(const StoreOptions& options,
                                           const crypto::HostSigner& signer, X509* own_cert) {
  FERRY_RETURN_IF_ERROR(ValidateChunkBytes(options.chunk_bytes));
  if (options.threads < 1 || options.threads > 64) {
    return Status::InvalidArgument("store threads must be 1 to 64");
  }
  if (own_cert == nullptr)
    return Status::InvalidArgument("the store needs this host's certificate");
  FERRY_ASSIGN_OR_RETURN(crypto::HostIdentity who, crypto::HostIdentityFromCertificate(own_cert));
  FERRY_RETURN_IF_ERROR(EnsurePrivateDir(options.dir, "store directory"));
  FERRY_ASSIGN_OR_RETURN(UniqueFd lock, LockStore(options.dir));
  FERRY_ASSIGN_OR_RETURN(std::unique_ptr<StoreKeys> keys, StoreKeys::Open(options.dir));
  const std::string holds = options.dir + "/holds";
  FERRY_RETURN_IF_ERROR(EnsurePrivateDir(holds, "store hold directory"));
  RemoveTemporaryManifests(holds);
  if (PathExists(options.dir + "/chunks")) {
    // Store format 1 kept one file per chunk under chunks/; nothing reads it any more (there
    // were no deployed stores).
    return Status::FailedPrecondition(
        "store " + options.dir +
        " was made by an older ferry (store format 1, one file per chunk under chunks/); this "
        "ferry keeps chunks in packs (store format 2) and cannot read its holds: move the "
        "directory aside (or delete it) and start ferryd again");
  }
  if (options.pack_bytes < (uint64_t{1} << 20) || options.pack_bytes > (uint64_t{1} << 32)) {
    return Status::InvalidArgument("store pack size must be 1 MiB to 4 GiB");
  }
  FERRY_ASSIGN_OR_RETURN(std::unique_ptr<PackChunkStore> chunks,
                         PackChunkStore::Open(options.dir + "/packs", options.pack_bytes));
  // Chunks a crash left unpublished; no seal runs yet.
  FERRY_RETURN_IF_ERROR(chunks->DiscardUnsynced().status());
  X509_up_ref(own_cert);
  return std::unique_ptr<Store>(new Store(options, signer, crypto::X509Ptr(own_cert), who.host_id,
                                          std::move(lock), std::move(keys), std::move(chunks)));
}

std::string Store::HoldPath(const std::string& hold_id) const {
  return HoldsDir() + "/" + hold_id + kHoldSuffix;
}

Result<ManifestFile> Store::ReadManifestFile(const std::string& hold_id) {
  FERRY_RETURN_IF_ERROR(ValidateHoldId(hold_id));
  const std::string path = HoldPath(hold_id);
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
  if (!fd.valid()) {
    if (errno == ENOENT) return Status::NotFound("hold " + hold_id + " is not in the store");
    return Status::Internal("hold " + hold_id + ": cannot open " + path + ": " + Errno(errno));
  }
  struct stat st;
  if (::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode) ||
      static_cast<uint64_t>(st.st_size) > kMaxManifestBytes) {
    return Status::Corruption("hold manifest " + path +
                              ": not a regular file of a plausible size; the hold is damaged");
  }
  std::string bytes(static_cast<size_t>(st.st_size), '\0');
  size_t done = 0;
  while (done < bytes.size()) {
    ssize_t n = ::read(fd.get(), bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Status::Internal("cannot read " + path + ": " + Errno(errno));
    if (n == 0) break;
    done += static_cast<size_t>(n);
  }
  bytes.resize(done);
  FERRY_ASSIGN_OR_RETURN(ManifestFile file, DecodeHoldManifest(bytes, cert_.get(), path));
  if (file.manifest.header.hold_id != hold_id) {
    return Status::Corruption("hold manifest " + path + ": it is the manifest of hold " +
                              file.manifest.header.hold_id + "; the hold is damaged");
  }
  return file;
}

Result<OpenedHold> Store::OpenHold(const std::string& hold_id) {
  OpenedHold hold;
  FERRY_ASSIGN_OR_RETURN(hold.file, ReadManifestFile(hold_id));
  const std::string path = HoldPath(hold_id);
  auto key = keys_->UnwrapDataKey(hold.file.wrapped_data_key, hold_id);
  if (!key.ok()) {
    return Status::Corruption("hold manifest " + path + ": " + key.status().message() +
                              "; the hold is damaged");
  }
  hold.data_key = std::move(key).value();
  FERRY_ASSIGN_OR_RETURN(hold.table, OpenChunkTable(hold.file.sealed_table, hold.data_key, hold_id,
                                                    "hold manifest " + path));
  uint64_t logical = 0;
  for (const BlobTable& b : hold.table.blobs) logical += b.size;
  if (hold.table.chunk_bytes != hold.file.manifest.chunk_bytes ||
      logical != hold.file.manifest.logical_bytes) {
    return Status::Corruption("hold manifest " + path +
                              ": the chunk table does not match the header; the hold is damaged");
  }
  hold.file.manifest.blobs = BlobInfos(hold.table);
  return hold;
}

Result<ManifestFile> Store::NewManifestFile(const HoldManifest& manifest,
                                            const std::string& data_key, const ChunkTable& table) {
  ManifestFile file;
  file.manifest = manifest;
  file.manifest.signer_host_id = host_id_;
  FERRY_ASSIGN_OR_RETURN(file.wrapped_data_key,
                         keys_->WrapDataKey(data_key, manifest.header.hold_id));
  FERRY_ASSIGN_OR_RETURN(file.sealed_table,
                         SealChunkTable(table, data_key, manifest.header.hold_id));
  return file;
}

Status Store::WriteManifestFile(const ManifestFile& file, bool replace) {
  const std::string& id = file.manifest.header.hold_id;
  FERRY_ASSIGN_OR_RETURN(std::string bytes, EncodeHoldManifest(file, signer_));
  const std::string path = HoldPath(id), temp = HoldsDir() + "/." + id + ".tmp";
  ::unlink(temp.c_str());
  FERRY_ASSIGN_OR_RETURN(int raw_fd, CreateExclusive(temp, O_WRONLY, 0600));
  UniqueFd fd(raw_fd);
  Status st = WriteAllTo(fd.get(), bytes, temp);
  if (st.ok() && ::fsync(fd.get()) != 0) {
    st = Status::Internal("cannot flush " + temp + ": " + Errno(errno));
  }
  fd.Reset();
  if (st.ok() && replace && ::rename(temp.c_str(), path.c_str()) != 0) {
    st = Status::Internal("cannot rename " + temp + " to " + path + ": " + Errno(errno));
  }
  if (st.ok() && !replace && ::link(temp.c_str(), path.c_str()) != 0) {
    st = errno == EEXIST ? Status::AlreadyExists("hold " + id + " exists already in the store")
                         : Status::Internal("cannot create " + path + ": " + Errno(errno));
  }
  ::unlink(temp.c_str());
  FERRY_RETURN_IF_ERROR(st);
  return FsyncDir(HoldsDir());
}

Result<HoldManifest> Store::LoadHold(const std::string& hold_id) {
  FERRY_ASSIGN_OR_RETURN(OpenedHold hold, OpenHold(hold_id));
  return std::move(hold.file.manifest);
}

Status Store::UpdateState(const std::string& hold_id, const std::string& state) {
  FERRY_RETURN_IF_ERROR(ValidateHoldState(state));
  std::lock_guard<std::mutex> lock(manifest_mu_);
  // Checked like any load, so a damaged or forged manifest is never re-signed by this host.
  FERRY_ASSIGN_OR_RETURN(OpenedHold hold, OpenHold(hold_id));
  hold.file.manifest.header.state = state;
  hold.file.manifest.signer_host_id = host_id_;
  return WriteManifestFile(hold.file, /*replace=*/true).WithContext("hold " + hold_id);
}

Status Store::ShredHold(const std::string& hold_id) {
  FERRY_RETURN_IF_ERROR(ValidateHoldId(hold_id));
  std::lock_guard<std::mutex> lock(manifest_mu_);
  const std::string path = HoldPath(hold_id);
  if (::unlink(path.c_str()) != 0) {
    if (errno == ENOENT) return Status::NotFound("hold " + hold_id + " is not in the store");
    return Status::Internal("hold " + hold_id + ": cannot remove " + path + ": " + Errno(errno));
  }
  return FsyncDir(HoldsDir()).WithContext("hold " + hold_id);
}

std::vector<std::string> Store::ListHolds() {
  std::vector<std::string> out;
  DIR* d = ::opendir(HoldsDir().c_str());
  if (d == nullptr) return out;
  const size_t suffix = std::strlen(kHoldSuffix);
  while (dirent* e = ::readdir(d)) {
    std::string name = e->d_name;
    if (name.size() <= suffix || name.compare(name.size() - suffix, suffix, kHoldSuffix) != 0) {
      continue;
    }
    name.resize(name.size() - suffix);
    if (ValidateHoldId(name).ok()) out.push_back(std::move(name));
  }
  ::closedir(d);
  std::sort(out.begin(), out.end());
  return out;
}

Result<StoreStats> Store::Stats() {
  StoreStats stats;
  for (const std::string& id : ListHolds()) {
    auto file = ReadManifestFile(id);
    if (!file.ok()) continue;  // Verify reports it; it adds nothing readable
    ++stats.holds;
    stats.logical_bytes += file->manifest.logical_bytes;
  }
  FERRY_ASSIGN_OR_RETURN(std::vector<StoredChunk> chunks, chunks_->List());
  stats.chunks = chunks.size();
  for (const StoredChunk& c : chunks) stats.stored_bytes += c.bytes;
  if (stats.stored_bytes > 0) {
    stats.dedup_ratio = static_cast<double>(stats.logical_bytes) / stats.stored_bytes;
  }
  return stats;
}

}  // namespace ferry::store
