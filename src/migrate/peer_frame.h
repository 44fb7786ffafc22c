// The frame codec of the agents' channel: how one message or one piece of a data stream is laid
// out inside the TLS byte stream. The wire format itself is described at the top of
// migrate/peer_link.h; this header holds the types and the pure encode/decode functions, so the
// checks (magic, version, length cap, checksum) are unit-tested without sockets.
#pragma once

#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "core/status.h"

namespace ferry::migrate {

inline constexpr char kFrameMagic[4] = {'F', 'R', 'Y', 'M'};
// A reader accepts any minor version of its major (additive changes only) and refuses a newer
// major.
inline constexpr uint8_t kFrameVersionMajor = 1;
inline constexpr uint8_t kFrameVersionMinor = 0;
inline constexpr size_t kFrameHeaderBytes = 16;
// Larger frames are refused by both the encoder and the decoder: a peer cannot make us allocate
// more than this for one frame.
inline constexpr uint32_t kMaxFramePayloadBytes = 16u << 20;

enum class FrameType : uint8_t {
  kControl = 1,    // payload: one JSON object, UTF-8
  kData = 2,       // payload: the next bytes of the data stream (may be empty)
  kStreamEnd = 3,  // payload: empty; the data stream is complete
  kAccept = 4,     // payload: a JSON object; sent once by the server, see peer_link.h
};

// "control", "data", "stream-end", "accept"; "type N" for anything else.
std::string FrameTypeName(FrameType type);

struct FrameHeader {
  FrameType type = FrameType::kControl;
  uint8_t version_major = kFrameVersionMajor;
  uint8_t version_minor = kFrameVersionMinor;
  uint8_t flags = 0;  // none defined yet: sent as 0, ignored when read (but checksummed)
  uint32_t payload_bytes = 0;
  uint32_t crc32c = 0;  // CRC-32C over header bytes 0..11 and the payload
};

// One received frame. `payload` holds raw bytes (for kData) or JSON text.
struct Frame {
  FrameType type = FrameType::kControl;
  std::string payload;
};

// CRC-32C (Castagnoli, as in iSCSI and ext4), continuing from `crc` (0 to start).
// Uses the SSE4.2 instruction when the CPU has it.
uint32_t Crc32c(const void* data, size_t size, uint32_t crc = 0);

// The 16 header bytes for a frame carrying `payload`.
// REQUIRES: payload.size() <= kMaxFramePayloadBytes (checked by the callers, which own the input).
std::string EncodeFrameHeader(FrameType type, std::string_view payload);
// Header and payload in one string.
std::string EncodeFrame(FrameType type, std::string_view payload);

// Checks the magic, the major version, the type and the length cap of a received header.
// `bytes` must hold exactly kFrameHeaderBytes. `where` names the link in the error
// ("link to host-b (10.0.0.2:7700)"). Every failure is Corruption, except a newer major version,
// which is FailedPrecondition ("upgrade this agent").
Result<FrameHeader> DecodeFrameHeader(std::string_view bytes, const std::string& where);
// Checks the payload against the header's length and checksum.
Status CheckFramePayload(const FrameHeader& header, std::string_view payload,
                         const std::string& where);
// Decodes one whole frame from `bytes`, which must be exactly one frame: header + payload.
Result<Frame> DecodeFrame(std::string_view bytes, const std::string& where);
// The JSON object a control frame's payload holds; anything else is Corruption naming `where`.
Result<nlohmann::json> ParseControlPayload(std::string_view payload, const std::string& where);

namespace internal {
// The table-driven CRC-32C, exposed so tests can compare it with the SSE4.2 path.
uint32_t Crc32cPortable(const void* data, size_t size, uint32_t crc);
}  // namespace internal

}  // namespace ferry::migrate
