#include "hold/held_vm.h"

#include "core/json_fields.h"
#include "core/untrusted_json.h"

namespace ferry::hold {

std::string DiskBlobName(int base_index) {
  return base_index < 0 ? "disk" : "disk-base-" + std::to_string(base_index);
}

bool IsFrozenImageName(const std::string& name) {
  const std::string ext = ".qcow2";
  if (name.size() <= ext.size() || name.size() > 64 + ext.size()) return false;
  if (name.compare(name.size() - ext.size(), ext.size(), ext) != 0) return false;
  const std::string stem = name.substr(0, name.size() - ext.size());
  return stem.find_first_not_of("0123456789abcdefghijklmnopqrstuvwxyz") == std::string::npos;
}

std::string HeldVm::ToText() const {
  nlohmann::json j = {{"spec", spec.ToJson()},
                      {"disk_chain", disk_chain},
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
  if (f.Has("disk_chain")) {
    FERRY_ASSIGN_OR_RETURN(out.disk_chain, f.Strings("disk_chain"));
    if (out.disk_chain.size() > kMaxDiskChain) {
      return Status::Corruption(source + ": a disk chain of " +
                                std::to_string(out.disk_chain.size()) + " images");
    }
    for (const auto& name : out.disk_chain) {
      if (!IsFrozenImageName(name)) {
        return Status::Corruption(source + ": disk_chain names \"" + PrintableExcerpt(name, 80) +
                                  "\", not a frozen image of ferryd's");
      }
    }
    if (out.spec.disk_mib == 0 && !out.disk_chain.empty()) {
      return Status::Corruption(source + ": a disk chain for a VM without a disk");
    }
  }
  return out;
}

}  // namespace ferry::hold
