// The store's side of `ferry hold send`: what the sender reads out, and the receiver's import.
#include <algorithm>
#include <unordered_set>

#include "core/files.h"
#include "crypto/aead.h"
#include "store/hold_import.h"
#include "store/sealed_chunk.h"

namespace ferry::store {

Result<std::vector<ChunkId>> Store::HoldChunkIds(const std::string& hold_id) {
  FERRY_ASSIGN_OR_RETURN(OpenedHold hold, OpenHold(hold_id));
  std::vector<ChunkId> out;
  std::unordered_set<ChunkId, ChunkIdHash> seen;
  for (const BlobTable& blob : hold.table.blobs) {
    for (const ChunkRef& ref : blob.chunks) {
      if (!ref.hole && seen.insert(ref.id).second) out.push_back(ref.id);
    }
  }
  return out;
}

Result<HoldExport> Store::ExportHold(const std::string& hold_id) {
  FERRY_ASSIGN_OR_RETURN(OpenedHold hold, OpenHold(hold_id));
  HoldExport out;
  FERRY_ASSIGN_OR_RETURN(out.manifest, EncodeHoldManifest(hold.file, signer_));
  out.data_key = hold.data_key;
  return out;
}

Result<std::string> Store::ReadSealedChunk(const ChunkId& id) {
  FERRY_ASSIGN_OR_RETURN(std::string bytes, chunks_->Get(id));
  FERRY_RETURN_IF_ERROR(CheckSealedChunk(bytes, chunks_->Describe(id)).status());
  return bytes;
}

Result<std::optional<std::string>> Store::ExportOwnerSecret(const std::string& owner) {
  return keys_->ExportOwnerSecret(owner);
}

Result<bool> Store::AdoptOwnerSecret(const std::string& owner, const std::string& secret) {
  return keys_->AdoptOwnerSecret(owner, secret);
}

Result<std::vector<ChunkId>> Store::MissingChunks(const std::vector<ChunkId>& ids) {
  std::vector<ChunkId> out;
  for (const ChunkId& id : ids) {
    FERRY_ASSIGN_OR_RETURN(bool present, chunks_->Has(id));
    if (!present) out.push_back(id);
  }
  return out;
}

Result<std::unique_ptr<HoldImport>> Store::BeginImport(const HoldExport& received,
                                                       X509* sender_cert) {
  const std::string what = "received hold manifest";
  OpenedHold hold;
  FERRY_ASSIGN_OR_RETURN(hold.file, DecodeHoldManifest(received.manifest, sender_cert, what));
  const std::string& id = hold.file.manifest.header.hold_id;
  if (received.data_key.size() != crypto::kAeadKeyBytes) {
    return Status::InvalidArgument("hold " + id + ": a data key has 32 bytes");
  }
  hold.data_key = received.data_key;
  FERRY_ASSIGN_OR_RETURN(hold.table,
                         OpenChunkTable(hold.file.sealed_table, hold.data_key, id, what));
  hold.file.manifest.blobs = BlobInfos(hold.table);
  if (PathExists(HoldPath(id))) {
    return Status::AlreadyExists("hold " + id + " exists already in the store");
  }
  std::shared_lock<std::shared_mutex> lock(collect_mu_);
  return std::unique_ptr<HoldImport>(new HoldImport(*this, std::move(lock), std::move(hold)));
}

HoldImport::HoldImport(Store& store, std::shared_lock<std::shared_mutex> lock, OpenedHold hold)
    : store_(store), lock_(std::move(lock)), hold_(std::move(hold)) {
  const uint32_t chunk = hold_.table.chunk_bytes;
  for (const BlobTable& blob : hold_.table.blobs) {
    for (size_t i = 0; i < blob.chunks.size(); ++i) {
      const ChunkRef& ref = blob.chunks[i];
      if (ref.hole) continue;
      const uint64_t bytes = std::min<uint64_t>(chunk, blob.size - uint64_t{i} * chunk);
      if (!expected_.emplace(ref.id, Expected{&ref, bytes}).second) continue;
      auto present = store_.chunks_->Has(ref.id);
      if (!present.ok() || !*present) needed_.push_back(ref.id);
    }
  }
}

Status HoldImport::PutChunk(const ChunkId& id, std::string_view sealed) {
  const std::string& hold_id = hold_.file.manifest.header.hold_id;
  auto it = expected_.find(id);
  if (it == expected_.end()) {
    return Status::Corruption("hold " + hold_id + ": received chunk " + id.Hex() +
                              ", which the hold does not list");
  }
  const std::string what = "hold " + hold_id + ": received chunk " + id.Hex();
  auto plain = OpenSealedChunk(it->second.ref->KeyView(), sealed, what);
  if (!plain.ok()) return plain.status();
  const bool fits = plain->size() == it->second.bytes;
  crypto::Wipe(*plain);
  if (!fits) return Status::Corruption(what + ": wrong length for its place in the hold");
  return store_.chunks_->Put(id, sealed).WithContext("hold " + hold_id);
}

Status HoldImport::Commit(const std::string& state) {
  const std::string& hold_id = hold_.file.manifest.header.hold_id;
  FERRY_RETURN_IF_ERROR(ValidateHoldState(state));
  FERRY_RETURN_IF_ERROR(store_.chunks_->Sync().WithContext("hold " + hold_id));
  for (const auto& [id, expected] : expected_) {
    FERRY_ASSIGN_OR_RETURN(bool present, store_.chunks_->Has(id));
    if (!present) {
      return Status::FailedPrecondition("hold " + hold_id + ": chunk " + id.Hex() +
                                        " has not been received; the hold is incomplete");
    }
  }
  HoldManifest manifest = hold_.file.manifest;
  manifest.header.state = state;
  FERRY_ASSIGN_OR_RETURN(ManifestFile file,
                         store_.NewManifestFile(manifest, hold_.data_key, hold_.table));
  return store_.WriteManifestFile(file, /*replace=*/false);
}

}  // namespace ferry::store
