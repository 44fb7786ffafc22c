#include "store/hold_manifest.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <openssl/evp.h>

#include "store/byte_codec.h"
#include "store/store_test_env.h"

namespace ferry::store {
namespace {

using ::testing::HasSubstr;

class HoldManifestTest : public ::testing::Test {
 protected:
  ManifestFile Sample() {
    ManifestFile f;
    f.manifest.header = HeaderForTest("h-1", std::string(64, 'a'));
    f.manifest.chunk_bytes = 65536;
    f.manifest.logical_bytes = 1234;
    f.manifest.sealed_at = 1765000001;
    f.manifest.signer_host_id = "h1";
    f.wrapped_data_key = std::string(60, 'w');
    f.sealed_table = std::string(100, 't');
    return f;
  }
  std::string Encoded() {
    auto bytes = EncodeHoldManifest(Sample(), *env_.h1().signer);
    EXPECT_TRUE(bytes.ok());
    return bytes.ok() ? *bytes : "";
  }
  Status Decode(const std::string& bytes) {
    return DecodeHoldManifest(bytes, env_.h1().cert.get(), "F").status();
  }
  StoreTestEnv env_;
};

TEST_F(HoldManifestTest, RoundTrip) {
  auto back = DecodeHoldManifest(Encoded(), env_.h1().cert.get(), "F");
  ASSERT_TRUE(back.ok()) << back.status().message();
  const ManifestFile want = Sample();
  EXPECT_EQ(back->manifest.header, want.manifest.header);
  EXPECT_EQ(back->manifest.chunk_bytes, 65536u);
  EXPECT_EQ(back->manifest.logical_bytes, 1234u);
  EXPECT_EQ(back->manifest.sealed_at, 1765000001);
  EXPECT_EQ(back->manifest.signer_host_id, "h1");
  EXPECT_EQ(back->manifest.version_major, 1);
  EXPECT_EQ(back->wrapped_data_key, want.wrapped_data_key);
  EXPECT_EQ(back->sealed_table, want.sealed_table);
}

TEST_F(HoldManifestTest, BadMagicNewerMajorAndBadChecksumAreRefused) {
  std::string bad = Encoded();
  bad[0] = 'X';
  Status st = Decode(FixManifestChecksum(bad));
  EXPECT_EQ(st.code(), Status::Code::kCorruption);
  EXPECT_THAT(st.message(), HasSubstr("hold manifest F: not a hold manifest (wrong magic)"));

  bad = Encoded();
  bad[8] = 2;
  st = Decode(bad);
  EXPECT_EQ(st.code(), Status::Code::kFailedPrecondition);
  EXPECT_THAT(st.message(), HasSubstr("upgrade ferry"));

  bad = Encoded();
  bad[40] ^= 1;
  st = Decode(bad);
  EXPECT_EQ(st.code(), Status::Code::kCorruption);
  EXPECT_THAT(st.message(), HasSubstr("checksum mismatch; the hold is damaged"));

  const std::string good = Encoded();
  for (size_t keep : {size_t{0}, size_t{10}, size_t{30}, good.size() - 33, good.size() - 1}) {
    EXPECT_EQ(Decode(good.substr(0, keep)).code(), Status::Code::kCorruption) << keep;
  }
}

TEST_F(HoldManifestTest, AnEditWithTheChecksumFixedOrAnotherSignerFailsTheSignature) {
  std::string bad = Encoded();
  const size_t at = bad.find("durable");
  bad.replace(at, 7, "expired");
  Status st = Decode(FixManifestChecksum(bad));
  EXPECT_EQ(st.code(), Status::Code::kCorruption);
  EXPECT_THAT(st.message(), HasSubstr("signature does not verify"));

  auto by_h2 = EncodeHoldManifest(Sample(), *env_.h2().signer);
  ASSERT_TRUE(by_h2.ok());
  EXPECT_THAT(Decode(*by_h2).message(), HasSubstr("signature does not verify"));
  EXPECT_TRUE(DecodeHoldManifest(*by_h2, env_.h2().cert.get(), "F").ok());
}

TEST_F(HoldManifestTest, HeaderFieldsAreValidatedAtEncodeAndDecode) {
  ManifestFile f = Sample();
  f.manifest.header.spec_json = std::string("\xff\xfe", 2);
  EXPECT_EQ(EncodeHoldManifest(f, *env_.h1().signer).status().code(),
            Status::Code::kInvalidArgument);
  f = Sample();
  f.manifest.header.hold_id = "../../x";
  auto bytes = EncodeHoldManifest(f, *env_.h1().signer);
  ASSERT_TRUE(bytes.ok());
  EXPECT_THAT(Decode(*bytes).message(), HasSubstr("hold id"));
  f = Sample();
  f.manifest.chunk_bytes = 12345;
  EXPECT_THAT(Decode(*EncodeHoldManifest(f, *env_.h1().signer)).message(),
              HasSubstr("chunk_bytes"));
}

TEST_F(HoldManifestTest, TheKindRoundTripsAndAnUnknownOneIsRefused) {
  ManifestFile f = Sample();
  EXPECT_EQ(f.manifest.header.kind, kKindHold);
  f.manifest.header.kind = kKindSnapshot;
  auto back =
      DecodeHoldManifest(*EncodeHoldManifest(f, *env_.h1().signer), env_.h1().cert.get(), "F");
  ASSERT_TRUE(back.ok()) << back.status().message();
  EXPECT_EQ(back->manifest.header.kind, kKindSnapshot);
  EXPECT_EQ(back->manifest.version_minor, kManifestMinor);
  f.manifest.header.kind = "vm";
  Status st = Decode(*EncodeHoldManifest(f, *env_.h1().signer));
  EXPECT_EQ(st.code(), Status::Code::kCorruption);
  EXPECT_THAT(st.message(), HasSubstr("kind \"vm\" is neither"));
}

TEST_F(HoldManifestTest, AVersion10ManifestWithoutAKindIsAHolds) {
  // Laid out as ferry wrote format 1.0: no "kind" in the header, minor 0.
  const std::string header =
      R"({"hold_id":"h-1","vm_name":"web","owner_fingerprint":"","policy":"","spec":"{}",)"
      R"("created_at":1,"expires_at":0,"state":"durable","chunk_bytes":65536,)"
      R"("logical_bytes":10,"sealed_at":2,"signer_host_id":"h1","wrapped_data_key":"AAAA"})";
  const std::string table(50, 't');
  std::string file("FERRYHLD", 8);
  PutU16(file, 1);
  PutU16(file, 0);
  PutU32(file, static_cast<uint32_t>(header.size()));
  PutU64(file, table.size());
  file += header + table;
  auto sig = env_.h1().signer->Sign("ferry-hold-manifest-v1\n" + file);
  ASSERT_TRUE(sig.ok());
  PutBytes(file, *sig);
  unsigned char md[32];
  EVP_Digest(file.data(), file.size(), md, nullptr, EVP_sha256(), nullptr);
  file += std::string(reinterpret_cast<char*>(md), 32);
  auto back = DecodeHoldManifest(file, env_.h1().cert.get(), "F");
  ASSERT_TRUE(back.ok()) << back.status().message();
  EXPECT_EQ(back->manifest.header.kind, kKindHold);
  EXPECT_EQ(back->manifest.version_minor, 0);
}

}  // namespace
}  // namespace ferry::store
