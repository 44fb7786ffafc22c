// The addresses of clones on a tap network. A clone of a tap VM cannot keep its parent's address
// (two machines would answer for it), so each one is given its own: `--ip` names the first, the
// next ones count up. An address a clone may take lies in the subnet of one of its bridge's own
// addresses (the host's leg on the segment), with that subnet's prefix, and is none of the
// bridge's addresses. Pure functions of what the caller gathered (BridgeAddresses), so each rule
// is tested on its own (tap_address_test.cc).
#pragma once

#include <string>
#include <vector>

#include "core/status.h"
#include "vm/vm_spec.h"

namespace ferry::vm {

// "10.77.0.21" (no prefix).
std::string FormatIpv4Address(uint32_t address);

// The address of clone `index` (0 for the first) counting up from `first` ("10.77.0.21/24"), with
// first's prefix: "10.77.0.23/24" for index 2. InvalidArgument when it would leave first's
// subnet or be its broadcast address, naming how many clones fit.
Result<std::string> NthCloneAddress(const std::string& first, int index);

// The IPv4 addresses of the interface `bridge` in this network namespace, with their prefixes
// (getifaddrs); empty when it has none or does not exist.
std::vector<Ipv4Prefix> BridgeAddresses(const std::string& bridge);

// Ok when `ip` ("A.B.C.D/P") lies in the subnet of one of `bridge_addresses` with the same
// prefix and is none of them; else InvalidArgument naming `vm`, the address, the bridge and its
// subnets. A bridge without an address has no subnet ferry can check against: refused, saying
// so.
Status CheckAddressOnBridge(const std::string& vm, const std::string& ip, const std::string& bridge,
                            const std::vector<Ipv4Prefix>& bridge_addresses);

}  // namespace ferry::vm
