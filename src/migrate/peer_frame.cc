#include "migrate/peer_frame.h"

#include <array>
#include <cstring>

#include "core/untrusted_json.h"

namespace ferry::migrate {

namespace {

constexpr uint32_t kCrc32cPolynomial = 0x82F63B78;  // reflected Castagnoli

// Slice-by-8 tables: table[0] is the classic byte table, table[k] advances k more zero bytes.
struct Crc32cTables {
  std::array<std::array<uint32_t, 256>, 8> t{};
  constexpr Crc32cTables() {
    for (uint32_t i = 0; i < 256; ++i) {
      uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = (c & 1) ? (c >> 1) ^ kCrc32cPolynomial : c >> 1;
      t[0][i] = c;
    }
    for (uint32_t i = 0; i < 256; ++i) {
      for (size_t k = 1; k < 8; ++k) t[k][i] = (t[k - 1][i] >> 8) ^ t[0][t[k - 1][i] & 0xFF];
    }
  }
};
constexpr Crc32cTables kTables;

uint32_t LoadLe32(const unsigned char* p) {
  return uint32_t{p[0]} | uint32_t{p[1]} << 8 | uint32_t{p[2]} << 16 | uint32_t{p[3]} << 24;
}

void StoreLe32(uint32_t v, char* p) {
  p[0] = static_cast<char>(v & 0xFF);
  p[1] = static_cast<char>((v >> 8) & 0xFF);
  p[2] = static_cast<char>((v >> 16) & 0xFF);
  p[3] = static_cast<char>((v >> 24) & 0xFF);
}

#if defined(__x86_64__)
__attribute__((target("sse4.2"))) uint32_t Crc32cSse42(const void* data, size_t size,
                                                       uint32_t crc) {
  const auto* p = static_cast<const unsigned char*>(data);
  uint64_t c = ~crc;
  while (size >= 8) {
    uint64_t word;
    std::memcpy(&word, p, 8);
    c = __builtin_ia32_crc32di(c, word);
    p += 8;
    size -= 8;
  }
  auto c32 = static_cast<uint32_t>(c);
  while (size > 0) {
    c32 = __builtin_ia32_crc32qi(c32, *p++);
    --size;
  }
  return ~c32;
}

bool HaveSse42() {
  static const bool have = __builtin_cpu_supports("sse4.2");
  return have;
}
#endif

bool KnownType(uint8_t type) {
  return type >= static_cast<uint8_t>(FrameType::kControl) &&
         type <= static_cast<uint8_t>(FrameType::kAccept);
}

uint32_t FrameCrc(std::string_view header_bytes, std::string_view payload) {
  uint32_t crc = Crc32c(header_bytes.data(), 12);
  return Crc32c(payload.data(), payload.size(), crc);
}

}  // namespace

namespace internal {

uint32_t Crc32cPortable(const void* data, size_t size, uint32_t crc) {
  const auto* p = static_cast<const unsigned char*>(data);
  uint32_t c = ~crc;
  while (size >= 8) {
    uint32_t lo = c ^ LoadLe32(p);
    uint32_t hi = LoadLe32(p + 4);
    c = kTables.t[7][lo & 0xFF] ^ kTables.t[6][(lo >> 8) & 0xFF] ^ kTables.t[5][(lo >> 16) & 0xFF] ^
        kTables.t[4][lo >> 24] ^ kTables.t[3][hi & 0xFF] ^ kTables.t[2][(hi >> 8) & 0xFF] ^
        kTables.t[1][(hi >> 16) & 0xFF] ^ kTables.t[0][hi >> 24];
    p += 8;
    size -= 8;
  }
  while (size > 0) {
    c = (c >> 8) ^ kTables.t[0][(c ^ *p++) & 0xFF];
    --size;
  }
  return ~c;
}

}  // namespace internal

uint32_t Crc32c(const void* data, size_t size, uint32_t crc) {
#if defined(__x86_64__)
  if (HaveSse42()) return Crc32cSse42(data, size, crc);
#endif
  return internal::Crc32cPortable(data, size, crc);
}

std::string FrameTypeName(FrameType type) {
  switch (type) {
    case FrameType::kControl:
      return "control";
    case FrameType::kData:
      return "data";
    case FrameType::kStreamEnd:
      return "stream-end";
    case FrameType::kAccept:
      return "accept";
  }
  return "type " + std::to_string(static_cast<unsigned>(type));
}

std::string EncodeFrameHeader(FrameType type, std::string_view payload) {
  std::string header(kFrameHeaderBytes, '\0');
  std::memcpy(header.data(), kFrameMagic, 4);
  header[4] = static_cast<char>(kFrameVersionMajor);
  header[5] = static_cast<char>(kFrameVersionMinor);
  header[6] = static_cast<char>(type);
  header[7] = 0;  // flags: none defined; sent as 0, ignored when read
  StoreLe32(static_cast<uint32_t>(payload.size()), header.data() + 8);
  StoreLe32(FrameCrc(header, payload), header.data() + 12);
  return header;
}

std::string EncodeFrame(FrameType type, std::string_view payload) {
  std::string frame = EncodeFrameHeader(type, payload);
  frame.append(payload);
  return frame;
}

Result<FrameHeader> DecodeFrameHeader(std::string_view bytes, const std::string& where) {
  if (bytes.size() != kFrameHeaderBytes) {
    return Status::Internal(where + ": frame header of " + std::to_string(bytes.size()) +
                            " bytes, expected " + std::to_string(kFrameHeaderBytes));
  }
  const auto* p = reinterpret_cast<const unsigned char*>(bytes.data());
  if (std::memcmp(p, kFrameMagic, 4) != 0) {
    return Status::Corruption(where + ": bad frame magic (expected \"FRYM\"); the peer is not a " +
                              "ferry agent speaking this protocol, or the stream is out of step");
  }
  FrameHeader header;
  header.version_major = p[4];
  header.version_minor = p[5];
  if (header.version_major > kFrameVersionMajor) {
    return Status::FailedPrecondition(
        where + ": the peer speaks frame format version " + std::to_string(header.version_major) +
        "." + std::to_string(header.version_minor) + ", this agent only " +
        std::to_string(kFrameVersionMajor) + ".x; upgrade this agent");
  }
  if (header.version_major < kFrameVersionMajor) {
    return Status::FailedPrecondition(where + ": the peer speaks the old frame format version " +
                                      std::to_string(header.version_major) + "." +
                                      std::to_string(header.version_minor) +
                                      "; upgrade the peer's agent");
  }
  if (!KnownType(p[6])) {
    return Status::Corruption(where + ": unknown frame type " + std::to_string(p[6]));
  }
  header.type = static_cast<FrameType>(p[6]);
  header.flags = p[7];
  header.payload_bytes = LoadLe32(p + 8);
  header.crc32c = LoadLe32(p + 12);
  if (header.payload_bytes > kMaxFramePayloadBytes) {
    return Status::Corruption(where + ": " + FrameTypeName(header.type) + " frame announces " +
                              std::to_string(header.payload_bytes) + " payload bytes, more than " +
                              "the limit of " + std::to_string(kMaxFramePayloadBytes));
  }
  if (header.type == FrameType::kStreamEnd && header.payload_bytes != 0) {
    return Status::Corruption(where + ": stream-end frame with a payload of " +
                              std::to_string(header.payload_bytes) + " bytes");
  }
  return header;
}

Status CheckFramePayload(const FrameHeader& header, std::string_view payload,
                         const std::string& where) {
  if (payload.size() != header.payload_bytes) {
    return Status::Corruption(where + ": " + FrameTypeName(header.type) + " frame payload is " +
                              std::to_string(payload.size()) + " bytes, header says " +
                              std::to_string(header.payload_bytes));
  }
  // The checksum covers the header fields too; rebuild them as they were sent.
  char fields[12];
  std::memcpy(fields, kFrameMagic, 4);
  fields[4] = static_cast<char>(header.version_major);
  fields[5] = static_cast<char>(header.version_minor);
  fields[6] = static_cast<char>(header.type);
  fields[7] = static_cast<char>(header.flags);
  StoreLe32(header.payload_bytes, fields + 8);
  uint32_t crc = FrameCrc(std::string_view(fields, sizeof fields), payload);
  if (crc != header.crc32c) {
    return Status::Corruption(where + ": " + FrameTypeName(header.type) + " frame of " +
                              std::to_string(payload.size()) + " bytes failed its CRC-32C check");
  }
  return Status::Ok();
}

Result<Frame> DecodeFrame(std::string_view bytes, const std::string& where) {
  if (bytes.size() < kFrameHeaderBytes) {
    return Status::Corruption(where + ": truncated frame of " + std::to_string(bytes.size()) +
                              " bytes");
  }
  FERRY_ASSIGN_OR_RETURN(FrameHeader header,
                         DecodeFrameHeader(bytes.substr(0, kFrameHeaderBytes), where));
  FERRY_RETURN_IF_ERROR(CheckFramePayload(header, bytes.substr(kFrameHeaderBytes), where));
  return Frame{header.type, std::string(bytes.substr(kFrameHeaderBytes))};
}

Result<nlohmann::json> ParseControlPayload(std::string_view payload, const std::string& where) {
  // Size and nesting depth bounded before anything is built (core/untrusted_json.h).
  FERRY_ASSIGN_OR_RETURN(
      nlohmann::json message,
      ParseUntrustedJson(payload, where + ": control message",
                         JsonLimits{kMaxFramePayloadBytes, JsonLimits::kDefaultMaxDepth}));
  if (!message.is_object()) {
    return Status::Corruption(where + ": control frame of " + std::to_string(payload.size()) +
                              " bytes is not a JSON object");
  }
  return message;
}

}  // namespace ferry::migrate
