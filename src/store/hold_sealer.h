// The sealing pipeline of one hold: cuts every blob into fixed-size chunks at offsets that are
// multiples of the chunk size (RAM is page-structured, so sibling VMs' equal pages fall into
// equal chunks), skips zero chunks (holes), and for every other chunk derives id and key,
// and, when the store lacks the id, compresses, seals and puts it. `threads` workers take chunks
// in turn; each reads its own with pread, so nothing is copied between threads.
//
// Internal to the store library: Store::SealHold wraps it with the manifest and the locks.
#pragma once

#include <atomic>
#include <mutex>
#include <string>
#include <unordered_set>
#include <vector>

#include "core/status.h"
#include "store/chunk_store.h"
#include "store/chunk_table.h"
#include "store/dedup_scope.h"
#include "store/store.h"

namespace ferry::store {

class HoldSealer {
 public:
  HoldSealer(ChunkStore& chunks, const DedupScope& scope, uint32_t chunk_bytes, int zstd_level,
             int threads)
      : chunks_(chunks),
        scope_(scope),
        chunk_bytes_(chunk_bytes),
        zstd_level_(zstd_level),
        threads_(threads) {}

  // The chunk table of `blobs`, every chunk it lists put (not yet synced). Errors name the blob
  // and offset. REQUIRES: blob names valid and unique.
  Result<ChunkTable> Seal(const std::vector<BlobSource>& blobs, HoldStats& stats);

 private:
  struct Work {
    size_t blob;
    uint64_t index;
  };
  Work Locate(uint64_t global) const;
  void RunWorker(const std::vector<BlobSource>& blobs);
  Status SealOne(const BlobSource& blob, uint64_t index, std::string& buffer, ChunkRef& ref);
  // True the first time this seal meets `id`: only that chunk is written.
  bool Claim(const ChunkId& id);
  void Fail(Status status);

  ChunkStore& chunks_;
  const DedupScope& scope_;
  const uint32_t chunk_bytes_;
  const int zstd_level_;
  const int threads_;

  ChunkTable table_;
  std::vector<uint64_t> first_chunk_;  // global index of each blob's first chunk
  uint64_t total_chunks_ = 0;
  std::atomic<uint64_t> next_{0};
  std::atomic<bool> failed_{false};
  std::atomic<uint64_t> new_chunks_{0}, new_bytes_{0}, zero_chunks_{0}, data_chunks_{0};
  std::mutex mu_;
  Status error_;                                      // guarded by mu_
  std::unordered_set<ChunkId, ChunkIdHash> claimed_;  // guarded by mu_
};

}  // namespace ferry::store
