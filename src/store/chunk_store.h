// Where sealed chunks live, by id. The store writes, reads and collects chunks only through this
// interface: pack files in the local directory (PackChunkStore) are the embedded default, and a
// backend on a
// distributed object store (S3-like PUT/GET/HEAD/DELETE/LIST by key, with a durability barrier)
// fits behind it without touching the rest.
//
// Contract for every backend:
//   - Put is idempotent: equal ids carry equal bytes (sealing is deterministic), so putting an
//     id twice, or from two threads, leaves one copy.
//   - A Put is durable once a Sync that started after it returned. A crash before that loses
//     it, and loses nothing else: no chunk ever becomes visible half-written. A backend may make
//     a Put visible to Get/Has/List before that Sync, but only once its bytes are durable (only
//     its name may still wait for the Sync, which the caller runs before any manifest lists it).
//   - All methods are thread-safe, except DiscardUnsynced (see there).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"
#include "store/chunk_id.h"

namespace ferry::store {

struct StoredChunk {
  ChunkId id;
  uint64_t bytes = 0;
};

class ChunkStore {
 public:
  virtual ~ChunkStore() = default;

  // A full backend is ResourceExhausted.
  virtual Status Put(const ChunkId& id, std::string_view sealed) = 0;
  // Makes every Put that returned before this call durable and visible. A backend that lost
  // Puts (a failed write) fails every Sync until DiscardUnsynced.
  virtual Status Sync() = 0;
  // NotFound when absent. At most kMaxChunkBytes plus the format's overhead is read.
  virtual Result<std::string> Get(const ChunkId& id) = 0;
  virtual Result<bool> Has(const ChunkId& id) = 0;
  // Removes the chunks (an absent id is not an error) and may reclaim space of chunks removed
  // before (a pack backend rewrites mostly dead packs); returns the bytes freed. Called by
  // Collect with every dead chunk at once, possibly none.
  virtual Result<uint64_t> Remove(const std::vector<ChunkId>& ids) = 0;
  virtual Result<std::vector<StoredChunk>> List() = 0;
  // Removes what Put wrote that no Sync published (left by a failed seal or a crash); returns
  // the bytes freed. REQUIRES: no Put or Sync runs at the same time.
  virtual Result<uint64_t> DiscardUnsynced() = 0;
  // Damage to what holds the chunks rather than to a chunk (a pack whose index is torn), one
  // line each naming the container; every chunk's own check is Get's and the caller's.
  virtual std::vector<std::string> CheckContainers() { return {}; }
  // How errors name a chunk: "chunk ab12… (pack /var/lib/ferry/store/packs/….pack at offset X)".
  virtual std::string Describe(const ChunkId& id) const = 0;
};

}  // namespace ferry::store
