// A hold as the store works on it: its checked manifest, its data key (wiped when dropped) and
// its opened chunk table. Internal to the store library.
#pragma once

#include <string>

#include "crypto/aead.h"
#include "store/chunk_table.h"
#include "store/hold_manifest.h"

namespace ferry::store {

struct OpenedHold {
  ManifestFile file;
  std::string data_key;
  ChunkTable table;

  OpenedHold() = default;
  OpenedHold(OpenedHold&&) = default;
  OpenedHold& operator=(OpenedHold&&) = default;
  ~OpenedHold() { crypto::Wipe(data_key); }

  // "hold ID: chunk N of blob NAME (offset X)", how errors name a chunk.
  std::string ChunkName(const BlobTable& blob, size_t index) const {
    return "hold " + file.manifest.header.hold_id + ": chunk " + std::to_string(index) +
           " of blob " + blob.name + " (offset " +
           std::to_string(uint64_t{index} * table.chunk_bytes) + ")";
  }
};

// The BlobInfo list of a table.
std::vector<BlobInfo> BlobInfos(const ChunkTable& table);

}  // namespace ferry::store
