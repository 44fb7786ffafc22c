#include "hold/host_store.h"

#include "crypto/host_credentials.h"

namespace ferry::hold {

Result<HostStore> OpenHostStore(const std::string& store_dir, const std::string& tls_dir) {
  FERRY_ASSIGN_OR_RETURN(crypto::HostCredentials creds, crypto::LoadHostCredentials(tls_dir));
  HostStore out;
  FERRY_ASSIGN_OR_RETURN(auto signer, crypto::KeyHostSigner::Load(creds.key_file));
  out.signer = std::move(signer);
  FERRY_ASSIGN_OR_RETURN(out.certificate, crypto::ReadCertificatePem(creds.cert_file));
  store::StoreOptions options;
  options.dir = store_dir;
  auto opened = store::Store::Open(options, *out.signer, out.certificate.get());
  if (!opened.ok()) return opened.status().WithContext("store " + store_dir);
  out.store = std::move(opened).value();
  return out;
}

}  // namespace ferry::hold
