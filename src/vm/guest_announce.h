// A guest on a tap network tells its segment where it is: ferry-guest sends gratuitous ARP for
// its addresses (guest/ "announce"), so that switches and neighbours learn the VM's MAC on its
// port now, not when the guest next talks. A clone does it once its identity is new; a restored
// hold once it runs again on a tap that is new to the bridge.
#pragma once

#include <string>
#include <vector>

#include "core/status.h"
#include "vm/vm_runtime.h"
#include "vm/vm_spec.h"

namespace ferry::vm {

// Asks the guest to announce itself and checks that `spec`'s tap address is among what it
// announced. Returns the announced addresses; Unavailable names the VM and what went wrong.
// REQUIRES: spec.network.mode == NetworkMode::kTap and the guest agent answers.
Result<std::vector<std::string>> AnnounceAddress(VmRuntime& rt, const VmSpec& spec);

}  // namespace ferry::vm
