#include "crypto/owner_policy.h"

#include <algorithm>
#include <initializer_list>
#include <limits>

#include "core/files.h"
#include "core/ids.h"
#include "crypto/openssl_util.h"

namespace ferry::crypto {

using nlohmann::json;

namespace {

// Field checks while parsing; every error is Corruption prefixed with the document's origin.
class FieldReader {
 public:
  explicit FieldReader(std::string origin) : origin_(std::move(origin)) {}

  Status Bad(const std::string& what) const { return Status::Corruption(origin_ + ": " + what); }

  // `obj` (named `where`) must be an object holding exactly `fields`.
  Status ExactFields(const json& obj, const std::string& where,
                     std::initializer_list<const char*> fields) const {
    if (!obj.is_object()) return Bad(where + " is not a JSON object");
    for (auto it = obj.begin(); it != obj.end(); ++it) {
      // Not a structured binding: clang before 16 cannot capture one in a lambda.
      const std::string& key = it.key();
      if (std::find_if(fields.begin(), fields.end(), [&](const char* f) { return key == f; }) ==
          fields.end()) {
        return Bad("unknown field '" + key + "' in " + where +
                   " (written by a newer ferry? this one cannot enforce it)");
      }
    }
    for (const char* f : fields) {
      if (!obj.contains(f)) return Bad(where + " has no field '" + f + "'");
    }
    return Status::Ok();
  }

  Result<std::string> String(const json& obj, const char* field, const std::string& where) const {
    const json& v = obj.at(field);
    if (!v.is_string()) return Bad(where + "." + field + " is not a string");
    return v.get<std::string>();
  }
  Result<bool> Bool(const json& obj, const char* field, const std::string& where) const {
    const json& v = obj.at(field);
    if (!v.is_boolean()) return Bad(where + "." + field + " is not true or false");
    return v.get<bool>();
  }
  Result<int64_t> NonNegative(const json& obj, const char* field, const std::string& where) const {
    const json& v = obj.at(field);
    bool ok = v.is_number_unsigned()
                  ? v.get<uint64_t>() <= uint64_t(std::numeric_limits<int64_t>::max())
                  : v.is_number_integer() && v.get<int64_t>() >= 0;
    if (!ok) return Bad(where + "." + field + " is not a non-negative integer");
    return v.get<int64_t>();
  }
  Status Check(const Status& st) const { return st.ok() ? st : Bad(st.message()); }

 private:
  std::string origin_;
};

Result<std::pair<int, int>> ParseVersion(const std::string& v) {
  size_t dot = v.find('.');
  auto digits = [](const std::string& s) {
    return !s.empty() && s.size() <= 6 &&
           std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
  };
  if (dot == std::string::npos || !digits(v.substr(0, dot)) || !digits(v.substr(dot + 1))) {
    return Status::InvalidArgument("version '" + v + "' is not MAJOR.MINOR");
  }
  return std::make_pair(std::stoi(v.substr(0, dot)), std::stoi(v.substr(dot + 1)));
}

Result<PolicyRules> ReadRules(const json& body, const FieldReader& r) {
  FERRY_RETURN_IF_ERROR(r.ExactFields(
      body, "policy",
      {"vm", "migratable", "allow_hosts", "allow_labels", "hold", "clone", "issued_at"}));
  PolicyRules rules;
  FERRY_ASSIGN_OR_RETURN(rules.vm, r.String(body, "vm", "policy"));
  FERRY_RETURN_IF_ERROR(r.Check(ValidateName("vm", rules.vm)));
  FERRY_ASSIGN_OR_RETURN(rules.migratable, r.Bool(body, "migratable", "policy"));
  const json& hosts = body.at("allow_hosts");
  if (!hosts.is_array()) return r.Bad("policy.allow_hosts is not a list");
  for (const json& h : hosts) {
    if (!h.is_string()) return r.Bad("policy.allow_hosts holds a value that is not a string");
    FERRY_RETURN_IF_ERROR(r.Check(ValidateIdentityName("host id", h.get<std::string>())));
    rules.allow_hosts.push_back(h.get<std::string>());
  }
  const json& labels = body.at("allow_labels");
  if (!labels.is_object()) return r.Bad("policy.allow_labels is not an object");
  for (const auto& [key, value] : labels.items()) {
    if (!value.is_string()) return r.Bad("policy.allow_labels." + key + " is not a string");
    FERRY_RETURN_IF_ERROR(r.Check(ValidateIdentityName("label key", key)));
    FERRY_RETURN_IF_ERROR(
        r.Check(ValidateIdentityName("value of label " + key, value.get<std::string>())));
    rules.allow_labels[key] = value.get<std::string>();
  }
  const json& hold = body.at("hold");
  FERRY_RETURN_IF_ERROR(r.ExactFields(hold, "policy.hold", {"allowed", "max_seconds"}));
  FERRY_ASSIGN_OR_RETURN(rules.hold_allowed, r.Bool(hold, "allowed", "policy.hold"));
  FERRY_ASSIGN_OR_RETURN(rules.hold_max_seconds, r.NonNegative(hold, "max_seconds", "policy.hold"));
  FERRY_ASSIGN_OR_RETURN(rules.clone, r.Bool(body, "clone", "policy"));
  FERRY_ASSIGN_OR_RETURN(rules.issued_at, r.NonNegative(body, "issued_at", "policy"));
  return rules;
}

std::string Subject(const OwnerPolicy& p) {
  return "policy of VM " + p.vm + " (owner " + p.ShortOwner() + "…)";
}

}  // namespace

Result<json> PolicyBodyJson(const PolicyRules& rules) {
  FERRY_RETURN_IF_ERROR(ValidateName("vm", rules.vm));
  for (const std::string& h : rules.allow_hosts) {
    FERRY_RETURN_IF_ERROR(ValidateIdentityName("allowed host id", h));
  }
  for (const auto& [key, value] : rules.allow_labels) {
    FERRY_RETURN_IF_ERROR(ValidateIdentityName("label key", key));
    FERRY_RETURN_IF_ERROR(ValidateIdentityName("value of label " + key, value));
  }
  if (rules.hold_max_seconds < 0 || rules.issued_at < 0) {
    return Status::InvalidArgument("policy for VM " + rules.vm +
                                   ": hold seconds and issue time must not be negative");
  }
  return json{{"vm", rules.vm},
              {"migratable", rules.migratable},
              {"allow_hosts", rules.allow_hosts},
              {"allow_labels", rules.allow_labels},
              {"hold", {{"allowed", rules.hold_allowed}, {"max_seconds", rules.hold_max_seconds}}},
              {"clone", rules.clone},
              {"issued_at", rules.issued_at}};
}

std::string PolicySigningInput(const json& body) {
  return std::string(kPolicySignatureDomain) + body.dump();
}

Result<std::string> SignPolicy(const PolicyRules& rules, const OwnerKey& key) {
  FERRY_ASSIGN_OR_RETURN(json body, PolicyBodyJson(rules));
  FERRY_ASSIGN_OR_RETURN(std::string signature, key.Sign(PolicySigningInput(body)));
  json doc = {
      {"magic", kPolicyMagic},
      {"version", std::to_string(kPolicyVersionMajor) + "." + std::to_string(kPolicyVersionMinor)},
      {"policy", body},
      {"owner_key", Base64Encode(key.public_key())},
      {"signature", Base64Encode(signature)}};
  return doc.dump(2) + "\n";
}

Result<OwnerPolicy> ParsePolicy(const std::string& text, const std::string& origin) {
  FieldReader r("policy " + origin);
  if (text.size() > kMaxPolicyBytes) {
    return r.Bad("document is " + std::to_string(text.size()) + " bytes, more than the " +
                 std::to_string(kMaxPolicyBytes) + " a policy may have");
  }
  json doc;
  try {
    doc = json::parse(text);
  } catch (const json::exception& e) {  // parse_error, or out_of_range for a number like 1e400
    return r.Bad(std::string("not valid JSON: ") + e.what());
  }
  if (!doc.is_object()) return r.Bad("not a ferry policy (the document is not a JSON object)");
  if (!doc.contains("magic") || doc["magic"] != kPolicyMagic) {
    return r.Bad("not a ferry policy (magic is not \"ferry-policy\")");
  }
  if (!doc.contains("version") || !doc["version"].is_string()) {
    return r.Bad("has no version string");
  }
  auto version = ParseVersion(doc["version"].get<std::string>());
  if (!version.ok()) return r.Bad(version.status().message());
  if (version->first > kPolicyVersionMajor) {
    return r.Bad("format version " + doc["version"].get<std::string>() +
                 " is newer than this ferry reads (" + std::to_string(kPolicyVersionMajor) +
                 ".x); upgrade ferry on this host");
  }
  if (version->first < kPolicyVersionMajor) {
    return r.Bad("format version " + doc["version"].get<std::string>() +
                 " is not supported; re-sign the policy with this ferry");
  }
  FERRY_RETURN_IF_ERROR(
      r.ExactFields(doc, "the document", {"magic", "version", "policy", "owner_key", "signature"}));
  FERRY_ASSIGN_OR_RETURN(std::string key_b64, r.String(doc, "owner_key", "document"));
  FERRY_ASSIGN_OR_RETURN(std::string sig_b64, r.String(doc, "signature", "document"));
  auto owner_key = Base64Decode(key_b64);
  if (!owner_key.ok() || owner_key->size() != kOwnerPublicKeyBytes) {
    return r.Bad("owner_key is not the base64 of a 32-byte Ed25519 public key");
  }
  auto signature = Base64Decode(sig_b64);
  if (!signature.ok() || signature->size() != kOwnerSignatureBytes) {
    return r.Bad("signature is missing or not the base64 of a 64-byte Ed25519 signature");
  }
  const json& body = doc["policy"];
  if (!body.is_object()) return r.Bad("policy is not a JSON object");
  // Verify before interpreting: nothing unsigned reaches the field checks' users.
  if (!VerifyOwnerSignature(*owner_key, PolicySigningInput(body), *signature)) {
    return r.Bad(
        "signature does not verify against the embedded owner key; the policy was "
        "altered after signing or signed by another key, and is refused");
  }
  FERRY_ASSIGN_OR_RETURN(PolicyRules rules, ReadRules(body, r));
  OwnerPolicy policy;
  static_cast<PolicyRules&>(policy) = std::move(rules);
  policy.version_major = version->first;
  policy.version_minor = version->second;
  policy.owner_key = std::move(owner_key).value();
  policy.owner_fingerprint = OwnerKeyFingerprint(policy.owner_key);
  policy.text = text;
  policy.origin = origin;
  return policy;
}

Result<OwnerPolicy> LoadPolicyFile(const std::string& path) {
  FERRY_ASSIGN_OR_RETURN(std::string text, ReadFile(path));
  return ParsePolicy(text, path);
}

std::string DescribeAllowedDestinations(const PolicyRules& rules) {
  if (!rules.migratable) return "none (not migratable)";
  if (rules.allow_hosts.empty() && rules.allow_labels.empty()) return "any enrolled host";
  std::string out;
  if (!rules.allow_hosts.empty()) {
    out += "hosts [";
    for (size_t i = 0; i < rules.allow_hosts.size(); ++i) {
      out += (i ? ", " : "") + rules.allow_hosts[i];
    }
    out += "]";
  }
  if (!rules.allow_labels.empty()) {
    out += (out.empty() ? "" : ", ") + std::string("labels ") + FormatLabels(rules.allow_labels);
  }
  return out;
}

Status CheckBoundTo(const OwnerPolicy& policy, const std::string& vm_name,
                    const std::string& cloned_from) {
  if (cloned_from.empty()) {
    if (policy.vm == vm_name) return Status::Ok();
    return Status::PermissionDenied("policy " + policy.origin + " is for VM " + policy.vm +
                                      ", not " + vm_name + "; sign a policy for " + vm_name);
  }
  // A clone carries the policy of the VM it was cloned from, which names that VM.
  if (policy.vm == cloned_from) return Status::Ok();
  return Status::PermissionDenied("policy " + policy.origin + " is for VM " + policy.vm +
                                  ", but vm " + vm_name + " is a clone of " + cloned_from +
                                  "; a clone carries the policy of the VM it was cloned from");
}

Status CheckMigrationAllowed(const OwnerPolicy& policy, const HostIdentity& destination) {
  std::string dest = "host " + destination.host_id;
  if (!destination.labels.empty()) dest += " (" + FormatLabels(destination.labels) + ")";
  if (!policy.migratable) {
    return Status::PermissionDenied(Subject(policy) + ": the VM may not be migrated (to " + dest +
                                      " or anywhere)");
  }
  if (policy.allow_hosts.empty() && policy.allow_labels.empty()) return Status::Ok();
  if (std::find(policy.allow_hosts.begin(), policy.allow_hosts.end(), destination.host_id) !=
      policy.allow_hosts.end()) {
    return Status::Ok();
  }
  if (!policy.allow_labels.empty()) {
    bool all =
        std::all_of(policy.allow_labels.begin(), policy.allow_labels.end(), [&](const auto& kv) {
          auto it = destination.labels.find(kv.first);
          return it != destination.labels.end() && it->second == kv.second;
        });
    if (all) return Status::Ok();
  }
  return Status::PermissionDenied(
      Subject(policy) + ": " + dest +
      " is not an allowed destination; allowed: " + DescribeAllowedDestinations(policy));
}

Status CheckSameOwner(const OwnerPolicy& current, const OwnerPolicy& replacement) {
  if (replacement.owner_key != current.owner_key) {
    return Status::PermissionDenied(Subject(current) + ": the replacement policy " +
                                      replacement.origin + " is signed by another owner (" +
                                      replacement.ShortOwner() +
                                      "…); only the VM's owner can replace its policy");
  }
  if (replacement.vm != current.vm) {
    return Status::PermissionDenied(Subject(current) + ": the replacement policy " +
                                      replacement.origin + " is for VM " + replacement.vm);
  }
  if (replacement.issued_at < current.issued_at) {
    return Status::PermissionDenied(
        Subject(current) + ": the replacement policy " + replacement.origin + " was issued at " +
        std::to_string(replacement.issued_at) + ", before the policy in force (" +
        std::to_string(current.issued_at) + "); sign a new one");
  }
  return Status::Ok();
}

Status CheckCloneAllowed(const OwnerPolicy& policy) {
  if (policy.clone) return Status::Ok();
  return Status::PermissionDenied(Subject(policy) + ": the VM may not be cloned");
}

Status CheckHoldAllowed(const OwnerPolicy& policy, int64_t seconds) {
  if (!policy.hold_allowed) {
    return Status::PermissionDenied(Subject(policy) + ": the VM may not be held");
  }
  if (policy.hold_max_seconds > 0 && seconds > policy.hold_max_seconds) {
    return Status::PermissionDenied(Subject(policy) + ": a hold of " + std::to_string(seconds) +
                                      " s is longer than the " +
                                      std::to_string(policy.hold_max_seconds) + " s allowed");
  }
  return Status::Ok();
}

}  // namespace ferry::crypto
