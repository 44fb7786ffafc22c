#include "migrate/peer_frame.h"

#include <gtest/gtest.h>

#include <random>
#include <string>

namespace ferry::migrate {
namespace {

const std::string kWhere = "test link";

bool Contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

std::string RandomBytes(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::string out(n, '\0');
  for (char& c : out) c = static_cast<char>(rng() & 0xFF);
  return out;
}

// Rewrites the CRC of an encoded frame after a test changed its header, so that only the change
// under test is wrong.
void Reseal(std::string& frame) {
  uint32_t crc = Crc32c(frame.data(), 12);
  crc = Crc32c(frame.data() + kFrameHeaderBytes, frame.size() - kFrameHeaderBytes, crc);
  for (int i = 0; i < 4; ++i) frame[12 + i] = static_cast<char>((crc >> (8 * i)) & 0xFF);
}

TEST(Crc32cTest, MatchesTheStandardCheckValue) {
  // The CRC-32C check value from the Castagnoli/iSCSI specification (RFC 3720 B.4).
  EXPECT_EQ(Crc32c("123456789", 9), 0xE3069283u);
  EXPECT_EQ(internal::Crc32cPortable("123456789", 9, 0), 0xE3069283u);
  std::string zeros(32, '\0');
  EXPECT_EQ(Crc32c(zeros.data(), zeros.size()), 0x8A9136AAu);
}

TEST(Crc32cTest, PortableAndHardwareAgreeAndChain) {
  std::string data = RandomBytes(100'003, 7);
  for (size_t n : {0ul, 1ul, 7ul, 8ul, 9ul, 63ul, 4096ul, data.size()}) {
    EXPECT_EQ(Crc32c(data.data(), n), internal::Crc32cPortable(data.data(), n, 0)) << n;
  }
  uint32_t whole = Crc32c(data.data(), data.size());
  uint32_t chained = Crc32c(data.data() + 1001, data.size() - 1001, Crc32c(data.data(), 1001));
  EXPECT_EQ(whole, chained);
}

TEST(PeerFrameTest, RoundTripsEveryType) {
  std::string data = RandomBytes(70'000, 1);
  struct Case {
    FrameType type;
    std::string payload;
  } cases[] = {{FrameType::kControl, R"({"phase":"begin","vm":"web-1"})"},
               {FrameType::kData, data},
               {FrameType::kData, ""},
               {FrameType::kStreamEnd, ""},
               {FrameType::kAccept, "{}"}};
  for (const Case& c : cases) {
    std::string encoded = EncodeFrame(c.type, c.payload);
    ASSERT_EQ(encoded.size(), kFrameHeaderBytes + c.payload.size());
    EXPECT_EQ(encoded.substr(0, 4), "FRYM");
    auto decoded = DecodeFrame(encoded, kWhere);
    ASSERT_TRUE(decoded.ok()) << decoded.status().message();
    EXPECT_EQ(decoded->type, c.type);
    EXPECT_EQ(decoded->payload, c.payload);
  }
}

TEST(PeerFrameTest, HeaderLayoutIsAsDocumented) {
  std::string encoded = EncodeFrame(FrameType::kData, "abc");
  EXPECT_EQ(static_cast<uint8_t>(encoded[4]), kFrameVersionMajor);
  EXPECT_EQ(static_cast<uint8_t>(encoded[5]), kFrameVersionMinor);
  EXPECT_EQ(static_cast<uint8_t>(encoded[6]), 2);                       // data
  EXPECT_EQ(static_cast<uint8_t>(encoded[7]), 0);                       // flags
  EXPECT_EQ(encoded.substr(8, 4), std::string("\x03\x00\x00\x00", 4));  // length, little-endian
  auto header = DecodeFrameHeader(std::string_view(encoded).substr(0, kFrameHeaderBytes), kWhere);
  ASSERT_TRUE(header.ok()) << header.status().message();
  EXPECT_EQ(header->payload_bytes, 3u);
  EXPECT_EQ(header->crc32c, Crc32c("abc", 3, Crc32c(encoded.data(), 12)));
}

TEST(PeerFrameTest, RefusesBadMagic) {
  std::string encoded = EncodeFrame(FrameType::kControl, "{}");
  encoded[0] = 'X';
  Reseal(encoded);
  auto decoded = DecodeFrame(encoded, kWhere);
  ASSERT_FALSE(decoded.ok());
  EXPECT_EQ(decoded.status().code(), Status::Code::kCorruption);
  EXPECT_TRUE(Contains(decoded.status().message(), "bad frame magic"))
      << decoded.status().message();
  EXPECT_TRUE(Contains(decoded.status().message(), kWhere));
}

TEST(PeerFrameTest, RefusesBadChecksumInPayloadOrHeader) {
  std::string payload = RandomBytes(5000, 3);
  std::string encoded = EncodeFrame(FrameType::kData, payload);

  std::string flipped_payload = encoded;
  flipped_payload[kFrameHeaderBytes + 2500] ^= 0x01;
  auto decoded = DecodeFrame(flipped_payload, kWhere);
  ASSERT_FALSE(decoded.ok());
  EXPECT_EQ(decoded.status().code(), Status::Code::kCorruption);
  EXPECT_TRUE(Contains(decoded.status().message(), "CRC-32C")) << decoded.status().message();

  // The flags byte is ignored when read, but it is covered by the checksum.
  std::string flipped_flags = encoded;
  flipped_flags[7] = 0x40;
  decoded = DecodeFrame(flipped_flags, kWhere);
  ASSERT_FALSE(decoded.ok());
  EXPECT_TRUE(Contains(decoded.status().message(), "CRC-32C")) << decoded.status().message();

  std::string flipped_crc = encoded;
  flipped_crc[13] ^= 0x80;
  EXPECT_FALSE(DecodeFrame(flipped_crc, kWhere).ok());
}

TEST(PeerFrameTest, RefusesTooNewMajorVersionButAcceptsNewerMinor) {
  std::string encoded = EncodeFrame(FrameType::kControl, "{}");
  std::string newer_major = encoded;
  newer_major[4] = static_cast<char>(kFrameVersionMajor + 1);
  Reseal(newer_major);
  auto decoded = DecodeFrame(newer_major, kWhere);
  ASSERT_FALSE(decoded.ok());
  EXPECT_EQ(decoded.status().code(), Status::Code::kFailedPrecondition);
  EXPECT_TRUE(Contains(decoded.status().message(), "upgrade this agent"))
      << decoded.status().message();

  std::string older_major = encoded;
  older_major[4] = 0;
  Reseal(older_major);
  EXPECT_FALSE(DecodeFrame(older_major, kWhere).ok());

  std::string newer_minor = encoded;
  newer_minor[5] = static_cast<char>(kFrameVersionMinor + 7);
  newer_minor[7] = 0x01;  // a flag a later minor version might define
  Reseal(newer_minor);
  auto accepted = DecodeFrame(newer_minor, kWhere);
  ASSERT_TRUE(accepted.ok()) << accepted.status().message();
  EXPECT_EQ(accepted->payload, "{}");
}

TEST(PeerFrameTest, RefusesUnknownTypeAndOversizedLength) {
  std::string encoded = EncodeFrame(FrameType::kControl, "{}");
  std::string unknown = encoded;
  unknown[6] = 9;
  Reseal(unknown);
  auto decoded = DecodeFrame(unknown, kWhere);
  ASSERT_FALSE(decoded.ok());
  EXPECT_TRUE(Contains(decoded.status().message(), "unknown frame type 9"))
      << decoded.status().message();

  // A header announcing more than the cap is refused before anything is allocated for it.
  std::string header = EncodeFrameHeader(FrameType::kData, "");
  uint32_t too_big = kMaxFramePayloadBytes + 1;
  for (int i = 0; i < 4; ++i) header[8 + i] = static_cast<char>((too_big >> (8 * i)) & 0xFF);
  auto refused = DecodeFrameHeader(header, kWhere);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), Status::Code::kCorruption);
  EXPECT_TRUE(Contains(refused.status().message(), "limit")) << refused.status().message();

  // Exactly the cap is fine.
  uint32_t at_cap = kMaxFramePayloadBytes;
  for (int i = 0; i < 4; ++i) header[8 + i] = static_cast<char>((at_cap >> (8 * i)) & 0xFF);
  EXPECT_TRUE(DecodeFrameHeader(header, kWhere).ok());
}

TEST(PeerFrameTest, RefusesTruncatedFramesAndStreamEndWithPayload) {
  std::string encoded = EncodeFrame(FrameType::kData, "hello");
  EXPECT_FALSE(DecodeFrame(encoded.substr(0, encoded.size() - 1), kWhere).ok());
  EXPECT_FALSE(DecodeFrame(encoded.substr(0, 10), kWhere).ok());

  std::string end_with_payload = EncodeFrame(FrameType::kStreamEnd, "x");
  auto decoded = DecodeFrame(end_with_payload, kWhere);
  ASSERT_FALSE(decoded.ok());
  EXPECT_TRUE(Contains(decoded.status().message(), "stream-end")) << decoded.status().message();
}

}  // namespace
}  // namespace ferry::migrate
