#include "crypto/fleet_ca.h"

#include <openssl/bn.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include <memory>
#include <vector>

#include "core/files.h"
#include "crypto/key_file.h"
#include "crypto/openssl_util.h"

namespace ferry::crypto {

namespace {

constexpr long kCaValiditySeconds = 10L * 365 * 24 * 3600;
constexpr long kHostValiditySeconds = 365L * 24 * 3600;
// Tolerates clocks a few minutes apart between the enrolling machine and the hosts.
constexpr long kBackdateSeconds = 5 * 60;

struct BnFree {
  void operator()(BIGNUM* p) const { BN_free(p); }
};
struct GeneralNamesFree {
  void operator()(GENERAL_NAMES* p) const { GENERAL_NAMES_free(p); }
};
struct X509ExtFree {
  void operator()(X509_EXTENSION* p) const { X509_EXTENSION_free(p); }
};

std::string Join(const std::string& dir, const char* file) { return dir + "/" + file; }

Result<EvpPkeyPtr> NewP256Key() {
  EvpPkeyPtr key(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"));
  if (!key) return OpenSslFailure("generating an ECDSA P-256 key");
  return key;
}

Status SetRandomSerial(X509* cert) {
  unsigned char bytes[16];
  if (RAND_bytes(bytes, sizeof bytes) != 1) return OpenSslFailure("generating a serial number");
  bytes[0] &= 0x7f;  // positive as a DER INTEGER
  bytes[0] |= 0x01;  // and never zero
  std::unique_ptr<BIGNUM, BnFree> bn(BN_bin2bn(bytes, sizeof bytes, nullptr));
  if (!bn || !BN_to_ASN1_INTEGER(bn.get(), X509_get_serialNumber(cert))) {
    return OpenSslFailure("setting the serial number");
  }
  return Status::Ok();
}

// Adds one extension given in OpenSSL's config syntax ("critical,CA:TRUE").
Status AddExtension(X509* cert, X509* issuer, int nid, const char* value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  std::unique_ptr<X509_EXTENSION, X509ExtFree> ext(X509V3_EXT_nconf_nid(nullptr, &ctx, nid, value));
  if (!ext || !X509_add_ext(cert, ext.get(), -1)) {
    return OpenSslFailure(std::string("adding certificate extension ") + OBJ_nid2sn(nid));
  }
  return Status::Ok();
}

Status AddSanUris(X509* cert, const HostIdentity& who) {
  std::vector<std::string> uris = {std::string(kHostUriPrefix) + who.host_id};
  for (const auto& [key, value] : who.labels)
    uris.push_back(std::string(kLabelUriPrefix) + key + "=" + value);
  std::unique_ptr<GENERAL_NAMES, GeneralNamesFree> names(GENERAL_NAMES_new());
  if (!names) return OpenSslFailure("allocating subjectAltName");
  for (const std::string& uri : uris) {
    ASN1_IA5STRING* ia5 = ASN1_IA5STRING_new();
    GENERAL_NAME* name = GENERAL_NAME_new();
    if (!ia5 || !name || !ASN1_STRING_set(ia5, uri.data(), static_cast<int>(uri.size()))) {
      ASN1_IA5STRING_free(ia5);
      GENERAL_NAME_free(name);
      return OpenSslFailure("encoding subjectAltName " + uri);
    }
    GENERAL_NAME_set0_value(name, GEN_URI, ia5);
    if (!sk_GENERAL_NAME_push(names.get(), name)) {
      GENERAL_NAME_free(name);
      return OpenSslFailure("encoding subjectAltName " + uri);
    }
  }
  if (X509_add1_ext_i2d(cert, NID_subject_alt_name, names.get(), 0, X509V3_ADD_DEFAULT) != 1) {
    return OpenSslFailure("adding subjectAltName");
  }
  return Status::Ok();
}

Status SetCommonName(X509_NAME* name, const std::string& cn) {
  if (!X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
                                  reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1, 0)) {
    return OpenSslFailure("setting the certificate name");
  }
  return Status::Ok();
}

// A certificate skeleton: v3, random serial, validity window, subject CN, public key.
Result<X509Ptr> NewCertificate(const std::string& cn, EVP_PKEY* subject_key, long valid_seconds) {
  X509Ptr cert(X509_new());
  if (!cert || !X509_set_version(cert.get(), X509_VERSION_3)) {
    return OpenSslFailure("allocating a certificate");
  }
  FERRY_RETURN_IF_ERROR(SetRandomSerial(cert.get()));
  if (!X509_gmtime_adj(X509_getm_notBefore(cert.get()), -kBackdateSeconds) ||
      !X509_gmtime_adj(X509_getm_notAfter(cert.get()), valid_seconds)) {
    return OpenSslFailure("setting the validity period");
  }
  FERRY_RETURN_IF_ERROR(SetCommonName(X509_get_subject_name(cert.get()), cn));
  if (!X509_set_pubkey(cert.get(), subject_key)) return OpenSslFailure("setting the public key");
  return cert;
}

// Writes `key` to `key_path` (0600, never over a file there; its PEM wiped after) and then `cert`
// to `cert_path`: the key first, so that a certificate never stands without its key.
Status WriteKeyAndCertificate(EVP_PKEY* key, const std::string& key_path, X509* cert,
                              const std::string& cert_path) {
  FERRY_ASSIGN_OR_RETURN(std::string key_pem, PrivateKeyToPem(key));
  FERRY_ASSIGN_OR_RETURN(std::string cert_pem, CertificateToPem(cert));
  Status st = WriteNewFile(key_path, key_pem, 0600);
  OPENSSL_cleanse(key_pem.data(), key_pem.size());
  FERRY_RETURN_IF_ERROR(st);
  return WriteFileAtomic(cert_path, cert_pem, 0644);
}

// A directory about to receive a new key at `key_path`: made (0700) if absent, refused with
// `holds` ("... exists already; <holds>") if a key is there, as no key is ever replaced.
Status ReadyForNewKey(const std::string& dir, const std::string& key_path,
                      const std::string& holds) {
  if (PathExists(key_path)) return Status::AlreadyExists(key_path + " exists already" + holds);
  if (!PathExists(dir)) FERRY_RETURN_IF_ERROR(MakeDirs(dir, 0700));
  return Status::Ok();
}

}  // namespace

Status InitFleetCa(const std::string& dir) {
  const std::string key_path = Join(dir, kCaKeyFile), cert_path = Join(dir, kCaCertFile);
  FERRY_RETURN_IF_ERROR(ReadyForNewKey(dir, key_path,
                                       ": this directory holds a fleet CA; refusing to replace it "
                                       "(a new CA would orphan every enrolled host)"));

  FERRY_ASSIGN_OR_RETURN(EvpPkeyPtr key, NewP256Key());
  FERRY_ASSIGN_OR_RETURN(X509Ptr cert,
                         NewCertificate("ferry fleet CA", key.get(), kCaValiditySeconds));
  if (!X509_set_issuer_name(cert.get(), X509_get_subject_name(cert.get()))) {
    return OpenSslFailure("setting the CA issuer");
  }
  FERRY_RETURN_IF_ERROR(
      AddExtension(cert.get(), cert.get(), NID_basic_constraints, "critical,CA:TRUE,pathlen:0"));
  FERRY_RETURN_IF_ERROR(
      AddExtension(cert.get(), cert.get(), NID_key_usage, "critical,keyCertSign,cRLSign"));
  FERRY_RETURN_IF_ERROR(AddExtension(cert.get(), cert.get(), NID_subject_key_identifier, "hash"));
  if (!X509_sign(cert.get(), key.get(), EVP_sha256())) return OpenSslFailure("signing the CA");
  return WriteKeyAndCertificate(key.get(), key_path, cert.get(), cert_path);
}

Status EnrollHost(const std::string& ca_dir, const HostIdentity& who, const std::string& out_dir) {
  FERRY_RETURN_IF_ERROR(ValidateIdentity(who));
  const std::string ca_key_path = Join(ca_dir, kCaKeyFile),
                    ca_cert_path = Join(ca_dir, kCaCertFile);
  const std::string key_path = Join(out_dir, kHostKeyFile);
  if (!PathExists(ca_key_path)) {
    return Status::NotFound(ca_key_path +
                            ": no fleet CA key here; create the CA with 'ferry ca "
                            "init --dir " +
                            ca_dir + "'");
  }
  FERRY_RETURN_IF_ERROR(CheckKeyFileMode(ca_key_path));
  FERRY_ASSIGN_OR_RETURN(EvpPkeyPtr ca_key, ReadPrivateKeyPem(ca_key_path));
  FERRY_ASSIGN_OR_RETURN(X509Ptr ca_cert, ReadCertificatePem(ca_cert_path));
  if (X509_check_private_key(ca_cert.get(), ca_key.get()) != 1) {
    DrainOpenSslErrors();
    return Status::FailedPrecondition(ca_key_path + " does not match " + ca_cert_path +
                                      "; restore the CA directory from its backup");
  }
  FERRY_RETURN_IF_ERROR(ReadyForNewKey(
      out_dir, key_path,
      "; this directory holds an enrolled host; remove host.key and host.crt to re-enroll"));

  FERRY_ASSIGN_OR_RETURN(EvpPkeyPtr key, NewP256Key());
  FERRY_ASSIGN_OR_RETURN(X509Ptr cert,
                         NewCertificate(who.host_id, key.get(), kHostValiditySeconds));
  if (!X509_set_issuer_name(cert.get(), X509_get_subject_name(ca_cert.get()))) {
    return OpenSslFailure("setting the issuer");
  }
  X509* c = cert.get();
  FERRY_RETURN_IF_ERROR(AddExtension(c, ca_cert.get(), NID_basic_constraints, "critical,CA:FALSE"));
  FERRY_RETURN_IF_ERROR(AddExtension(c, ca_cert.get(), NID_key_usage, "critical,digitalSignature"));
  FERRY_RETURN_IF_ERROR(AddExtension(c, ca_cert.get(), NID_ext_key_usage, "serverAuth,clientAuth"));
  FERRY_RETURN_IF_ERROR(AddExtension(c, ca_cert.get(), NID_subject_key_identifier, "hash"));
  FERRY_RETURN_IF_ERROR(AddExtension(c, ca_cert.get(), NID_authority_key_identifier, "keyid"));
  FERRY_RETURN_IF_ERROR(AddSanUris(c, who));
  if (!X509_sign(c, ca_key.get(), EVP_sha256())) return OpenSslFailure("signing the host cert");

  FERRY_ASSIGN_OR_RETURN(std::string ca_pem, CertificateToPem(ca_cert.get()));
  FERRY_RETURN_IF_ERROR(
      WriteKeyAndCertificate(key.get(), key_path, c, Join(out_dir, kHostCertFile)));
  return WriteFileAtomic(Join(out_dir, kCaCertFile), ca_pem, 0644);
}

}  // namespace ferry::crypto
