#include "store/pack_chunk_store.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>

#include "core/files.h"
#include "store/pack_directory.h"
#include "store/sealed_chunk.h"

namespace ferry::store {

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

}  // namespace ferry::store
