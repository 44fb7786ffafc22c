// The fleet CA: one ECDSA P-256 key pair that signs every host's certificate. Hosts trust each
// other only through it (mutual TLS 1.3 on the peer port); the facts a host claims (its id and
// labels) are the ones the CA wrote into its certificate at enrollment.
//
// Files (see docs/security.md):
//   CA dir:   ca.key (0600, the fleet's root secret; keep it off the hosts), ca.crt
//   host dir: host.key (0600), host.crt (signed by the CA), ca.crt (copy of the CA cert)
#pragma once

#include <string>

#include "core/status.h"
#include "crypto/host_identity.h"

namespace ferry::crypto {

inline constexpr char kCaKeyFile[] = "ca.key";
inline constexpr char kCaCertFile[] = "ca.crt";
inline constexpr char kHostKeyFile[] = "host.key";
inline constexpr char kHostCertFile[] = "host.crt";

// Creates dir (0700) if missing and writes dir/ca.key (0600) and dir/ca.crt: a self-signed CA
// certificate (CN "ferry fleet CA", CA:TRUE pathlen 0, 10 years). Refuses (AlreadyExists) if
// dir/ca.key exists already.
Status InitFleetCa(const std::string& dir);

// Writes out_dir/host.key (0600), out_dir/host.crt (signed by the CA in ca_dir, CN = host id,
// SAN URIs urn:ferry:host:<id> and urn:ferry:label:<k>=<v>, keyUsage digitalSignature,
// extendedKeyUsage serverAuth+clientAuth, valid 1 year, random 128-bit serial) and
// out_dir/ca.crt (copy of the CA cert). Creates out_dir (0700) if missing. Refuses if
// out_dir/host.key exists already.
Status EnrollHost(const std::string& ca_dir, const HostIdentity& who, const std::string& out_dir);

}  // namespace ferry::crypto
