// Fuzzes the pack reader (store/pack_file.h: CheckPackHeader, ReadPackIndex, ScanPackRecords,
// SealedBytesOfRecord), what the store runs on every pack when it opens, on a damaged pack's
// records, and on every chunk it reads. Each input is read as a whole pack file as is, and again
// with its index checksum fixed up, so the entry checks behind the checksum are fuzzed too.
// Promises beyond not crashing: every entry an accepted index or a scan returns lies inside the
// file, and the record it points at names its id (scanned records) or is refused as Corruption.
#include "store/pack_file.h"

#include <openssl/evp.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "store/byte_codec.h"

namespace {

using namespace ferry;

void Check(std::string_view file) {
  store::PackReadAt read = [&](uint64_t off, size_t len) -> Result<std::string> {
    if (off >= file.size()) return std::string();
    return std::string(file.substr(off, len));
  };
  store::ByteReader r(file);
  r.Take(8);
  const uint64_t seq = r.U64();
  if (!store::CheckPackHeader(file.substr(0, store::kPackHeaderBytes), seq, "fuzz pack").ok()) {
    return;
  }
  auto entries = store::ReadPackIndex(read, file.size(), "fuzz pack");
  if (entries.ok()) {
    for (const store::PackEntry& e : *entries) {
      if (e.offset + store::kPackRecordHeaderBytes + e.sealed_bytes > file.size()) {
        std::fprintf(stderr, "pack_file: an accepted index entry points past the file\n");
        std::abort();
      }
      auto record = read(e.offset, store::kPackRecordHeaderBytes + e.sealed_bytes);
      auto sealed = store::SealedBytesOfRecord(*record, e.id, "fuzz record");
      if (!sealed.ok() && sealed.status().code() != Status::Code::kCorruption) std::abort();
    }
  }
  store::PackScan scan = store::ScanPackRecords(read, file.size());
  for (const store::PackEntry& e : scan.entries) {
    auto record = read(e.offset, store::kPackRecordHeaderBytes + e.sealed_bytes);
    if (!record.ok() || !store::SealedBytesOfRecord(*record, e.id, "fuzz record").ok() ||
        e.offset + store::kPackRecordHeaderBytes + e.sealed_bytes > scan.end) {
      std::fprintf(stderr, "pack_file: a scanned record does not read back\n");
      std::abort();
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  Check(in);
  // The same file with the index checksum recomputed over what its trailer claims.
  if (size >= store::kPackHeaderBytes + store::kPackTrailerBytes) {
    std::string fixed(in);
    store::ByteReader t(in.substr(size - store::kPackTrailerBytes));
    const uint64_t index = t.U64();
    if (index < size - 32) {
      unsigned char md[32];
      EVP_Digest(fixed.data() + index, size - 32 - index, md, nullptr, EVP_sha256(), nullptr);
      fixed.replace(size - 32, 32, reinterpret_cast<char*>(md), 32);
      Check(fixed);
    }
  }
  return 0;
}
