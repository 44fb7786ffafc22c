// Admission: whether a VM may be created or started on this host now. Its forwards' host ports
// and its tap address must not be claimed by another VM, the host must have room for its RAM
// (vm_spec.h, CheckFitsHost), and a clone on tap networking needs its own address in its
// bridge's subnet. Pure functions
// of what the caller gathered, so each rule is tested on its own (vm_admission_test.cc).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "core/status.h"
#include "vm/vm_paths.h"
#include "vm/vm_spec.h"

namespace ferry::vm {

// What one other VM holds on the host's network: its forwards' host ports and its tap address.
// Only VMs with a QEMU (or being created) claim: a stopped VM's forwards are not bound, but a VM
// with a process owns its ports even while QEMU has not bound them yet.
struct NetworkClaim {
  std::string vm;
  NetworkSpec network;
};

// ResourceExhausted naming the other VM when one of `spec`'s host ports, or its address on its
// bridge, is claimed by a VM other than spec.name.
Status CheckPortsUnclaimed(const VmSpec& spec, const std::vector<NetworkClaim>& claims);

// A loopback port the kernel calls free now and no claim holds (a stopped VM's port is not bound
// but still reserved); 0 when 32 tries found none. `ephemeral_port` asks the kernel.
uint16_t PickFreePort(const VmSpec& spec, const std::vector<NetworkClaim>& claims,
                      const std::function<uint16_t()>& ephemeral_port);

// A clone on tap networking: its address (spec.network.ip, its own, never its parent's) must lie
// in its bridge's subnet (tap_address.h, CheckAddressOnBridge); Ok for a clone on user
// networking.
Status AdmitTapClone(const VmSpec& spec, const std::vector<Ipv4Prefix>& bridge_addresses);

// The refusal of a clone whose address answered a duplicate address probe (arp_probe.h) from
// `mac`: one line naming the clone, the address, the bridge and who answered.
Status AddressInUse(const VmSpec& spec, const std::string& mac);

// Admits a new VM living in `paths`: its sockets' path fits a UNIX socket address, its network
// is unclaimed, and it fits `capacity` (a VM that maps a snapshot's RAM image needs no room on
// the RAM directory). Host ports given as 0 are filled with free ones.
Status AdmitNewVm(VmSpec& spec, const VmPaths& paths, bool maps_snapshot_ram,
                  const std::vector<NetworkClaim>& claims, HostCapacity capacity,
                  const std::function<uint16_t()>& ephemeral_port);

}  // namespace ferry::vm
