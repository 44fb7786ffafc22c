// Fuzzes the frame codec of the agents' channel (migrate/peer_frame.h): a header and payload as a
// peer sends them, decoded as is, and again with the length and CRC-32C made to match, so that
// the checks behind the checksum (version, type, length cap) are reached as well.
#include "migrate/peer_frame.h"

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>

namespace {

void Decode(std::string_view bytes) {
  using namespace ferry::migrate;
  auto frame = DecodeFrame(bytes, "fuzz link");
  if (!frame.ok()) return;
  if (static_cast<uint8_t>(frame->type) != static_cast<uint8_t>(bytes[6]) ||
      frame->payload != bytes.substr(kFrameHeaderBytes)) {
    std::fprintf(stderr, "peer_frame: a decoded frame is not the bytes it came from\n");
    std::abort();
  }
  // What decodes re-encodes to a frame that decodes the same.
  auto again = DecodeFrame(EncodeFrame(frame->type, frame->payload), "fuzz link");
  if (!again.ok() || again->type != frame->type || again->payload != frame->payload) {
    std::fprintf(stderr, "peer_frame: a decoded frame does not survive encoding\n");
    std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace ferry::migrate;
  std::string_view bytes(reinterpret_cast<const char*>(data), size);
  Decode(bytes);
  if (bytes.size() < kFrameHeaderBytes) return 0;

  std::string fixed(bytes);
  std::memcpy(fixed.data(), kFrameMagic, sizeof kFrameMagic);
  const uint32_t length = static_cast<uint32_t>(fixed.size() - kFrameHeaderBytes);
  for (int i = 0; i < 4; ++i) fixed[8 + i] = static_cast<char>(length >> (8 * i));
  uint32_t crc = Crc32c(fixed.data(), 12);
  crc = Crc32c(fixed.data() + kFrameHeaderBytes, length, crc);
  for (int i = 0; i < 4; ++i) fixed[12 + i] = static_cast<char>(crc >> (8 * i));
  if (Crc32c(fixed.data(), fixed.size()) !=
      internal::Crc32cPortable(fixed.data(), fixed.size(), 0)) {
    std::fprintf(stderr, "peer_frame: SSE4.2 and table CRC-32C differ\n");
    std::abort();
  }
  Decode(fixed);
  return 0;
}
