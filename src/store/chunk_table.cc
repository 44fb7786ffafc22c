#include "store/chunk_table.h"

#include <cstring>
#include <functional>
#include <set>

#include "crypto/aead.h"
#include "store/byte_codec.h"
#include "store/sealed_chunk.h"

namespace ferry::store {

namespace {

constexpr uint8_t kHole = 0, kData = 1;
constexpr size_t kMaxNameBytes = 64;

std::string TableAad(const std::string& hold_id) { return "ferry-hold-table-v1\n" + hold_id; }

// One blob's entry; `r` is positioned at its name.
Status DecodeBlob(ByteReader& r, uint32_t chunk_bytes, BlobTable& blob,
                  const std::function<Status(const std::string&)>& bad) {
  blob.name = std::string(r.Bytes(kMaxNameBytes));
  blob.size = r.U64();
  const uint64_t count = r.U64();
  if (!r.ok()) return bad("truncated");
  if (!ValidateBlobName(blob.name).ok()) return bad("a blob has an invalid name");
  if (count != (blob.size + chunk_bytes - 1) / chunk_bytes) {
    return bad("blob " + blob.name + " has " + std::to_string(count) +
               " chunks, which does not fit its size " + std::to_string(blob.size));
  }
  // Every chunk takes at least one byte, and the cap bounds what a table in memory may take.
  if (count > r.remaining() || count > kMaxTableChunks) return bad("truncated or too many chunks");
  blob.chunks.resize(count);
  for (ChunkRef& c : blob.chunks) {
    const uint8_t kind = r.U8();
    if (kind == kHole) continue;
    if (kind != kData) return bad("unknown chunk kind " + std::to_string(kind));
    std::string_view id = r.Take(ChunkId::kBytes), key = r.Take(32);
    if (!r.ok()) return bad("truncated");
    c.hole = false;
    c.id = ChunkId::FromBytes(id);
    std::memcpy(c.key.data(), key.data(), key.size());
  }
  return r.ok() ? Status::Ok() : bad("truncated");
}

}  // namespace

Status ValidateBlobName(const std::string& name) {
  bool ok = !name.empty() && name.size() <= kMaxNameBytes;
  for (char c : name) {
    ok = ok &&
         ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.');
  }
  if (!ok) {
    return Status::InvalidArgument("blob name \"" + name.substr(0, 80) +
                                   "\" must be 1-64 characters of [a-z0-9._-]");
  }
  return Status::Ok();
}

Status ValidateChunkBytes(uint32_t chunk_bytes) {
  if (chunk_bytes < kMinChunkBytes || chunk_bytes > kMaxChunkBytes ||
      chunk_bytes % kMinChunkBytes != 0) {
    return Status::InvalidArgument("chunk size " + std::to_string(chunk_bytes) +
                                   " must be a multiple of 4096 between 4 KiB and 1 MiB");
  }
  return Status::Ok();
}

std::string EncodeChunkTable(const ChunkTable& table) {
  std::string out;
  size_t reserve = 8;
  for (const BlobTable& b : table.blobs) reserve += 24 + b.name.size() + 65 * b.chunks.size();
  out.reserve(reserve);
  PutU32(out, table.chunk_bytes);
  PutU32(out, static_cast<uint32_t>(table.blobs.size()));
  for (const BlobTable& b : table.blobs) {
    PutBytes(out, b.name);
    PutU64(out, b.size);
    PutU64(out, b.chunks.size());
    for (const ChunkRef& c : b.chunks) {
      PutU8(out, c.hole ? kHole : kData);
      if (c.hole) continue;
      out.append(c.id.View());
      out.append(c.KeyView());
    }
  }
  return out;
}

Result<ChunkTable> DecodeChunkTable(std::string_view bytes, const std::string& what) {
  std::function<Status(const std::string&)> bad = [&](const std::string& why) {
    return Status::Corruption(what + ": chunk table: " + why);
  };
  ByteReader r(bytes);
  ChunkTable table;
  table.chunk_bytes = r.U32();
  const uint32_t blobs = r.U32();
  if (!r.ok()) return bad("truncated");
  if (!ValidateChunkBytes(table.chunk_bytes).ok()) return bad("invalid chunk size");
  if (blobs > kMaxBlobs) return bad("too many blobs (" + std::to_string(blobs) + ")");
  table.blobs.resize(blobs);
  std::set<std::string> names;
  for (BlobTable& blob : table.blobs) {
    FERRY_RETURN_IF_ERROR(DecodeBlob(r, table.chunk_bytes, blob, bad));
    if (!names.insert(blob.name).second) return bad("blob " + blob.name + " appears twice");
  }
  if (r.remaining() != 0) return bad("trailing bytes");
  return table;
}

Result<std::string> SealChunkTable(const ChunkTable& table, const std::string& data_key,
                                   const std::string& hold_id) {
  std::string plain = EncodeChunkTable(table);
  auto sealed = crypto::AeadSealWithRandomNonce(data_key, TableAad(hold_id), plain);
  crypto::Wipe(plain);
  return sealed;
}

Result<ChunkTable> OpenChunkTable(std::string_view sealed, const std::string& data_key,
                                  const std::string& hold_id, const std::string& what) {
  auto plain = crypto::AeadOpenWithNonce(data_key, TableAad(hold_id), sealed);
  if (!plain.ok()) {
    return Status::Corruption(what + ": the chunk table does not open with the hold's key");
  }
  auto table = DecodeChunkTable(*plain, what);
  crypto::Wipe(*plain);
  return table;
}

}  // namespace ferry::store
