// Receiving a hold from a peer (`ferry hold send`, receiver side), after Store::BeginImport has
// checked the sender's manifest and signature and opened its chunk table with the data key that
// came inside the TLS session:
//
//   needed()          the chunk ids this store lacks; the sender sends those (ReadSealedChunk)
//   PutChunk(id, b)   each received chunk, checked against the table before it is stored
//   Commit(state)     syncs the chunks, checks the hold is complete, and writes its manifest
//                     re-wrapped under this host's store key and signed by this host
//
// The import holds off Collect while it lives (chunks put but not yet listed by a manifest
// must not be swept). Dropping it without Commit leaves the chunks for Collect.
// Thread-safe: PutChunk may be called from several threads.
#pragma once

#include <mutex>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "store/opened_hold.h"
#include "store/store.h"

namespace ferry::store {

class HoldImport {
 public:
  const HoldManifest& manifest() const { return hold_.file.manifest; }
  const std::vector<ChunkId>& needed() const { return needed_; }

  // Refuses (Corruption, naming the hold and chunk) a chunk the hold does not list, or one that
  // does not open with its key to the length the table expects.
  Status PutChunk(const ChunkId& id, std::string_view sealed);
  // AlreadyExists if the store holds a hold of that id already; FailedPrecondition naming the
  // first chunk still missing.
  Status Commit(const std::string& state);

 private:
  friend class Store;
  struct Expected {
    const ChunkRef* ref;
    uint64_t bytes;
  };
  HoldImport(Store& store, std::shared_lock<std::shared_mutex> lock, OpenedHold hold);

  Store& store_;
  std::shared_lock<std::shared_mutex> lock_;
  OpenedHold hold_;
  std::unordered_map<ChunkId, Expected, ChunkIdHash> expected_;
  std::vector<ChunkId> needed_;
};

}  // namespace ferry::store
