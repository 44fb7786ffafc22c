// Where sealed chunks live, by id. The store writes, reads and collects chunks only through this
// interface: the local directory (LocalChunkStore) is the embedded default, and a backend on a
// distributed object store (S3-like PUT/GET/HEAD/DELETE/LIST by key, with a durability barrier)
// fits behind it without touching the rest.
//
// Contract for every backend:
//   - Put is idempotent: equal ids carry equal bytes (sealing is deterministic), so putting an
//     id twice, or from two threads, leaves one copy.
//   - A Put is durable, and visible to Get/Has/List, only once a Sync that started after it
//     returned. A crash before that loses it, and loses nothing else: no chunk ever becomes
//     visible half-written.
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
  // Makes every Put that returned before this call durable and visible.
  virtual Status Sync() = 0;
  // NotFound when absent. At most kMaxChunkBytes plus the format's overhead is read.
  virtual Result<std::string> Get(const ChunkId& id) = 0;
  virtual Result<bool> Has(const ChunkId& id) = 0;
  // An absent id is not an error. Returns the bytes freed.
  virtual Result<uint64_t> Remove(const ChunkId& id) = 0;
  virtual Result<std::vector<StoredChunk>> List() = 0;
  // Removes what Put wrote that no Sync published (left by a failed seal or a crash); returns
  // the bytes freed. REQUIRES: no Put or Sync runs at the same time.
  virtual Result<uint64_t> DiscardUnsynced() = 0;
  // How errors name a chunk: "chunk file /var/lib/ferry/store/chunks/ab/ab12…".
  virtual std::string Describe(const ChunkId& id) const = 0;
};

}  // namespace ferry::store
