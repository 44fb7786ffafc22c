#include "crypto/fleet_ca.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>

#include "core/files.h"
#include "crypto/host_credentials.h"
#include "crypto/openssl_util.h"
#include "crypto/temp_dir_for_test.h"

namespace ferry::crypto {
namespace {

using ::testing::HasSubstr;

int FileMode(const std::string& path) {
  struct stat st;
  EXPECT_EQ(::stat(path.c_str(), &st), 0) << path;
  return st.st_mode & 07777;
}

class FleetCaTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(InitFleetCa(ca_dir_).ok());
    who_.host_id = "h2";
    who_.labels = {{"zone", "b"}, {"rack", "r4"}};
    Status st = EnrollHost(ca_dir_, who_, tls_dir_);
    ASSERT_TRUE(st.ok()) << st.message();
  }

  TempDirForTest tmp_;
  std::string ca_dir_ = tmp_ / "ca";
  std::string tls_dir_ = tmp_ / "tls";
  HostIdentity who_;
};

TEST_F(FleetCaTest, EnrolledIdentityReadsBackAndCredentialsLoad) {
  EXPECT_EQ(FileMode(ca_dir_ + "/ca.key"), 0600);
  EXPECT_EQ(FileMode(tls_dir_ + "/host.key"), 0600);
  EXPECT_EQ(*ReadFile(ca_dir_ + "/ca.crt"), *ReadFile(tls_dir_ + "/ca.crt"));

  auto from_pem = HostIdentityFromPemFile(tls_dir_ + "/host.crt");
  ASSERT_TRUE(from_pem.ok()) << from_pem.status().message();
  EXPECT_EQ(*from_pem, who_);

  auto creds = LoadHostCredentials(tls_dir_);
  ASSERT_TRUE(creds.ok()) << creds.status().message();
  EXPECT_EQ(creds->identity, who_);
  EXPECT_EQ(creds->cert_file, tls_dir_ + "/host.crt");
  EXPECT_EQ(creds->key_file, tls_dir_ + "/host.key");
  EXPECT_EQ(creds->ca_file, tls_dir_ + "/ca.crt");
}

TEST_F(FleetCaTest, CertificateHasTheTlsShapeHostsNeed) {
  auto cert = ReadCertificatePem(tls_dir_ + "/host.crt");
  ASSERT_TRUE(cert.ok());
  X509* c = cert->get();
  char cn[64] = {};
  X509_NAME_get_text_by_NID(X509_get_subject_name(c), NID_commonName, cn, sizeof cn);
  EXPECT_STREQ(cn, "h2");
  EXPECT_EQ(X509_get_key_usage(c) & (KU_DIGITAL_SIGNATURE | KU_KEY_CERT_SIGN),
            uint32_t{KU_DIGITAL_SIGNATURE});
  EXPECT_EQ(X509_get_extended_key_usage(c) & (XKU_SSL_SERVER | XKU_SSL_CLIENT),
            uint32_t{XKU_SSL_SERVER | XKU_SSL_CLIENT});
  EXPECT_EQ(X509_check_ca(c), 0);
  EXPECT_EQ(EVP_PKEY_get_base_id(X509_get0_pubkey(c)), EVP_PKEY_EC);
  // 128-bit random serial: two enrollments never share one.
  ASSERT_TRUE(EnrollHost(ca_dir_, {"h3", {}}, tmp_ / "tls3").ok());
  auto other = ReadCertificatePem(tmp_ / "tls3/host.crt");
  ASSERT_TRUE(other.ok());
  EXPECT_NE(ASN1_INTEGER_cmp(X509_get0_serialNumber(c), X509_get0_serialNumber(other->get())), 0);
  EXPECT_GE(ASN1_STRING_length(X509_get0_serialNumber(c)), 15);
}

TEST_F(FleetCaTest, CertificateVerifiesOnlyAgainstItsOwnCa) {
  auto cert = ReadCertificatePem(tls_dir_ + "/host.crt");
  auto ca = ReadCertificatePem(ca_dir_ + "/ca.crt");
  ASSERT_TRUE(cert.ok() && ca.ok());
  EXPECT_TRUE(VerifyHostCertificate(cert->get(), ca->get()).ok());

  ASSERT_TRUE(InitFleetCa(tmp_ / "ca2").ok());
  auto ca2 = ReadCertificatePem(tmp_ / "ca2/ca.crt");
  ASSERT_TRUE(ca2.ok());
  Status st = VerifyHostCertificate(cert->get(), ca2->get());
  EXPECT_FALSE(st.ok());
  EXPECT_THAT(st.message(), HasSubstr("not signed by this fleet CA"));

  // The same through the loader: a host dir whose ca.crt is another fleet's.
  ASSERT_TRUE(WriteFileAtomic(tls_dir_ + "/ca.crt", *ReadFile(tmp_ / "ca2/ca.crt")).ok());
  auto creds = LoadHostCredentials(tls_dir_);
  ASSERT_FALSE(creds.ok());
  EXPECT_THAT(creds.status().message(), HasSubstr(tls_dir_ + "/host.crt: certificate is not "
                                                             "signed by this fleet CA"));
  EXPECT_THAT(creds.status().message(), HasSubstr("re-enroll"));
}

TEST_F(FleetCaTest, InitRefusesAnExistingCa) {
  std::string before = *ReadFile(ca_dir_ + "/ca.key");
  Status st = InitFleetCa(ca_dir_);
  EXPECT_EQ(st.code(), Status::Code::kAlreadyExists);
  EXPECT_THAT(st.message(), HasSubstr(ca_dir_ + "/ca.key exists already"));
  EXPECT_EQ(*ReadFile(ca_dir_ + "/ca.key"), before);
}

TEST_F(FleetCaTest, EnrollRefusesToOverwriteAnEnrolledHost) {
  std::string before = *ReadFile(tls_dir_ + "/host.key");
  Status st = EnrollHost(ca_dir_, who_, tls_dir_);
  EXPECT_EQ(st.code(), Status::Code::kAlreadyExists);
  EXPECT_EQ(*ReadFile(tls_dir_ + "/host.key"), before);
}

TEST_F(FleetCaTest, EnrollValidatesIdsAndLabels) {
  Status st = EnrollHost(ca_dir_, {"bad/id", {}}, tmp_ / "x");
  EXPECT_EQ(st.code(), Status::Code::kInvalidArgument);
  EXPECT_THAT(st.message(), HasSubstr("host id 'bad/id'"));
  EXPECT_FALSE(EnrollHost(ca_dir_, {"", {}}, tmp_ / "x").ok());
  EXPECT_FALSE(EnrollHost(ca_dir_, {std::string(64, 'a'), {}}, tmp_ / "x").ok());
  EXPECT_TRUE(EnrollHost(ca_dir_, {std::string(63, 'a'), {}}, tmp_ / "y").ok());
  st = EnrollHost(ca_dir_, {"h9", {{"zone", "b,c"}}}, tmp_ / "x");
  EXPECT_THAT(st.message(), HasSubstr("value of label zone 'b,c'"));
  EXPECT_FALSE(PathExists(tmp_ / "x"));
  EXPECT_FALSE(ParseLabel("zone").ok());
  EXPECT_FALSE(ParseLabel("=b").ok());
  EXPECT_EQ(ParseLabel("zone=b")->second, "b");
}

TEST_F(FleetCaTest, EnrollNeedsTheCa) {
  Status st = EnrollHost(tmp_ / "no-ca", who_, tmp_ / "x");
  EXPECT_EQ(st.code(), Status::Code::kNotFound);
  EXPECT_THAT(st.message(), HasSubstr(tmp_ / "no-ca/ca.key"));
  EXPECT_THAT(st.message(), HasSubstr("ferry ca init"));
}

TEST_F(FleetCaTest, KeyReadableByOthersIsRefused) {
  ASSERT_EQ(::chmod((tls_dir_ + "/host.key").c_str(), 0644), 0);
  auto creds = LoadHostCredentials(tls_dir_);
  ASSERT_FALSE(creds.ok());
  EXPECT_EQ(creds.status().message(),
            tls_dir_ + "/host.key: key file mode 0644 lets other users read it; chmod 600 it");
  ASSERT_EQ(::chmod((tls_dir_ + "/host.key").c_str(), 0620), 0);
  EXPECT_THAT(LoadHostCredentials(tls_dir_).status().message(),
              HasSubstr("mode 0620 lets other users write it"));
  ASSERT_EQ(::chmod((tls_dir_ + "/host.key").c_str(), 0400), 0);
  EXPECT_TRUE(LoadHostCredentials(tls_dir_).ok());
}

TEST_F(FleetCaTest, KeyOfAnotherHostIsRefused) {
  ASSERT_TRUE(EnrollHost(ca_dir_, {"h3", {}}, tmp_ / "tls3").ok());
  ASSERT_TRUE(::rename((tmp_ / "tls3/host.key").c_str(), (tls_dir_ + "/host.key").c_str()) == 0);
  auto creds = LoadHostCredentials(tls_dir_);
  ASSERT_FALSE(creds.ok());
  EXPECT_THAT(creds.status().message(),
              HasSubstr(tls_dir_ + "/host.key: key does not match certificate"));
}

TEST_F(FleetCaTest, MissingFileIsNamed) {
  for (const char* name : {"host.crt", "host.key", "ca.crt"}) {
    TempDirForTest t;
    ASSERT_TRUE(EnrollHost(ca_dir_, who_, t / "tls").ok());
    ASSERT_EQ(::unlink((t / "tls/" + name).c_str()), 0);
    auto creds = LoadHostCredentials(t / "tls");
    ASSERT_FALSE(creds.ok()) << name;
    EXPECT_EQ(creds.status().code(), Status::Code::kNotFound);
    EXPECT_THAT(creds.status().message(), HasSubstr(t / "tls/" + name + ": missing; re-enroll"));
  }
}

TEST_F(FleetCaTest, GarbageCertificateIsNamed) {
  ASSERT_TRUE(WriteFileAtomic(tls_dir_ + "/host.crt", "not a cert").ok());
  auto creds = LoadHostCredentials(tls_dir_);
  EXPECT_EQ(creds.status().code(), Status::Code::kCorruption);
  EXPECT_THAT(creds.status().message(), HasSubstr(tls_dir_ + "/host.crt: not a PEM certificate"));
}

// Re-signs host.crt with the CA key after moving its validity window into the past.
void BackdateCertificate(const std::string& ca_dir, const std::string& cert_path) {
  auto cert = ReadCertificatePem(cert_path);
  auto ca_key = ReadPrivateKeyPem(ca_dir + "/ca.key");
  ASSERT_TRUE(cert.ok() && ca_key.ok());
  ASSERT_TRUE(X509_gmtime_adj(X509_getm_notBefore(cert->get()), -3 * 86400));
  ASSERT_TRUE(X509_gmtime_adj(X509_getm_notAfter(cert->get()), -86400));
  ASSERT_TRUE(X509_sign(cert->get(), ca_key->get(), EVP_sha256()));
  ASSERT_TRUE(WriteFileAtomic(cert_path, *CertificateToPem(cert->get())).ok());
}

TEST_F(FleetCaTest, ExpiredCertificateIsRefused) {
  BackdateCertificate(ca_dir_, tls_dir_ + "/host.crt");
  auto creds = LoadHostCredentials(tls_dir_);
  ASSERT_FALSE(creds.ok());
  EXPECT_THAT(creds.status().message(), HasSubstr(tls_dir_ + "/host.crt: certificate has expired"));
}

// A self-signed certificate carrying the given SAN URIs, to feed the identity parser.
X509Ptr CertWithUris(const std::vector<std::string>& uris) {
  EvpPkeyPtr key(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"));
  X509Ptr cert(X509_new());
  X509_set_pubkey(cert.get(), key.get());
  if (!uris.empty()) {
    GENERAL_NAMES* names = GENERAL_NAMES_new();
    for (const auto& uri : uris) {
      ASN1_IA5STRING* s = ASN1_IA5STRING_new();
      ASN1_STRING_set(s, uri.data(), static_cast<int>(uri.size()));
      GENERAL_NAME* n = GENERAL_NAME_new();
      GENERAL_NAME_set0_value(n, GEN_URI, s);
      sk_GENERAL_NAME_push(names, n);
    }
    X509_add1_ext_i2d(cert.get(), NID_subject_alt_name, names, 0, X509V3_ADD_DEFAULT);
    GENERAL_NAMES_free(names);
  }
  X509_sign(cert.get(), key.get(), EVP_sha256());
  return cert;
}

TEST(HostIdentityTest, ReadsHostAndLabelsIgnoringOtherUris) {
  auto cert = CertWithUris({"https://example.com/", "urn:ferry:label:zone=b", "urn:ferry:host:h1",
                            "urn:ferry:label:rack=r4"});
  auto who = HostIdentityFromCertificate(cert.get());
  ASSERT_TRUE(who.ok()) << who.status().message();
  EXPECT_EQ(who->host_id, "h1");
  EXPECT_EQ(who->labels, (std::map<std::string, std::string>{{"rack", "r4"}, {"zone", "b"}}));
  EXPECT_EQ(FormatLabels(who->labels), "rack=r4,zone=b");
}

TEST(HostIdentityTest, RefusesCertificatesWithoutExactlyOneHost) {
  auto none = HostIdentityFromCertificate(CertWithUris({"urn:ferry:label:zone=b"}).get());
  EXPECT_THAT(none.status().message(), HasSubstr("no urn:ferry:host:"));
  auto no_san = HostIdentityFromCertificate(CertWithUris({}).get());
  EXPECT_THAT(no_san.status().message(), HasSubstr("no subjectAltName"));
  auto two =
      HostIdentityFromCertificate(CertWithUris({"urn:ferry:host:h1", "urn:ferry:host:h2"}).get());
  EXPECT_THAT(two.status().message(), HasSubstr("two hosts (h1 and h2)"));
  auto bad = HostIdentityFromCertificate(CertWithUris({"urn:ferry:host:h 1"}).get());
  EXPECT_FALSE(bad.ok());
  auto dup = HostIdentityFromCertificate(
      CertWithUris({"urn:ferry:host:h1", "urn:ferry:label:zone=a", "urn:ferry:label:zone=b"})
          .get());
  EXPECT_THAT(dup.status().message(), HasSubstr("label zone appears twice"));
}

TEST(HostIdentityTest, PemFileErrorsNameTheFile) {
  auto r = HostIdentityFromPemFile("/nonexistent/host.crt");
  EXPECT_EQ(r.status().code(), Status::Code::kNotFound);
  EXPECT_THAT(r.status().message(), HasSubstr("/nonexistent/host.crt"));
}

}  // namespace
}  // namespace ferry::crypto
