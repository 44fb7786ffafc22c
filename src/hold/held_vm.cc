#include "hold/held_vm.h"

#include "core/json_fields.h"
#include "core/untrusted_json.h"

namespace ferry::hold {

std::string HeldVm::ToText() const {
  nlohmann::json j = {{"spec", spec.ToJson()},
                      {"mac", mac.ToString()},
                      {"vmgenid", vmgenid ? vmgenid->ToString() : ""},
                      {"owner", owner},
                      {"vm_id", vm_id}};
  return j.dump();
}

Result<HeldVm> HeldVm::Parse(const std::string& text, const std::string& what) {
  const std::string source = what + ": the VM it keeps";
  if (text.size() > kMaxHeldVmBytes) {
    return Status::Corruption(source + " is " + std::to_string(text.size()) +
                              " bytes, more than the " + std::to_string(kMaxHeldVmBytes) +
                              " allowed");
  }
  FERRY_ASSIGN_OR_RETURN(nlohmann::json j, ParseUntrustedJson(text, source));
  FERRY_ASSIGN_OR_RETURN(JsonFields f, JsonFields::Of(j, source));
  FERRY_RETURN_IF_ERROR(f.Object("spec").status());
  auto spec = vm::VmSpec::FromJson(j["spec"]);
  if (!spec.ok()) return spec.status().WithContext(source);
  FERRY_ASSIGN_OR_RETURN(std::string mac_text, f.String("mac"));
  FERRY_ASSIGN_OR_RETURN(MacAddress mac, MacAddress::Parse(mac_text, source + ": mac"));
  HeldVm out{std::move(spec).value(), mac};
  FERRY_ASSIGN_OR_RETURN(std::string guid, f.String("vmgenid"));
  if (!guid.empty()) {
    FERRY_ASSIGN_OR_RETURN(Guid g, Guid::Parse(guid, source + ": vmgenid"));
    out.vmgenid = g;
  }
  FERRY_ASSIGN_OR_RETURN(out.owner, f.String("owner"));
  const bool fingerprint =
      out.owner.size() == 64 && out.owner.find_first_not_of("0123456789abcdef") == std::string::npos;
  if (!out.owner.empty() && !fingerprint) {
    return Status::Corruption(source + ": owner is not a 64-hex fingerprint");
  }
  FERRY_ASSIGN_OR_RETURN(out.vm_id, f.String("vm_id"));
  return out;
}

}  // namespace ferry::hold
