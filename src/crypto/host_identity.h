// Who a host is, as its fleet certificate says: a host id and labels (zone=b, rack=r4, ...).
// The facts travel as SAN URIs in the X.509 certificate the fleet CA signed:
//   urn:ferry:host:<id>            exactly one
//   urn:ferry:label:<key>=<value>  any number, keys unique
// Ids, label keys and values are 1..63 characters of [A-Za-z0-9_.-].
#pragma once

#include <openssl/x509.h>

#include <map>
#include <string>

#include "core/status.h"

namespace ferry::crypto {

inline constexpr char kHostUriPrefix[] = "urn:ferry:host:";
inline constexpr char kLabelUriPrefix[] = "urn:ferry:label:";

struct HostIdentity {
  std::string host_id;
  std::map<std::string, std::string> labels;

  bool operator==(const HostIdentity&) const = default;
};

// Host id from the certificate's SAN URI "urn:ferry:host:<id>", labels from SAN URIs
// "urn:ferry:label:<key>=<value>". Error if there is no host URI, two of them, a repeated
// label key, or a malformed id/label. Other SAN entries are ignored.
// Does not take ownership; a null cert (peer sent none) is an error, not a crash.
Result<HostIdentity> HostIdentityFromCertificate(X509* cert);
// Same, for a PEM certificate file; errors name the file.
Result<HostIdentity> HostIdentityFromPemFile(const std::string& path);

// `what` names the thing in the error ("host id", "label key", ...).
Status ValidateIdentityName(const std::string& what, const std::string& value);
Status ValidateIdentity(const HostIdentity& who);
// "zone=b" -> {"zone", "b"}, validated.
Result<std::pair<std::string, std::string>> ParseLabel(const std::string& text);
// "zone=b,rack=r4" (sorted by key); "" for no labels.
std::string FormatLabels(const std::map<std::string, std::string>& labels);

}  // namespace ferry::crypto
