#include "guest/encoding.h"

#include <gtest/gtest.h>

namespace ferry::guest {
namespace {

TEST(HexTest, RoundTrip) {
  EXPECT_EQ(HexEncode(std::string("\x00\x7f\x80\xff", 4)), "007f80ff");
  EXPECT_EQ(HexDecode("007F80ff"), std::string("\x00\x7f\x80\xff", 4));
  EXPECT_EQ(HexDecode(""), "");
}

TEST(HexTest, RejectsOddLengthAndNonDigits) {
  EXPECT_EQ(HexDecode("abc"), std::nullopt);
  EXPECT_EQ(HexDecode("0g"), std::nullopt);
  EXPECT_EQ(HexDecode(" 00"), std::nullopt);
}

// RFC 4648 section 10.
TEST(Base64Test, RfcVectors) {
  const std::pair<const char*, const char*> vectors[] = {{"", ""},
                                                         {"f", "Zg=="},
                                                         {"fo", "Zm8="},
                                                         {"foo", "Zm9v"},
                                                         {"foob", "Zm9vYg=="},
                                                         {"fooba", "Zm9vYmE="},
                                                         {"foobar", "Zm9vYmFy"}};
  for (const auto& [plain, encoded] : vectors) {
    EXPECT_EQ(Base64Encode(plain), encoded);
    EXPECT_EQ(Base64Decode(encoded), plain);
  }
  EXPECT_EQ(Base64Encode("f", /*pad=*/false), "Zg");
  EXPECT_EQ(Base64Encode("fo", /*pad=*/false), "Zm8");
  EXPECT_EQ(Base64Encode(std::string("\xfb\xff", 2)), "+/8=");
}

TEST(Base64Test, RoundTripsEveryByte) {
  std::string all;
  for (int i = 0; i < 256; ++i) all.push_back(static_cast<char>(i));
  for (std::size_t len = 0; len < 10; ++len) {
    std::string part = all.substr(250 - len, len);
    EXPECT_EQ(Base64Decode(Base64Encode(part)), part);
  }
  EXPECT_EQ(Base64Decode(Base64Encode(all)), all);
}

TEST(Base64Test, RejectsMalformedInput) {
  for (const char* bad : {"Zg", "Zg=", "Zm9v\n", "Zm 9", "Z===", "=Zm9", "Zg==Zm9v", "Zm9-",
                          "Zh==",  // stray bits under the padding
                          "Zm9=",  // likewise, one pad character
                          "Zm9vYg=a"}) {
    EXPECT_EQ(Base64Decode(bad), std::nullopt) << bad;
  }
}

}  // namespace
}  // namespace ferry::guest
