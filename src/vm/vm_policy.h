// The owner's policy as it applies to one VM: parsed and bound to the VM (owner_policy.h,
// binding rule), and the rules in force as `vm show` reports them.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "core/status.h"
#include "crypto/owner_policy.h"
#include "vm/vm_spec.h"

namespace ferry::vm {

// The VM's verified policy, or nullopt for a VM without one. A document that does not verify, or
// that is bound to another VM than this one (or, for a clone, than the VM it was cloned from),
// is an error naming the VM.
Result<std::optional<crypto::OwnerPolicy>> PolicyOf(const VmSpec& spec);

// PermissionDenied naming the VM (`what`) and its owner when its policy forbids clones; Ok when
// it has no policy or its policy allows them.
Status CheckSpecCloneAllowed(const VmSpec& spec, const std::string& what);

// {"owner": short fingerprint or null, "owner_fingerprint", "bound_to", "inherited_from",
//  "issued_at", "migratable", "destinations", "allow_hosts", "allow_labels",
//  "hold": {"allowed", "max_seconds"}, "clone"}; {"owner": null, "rules": "none"} without a
// policy. `origin` is the VM record's origin (a clone's snapshot).
nlohmann::json DescribePolicy(const VmSpec& spec, const nlohmann::json& origin);

}  // namespace ferry::vm
