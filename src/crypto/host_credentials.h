// A host's TLS credentials as loaded at start-up: checked once here so the TLS code can trust
// them (right mode, matching key, signed by the fleet CA, in date).
#pragma once

#include <openssl/x509.h>

#include <string>

#include "core/status.h"
#include "crypto/host_identity.h"

namespace ferry::crypto {

struct HostCredentials {
  std::string cert_file, key_file, ca_file;
  HostIdentity identity;
};

// Loads tls_dir/{host.crt,host.key,ca.crt}. Refuses a key file readable or writable by group
// or others ("...: key file mode 0644 lets other users read it; chmod 600 it"), a cert not
// signed by ca.crt, an expired (or not yet valid) cert, a key that does not match the cert, a
// cert without a ferry host identity. Errors name the file and say what to do.
Result<HostCredentials> LoadHostCredentials(const std::string& tls_dir);

// Checks `cert` chains to `ca_cert` and is in date now. Errors say why, without file names
// (callers add them). REQUIRES: both non-null; does not take ownership.
Status VerifyHostCertificate(X509* cert, X509* ca_cert);

}  // namespace ferry::crypto
