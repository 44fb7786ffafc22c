#include "store/pack_file.h"

#include <openssl/evp.h>

#include "store/byte_codec.h"
#include "store/sealed_chunk.h"

namespace ferry::store {

namespace {

constexpr char kMagic[4] = {'F', 'R', 'P', 'K'};
constexpr char kTrailerMagic[4] = {'F', 'R', 'P', 'X'};
constexpr uint8_t kMajor = 1, kMinor = 0;
constexpr size_t kDigestBytes = 32;
constexpr uint32_t kMinSealed = kSealedChunkOverhead + 1;
constexpr uint32_t kMaxSealed = kMaxChunkBytes + kSealedChunkOverhead;

std::string Sha256(std::string_view bytes) {
  unsigned char md[kDigestBytes];
  unsigned int len = 0;
  EVP_Digest(bytes.data(), bytes.size(), md, &len, EVP_sha256(), nullptr);
  return std::string(reinterpret_cast<char*>(md), kDigestBytes);
}

}  // namespace

std::string EncodePackHeader(uint64_t seq) {
  std::string out(kMagic, sizeof kMagic);
  PutU8(out, kMajor);
  PutU8(out, kMinor);
  PutU16(out, 0);
  PutU64(out, seq);
  return out;
}

std::string EncodePackRecordHeader(const ChunkId& id, uint32_t sealed_bytes) {
  std::string out(id.View());
  PutU32(out, sealed_bytes);
  return out;
}

std::string EncodePackIndex(const std::vector<PackEntry>& entries, uint64_t index_offset) {
  std::string out;
  out.reserve(entries.size() * kPackIndexEntryBytes + kPackTrailerBytes);
  for (const PackEntry& e : entries) {
    out.append(e.id.View());
    PutU64(out, e.offset);
    PutU32(out, e.sealed_bytes);
  }
  PutU64(out, index_offset);
  PutU32(out, static_cast<uint32_t>(entries.size()));
  out.append(kTrailerMagic, sizeof kTrailerMagic);
  out += Sha256(out);
  return out;
}

Status CheckPackHeader(std::string_view header, uint64_t seq, const std::string& what) {
  auto bad = [&](const std::string& why) { return Status::Corruption(what + ": " + why); };
  ByteReader r(header);
  if (r.Take(sizeof kMagic) != std::string_view(kMagic, sizeof kMagic)) {
    return bad("not a pack (wrong magic)");
  }
  const uint8_t major = r.U8(), minor = r.U8();
  const uint16_t reserved = r.U16();
  const uint64_t stored_seq = r.U64();
  (void)minor;  // a newer minor only adds what this reader skips
  if (!r.ok()) return bad("truncated header");
  if (major > kMajor) {
    return Status::FailedPrecondition(what + ": pack format version " + std::to_string(major) +
                                      " is newer than this ferry reads (" + std::to_string(kMajor) +
                                      "); upgrade ferry");
  }
  if (major != kMajor) return bad("unknown format version " + std::to_string(major));
  if (reserved != 0) return bad("reserved bytes are not zero");
  if (stored_seq != seq) {
    return bad("its header says pack " + std::to_string(stored_seq) + " (renamed?)");
  }
  return Status::Ok();
}

Result<std::vector<PackEntry>> ReadPackIndex(const PackReadAt& read, uint64_t size,
                                             const std::string& what) {
  auto bad = [&](const std::string& why) { return Status::Corruption(what + ": " + why); };
  if (size < kPackHeaderBytes + kPackTrailerBytes) return bad("too short for an index");
  FERRY_ASSIGN_OR_RETURN(std::string trailer, read(size - kPackTrailerBytes, kPackTrailerBytes));
  ByteReader t(trailer);
  const uint64_t index_offset = t.U64();
  const uint32_t count = t.U32();
  if (!t.ok() || t.Take(sizeof kTrailerMagic) != std::string_view(kTrailerMagic, 4)) {
    return bad("no index at its end (torn, or never finished)");
  }
  const uint64_t records_end = size - kPackTrailerBytes;
  if (index_offset < kPackHeaderBytes || index_offset > records_end ||
      (records_end - index_offset) != uint64_t{count} * kPackIndexEntryBytes) {
    return bad("index offset " + std::to_string(index_offset) + " and count " +
               std::to_string(count) + " do not fit the file");
  }
  FERRY_ASSIGN_OR_RETURN(std::string index, read(index_offset, size - index_offset));
  if (index.size() != size - index_offset) return bad("shorter than its size");
  const size_t body = index.size() - kDigestBytes;
  if (Sha256(std::string_view(index).substr(0, body)) != index.substr(body)) {
    return bad("index checksum mismatch");
  }
  std::vector<PackEntry> out;
  out.reserve(count);
  ByteReader r(index);
  for (uint32_t i = 0; i < count; ++i) {
    PackEntry e;
    e.id = ChunkId::FromBytes(r.Take(ChunkId::kBytes));
    e.offset = r.U64();
    e.sealed_bytes = r.U32();
    if (e.offset < kPackHeaderBytes || e.sealed_bytes < kMinSealed || e.sealed_bytes > kMaxSealed ||
        e.offset > index_offset ||
        index_offset - e.offset < kPackRecordHeaderBytes + e.sealed_bytes) {
      return bad("index entry " + std::to_string(i) + " points outside the records");
    }
    out.push_back(e);
  }
  return out;
}

PackScan ScanPackRecords(const PackReadAt& read, uint64_t size) {
  PackScan scan;
  uint64_t at = kPackHeaderBytes;
  scan.end = at;
  while (at < size) {
    auto header = read(at, kPackRecordHeaderBytes);
    if (!header.ok() || header->size() != kPackRecordHeaderBytes) {
      scan.stopped = "a torn record header at offset " + std::to_string(at);
      break;
    }
    ByteReader r(*header);
    PackEntry e;
    e.id = ChunkId::FromBytes(r.Take(ChunkId::kBytes));
    e.offset = at;
    e.sealed_bytes = r.U32();
    if (e.sealed_bytes < kMinSealed || e.sealed_bytes > kMaxSealed) {
      scan.stopped = "no record at offset " + std::to_string(at);
      break;
    }
    auto sealed = read(at + kPackRecordHeaderBytes, e.sealed_bytes);
    if (!sealed.ok() || sealed->size() != e.sealed_bytes ||
        !CheckSealedChunk(*sealed, "record").ok()) {
      scan.stopped = "a torn or damaged record at offset " + std::to_string(at);
      break;
    }
    scan.entries.push_back(e);
    at += kPackRecordHeaderBytes + e.sealed_bytes;
    scan.end = at;
  }
  return scan;
}

Result<std::string_view> SealedBytesOfRecord(std::string_view record, const ChunkId& id,
                                             const std::string& what) {
  ByteReader r(record);
  const std::string_view stored_id = r.Take(ChunkId::kBytes);
  const uint32_t len = r.U32();
  if (!r.ok()) return Status::Corruption(what + ": truncated record");
  if (stored_id != id.View()) {
    return Status::Corruption(what + ": the record there names another chunk");
  }
  if (len != r.remaining()) {
    return Status::Corruption(what + ": the record's length " + std::to_string(len) +
                              " differs from the index's " + std::to_string(r.remaining()));
  }
  return r.Take(len);
}

}  // namespace ferry::store
