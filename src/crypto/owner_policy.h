// A VM owner's policy: which hosts the VM may migrate to, whether it may be held (and for how
// long) or cloned. The owner signs it with an Ed25519 key; every host that acts on the VM
// verifies the signature and enforces the rules itself (the source before it sends, the
// destination before it accepts).
//
// Document (JSON, one file, forwarded between hosts byte-for-byte):
//   {"magic": "ferry-policy", "version": "1.0",
//    "policy": {"vm": "web-1", "migratable": true, "allow_hosts": ["h2"],
//               "allow_labels": {"zone": "b"}, "hold": {"allowed": false, "max_seconds": 0},
//               "clone": true, "issued_at": 1700000000},
//    "owner_key": "<base64 of the raw 32-byte Ed25519 public key>",
//    "signature": "<base64 Ed25519 signature of kPolicySignatureDomain + policy.dump()>"}
// policy.dump() is canonical: nlohmann::json sorts object keys and writes no whitespace, so the
// signed bytes do not depend on how the file is laid out. Every field is required; unknown
// fields anywhere are refused (a rule this ferry cannot enforce must not be silently ignored).
//
// Migration rule: migratable=false allows no destination. Otherwise, with allow_hosts and
// allow_labels both empty, any host enrolled in the fleet is allowed; else a destination is
// allowed if its host id is in allow_hosts, or if allow_labels is non-empty and the destination
// carries every one of those labels with the same value.
// Hold rule: hold.allowed=false refuses any hold; max_seconds 0 means no limit.
// Clone rule: clone=false refuses every clone of the VM, and every template or warm pool made
// from its snapshots (and ferryd takes no snapshot of it: a snapshot only serves clones).
// Binding rule: a policy names one VM, P ("vm"). It covers P and every clone made from a
// snapshot of P, under whatever name: a clone carries its parent's policy unchanged and keeps
// the name the policy is bound to (VmSpec::cloned_from, P's own cloned_from for a clone of a
// clone), so it is checked against P, not against the clone's name.
#pragma once

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/status.h"
#include "crypto/host_identity.h"
#include "crypto/owner_key.h"

namespace ferry::crypto {

inline constexpr char kPolicyMagic[] = "ferry-policy";
inline constexpr int kPolicyVersionMajor = 1;
inline constexpr int kPolicyVersionMinor = 0;
inline constexpr char kPolicySignatureDomain[] = "ferry-policy-v1\n";
inline constexpr size_t kMaxPolicyBytes = 64 * 1024;

// The signed rules (the "policy" object).
struct PolicyRules {
  std::string vm;
  bool migratable = true;
  std::vector<std::string> allow_hosts;
  std::map<std::string, std::string> allow_labels;
  bool hold_allowed = true;
  int64_t hold_max_seconds = 0;  // 0: no limit
  bool clone = true;
  int64_t issued_at = 0;  // unix seconds
};

// A verified policy document.
struct OwnerPolicy : PolicyRules {
  int version_major = 0, version_minor = 0;
  std::string owner_key;          // raw 32-byte Ed25519 public key
  std::string owner_fingerprint;  // hex SHA-256 of owner_key (64 chars)
  std::string text;               // the document exactly as received
  std::string origin;             // where it came from (a path, "peer h1"), for errors

  // The first 16 hex characters of owner_fingerprint, as users see it.
  std::string ShortOwner() const { return owner_fingerprint.substr(0, kShortFingerprintChars); }
};

// The "policy" object for `rules` (validated: VM name, host ids, labels, hold seconds >= 0).
Result<nlohmann::json> PolicyBodyJson(const PolicyRules& rules);
// The exact bytes an owner signs for a policy body: kPolicySignatureDomain + body.dump().
std::string PolicySigningInput(const nlohmann::json& body);
// A complete signed document (pretty-printed JSON text, newline-terminated).
Result<std::string> SignPolicy(const PolicyRules& rules, const OwnerKey& key);

// Parses and verifies a document: magic, version (a newer major is refused), field types,
// no unknown fields, and the signature against the embedded owner_key. `origin` prefixes every
// error. Returns Corruption for a malformed or forged document.
Result<OwnerPolicy> ParsePolicy(const std::string& text, const std::string& origin);
// ReadFile + ParsePolicy(text, path).
Result<OwnerPolicy> LoadPolicyFile(const std::string& path);

// The checks each end applies. Refusals are FailedPrecondition and name the VM, the owner
// (short fingerprint), what was asked and what the policy allows.
// `cloned_from` is "" for a VM that is not a clone, else the name its policy is bound to.
Status CheckBoundTo(const OwnerPolicy& policy, const std::string& vm_name,
                    const std::string& cloned_from);
Status CheckMigrationAllowed(const OwnerPolicy& policy, const HostIdentity& destination);
// A replacement must be signed by the same owner key, be for the same VM, and be issued no
// earlier than the policy in force (an owner's older, wider policy cannot be replayed).
Status CheckSameOwner(const OwnerPolicy& current, const OwnerPolicy& replacement);
Status CheckCloneAllowed(const OwnerPolicy& policy);
Status CheckHoldAllowed(const OwnerPolicy& policy, int64_t seconds);

// "hosts [h2], labels zone=b" / "any enrolled host" / "none (not migratable)".
std::string DescribeAllowedDestinations(const PolicyRules& rules);

}  // namespace ferry::crypto
