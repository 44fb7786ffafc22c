#include "crypto/host_signer.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include "crypto/fleet_ca.h"
#include "crypto/temp_dir_for_test.h"

namespace ferry::crypto {
namespace {

class HostSignerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(InitFleetCa(tmp_ / "ca").ok());
    ASSERT_TRUE(EnrollHost(tmp_ / "ca", {"h1", {}}, tmp_ / "h1").ok());
    ASSERT_TRUE(EnrollHost(tmp_ / "ca", {"h2", {}}, tmp_ / "h2").ok());
  }
  std::unique_ptr<KeyHostSigner> Signer(const std::string& host) {
    auto s = KeyHostSigner::Load(tmp_ / (host + "/host.key"));
    EXPECT_TRUE(s.ok()) << s.status().message();
    return s.ok() ? std::move(s).value() : nullptr;
  }
  X509Ptr Cert(const std::string& host) {
    auto c = ReadCertificatePem(tmp_ / (host + "/host.crt"));
    EXPECT_TRUE(c.ok());
    return c.ok() ? std::move(c).value() : nullptr;
  }
  TempDirForTest tmp_;
};

TEST_F(HostSignerTest, ASignatureVerifiesWithTheHostsCertificateOnly) {
  auto signer = Signer("h1");
  ASSERT_TRUE(signer);
  auto sig = signer->Sign("manifest bytes");
  ASSERT_TRUE(sig.ok());
  EXPECT_TRUE(VerifyHostSignature("manifest bytes", *sig, Cert("h1").get()).ok());
  EXPECT_EQ(VerifyHostSignature("manifest bytes", *sig, Cert("h2").get()).code(),
            Status::Code::kCorruption)
      << "signed by another host";
  EXPECT_EQ(VerifyHostSignature("manifest byteS", *sig, Cert("h1").get()).code(),
            Status::Code::kCorruption)
      << "edited bytes";
}

TEST_F(HostSignerTest, GarbageSignaturesAndNoCertificateAreErrorsNotCrashes) {
  auto cert = Cert("h1");
  for (std::string sig :
       {std::string(), std::string("x"), std::string(72, '\x30'), std::string(1000, '\xff')}) {
    EXPECT_EQ(VerifyHostSignature("bytes", sig, cert.get()).code(), Status::Code::kCorruption);
  }
  EXPECT_EQ(VerifyHostSignature("bytes", "sig", nullptr).code(), Status::Code::kInvalidArgument);
}

TEST_F(HostSignerTest, LoadRefusesAKeyOthersCanRead) {
  ASSERT_EQ(::chmod((tmp_ / "h1/host.key").c_str(), 0644), 0);
  auto s = KeyHostSigner::Load(tmp_ / "h1/host.key");
  EXPECT_EQ(s.status().code(), Status::Code::kFailedPrecondition);
}

}  // namespace
}  // namespace ferry::crypto
