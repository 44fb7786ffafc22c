#include "crypto/aead.h"

#include <gtest/gtest.h>

namespace ferry::crypto {
namespace {

const std::string kKey(32, 'k');
const std::string kNonce(12, 'n');

std::string Sealed(const std::string& plaintext, const std::string& aad = "aad") {
  std::string out;
  EXPECT_TRUE(AeadSeal(kKey, kNonce, aad, plaintext, out).ok());
  return out;
}

TEST(AeadTest, SealThenOpenGivesThePlaintextBack) {
  const std::string text("the guest's page\0with a zero byte", 33);
  std::string sealed = Sealed(text);
  EXPECT_EQ(sealed.size(), text.size() + kAeadTagBytes);
  EXPECT_EQ(sealed.find("guest"), std::string::npos);
  std::string out = "prefix:";
  ASSERT_TRUE(AeadOpen(kKey, kNonce, "aad", sealed, out).ok());
  EXPECT_EQ(out, "prefix:" + text);
}

TEST(AeadTest, EmptyPlaintextStillCarriesATag) {
  std::string sealed = Sealed("");
  EXPECT_EQ(sealed.size(), kAeadTagBytes);
  std::string out;
  EXPECT_TRUE(AeadOpen(kKey, kNonce, "aad", sealed, out).ok());
  EXPECT_TRUE(out.empty());
}

TEST(AeadTest, AFlippedBitInCiphertextOrTagIsRefused) {
  std::string sealed = Sealed("some plaintext of a chunk");
  for (size_t at : {size_t{0}, sealed.size() / 2, sealed.size() - 1}) {
    std::string bad = sealed;
    bad[at] ^= 0x01;
    std::string out;
    Status st = AeadOpen(kKey, kNonce, "aad", bad, out);
    EXPECT_EQ(st.code(), Status::Code::kCorruption) << "byte " << at;
    EXPECT_TRUE(out.empty()) << "nothing is given out from a bad tag";
  }
}

TEST(AeadTest, WrongKeyNonceOrAadIsRefused) {
  std::string sealed = Sealed("secret");
  std::string out;
  EXPECT_EQ(AeadOpen(std::string(32, 'x'), kNonce, "aad", sealed, out).code(),
            Status::Code::kCorruption);
  EXPECT_EQ(AeadOpen(kKey, std::string(12, 'x'), "aad", sealed, out).code(),
            Status::Code::kCorruption);
  EXPECT_EQ(AeadOpen(kKey, kNonce, "other", sealed, out).code(), Status::Code::kCorruption);
}

TEST(AeadTest, TruncatedInputIsRefused) {
  std::string sealed = Sealed("secret that is long enough");
  std::string out;
  for (size_t keep : {size_t{0}, size_t{5}, kAeadTagBytes, sealed.size() - 1}) {
    EXPECT_EQ(AeadOpen(kKey, kNonce, "aad", sealed.substr(0, keep), out).code(),
              Status::Code::kCorruption)
        << keep;
  }
}

TEST(AeadTest, WrongKeySizeIsAnArgumentError) {
  std::string out;
  EXPECT_EQ(AeadSeal("short", kNonce, "", "x", out).code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(AeadSeal(kKey, "short", "", "x", out).code(), Status::Code::kInvalidArgument);
}

TEST(AeadTest, RandomNonceBoxesDifferAndOpen) {
  auto a = AeadSealWithRandomNonce(kKey, "wrap", "data key");
  auto b = AeadSealWithRandomNonce(kKey, "wrap", "data key");
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_NE(*a, *b);
  auto opened = AeadOpenWithNonce(kKey, "wrap", *a);
  ASSERT_TRUE(opened.ok());
  EXPECT_EQ(*opened, "data key");
  EXPECT_EQ(AeadOpenWithNonce(kKey, "other use", *a).status().code(), Status::Code::kCorruption);
  EXPECT_EQ(AeadOpenWithNonce(kKey, "wrap", a->substr(0, 20)).status().code(),
            Status::Code::kCorruption);
}

TEST(AeadTest, HmacSeparatesLabelsAndKeys) {
  auto a = HmacSha256(kKey, "id", "page");
  auto b = HmacSha256(kKey, "key", "page");
  auto c = HmacSha256(std::string(32, 'o'), "id", "page");
  auto a2 = HmacSha256(kKey, "id", "page");
  ASSERT_TRUE(a.ok() && b.ok() && c.ok() && a2.ok());
  EXPECT_EQ(a->size(), kHmacSha256Bytes);
  EXPECT_EQ(*a, *a2);
  EXPECT_NE(*a, *b);
  EXPECT_NE(*a, *c);
}

TEST(AeadTest, HmacMatchesRfc4231TestCase2) {
  auto mac = HmacSha256("Jefe", "what do ya want ", "for nothing?");
  ASSERT_TRUE(mac.ok());
  static constexpr unsigned char kWant[] = {0x5b, 0xdc, 0xc1, 0x46, 0xbf, 0x60, 0x75, 0x4e,
                                            0x6a, 0x04, 0x24, 0x26, 0x08, 0x95, 0x75, 0xc7,
                                            0x5a, 0x00, 0x3f, 0x08, 0x9d, 0x27, 0x39, 0x83,
                                            0x9d, 0xec, 0x58, 0xb9, 0x64, 0xec, 0x38, 0x43};
  EXPECT_EQ(*mac, std::string(reinterpret_cast<const char*>(kWant), sizeof kWant));
}

}  // namespace
}  // namespace ferry::crypto
