#include "crypto/host_credentials.h"

#include <openssl/x509_vfy.h>

#include "core/files.h"
#include "crypto/fleet_ca.h"
#include "crypto/key_file.h"
#include "crypto/openssl_util.h"

namespace ferry::crypto {

namespace {

struct StoreFree {
  void operator()(X509_STORE* p) const { X509_STORE_free(p); }
};
struct StoreCtxFree {
  void operator()(X509_STORE_CTX* p) const { X509_STORE_CTX_free(p); }
};

std::string Reenroll(const std::string& tls_dir) {
  return "re-enroll this host ('ferry host enroll --ca CA_DIR --host-id ID --out " + tls_dir +
         "' on the machine holding the fleet CA)";
}

}  // namespace

Status VerifyHostCertificate(X509* cert, X509* ca_cert) {
  std::unique_ptr<X509_STORE, StoreFree> store(X509_STORE_new());
  std::unique_ptr<X509_STORE_CTX, StoreCtxFree> ctx(X509_STORE_CTX_new());
  if (!store || !ctx || !X509_STORE_add_cert(store.get(), ca_cert) ||
      !X509_STORE_CTX_init(ctx.get(), store.get(), cert, nullptr)) {
    return OpenSslFailure("setting up certificate verification");
  }
  X509_STORE_CTX_set_flags(ctx.get(), X509_V_FLAG_X509_STRICT);
  int rc = X509_verify_cert(ctx.get());
  DrainOpenSslErrors();
  if (rc == 1) return Status::Ok();
  int err = X509_STORE_CTX_get_error(ctx.get());
  std::string why = X509_verify_cert_error_string(err);
  switch (err) {
    case X509_V_ERR_CERT_HAS_EXPIRED:
      return Status::FailedPrecondition("certificate has expired");
    case X509_V_ERR_CERT_NOT_YET_VALID:
      return Status::FailedPrecondition("certificate is not valid yet (check the clock)");
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
    case X509_V_ERR_CERT_SIGNATURE_FAILURE:
    case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
      return Status::FailedPrecondition("certificate is not signed by this fleet CA (" + why + ")");
    default:
      return Status::FailedPrecondition("certificate does not verify against the fleet CA: " + why);
  }
}

Result<HostCredentials> LoadHostCredentials(const std::string& tls_dir) {
  HostCredentials creds;
  creds.cert_file = tls_dir + "/" + kHostCertFile;
  creds.key_file = tls_dir + "/" + kHostKeyFile;
  creds.ca_file = tls_dir + "/" + kCaCertFile;
  for (const std::string* file : {&creds.cert_file, &creds.key_file, &creds.ca_file}) {
    if (!PathExists(*file)) {
      return Status::NotFound(*file + ": missing; " + Reenroll(tls_dir));
    }
  }
  FERRY_RETURN_IF_ERROR(CheckKeyFileMode(creds.key_file));
  FERRY_ASSIGN_OR_RETURN(X509Ptr ca, ReadCertificatePem(creds.ca_file));
  FERRY_ASSIGN_OR_RETURN(X509Ptr cert, ReadCertificatePem(creds.cert_file));
  FERRY_ASSIGN_OR_RETURN(EvpPkeyPtr key, ReadPrivateKeyPem(creds.key_file));

  Status verified = VerifyHostCertificate(cert.get(), ca.get());
  if (!verified.ok()) {
    return Status::FailedPrecondition(creds.cert_file + ": " + verified.message() + " (CA " +
                                      creds.ca_file + "); " + Reenroll(tls_dir));
  }
  if (X509_check_private_key(cert.get(), key.get()) != 1) {
    DrainOpenSslErrors();
    return Status::FailedPrecondition(creds.key_file + ": key does not match certificate " +
                                      creds.cert_file + "; restore the pair or " +
                                      Reenroll(tls_dir));
  }
  auto who = HostIdentityFromCertificate(cert.get());
  if (!who.ok()) return who.status().WithContext(creds.cert_file);
  creds.identity = std::move(who).value();
  return creds;
}

}  // namespace ferry::crypto
