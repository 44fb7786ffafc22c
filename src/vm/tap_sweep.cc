#include "vm/tap_sweep.h"

#include <cstdint>
#include <cstdio>
#include <map>

namespace ferry::vm {

namespace {

constexpr size_t kMaxAliasBytes = 255;  // IFALIASZ - 1
constexpr size_t kMaxVmIdBytes = 64;    // ids are 16 hex characters; room to spare

// FNV-1a, 64 bits: a stable stand-in for a state directory too long for an alias.
std::string Hash16(const std::string& text) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : text) h = (h ^ c) * 1099511628211ull;
  char out[17];
  std::snprintf(out, sizeof out, "%016llx", static_cast<unsigned long long>(h));
  return out;
}

// "ferryd STATE_DIR vm ": what every alias of this ferryd's taps begins with.
std::string AliasPrefix(const std::string& state_dir) {
  std::string prefix = "ferryd " + state_dir + " vm ";
  if (prefix.size() + kMaxVmIdBytes <= kMaxAliasBytes) return prefix;
  return "ferryd #" + Hash16(state_dir) + " vm ";
}

}  // namespace

std::string TapAlias(const std::string& state_dir, const std::string& vm_id) {
  return AliasPrefix(state_dir) + vm_id.substr(0, kMaxVmIdBytes);
}

std::vector<TapLeftover> FindTapLeftovers(const std::vector<TunLink>& links,
                                          const std::vector<VmRecord>& vms,
                                          const std::string& state_dir) {
  std::map<std::string, const VmRecord*> by_id;
  for (const auto& r : vms) by_id[r.id] = &r;
  const std::string ours = AliasPrefix(state_dir);
  std::vector<TapLeftover> out;
  for (const auto& link : links) {
    // Ours: the alias this ferryd writes, for a VM id whose tap has exactly this name.
    if (link.alias.size() <= ours.size() || link.alias.compare(0, ours.size(), ours) != 0) {
      continue;
    }
    const std::string vm_id = link.alias.substr(ours.size());
    if (TapDevice::NameFor(vm_id) != link.name) continue;
    auto it = by_id.find(vm_id);
    if (it == by_id.end()) {
      out.push_back({link.name, "its VM (id " + vm_id +
                                    ") is in no record: a ferryd that stopped after deleting "
                                    "the VM and before removing its tap"});
      continue;
    }
    const VmRecord& r = *it->second;
    if (r.spec.network.mode != NetworkMode::kTap) {
      out.push_back({link.name, "vm " + r.spec.name + " is not on tap networking"});
    } else if (!HasProcess(r.state)) {
      out.push_back({link.name,
                     "vm " + r.spec.name + " is " + VmStateName(r.state) + ": no QEMU of it runs"});
    }
  }
  return out;
}

}  // namespace ferry::vm
