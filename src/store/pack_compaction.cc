// Packs removed, compacted when few of their chunks are left, and the unsynced ones dropped;
// the check that every pack file is whole.
#include "store/pack_chunk_store.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "store/pack_directory.h"
#include "store/sealed_chunk.h"

namespace ferry::store {

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
