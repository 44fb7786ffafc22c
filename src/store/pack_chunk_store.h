// The embedded ChunkStore: sealed chunks appended into pack files, STORE/packs/<seq>.pack
// (format in pack_file.h), each written front to back and flushed once, instead of one file per
// chunk (a 1 GiB hold was 16k files, and creating a file costs ~0.3 ms on the test disk).
//
// Writing: Put appends the record to the pack being written (a temporary file,
// ".<seq>.pack.tmp") under a lock; once it passes `pack_bytes` the pack goes to the flusher
// thread, which appends its index, fdatasyncs it and renames it to its name while the sealing
// threads go on (road 4 of issue 12's seal benchmark: hashing and sealing overlap the disk).
// Sync hands over the pack being written, waits for the flusher to finish every pack handed
// over, and fsyncs packs/. A chunk becomes visible (Has/Get/List) when its pack is renamed,
// that is once its bytes are durable; its name is durable after the next Sync, which every
// caller runs before it writes a manifest that lists the chunk.
//
// A failed pack write (a full disk) loses the chunks of that pack, so every Sync fails from then
// on until DiscardUnsynced (Collect, or the next open) clears it: no Sync may claim chunks
// durable that are not.
//
// Reading: an in-memory index id -> (pack, offset, length), built at open from each pack's
// index (or, when that is damaged or missing, by scanning its records: a torn tail loses only
// the records after the tear). A pack's descriptor is shared with readers, so a Get that looked
// its chunk up reads it even if Collect removes the pack meanwhile.
//
// Removing: Remove forgets the ids, deletes packs with no chunk left, and rewrites a pack whose
// live chunks fill less than half of it into a new pack (flushed, renamed, then the old one
// deleted; a crash in between leaves both, and either copy serves). Removal is not written
// down: a removed chunk whose pack stays (more than half of it live) is listed again after the
// next open, unreferenced, and the next Collect removes it again; its bytes count as dead
// towards its pack's rewrite.
#pragma once

#include <condition_variable>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "core/unique_fd.h"
#include "store/chunk_store.h"
#include "store/pack_file.h"

namespace ferry::store {

class PackChunkStore : public ChunkStore {
 public:
  static constexpr uint64_t kDefaultPackBytes = uint64_t{64} << 20;

  // `dir` is STORE/packs: created (0700) if missing; every pack in it is indexed.
  static Result<std::unique_ptr<PackChunkStore>> Open(const std::string& dir,
                                                      uint64_t pack_bytes = kDefaultPackBytes);
  ~PackChunkStore() override;

  Status Put(const ChunkId& id, std::string_view sealed) override;
  Status Sync() override;
  Result<std::string> Get(const ChunkId& id) override;
  Result<bool> Has(const ChunkId& id) override;
  Result<uint64_t> Remove(const std::vector<ChunkId>& ids) override;
  Result<std::vector<StoredChunk>> List() override;
  Result<uint64_t> DiscardUnsynced() override;
  std::vector<std::string> CheckContainers() override;
  std::string Describe(const ChunkId& id) const override;

  std::string PackPath(uint64_t seq) const;

 private:
  struct Location {
    uint64_t pack = 0, offset = 0;
    uint32_t sealed_bytes = 0;
  };
  struct Pack {
    std::shared_ptr<UniqueFd> fd;
    uint64_t bytes = 0;       // the file's size
    uint64_t live_bytes = 0;  // records the index points at
    uint64_t live = 0;
  };
  // A pack being written (not yet under its name).
  struct OpenPack {
    uint64_t seq = 0;
    std::string temp;
    std::shared_ptr<UniqueFd> fd;
    uint64_t size = 0;
    std::vector<PackEntry> entries;
  };

  PackChunkStore(std::string dir, UniqueFd dir_fd, uint64_t pack_bytes);
  Status LoadPack(uint64_t seq);
  Result<std::unique_ptr<OpenPack>> StartPack();
  Status Append(OpenPack& pack, const ChunkId& id, std::string_view sealed);
  // Index, fdatasync, rename. Does not fsync packs/.
  Status FinishPack(OpenPack& pack);
  // Makes a finished pack's chunks visible.
  void Publish(std::unique_ptr<OpenPack> pack);
  void Enqueue(std::unique_ptr<OpenPack> pack);
  void RunFlusher();
  Status SyncDir();
  // Rewrites the live records of pack `seq` into a new pack; returns the bytes freed.
  Result<uint64_t> Compact(uint64_t seq);
  Result<uint64_t> DeletePack(uint64_t seq);

  const std::string dir_;
  const UniqueFd dir_fd_;
  const uint64_t pack_bytes_;

  std::mutex sync_mu_;  // held for a whole Sync, Remove or DiscardUnsynced
  std::mutex write_mu_;
  std::unique_ptr<OpenPack> current_;  // guarded by write_mu_

  mutable std::mutex mu_;
  std::condition_variable queued_cv_, flushed_cv_;
  std::unordered_map<ChunkId, Location, ChunkIdHash> index_;  // guarded by mu_
  std::map<uint64_t, Pack> packs_;                            // guarded by mu_
  uint64_t next_seq_ = 1;                                     // guarded by mu_
  std::deque<std::unique_ptr<OpenPack>> queue_;               // guarded by mu_
  uint64_t queued_ = 0, flushed_ = 0;                         // guarded by mu_
  Status error_;                                              // guarded by mu_
  bool stop_ = false;                                         // guarded by mu_
  std::vector<std::string> open_problems_;                    // found at open
  std::thread flusher_;
};

}  // namespace ferry::store
