// Fuzzes the sealed chunk reader (store/sealed_chunk.h: CheckSealedChunk, what `store verify`
// runs on every chunk file, and OpenSealedChunk, what a restore and a receiving import run on a
// chunk from disk or a peer). Each input is read as a chunk file as is (with its checksum fixed
// up, too), and also used as the body of a chunk sealed properly with the compressed flag set,
// so zstd's decoder behind the tag is fuzzed with a claimed length from the input; and every
// input that makes a valid chunk plaintext must seal and open back to itself.
#include "store/sealed_chunk.h"

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "crypto/aead.h"
#include "store/byte_codec.h"
#include "store/crc32c.h"

namespace {

using namespace ferry;

const std::string kKey(32, '\x5a');

std::string WithChecksum(std::string body) {
  store::PutU32(body, store::Crc32c(body));
  return body;
}

// A chunk file whose sealed body is `body` (taken as zstd output) claiming `plain_len` bytes.
std::string CompressedChunkOf(std::string_view body, uint32_t plain_len) {
  std::string file = "FRCK";
  store::PutU8(file, 2);
  store::PutU8(file, 0);
  store::PutU8(file, 1);
  store::PutU8(file, 0);
  store::PutU32(file, plain_len);
  store::PutU32(file, static_cast<uint32_t>(body.size() + crypto::kAeadTagBytes));
  auto nonce = crypto::HmacSha256(kKey, "nonce", "");
  const std::string header = file;
  if (!nonce.ok() || !crypto::AeadSeal(kKey, nonce->substr(0, 12), header, body, file).ok()) {
    std::abort();
  }
  return WithChecksum(file);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  (void)store::CheckSealedChunk(in, "fuzz chunk");
  (void)store::OpenSealedChunk(kKey, in, "fuzz chunk");
  if (size >= 4) {
    const std::string fixed = WithChecksum(std::string(in.substr(0, size - 4)));
    (void)store::OpenSealedChunk(kKey, fixed, "fuzz chunk");
  }
  if (size >= 4) {
    store::ByteReader r(in);
    const uint32_t claimed = r.U32() % (store::kMaxChunkBytes + 1);
    (void)store::OpenSealedChunk(kKey, CompressedChunkOf(in.substr(4), claimed), "fuzz chunk");
  }
  if (size > 0 && size <= store::kMaxChunkBytes) {
    auto sealed = store::SealChunk(kKey, in, 1);
    auto back = sealed.ok() ? store::OpenSealedChunk(kKey, *sealed, "fuzz chunk")
                            : Result<std::string>(sealed.status());
    if (!back.ok() || *back != in) {
      std::fprintf(stderr, "sealed_chunk: a chunk does not open back to what was sealed\n");
      std::abort();
    }
  }
  return 0;
}
