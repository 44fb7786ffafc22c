// The embedded ChunkStore: one file per chunk, STORE/chunks/ab/<64 hex id>, mode 0600, where
// "ab" is the id's first byte (256 directories, made when the store is opened, so no Put
// creates one and a directory never holds more than 1/256 of the chunks).
//
// Durability without an fsync per file (default, SyncMode::kSyncfs): Put writes the sealed
// bytes to a temporary file beside the final one (".<id>.<n>.tmp") and returns; Sync flushes
// them all with one syncfs(2), only then renames each into place, and flushes the renames with a
// second syncfs. A file under its final name is therefore always complete and durable, and what
// a crash leaves is temporary files, which DiscardUnsynced removes. SyncMode::kFsyncEach instead
// fsyncs each file in Put (in the sealing threads) and renames it at once; Sync then fsyncs the
// directories written. bench/store_chunk_size.cc measures both.
#pragma once

#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "core/unique_fd.h"
#include "store/chunk_store.h"

namespace ferry::store {

class LocalChunkStore : public ChunkStore {
 public:
  enum class SyncMode { kSyncfs, kFsyncEach };

  // `dir` is STORE/chunks: created (0700) with its 256 subdirectories if missing.
  static Result<std::unique_ptr<LocalChunkStore>> Open(const std::string& dir,
                                                       SyncMode mode = SyncMode::kSyncfs);

  Status Put(const ChunkId& id, std::string_view sealed) override;
  Status Sync() override;
  Result<std::string> Get(const ChunkId& id) override;
  Result<bool> Has(const ChunkId& id) override;
  Result<uint64_t> Remove(const ChunkId& id) override;
  Result<std::vector<StoredChunk>> List() override;
  Result<uint64_t> DiscardUnsynced() override;
  std::string Describe(const ChunkId& id) const override { return "chunk file " + PathOf(id); }

  std::string PathOf(const ChunkId& id) const;

 private:
  LocalChunkStore(std::string dir, UniqueFd dir_fd, SyncMode mode)
      : dir_(std::move(dir)), dir_fd_(std::move(dir_fd)), mode_(mode) {}
  Status WriteFile(const std::string& path, std::string_view bytes, bool flush);
  Status SyncFilesystem();

  const std::string dir_;
  const UniqueFd dir_fd_;
  const SyncMode mode_;
  std::mutex sync_mu_;  // held for a whole Sync
  std::mutex mu_;
  uint64_t next_temp_ = 0;                                    // guarded by mu_
  std::vector<std::pair<std::string, std::string>> pending_;  // (temp, final); guarded by mu_
  std::set<int> dirty_dirs_;                                  // kFsyncEach; guarded by mu_
};

}  // namespace ferry::store
