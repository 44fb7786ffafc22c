#include "vm/address_probe.h"

#include <map>

#include "vm/arp_probe.h"
#include "vm/vm_admission.h"

namespace ferry::vm {

namespace {

Status ProbeEachBridge(const std::vector<VmSpec>& clones) {
  std::map<std::string, std::vector<const VmSpec*>> by_bridge;
  for (const VmSpec& spec : clones) by_bridge[spec.network.bridge].push_back(&spec);
  for (const auto& [bridge, specs] : by_bridge) {
    std::vector<uint32_t> targets;
    for (const VmSpec* spec : specs) {
      FERRY_ASSIGN_OR_RETURN(Ipv4Prefix ip, ParseIpv4Prefix(spec->network.ip));
      targets.push_back(ip.address);
    }
    FERRY_ASSIGN_OR_RETURN(std::vector<ProbeAnswer> answers, ProbeAddresses(bridge, targets));
    for (size_t i = 0; i < answers.size(); ++i) {
      if (answers[i].mac) return AddressInUse(*specs[i], *answers[i].mac);
    }
  }
  return Status::Ok();
}

}  // namespace

std::shared_ptr<const AddressProbe> AddressProbe::Start(std::vector<VmSpec> clones) {
  std::erase_if(clones, [](const VmSpec& s) { return s.network.mode != NetworkMode::kTap; });
  if (clones.empty()) {
    std::promise<Status> none;
    none.set_value(Status::Ok());
    return std::shared_ptr<const AddressProbe>(new AddressProbe(none.get_future().share()));
  }
  return std::shared_ptr<const AddressProbe>(
      new AddressProbe(std::async(std::launch::async, [clones = std::move(clones)] {
                         return ProbeEachBridge(clones);
                       }).share()));
}

Status AddressProbe::Wait() const { return result_.get(); }

Status AddressProbe::WaitFor(const std::string& name) const {
  Status st = Wait();
  const std::string own = "vm " + name + ": ";
  if (st.ok() || st.message().rfind(own, 0) != 0) return st;
  return Status::FromCode(st.code(), st.message().substr(own.size()));
}

}  // namespace ferry::vm
