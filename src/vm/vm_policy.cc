#include "vm/vm_policy.h"

#include "vm/vm_origin.h"

namespace ferry::vm {

using nlohmann::json;

Result<std::optional<crypto::OwnerPolicy>> PolicyOf(const VmSpec& spec) {
  if (spec.policy.empty()) return std::optional<crypto::OwnerPolicy>();
  auto policy = crypto::ParsePolicy(spec.policy, "the policy of vm " + spec.name);
  if (!policy.ok()) return policy.status().WithContext("vm " + spec.name);
  Status bound = crypto::CheckBoundTo(*policy, spec.name, spec.cloned_from);
  if (!bound.ok()) return bound.WithContext("vm " + spec.name);
  return std::optional<crypto::OwnerPolicy>(std::move(policy).value());
}

Status CheckSpecCloneAllowed(const VmSpec& spec, const std::string& what) {
  FERRY_ASSIGN_OR_RETURN(auto policy, PolicyOf(spec));
  if (!policy) return Status::Ok();
  Status allowed = crypto::CheckCloneAllowed(*policy);
  if (allowed.ok()) return allowed;
  return Status::PermissionDenied(what + ": the owner (" + policy->ShortOwner() + "…) of vm " +
                                  policy->vm + " does not allow clones of it (policy clone=false)");
}

json DescribePolicy(const VmSpec& spec, const json& origin) {
  auto parsed = PolicyOf(spec);
  if (!parsed.ok()) return {{"owner", nullptr}, {"error", parsed.status().message()}};
  if (!*parsed) return {{"owner", nullptr}, {"rules", "none"}};
  const crypto::OwnerPolicy& p = **parsed;
  json j = {{"owner", p.ShortOwner()},
            {"owner_fingerprint", p.owner_fingerprint},
            {"bound_to", p.vm},
            {"issued_at", p.issued_at},
            {"migratable", p.migratable},
            {"destinations", crypto::DescribeAllowedDestinations(p)},
            {"allow_hosts", p.allow_hosts},
            {"allow_labels", p.allow_labels},
            {"hold", {{"allowed", p.hold_allowed}, {"max_seconds", p.hold_max_seconds}}},
            {"clone", p.clone}};
  if (!spec.cloned_from.empty()) {
    j["inherited_from"] = {{"vm", spec.cloned_from}};
    const VmOrigin parsed = OriginFromJson(origin);
    if (const auto* clone = std::get_if<CloneOrigin>(&parsed)) {
      j["inherited_from"]["snapshot"] = clone->snapshot;
    }
  }
  return j;
}

}  // namespace ferry::vm
