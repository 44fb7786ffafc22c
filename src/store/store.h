// The store: a directory of content-addressed, sealed, deduplicated chunks, and one signed
// manifest per hold. See docs/store.md for what the directory contains and every format.
//
//   STORE/                 0700, one process at a time (flock on STORE/store.lock)
//     keys/                host store key and owners' dedup secrets (store_keys.h)
//     packs/<seq>.pack     sealed chunks, appended into packs (sealed_chunk.h, pack_file.h,
//                          pack_chunk_store.h)
//     holds/<hold>.hold    manifests (hold_manifest.h)
//
// Keys: the host store key wraps each hold's data key and each owner's dedup secret; the owner's
// secret names and keys chunks (dedup_scope.h); the hold's data key seals its chunk table; the
// host's fleet TLS key signs the manifest.
//
// Crash safety: SealHold writes chunks, makes them durable, and only then writes the manifest
// (temporary file, fsync, rename, fsync of holds/), so a hold exists only once everything it
// needs is on disk; a crash before leaves unreferenced chunks for Collect.
//
// Thread-safety: all methods may be called from any thread at once. Collect waits for running
// seals and imports (and they for it), so it never removes a chunk a new hold is about to list.
#pragma once

#include <openssl/x509.h>

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <string>
#include <unordered_set>
#include <vector>

#include "core/status.h"
#include "core/unique_fd.h"
#include "crypto/host_signer.h"
#include "crypto/openssl_util.h"
#include "store/chunk_id.h"
#include "store/chunk_store.h"
#include "store/store_keys.h"

namespace ferry::store {

struct StoreOptions {
  std::string dir;
  // Chosen from bench/store_chunk_size.cc on 256 MiB RAM images of the default guest (the table
  // is in docs/store.md): a sibling's hold adds 0.5 % of the first at 64 KiB against 1.3 % at
  // 256 KiB, with a quarter of 16 KiB's chunks.
  uint32_t chunk_bytes = 64 * 1024;
  int threads = 2;
  // zstd level for chunks: 1 is the fastest ordinary level; RAM compresses well at it.
  int zstd_level = 1;
  // Chunks are appended into pack files of about this size (pack_chunk_store.h), each flushed
  // once while sealing goes on; tests use small packs to have several.
  uint64_t pack_bytes = uint64_t{64} << 20;
};

struct BlobSource {
  std::string name;  // e.g. "ram", "device-state", "disk": [a-z0-9._-]{1,64}, unique per hold
  int fd;            // read with pread; not closed
  uint64_t size;
};

// What the caller (the hold service) records; the store treats spec and policy as opaque text.
struct HoldHeader {
  std::string hold_id;  // [a-z0-9-]{1,64}
  // What the object keeps: kKindHold (a held VM) or kKindSnapshot (a snapshot sent or kept
  // long-term; spec_json is then its snapshot manifest). Added in manifest format 1.1.
  std::string kind = "hold";
  std::string vm_name;
  std::string owner_fingerprint;  // 64 hex; "" for a VM without policy (the "unowned" scope)
  std::string policy_text;        // the owner's signed policy document, byte for byte ("" if none)
  std::string spec_json;          // the VM spec, opaque
  int64_t created_at = 0, expires_at = 0;  // unix seconds; 0 = never
  std::string state;  // journal state written by the caller, e.g. "durable": [a-z-]{1,32}
  bool operator==(const HoldHeader&) const = default;
};

struct BlobInfo {
  std::string name;
  uint64_t size = 0, chunks = 0, zero_chunks = 0;
  bool operator==(const BlobInfo&) const = default;
};

struct HoldStats {
  uint64_t logical_bytes = 0;     // sum of the blobs' sizes
  uint64_t stored_new_bytes = 0;  // bytes of chunk files this hold added to the store
  uint64_t chunks = 0;            // non-zero chunks referenced (with repeats)
  uint64_t new_chunks = 0;        // of which this hold wrote
  uint64_t zero_chunks = 0;       // holes
  // Where the time went: reading, hashing, compressing, sealing and writing chunks; making
  // them durable (ChunkStore::Sync); writing the manifest.
  int64_t chunk_ms = 0, sync_ms = 0, manifest_ms = 0;
};

struct HoldManifest {
  HoldHeader header;
  std::vector<BlobInfo> blobs;
  std::string signer_host_id;  // the host whose fleet key signed the manifest
  uint32_t chunk_bytes = 0;
  uint64_t logical_bytes = 0;
  int64_t sealed_at = 0;                     // unix seconds
  int version_major = 0, version_minor = 0;  // of the manifest file as read
};

struct StoreStats {
  uint64_t holds = 0, chunks = 0;
  uint64_t stored_bytes = 0;   // chunk files' sizes
  uint64_t logical_bytes = 0;  // all holds' blobs' sizes
  double dedup_ratio = 0;      // logical / stored (zero chunks count as deduplicated); 0 if empty
};

struct VerifyReport {
  std::vector<std::string> problems;  // one line each, naming the hold or file
  uint64_t chunks_checked = 0, holds_checked = 0;
  bool ok() const { return problems.empty(); }
};

struct CollectReport {
  uint64_t chunks_removed = 0, bytes_freed = 0;
};

// A hold as it travels to a peer inside the TLS session: its manifest as signed by the sender and
// its data key in the clear. Never written to disk.
struct HoldExport {
  std::string manifest;
  std::string data_key;
  ~HoldExport();
};

class HoldImport;
struct ManifestFile;
struct OpenedHold;
struct ChunkTable;
struct BlobTable;

class Store {
 public:
  // Creates dir (0700) and keys on first use; refuses a dir with another owner, a wider mode or
  // a symlink (EnsurePrivateDir), and a dir another process has open. `own_cert` is this host's
  // fleet certificate (its key is the signer's); the store keeps its own reference.
  static Result<std::unique_ptr<Store>> Open(const StoreOptions& options,
                                             const crypto::HostSigner& signer, X509* own_cert);
  ~Store();

  // Chunks every blob, writes only chunks not present, syncs them, then writes the signed
  // manifest (durable when it returns). A full disk (ResourceExhausted) or any failure returns an
  // error naming the hold and what to do, and leaves no manifest (chunks written stay for
  // Collect). An existing hold id is AlreadyExists.
  Result<HoldStats> SealHold(const HoldHeader& header, const std::vector<BlobSource>& blobs);
  // Verifies checksum, signature, magic and version; Corruption naming what is wrong, NotFound
  // for no such hold.
  Result<HoldManifest> LoadHold(const std::string& hold_id);
  // Writes blob `name` into out_fd (truncated, then sized, holes for zero chunks); every chunk
  // opened with AEAD; a missing or damaged chunk is Corruption "hold ID: chunk N of blob ram
  // (offset X) is missing|damaged (...); the hold is damaged".
  Status ReconstituteBlob(const std::string& hold_id, const std::string& name, int out_fd);
  // Re-signs the manifest with a new state (a journal step), atomically.
  Status UpdateState(const std::string& hold_id, const std::string& state);
  // Crypto-shred: the manifest and with it the wrapped data key are gone (durably) when it
  // returns; the chunks stay for Collect. A hold that is not there is NotFound.
  Status ShredHold(const std::string& hold_id);
  std::vector<std::string> ListHolds();
  Result<StoreStats> Stats();
  // Every chunk file's checksum; every hold's manifest, signature, chunk presence and AEAD.
  Result<VerifyReport> Verify();
  // Mark (every manifest) and sweep (chunks no hold lists, and leftover temporary files).
  // Refuses to sweep while any manifest cannot be read: shred or repair that hold first.
  Result<CollectReport> Collect();

  // --- For `send` (sender side) ---
  // The distinct ids of the chunks a hold references, in first-use order.
  Result<std::vector<ChunkId>> HoldChunkIds(const std::string& hold_id);
  // The hold's manifest and data key, in memory, for the TLS session.
  Result<HoldExport> ExportHold(const std::string& hold_id);
  // A sealed chunk as stored, to send as is.
  Result<std::string> ReadSealedChunk(const ChunkId& id);
  // S_owner for the receiver; nullopt when this store has none. Owner "" is the unowned scope.
  Result<std::optional<std::string>> ExportOwnerSecret(const std::string& owner_fingerprint);

  // --- For `send` (receiver side) ---
  // Which of `ids` this store lacks.
  Result<std::vector<ChunkId>> MissingChunks(const std::vector<ChunkId>& ids);
  // Adopts the sender's S_owner if this store has none for the owner (returns true).
  Result<bool> AdoptOwnerSecret(const std::string& owner_fingerprint, const std::string& secret);
  // Checks a received hold: the manifest's checksum and the sender's signature (`sender_cert`,
  // from the TLS session), and that `data_key` opens its chunk table. Then chunks go in through
  // the returned HoldImport (store/hold_import.h), which commits the hold under this host's key
  // and signature.
  Result<std::unique_ptr<HoldImport>> BeginImport(const HoldExport& received, X509* sender_cert);

 private:
  friend class HoldImport;
  Store(StoreOptions options, const crypto::HostSigner& signer, crypto::X509Ptr cert,
        std::string host_id, UniqueFd lock, std::unique_ptr<StoreKeys> keys,
        std::unique_ptr<ChunkStore> chunks);

  std::string HoldsDir() const { return options_.dir + "/holds"; }
  std::string HoldPath(const std::string& hold_id) const;
  // The manifest, checked (checksum, signature, fields); the table stays sealed.
  Result<ManifestFile> ReadManifestFile(const std::string& hold_id);
  // The manifest with its data key unwrapped and its chunk table opened.
  Result<OpenedHold> OpenHold(const std::string& hold_id);
  // A manifest of this host for `manifest`: data key wrapped, table sealed.
  Result<ManifestFile> NewManifestFile(const HoldManifest& manifest, const std::string& data_key,
                                       const ChunkTable& table);
  // Signs and writes holds/<id>.hold: temporary file, fsync, rename (or link when !replace, so
  // an existing hold is never overwritten: AlreadyExists), fsync of holds/.
  Status WriteManifestFile(const ManifestFile& file, bool replace);
  // Writes chunk `index` of `blob` into out_fd (nothing for a hole), checked.
  Status RestoreChunk(const OpenedHold& hold, const BlobTable& blob, size_t index, int out_fd);
  void CheckHoldChunks(const std::string& hold_id, VerifyReport& report,
                       std::unordered_set<ChunkId, ChunkIdHash>& good,
                       const std::unordered_set<ChunkId, ChunkIdHash>& damaged);

  const StoreOptions options_;
  const crypto::HostSigner& signer_;
  const crypto::X509Ptr cert_;
  const std::string host_id_;
  const UniqueFd lock_;
  const std::unique_ptr<StoreKeys> keys_;
  const std::unique_ptr<ChunkStore> chunks_;
  // Seals and imports share it, Collect takes it alone.
  std::shared_mutex collect_mu_;
  // Serialises the read-modify-write of manifests (UpdateState, ShredHold).
  std::mutex manifest_mu_;
};

}  // namespace ferry::store
