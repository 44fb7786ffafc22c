#include "guest/sha256.h"

#include <gtest/gtest.h>

#include <string>

#include "guest/encoding.h"

namespace ferry::guest {
namespace {

std::string Hex(const Sha256::Digest& d) {
  return HexEncode(std::string_view(reinterpret_cast<const char*>(d.data()), d.size()));
}

// FIPS 180-2 appendix B and the usual empty-message vector.
TEST(Sha256Test, KnownVectors) {
  EXPECT_EQ(Hex(Sha256::Of("")),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(Hex(Sha256::Of("abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(Hex(Sha256::Of("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq")),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  EXPECT_EQ(Hex(Sha256::Of(std::string(1'000'000, 'a'))),
            "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

TEST(Sha256Test, PieceByPieceEqualsAtOnce) {
  std::string data;
  for (int i = 0; i < 300; ++i) data.push_back(static_cast<char>(i * 7));
  // Every length around the block and padding boundaries, fed in uneven pieces.
  for (std::size_t len : {0u, 1u, 55u, 56u, 63u, 64u, 65u, 119u, 120u, 128u, 300u}) {
    Sha256 h;
    std::string_view rest(data.data(), len);
    for (std::size_t piece = 1; !rest.empty(); piece = piece * 2 + 1) {
      std::size_t n = std::min(piece, rest.size());
      h.Update(rest.substr(0, n));
      rest.remove_prefix(n);
    }
    EXPECT_EQ(Hex(h.Finish()), Hex(Sha256::Of(std::string_view(data.data(), len)))) << len;
  }
}

}  // namespace
}  // namespace ferry::guest
