// X.509 credentials for QEMU's own TLS migration (`-object tls-creds-x509,dir=...`), made once
// per benchmark run with the `openssl` command: a throwaway CA, a server certificate for the
// destination's address and a client certificate for the source, all EC P-256 like ferry's
// fleet CA, so the two TLS sides differ by the software, not by the key type. The directories
// hold the file names QEMU looks for:
//
//   server/: ca-cert.pem server-cert.pem server-key.pem   (endpoint=server,verify-peer=on)
//   client/: ca-cert.pem client-cert.pem client-key.pem   (endpoint=client)
#pragma once

#include <string>

#include "core/status.h"

namespace ferry::bench {

struct QemuTlsCreds {
  std::string server_dir;
  std::string client_dir;
};

// Writes the CA and both directories under `dir` (which must exist). The server certificate
// names `server_ip` (subjectAltName IP), which QEMU checks against the migration URI's host.
Result<QemuTlsCreds> MakeQemuTlsCreds(const std::string& dir, const std::string& server_ip);

}  // namespace ferry::bench
