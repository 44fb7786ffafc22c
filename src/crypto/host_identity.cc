#include "crypto/host_identity.h"

#include <openssl/x509v3.h>

#include <memory>

#include "crypto/openssl_util.h"

namespace ferry::crypto {

namespace {

constexpr size_t kMaxNameLength = 63;

struct GeneralNamesFree {
  void operator()(GENERAL_NAMES* p) const { GENERAL_NAMES_free(p); }
};

bool StartsWith(const std::string& s, const char* prefix) { return s.rfind(prefix, 0) == 0; }

}  // namespace

Status ValidateIdentityName(const std::string& what, const std::string& value) {
  if (value.empty() || value.size() > kMaxNameLength) {
    return Status::InvalidArgument(what + " '" + value + "' must be 1.." +
                                   std::to_string(kMaxNameLength) + " characters long");
  }
  for (char c : value) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_' || c == '.';
    if (!ok) {
      return Status::InvalidArgument(what + " '" + value +
                                     "' may only contain letters, digits, '-', '_' and '.'");
    }
  }
  return Status::Ok();
}

Status ValidateIdentity(const HostIdentity& who) {
  FERRY_RETURN_IF_ERROR(ValidateIdentityName("host id", who.host_id));
  for (const auto& [key, value] : who.labels) {
    FERRY_RETURN_IF_ERROR(ValidateIdentityName("label key", key));
    FERRY_RETURN_IF_ERROR(ValidateIdentityName("value of label " + key, value));
  }
  return Status::Ok();
}

Result<std::pair<std::string, std::string>> ParseLabel(const std::string& text) {
  size_t eq = text.find('=');
  if (eq == std::string::npos) {
    return Status::InvalidArgument("label '" + text + "' must be KEY=VALUE, e.g. zone=b");
  }
  std::string key = text.substr(0, eq), value = text.substr(eq + 1);
  FERRY_RETURN_IF_ERROR(ValidateIdentityName("label key", key));
  FERRY_RETURN_IF_ERROR(ValidateIdentityName("value of label " + key, value));
  return std::make_pair(key, value);
}

std::string FormatLabels(const std::map<std::string, std::string>& labels) {
  std::string out;
  for (const auto& [key, value] : labels) {
    if (!out.empty()) out += ",";
    out += key + "=" + value;
  }
  return out;
}

Result<HostIdentity> HostIdentityFromCertificate(X509* cert) {
  if (cert == nullptr) return Status::InvalidArgument("no certificate was presented");
  std::unique_ptr<GENERAL_NAMES, GeneralNamesFree> names(
      static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr)));
  DrainOpenSslErrors();
  if (!names) {
    return Status::InvalidArgument(
        "certificate has no subjectAltName; it is not a ferry host certificate (enroll the host "
        "with 'ferry host enroll')");
  }
  HostIdentity who;
  bool have_host = false;
  for (int i = 0; i < sk_GENERAL_NAME_num(names.get()); ++i) {
    const GENERAL_NAME* name = sk_GENERAL_NAME_value(names.get(), i);
    if (name->type != GEN_URI) continue;
    const ASN1_IA5STRING* ia5 = name->d.uniformResourceIdentifier;
    std::string uri(reinterpret_cast<const char*>(ASN1_STRING_get0_data(ia5)),
                    static_cast<size_t>(ASN1_STRING_length(ia5)));
    if (StartsWith(uri, kHostUriPrefix)) {
      if (have_host) {
        return Status::InvalidArgument("certificate names two hosts (" + who.host_id + " and " +
                                       uri.substr(sizeof(kHostUriPrefix) - 1) +
                                       "); a host certificate must carry exactly one");
      }
      who.host_id = uri.substr(sizeof(kHostUriPrefix) - 1);
      FERRY_RETURN_IF_ERROR(
          ValidateIdentityName("host id", who.host_id).WithContext("certificate"));
      have_host = true;
    } else if (StartsWith(uri, kLabelUriPrefix)) {
      FERRY_ASSIGN_OR_RETURN(auto label, ParseLabel(uri.substr(sizeof(kLabelUriPrefix) - 1)));
      if (!who.labels.emplace(label.first, label.second).second) {
        return Status::InvalidArgument("certificate: label " + label.first +
                                       " appears twice; re-enroll the host");
      }
    }
  }
  if (!have_host) {
    return Status::InvalidArgument(std::string("certificate has no ") + kHostUriPrefix +
                                   "<id> URI; it is not a ferry host certificate (enroll the "
                                   "host with 'ferry host enroll')");
  }
  return who;
}

Result<HostIdentity> HostIdentityFromPemFile(const std::string& path) {
  FERRY_ASSIGN_OR_RETURN(X509Ptr cert, ReadCertificatePem(path));
  auto who = HostIdentityFromCertificate(cert.get());
  if (!who.ok()) return who.status().WithContext(path);
  return who;
}

}  // namespace ferry::crypto
