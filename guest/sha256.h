// Sha256: SHA-256 (FIPS 180-4), self-contained so the static guest agent needs no crypto
// library. Used for OpenSSH-style host key fingerprints, which are public data: no constant-time
// promise is made.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace ferry::guest {

class Sha256 {
 public:
  using Digest = std::array<uint8_t, 32>;

  Sha256();
  void Update(std::string_view data);
  // REQUIRES: called once; the object is spent afterwards.
  Digest Finish();

  static Digest Of(std::string_view data);

 private:
  void Compress(const uint8_t* block);

  std::array<uint32_t, 8> state_;
  std::array<uint8_t, 64> buffer_{};
  std::size_t buffered_ = 0;
  uint64_t total_bytes_ = 0;
};

}  // namespace ferry::guest
