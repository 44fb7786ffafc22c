#include "store/sealed_chunk.h"

#include <zstd.h>

#include <memory>

#include "crypto/aead.h"
#include "store/byte_codec.h"
#include "store/crc32c.h"

namespace ferry::store {

namespace {

constexpr char kMagic[4] = {'F', 'R', 'C', 'K'};
constexpr uint8_t kMajor = 2, kMinor = 0;
constexpr uint8_t kFlagCompressed = 1;
constexpr size_t kDigestBytes = 4;  // CRC-32C

struct CctxFree {
  void operator()(ZSTD_CCtx* p) const { ZSTD_freeCCtx(p); }
};
struct DctxFree {
  void operator()(ZSTD_DCtx* p) const { ZSTD_freeDCtx(p); }
};

// One zstd context per thread, kept: making one per 64 KiB chunk costs more than compressing it.
ZSTD_CCtx* CompressContext() {
  thread_local std::unique_ptr<ZSTD_CCtx, CctxFree> ctx(ZSTD_createCCtx());
  return ctx.get();
}
ZSTD_DCtx* DecompressContext() {
  thread_local std::unique_ptr<ZSTD_DCtx, DctxFree> ctx(ZSTD_createDCtx());
  return ctx.get();
}

std::string Digest(std::string_view bytes) {
  std::string out;
  PutU32(out, Crc32c(bytes));
  return out;
}

Result<std::string> Nonce(std::string_view key) {
  FERRY_ASSIGN_OR_RETURN(std::string mac, crypto::HmacSha256(key, "nonce", ""));
  return mac.substr(0, crypto::kAeadNonceBytes);
}

// A chunk larger than two probes is compressed only if its first and its middle kProbeBytes
// shrink by at least 1/32 at the same level: random ballast, encrypted pages and already
// compressed data then cost two 4 KiB attempts instead of a whole failed one (zstd level 1 runs
// at about 1 GB/s on incompressible input here, a third of a seal's CPU). The probe reads only
// the plaintext, so sealing stays deterministic: equal chunks still seal to equal bytes. A chunk
// whose probes are random but whose rest would compress is stored raw: a few percent of space,
// never a wrong byte.
constexpr size_t kProbeBytes = 4096;

bool ProbeShrinks(ZSTD_CCtx* ctx, std::string_view plaintext, int level) {
  if (plaintext.size() < 4 * kProbeBytes) return true;
  char out[kProbeBytes];
  for (size_t at : {size_t{0}, plaintext.size() / 2}) {
    const size_t n =
        ZSTD_compressCCtx(ctx, out, sizeof out, plaintext.data() + at, kProbeBytes, level);
    if (!ZSTD_isError(n) && n <= kProbeBytes - kProbeBytes / 32) return true;
  }
  return false;
}

// The plaintext compressed, or "" when compressing does not make it smaller.
Result<std::string> Compress(std::string_view plaintext, int level) {
  ZSTD_CCtx* ctx = CompressContext();
  if (ctx == nullptr) return Status::ResourceExhausted("cannot allocate a zstd context");
  if (!ProbeShrinks(ctx, plaintext, level)) return std::string();
  std::string out(plaintext.size(), '\0');  // larger output would not be kept anyway
  const size_t n =
      ZSTD_compressCCtx(ctx, out.data(), out.size(), plaintext.data(), plaintext.size(), level);
  if (ZSTD_isError(n) || n >= plaintext.size()) return std::string();
  out.resize(n);
  return out;
}

}  // namespace

Result<std::string> SealChunk(std::string_view key, std::string_view plaintext, int zstd_level) {
  if (plaintext.empty() || plaintext.size() > kMaxChunkBytes) {
    return Status::InvalidArgument("a chunk must hold 1 to " + std::to_string(kMaxChunkBytes) +
                                   " bytes");
  }
  FERRY_ASSIGN_OR_RETURN(std::string compressed, Compress(plaintext, zstd_level));
  const std::string_view body = compressed.empty() ? plaintext : std::string_view(compressed);
  std::string file;
  file.reserve(body.size() + kSealedChunkOverhead);
  file.append(kMagic, sizeof kMagic);
  PutU8(file, kMajor);
  PutU8(file, kMinor);
  PutU8(file, compressed.empty() ? 0 : kFlagCompressed);
  PutU8(file, 0);
  PutU32(file, static_cast<uint32_t>(plaintext.size()));
  PutU32(file, static_cast<uint32_t>(body.size() + crypto::kAeadTagBytes));
  FERRY_ASSIGN_OR_RETURN(std::string nonce, Nonce(key));
  const std::string header = file;
  Status sealed = crypto::AeadSeal(key, nonce, header, body, file);
  crypto::Wipe(compressed);  // guest memory, compressed
  FERRY_RETURN_IF_ERROR(sealed);
  file += Digest(file);
  return file;
}

Result<SealedChunkInfo> CheckSealedChunk(std::string_view file, const std::string& what) {
  auto bad = [&](const std::string& why) { return Status::Corruption(what + ": " + why); };
  ByteReader r(file);
  if (r.Take(sizeof kMagic) != std::string_view(kMagic, sizeof kMagic)) {
    return bad("not a sealed chunk (wrong magic)");
  }
  const uint8_t major = r.U8(), minor = r.U8(), flags = r.U8(), reserved = r.U8();
  (void)minor;  // a newer minor may only add flags, and unknown flags are refused below
  if (!r.ok()) return bad("truncated header");
  if (major > kMajor) {
    return Status::FailedPrecondition(what + ": chunk format version " + std::to_string(major) +
                                      " is newer than this ferry reads (" + std::to_string(kMajor) +
                                      "); upgrade ferry");
  }
  if (major != kMajor) return bad("unknown format version " + std::to_string(major));
  if ((flags & ~kFlagCompressed) != 0 || reserved != 0) return bad("unknown flags");
  SealedChunkInfo info;
  info.compressed = (flags & kFlagCompressed) != 0;
  info.plaintext_bytes = r.U32();
  const uint32_t sealed = r.U32();
  if (!r.ok()) return bad("truncated header");
  if (info.plaintext_bytes == 0 || info.plaintext_bytes > kMaxChunkBytes) {
    return bad("plaintext length " + std::to_string(info.plaintext_bytes) + " is out of range");
  }
  if (sealed < crypto::kAeadTagBytes || sealed > kMaxChunkBytes + crypto::kAeadTagBytes ||
      (!info.compressed && sealed != info.plaintext_bytes + crypto::kAeadTagBytes)) {
    return bad("sealed length " + std::to_string(sealed) + " does not fit the plaintext length");
  }
  if (file.size() != kSealedChunkHeaderBytes + sealed + kDigestBytes) {
    return bad(file.size() < kSealedChunkHeaderBytes + sealed + kDigestBytes ? "truncated"
                                                                             : "trailing bytes");
  }
  const size_t body_end = kSealedChunkHeaderBytes + sealed;
  if (Digest(file.substr(0, body_end)) != file.substr(body_end)) return bad("checksum mismatch");
  return info;
}

Result<std::string> OpenSealedChunk(std::string_view key, std::string_view file,
                                    const std::string& what) {
  FERRY_ASSIGN_OR_RETURN(SealedChunkInfo info, CheckSealedChunk(file, what));
  FERRY_ASSIGN_OR_RETURN(std::string nonce, Nonce(key));
  const size_t sealed_len = file.size() - kSealedChunkHeaderBytes - kDigestBytes;
  std::string body;
  Status opened = crypto::AeadOpen(key, nonce, file.substr(0, kSealedChunkHeaderBytes),
                                   file.substr(kSealedChunkHeaderBytes, sealed_len), body);
  if (!opened.ok()) return Status::Corruption(what + ": " + opened.message());
  if (!info.compressed) return body;
  ZSTD_DCtx* ctx = DecompressContext();
  if (ctx == nullptr) return Status::ResourceExhausted("cannot allocate a zstd context");
  std::string plaintext(info.plaintext_bytes, '\0');
  const size_t n =
      ZSTD_decompressDCtx(ctx, plaintext.data(), plaintext.size(), body.data(), body.size());
  crypto::Wipe(body);
  if (ZSTD_isError(n) || n != plaintext.size()) {
    return Status::Corruption(what + ": compressed contents do not expand to " +
                              std::to_string(info.plaintext_bytes) + " bytes");
  }
  return plaintext;
}

}  // namespace ferry::store
