#include "store/pack_chunk_store.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>

#include "core/files.h"
#include "store/sealed_chunk.h"

namespace ferry::store {

namespace {

constexpr char kPackSuffix[] = ".pack";
constexpr char kTempSuffix[] = ".pack.tmp";

std::string Errno(int err) { return std::strerror(err); }

std::string SeqName(uint64_t seq) {
  char name[17];
  std::snprintf(name, sizeof name, "%016llx", static_cast<unsigned long long>(seq));
  return name;
}

// ENOSPC and EDQUOT are the store being full: the caller can free space and retry.
Status WriteError(const std::string& what, const std::string& path, int err) {
  std::string msg = "cannot " + what + " " + path + ": " + Errno(err);
  if (err == ENOSPC || err == EDQUOT) return Status::ResourceExhausted(msg);
  return Status::Internal(msg);
}

// "<16 hex>" followed by `suffix` (after a leading '.' when `dot`): the sequence number.
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

}  // namespace

PackChunkStore::PackChunkStore(std::string dir, UniqueFd dir_fd, uint64_t pack_bytes)
    : dir_(std::move(dir)), dir_fd_(std::move(dir_fd)), pack_bytes_(pack_bytes) {}

PackChunkStore::~PackChunkStore() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  queued_cv_.notify_all();
  if (flusher_.joinable()) flusher_.join();
  // A pack still being written was never synced: like a crash, it is left for DiscardUnsynced.
}

std::string PackChunkStore::PackPath(uint64_t seq) const {
  return dir_ + "/" + SeqName(seq) + kPackSuffix;
}

Result<std::unique_ptr<PackChunkStore>> PackChunkStore::Open(const std::string& dir,
                                                             uint64_t pack_bytes) {
  FERRY_RETURN_IF_ERROR(EnsurePrivateDir(dir, "pack directory"));
  UniqueFd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW));
  if (!fd.valid()) return Status::Internal("cannot open " + dir + ": " + Errno(errno));
  std::unique_ptr<PackChunkStore> store(new PackChunkStore(dir, std::move(fd), pack_bytes));
  std::vector<uint64_t> seqs;
  uint64_t max_seq = 0;
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return Status::Internal("cannot list " + dir + ": " + Errno(errno));
  while (dirent* e = ::readdir(d)) {
    uint64_t seq;
    if (ParseSeq(e->d_name, kPackSuffix, false, seq)) {
      seqs.push_back(seq);
      max_seq = std::max(max_seq, seq);
    } else if (ParseSeq(e->d_name, kTempSuffix, true, seq)) {
      max_seq = std::max(max_seq, seq);
    }
  }
  ::closedir(d);
  // Oldest first: when a crash during Collect left a chunk in two packs, either copy serves.
  std::sort(seqs.begin(), seqs.end());
  for (uint64_t seq : seqs) FERRY_RETURN_IF_ERROR(store->LoadPack(seq));
  store->next_seq_ = max_seq + 1;
  store->flusher_ = std::thread([s = store.get()] { s->RunFlusher(); });
  return store;
}

Status PackChunkStore::LoadPack(uint64_t seq) {
  const std::string path = PackPath(seq);
  auto fd = std::make_shared<UniqueFd>(::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
  if (!fd->valid()) return Status::Internal("cannot open " + path + ": " + Errno(errno));
  struct stat st;
  if (::fstat(fd->get(), &st) != 0) {
    return Status::Internal("cannot stat " + path + ": " + Errno(errno));
  }
  const uint64_t size = static_cast<uint64_t>(st.st_size);
  const std::string what = "pack " + path;
  PackReadAt read = [&](uint64_t off, size_t len) { return ReadAt(fd->get(), off, len, path); };
  FERRY_ASSIGN_OR_RETURN(std::string header, read(0, kPackHeaderBytes));
  Status checked = CheckPackHeader(header, seq, what);
  if (checked.code() == Status::Code::kFailedPrecondition) return checked;
  if (!checked.ok()) {
    // Nothing in it can be trusted to be a chunk; kept (Collect never removes what it cannot
    // read) and reported by Verify.
    open_problems_.push_back(checked.message() + "; none of its chunks can be read");
    return Status::Ok();
  }
  auto entries = ReadPackIndex(read, size, what);
  if (!entries.ok()) {
    if (entries.status().code() != Status::Code::kCorruption) return entries.status();
    PackScan scan = ScanPackRecords(read, size);
    open_problems_.push_back(entries.status().message() + "; " +
                             std::to_string(scan.entries.size()) +
                             " chunks recovered by reading its records" +
                             (scan.stopped.empty() ? "" : " (stopped at " + scan.stopped + ")"));
    entries = std::move(scan.entries);
  }
  Pack pack{fd, size, 0, 0};
  for (const PackEntry& e : *entries) {
    if (index_.emplace(e.id, Location{seq, e.offset, e.sealed_bytes}).second) {
      pack.live_bytes += kPackRecordHeaderBytes + e.sealed_bytes;
      ++pack.live;
    }
  }
  packs_[seq] = std::move(pack);
  return Status::Ok();
}

Result<std::unique_ptr<PackChunkStore::OpenPack>> PackChunkStore::StartPack() {
  auto pack = std::make_unique<OpenPack>();
  {
    std::lock_guard<std::mutex> lock(mu_);
    pack->seq = next_seq_++;
  }
  pack->temp = dir_ + "/." + SeqName(pack->seq) + kTempSuffix;
  pack->fd = std::make_shared<UniqueFd>(
      ::open(pack->temp.c_str(), O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
  if (!pack->fd->valid()) return WriteError("create", pack->temp, errno);
  const std::string header = EncodePackHeader(pack->seq);
  Status st = WriteAllTo(pack->fd->get(), header, pack->temp);
  if (!st.ok()) {
    ::unlink(pack->temp.c_str());
    return st;
  }
  pack->size = header.size();
  return pack;
}

Status PackChunkStore::Append(OpenPack& pack, const ChunkId& id, std::string_view sealed) {
  const std::string header = EncodePackRecordHeader(id, static_cast<uint32_t>(sealed.size()));
  struct iovec iov[2] = {{const_cast<char*>(header.data()), header.size()},
                         {const_cast<char*>(sealed.data()), sealed.size()}};
  FERRY_RETURN_IF_ERROR(WriteAllTo(pack.fd->get(), std::span<const struct iovec>(iov), pack.temp));
  pack.entries.push_back({id, pack.size, static_cast<uint32_t>(sealed.size())});
  pack.size += header.size() + sealed.size();
  return Status::Ok();
}

Status PackChunkStore::FinishPack(OpenPack& pack) {
  const std::string index = EncodePackIndex(pack.entries, pack.size);
  FERRY_RETURN_IF_ERROR(WriteAllTo(pack.fd->get(), index, pack.temp));
  pack.size += index.size();
  if (::fdatasync(pack.fd->get()) != 0) return WriteError("flush", pack.temp, errno);
  const std::string final_path = PackPath(pack.seq);
  if (::rename(pack.temp.c_str(), final_path.c_str()) != 0) {
    return WriteError("rename into", final_path, errno);
  }
  return Status::Ok();
}

void PackChunkStore::Publish(std::unique_ptr<OpenPack> pack) {
  Pack p{pack->fd, pack->size, 0, 0};
  for (const PackEntry& e : pack->entries) {
    // A chunk another seal's pack published first stays there; this copy is dead weight that
    // Collect reclaims.
    if (index_.emplace(e.id, Location{pack->seq, e.offset, e.sealed_bytes}).second) {
      p.live_bytes += kPackRecordHeaderBytes + e.sealed_bytes;
      ++p.live;
    }
  }
  packs_[pack->seq] = std::move(p);
}

void PackChunkStore::Enqueue(std::unique_ptr<OpenPack> pack) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    queue_.push_back(std::move(pack));
    ++queued_;
  }
  queued_cv_.notify_one();
}

void PackChunkStore::RunFlusher() {
  std::unique_lock<std::mutex> lock(mu_);
  while (true) {
    queued_cv_.wait(lock, [&] { return stop_ || !queue_.empty(); });
    if (queue_.empty()) return;  // stopping, nothing left
    std::unique_ptr<OpenPack> pack = std::move(queue_.front());
    queue_.pop_front();
    lock.unlock();
    // A pack that fails stays as a temporary file for DiscardUnsynced (Collect says what it
    // freed).
    Status st = FinishPack(*pack);
    lock.lock();
    if (st.ok()) {
      Publish(std::move(pack));
    } else if (error_.ok()) {
      error_ = st;
    }
    ++flushed_;
    flushed_cv_.notify_all();
  }
}

Status PackChunkStore::Put(const ChunkId& id, std::string_view sealed) {
  // What a pack's index accepts back (pack_file.cc); anything else would hide the pack's index.
  if (sealed.size() <= kSealedChunkOverhead ||
      sealed.size() > kMaxChunkBytes + kSealedChunkOverhead) {
    return Status::InvalidArgument("chunk " + id.Hex() + ": " + std::to_string(sealed.size()) +
                                   " bytes is no sealed chunk's length");
  }
  std::lock_guard<std::mutex> write_lock(write_mu_);
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!error_.ok()) return error_;
  }
  if (!current_) {
    FERRY_ASSIGN_OR_RETURN(current_, StartPack());
  }
  Status st = Append(*current_, id, sealed);
  if (!st.ok()) {
    // The pack is torn, and chunks put before into it are lost with it; its temporary file is
    // left for DiscardUnsynced.
    current_.reset();
    std::lock_guard<std::mutex> lock(mu_);
    if (error_.ok()) error_ = st;
    return st;
  }
  if (current_->size >= pack_bytes_) Enqueue(std::move(current_));
  return Status::Ok();
}

Status PackChunkStore::SyncDir() {
  if (::fsync(dir_fd_.get()) != 0) return WriteError("flush", dir_, errno);
  return Status::Ok();
}

Status PackChunkStore::Sync() {
  std::lock_guard<std::mutex> one_at_a_time(sync_mu_);
  {
    std::lock_guard<std::mutex> write_lock(write_mu_);
    if (current_ && !current_->entries.empty()) Enqueue(std::move(current_));
  }
  {
    std::unique_lock<std::mutex> lock(mu_);
    const uint64_t target = queued_;
    flushed_cv_.wait(lock, [&] { return flushed_ >= target; });
    if (!error_.ok()) return error_;
  }
  return SyncDir();
}

Result<std::string> PackChunkStore::Get(const ChunkId& id) {
  Location loc;
  std::shared_ptr<UniqueFd> fd;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = index_.find(id);
    if (it == index_.end()) return Status::NotFound("chunk " + id.Hex() + " is in no pack");
    loc = it->second;
    fd = packs_.at(loc.pack).fd;
  }
  const std::string path = PackPath(loc.pack);
  const std::string what =
      "chunk " + id.Hex() + " in pack " + path + " at offset " + std::to_string(loc.offset);
  FERRY_ASSIGN_OR_RETURN(
      std::string record,
      ReadAt(fd->get(), loc.offset, kPackRecordHeaderBytes + loc.sealed_bytes, path));
  FERRY_ASSIGN_OR_RETURN(std::string_view sealed, SealedBytesOfRecord(record, id, what));
  return std::string(sealed);
}

Result<bool> PackChunkStore::Has(const ChunkId& id) {
  std::lock_guard<std::mutex> lock(mu_);
  return index_.count(id) > 0;
}

Result<std::vector<StoredChunk>> PackChunkStore::List() {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<StoredChunk> out;
  out.reserve(index_.size());
  for (const auto& [id, loc] : index_) out.push_back({id, loc.sealed_bytes});
  return out;
}

std::string PackChunkStore::Describe(const ChunkId& id) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = index_.find(id);
  if (it == index_.end()) return "chunk " + id.Hex() + " (in no pack)";
  return "chunk " + id.Hex() + " (pack " + PackPath(it->second.pack) + " at offset " +
         std::to_string(it->second.offset) + ")";
}

Result<uint64_t> PackChunkStore::DeletePack(uint64_t seq) {
  uint64_t bytes;
  {
    std::lock_guard<std::mutex> lock(mu_);
    bytes = packs_.at(seq).bytes;
    packs_.erase(seq);  // readers holding its descriptor still read it
  }
  const std::string path = PackPath(seq);
  if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
    return Status::Internal("cannot remove " + path + ": " + Errno(errno));
  }
  return bytes;
}

Result<uint64_t> PackChunkStore::Compact(uint64_t seq) {
  std::vector<std::pair<ChunkId, Location>> live;
  std::shared_ptr<UniqueFd> fd;
  uint64_t old_bytes;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& [id, loc] : index_) {
      if (loc.pack == seq) live.emplace_back(id, loc);
    }
    fd = packs_.at(seq).fd;
    old_bytes = packs_.at(seq).bytes;
  }
  std::sort(live.begin(), live.end(),
            [](const auto& a, const auto& b) { return a.second.offset < b.second.offset; });
  const std::string path = PackPath(seq);
  FERRY_ASSIGN_OR_RETURN(std::unique_ptr<OpenPack> fresh, StartPack());
  Status st;
  for (const auto& [id, loc] : live) {
    auto record = ReadAt(fd->get(), loc.offset, kPackRecordHeaderBytes + loc.sealed_bytes, path);
    if (!record.ok()) {
      st = record.status();
      break;
    }
    // Copied as is: a damaged record stays damaged (and Verify keeps naming it), never dropped.
    auto sealed = SealedBytesOfRecord(*record, id, "pack " + path);
    std::string_view bytes =
        sealed.ok()
            ? *sealed
            : std::string_view(*record).substr(std::min(record->size(), kPackRecordHeaderBytes));
    if (bytes.size() != loc.sealed_bytes) {
      st = Status::Corruption("pack " + path + ": chunk " + id.Hex() + " is truncated");
      break;
    }
    st = Append(*fresh, id, bytes);
    if (!st.ok()) break;
  }
  if (st.ok()) st = FinishPack(*fresh);
  if (st.ok()) st = SyncDir();
  if (!st.ok()) {
    ::unlink(fresh->temp.c_str());
    return st.WithContext("rewriting pack " + path);
  }
  const uint64_t new_bytes = fresh->size;
  {
    std::lock_guard<std::mutex> lock(mu_);
    Pack p{fresh->fd, fresh->size, 0, 0};
    for (const PackEntry& e : fresh->entries) {
      auto it = index_.find(e.id);
      if (it == index_.end() || it->second.pack != seq) continue;
      it->second = Location{fresh->seq, e.offset, e.sealed_bytes};
      p.live_bytes += kPackRecordHeaderBytes + e.sealed_bytes;
      ++p.live;
    }
    packs_[fresh->seq] = std::move(p);
  }
  FERRY_RETURN_IF_ERROR(DeletePack(seq).status());
  return old_bytes > new_bytes ? old_bytes - new_bytes : 0;
}

Result<uint64_t> PackChunkStore::Remove(const std::vector<ChunkId>& ids) {
  std::lock_guard<std::mutex> one_at_a_time(sync_mu_);
  std::vector<uint64_t> empty, sparse;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (const ChunkId& id : ids) {
      auto it = index_.find(id);
      if (it == index_.end()) continue;
      Pack& p = packs_.at(it->second.pack);
      p.live_bytes -= kPackRecordHeaderBytes + it->second.sealed_bytes;
      --p.live;
      index_.erase(it);
    }
    // Every pack, not only those just touched: a pack left with nothing live by a crash (a
    // seal that never wrote its manifest, a Collect that rewrote it) goes too.
    for (const auto& [seq, p] : packs_) {
      if (p.live == 0) {
        empty.push_back(seq);
      } else if (p.live_bytes * 2 < p.bytes) {
        sparse.push_back(seq);
      }
    }
  }
  uint64_t freed = 0;
  for (uint64_t seq : empty) {
    FERRY_ASSIGN_OR_RETURN(uint64_t bytes, DeletePack(seq));
    freed += bytes;
  }
  for (uint64_t seq : sparse) {
    FERRY_ASSIGN_OR_RETURN(uint64_t bytes, Compact(seq));
    freed += bytes;
  }
  if (!empty.empty() || !sparse.empty()) FERRY_RETURN_IF_ERROR(SyncDir());
  return freed;
}

Result<uint64_t> PackChunkStore::DiscardUnsynced() {
  std::lock_guard<std::mutex> one_at_a_time(sync_mu_);
  {
    std::lock_guard<std::mutex> write_lock(write_mu_);
    current_.reset();
  }
  {
    std::unique_lock<std::mutex> lock(mu_);
    flushed_cv_.wait(lock, [&] { return flushed_ >= queued_; });
    error_ = Status::Ok();
  }
  uint64_t freed = 0;
  DIR* d = ::opendir(dir_.c_str());
  if (d == nullptr) return Status::Internal("cannot list " + dir_ + ": " + Errno(errno));
  while (dirent* e = ::readdir(d)) {
    uint64_t seq;
    if (!ParseSeq(e->d_name, kTempSuffix, true, seq)) continue;
    struct stat st;
    if (::fstatat(::dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
        ::unlinkat(::dirfd(d), e->d_name, 0) == 0) {
      freed += static_cast<uint64_t>(st.st_size);
    }
  }
  ::closedir(d);
  return freed;
}

std::vector<std::string> PackChunkStore::CheckContainers() {
  std::vector<std::string> problems = open_problems_;
  std::map<uint64_t, std::shared_ptr<UniqueFd>> packs;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& [seq, p] : packs_) packs[seq] = p.fd;
  }
  for (const auto& entry : packs) {
    const uint64_t seq = entry.first;
    const std::shared_ptr<UniqueFd>& fd = entry.second;
    const std::string path = PackPath(seq);
    struct stat st;
    if (::fstat(fd->get(), &st) != 0) continue;
    PackReadAt read = [&](uint64_t off, size_t len) { return ReadAt(fd->get(), off, len, path); };
    auto header = read(0, kPackHeaderBytes);
    Status checked = header.ok() ? CheckPackHeader(*header, seq, "pack " + path) : header.status();
    if (checked.ok()) {
      checked = ReadPackIndex(read, static_cast<uint64_t>(st.st_size), "pack " + path).status();
    }
    if (!checked.ok() &&
        std::find(problems.begin(), problems.end(), checked.message()) == problems.end() &&
        std::none_of(problems.begin(), problems.end(),
                     [&](const std::string& p) { return p.rfind(checked.message(), 0) == 0; })) {
      problems.push_back(checked.message());
    }
  }
  return problems;
}

}  // namespace ferry::store
