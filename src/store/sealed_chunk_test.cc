#include "store/sealed_chunk.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "store/byte_codec.h"
#include "store/crc32c.h"
#include "store/store_test_env.h"

namespace ferry::store {
namespace {

using ::testing::HasSubstr;

const std::string kKey(32, 'K');

std::string FixChecksum(std::string file) {
  file.resize(file.size() - 4);
  PutU32(file, Crc32c(file));
  return file;
}

TEST(SealedChunkTest, CompressibleChunksAreCompressedAndOpenBack) {
  const std::string plain(65536, 'x');
  auto file = SealChunk(kKey, plain, 1);
  ASSERT_TRUE(file.ok());
  EXPECT_LT(file->size(), 1000u);
  auto info = CheckSealedChunk(*file, "chunk");
  ASSERT_TRUE(info.ok());
  EXPECT_TRUE(info->compressed);
  EXPECT_EQ(info->plaintext_bytes, 65536u);
  auto back = OpenSealedChunk(kKey, *file, "chunk");
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(*back, plain);
}

TEST(SealedChunkTest, RandomChunksAreStoredRawAndSealingIsDeterministic) {
  const std::string plain = RandomBytesForTest(65536, 1);
  auto a = SealChunk(kKey, plain, 1);
  auto b = SealChunk(kKey, plain, 1);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(*a, *b) << "equal chunks seal to equal bytes";
  EXPECT_EQ(a->size(), plain.size() + kSealedChunkOverhead);
  EXPECT_FALSE(CheckSealedChunk(*a, "chunk")->compressed);
  EXPECT_EQ(*OpenSealedChunk(kKey, *a, "chunk"), plain);
}

TEST(SealedChunkTest, TheChecksumIsCrc32c) {
  EXPECT_EQ(Crc32c("123456789"), 0xe3069283u);
  EXPECT_EQ(Crc32c(""), 0u);
  // Against the bitwise definition, at lengths that end off the 8-byte stride.
  const std::string bytes = RandomBytesForTest(1003, 9);
  uint32_t crc = 0xffffffffu;
  for (unsigned char c : bytes) {
    crc ^= c;
    for (int k = 0; k < 8; ++k) crc = crc & 1 ? (crc >> 1) ^ 0x82f63b78u : crc >> 1;
  }
  EXPECT_EQ(Crc32c(bytes), ~crc);
  const std::string sealed = *SealChunk(kKey, bytes, 1);
  ByteReader r(std::string_view(sealed).substr(sealed.size() - 4));
  EXPECT_EQ(r.U32(), Crc32c(std::string_view(sealed).substr(0, sealed.size() - 4)));
}

TEST(SealedChunkTest, TheProbeDecidesFromTheFirstAndMiddlePages) {
  // Random where the probes look, text elsewhere: stored raw (the probe's documented miss).
  std::string plain(65536, 't');
  plain.replace(0, 4096, RandomBytesForTest(4096, 3));
  plain.replace(32768, 4096, RandomBytesForTest(4096, 4));
  auto raw = SealChunk(kKey, plain, 1);
  ASSERT_TRUE(raw.ok());
  EXPECT_FALSE(CheckSealedChunk(*raw, "chunk")->compressed);
  EXPECT_EQ(*OpenSealedChunk(kKey, *raw, "chunk"), plain);
  // Random only at the start: the middle probe shrinks, so the whole chunk is compressed.
  plain.replace(32768, 4096, std::string(4096, 't'));
  auto packed = SealChunk(kKey, plain, 1);
  ASSERT_TRUE(packed.ok());
  EXPECT_TRUE(CheckSealedChunk(*packed, "chunk")->compressed);
  EXPECT_LT(packed->size(), 6000u);
  EXPECT_EQ(*OpenSealedChunk(kKey, *packed, "chunk"), plain);
}

TEST(SealedChunkTest, TheLoaderRefusesBadMagicNewerVersionFlagsAndChecksum) {
  const std::string good = *SealChunk(kKey, RandomBytesForTest(5000, 2), 1);
  std::string bad = good;
  bad[0] = 'X';
  Status st = CheckSealedChunk(FixChecksum(bad), "chunk file F").status();
  EXPECT_EQ(st.code(), Status::Code::kCorruption);
  EXPECT_THAT(st.message(), HasSubstr("chunk file F: not a sealed chunk (wrong magic)"));

  bad = good;
  bad[4] = 3;
  st = CheckSealedChunk(FixChecksum(bad), "chunk file F").status();
  EXPECT_EQ(st.code(), Status::Code::kFailedPrecondition);
  EXPECT_THAT(st.message(), HasSubstr("upgrade ferry"));

  bad = good;
  bad[4] = 1;  // format 1.0 had a SHA-256 here
  st = CheckSealedChunk(FixChecksum(bad), "chunk file F").status();
  EXPECT_EQ(st.code(), Status::Code::kCorruption);
  EXPECT_THAT(st.message(), HasSubstr("unknown format version 1"));

  bad = good;
  bad[6] = 4;
  EXPECT_THAT(CheckSealedChunk(FixChecksum(bad), "F").status().message(),
              HasSubstr("unknown flags"));

  bad = good;
  bad[good.size() / 2] ^= 0x10;
  st = CheckSealedChunk(bad, "chunk file F").status();
  EXPECT_EQ(st.code(), Status::Code::kCorruption);
  EXPECT_THAT(st.message(), HasSubstr("checksum mismatch"));
}

TEST(SealedChunkTest, TruncatedOrLengthEditedFilesAreRefused) {
  const std::string good = *SealChunk(kKey, RandomBytesForTest(5000, 3), 1);
  for (size_t keep : {size_t{0}, size_t{3}, size_t{15}, size_t{16}, good.size() - 1}) {
    EXPECT_EQ(CheckSealedChunk(good.substr(0, keep), "F").status().code(),
              Status::Code::kCorruption)
        << keep;
  }
  std::string bad = good;
  bad[8] = 0x10;  // plaintext length no longer matches the sealed length of a raw chunk
  EXPECT_EQ(CheckSealedChunk(FixChecksum(bad), "F").status().code(), Status::Code::kCorruption);
  EXPECT_EQ(CheckSealedChunk(good + "x", "F").status().code(), Status::Code::kCorruption);
}

TEST(SealedChunkTest, AWrongKeyOrAnEditBehindAFixedChecksumFailsAuthentication) {
  const std::string good = *SealChunk(kKey, std::string(20000, 'y'), 1);
  Status st = OpenSealedChunk(std::string(32, 'L'), good, "chunk file F").status();
  EXPECT_EQ(st.code(), Status::Code::kCorruption);
  EXPECT_THAT(st.message(), HasSubstr("chunk file F: authentication failed"));
  std::string bad = good;
  bad[20] ^= 1;
  EXPECT_EQ(OpenSealedChunk(kKey, FixChecksum(bad), "F").status().code(),
            Status::Code::kCorruption);
}

TEST(SealedChunkTest, EmptyAndOversizedChunksAreArgumentErrors) {
  EXPECT_EQ(SealChunk(kKey, "", 1).status().code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(SealChunk(kKey, std::string(kMaxChunkBytes + 1, 'a'), 1).status().code(),
            Status::Code::kInvalidArgument);
}

}  // namespace
}  // namespace ferry::store
