// Which taps a starting ferryd removes. A tap outlives ferryd on purpose (tap_device.h): it
// lives as long as its VM's QEMU. A ferryd that dies between ending a QEMU and removing its tap
// (a delete, a stop, a failed launch) leaves the tap behind, attached to the bridge, for good.
//
// A tap's name ("fy" and 8 characters of the VM id) does not say which ferryd made it, and two
// ferryds may share a network namespace. So each tap carries an alias naming its ferryd (by state
// directory) and its VM, and a ferryd sweeps only taps whose alias is its own: a tap of another
// ferryd, one made by hand, or one made before taps had aliases is left alone.
#pragma once

#include <string>
#include <vector>

#include "vm/tap_device.h"
#include "vm/vm_record.h"

namespace ferry::vm {

// The alias of the tap of VM `vm_id` made by the ferryd with state directory `state_dir`:
// "ferryd STATE_DIR vm VM_ID" (the state directory shortened to a hash if the alias would not
// fit the kernel's 255 bytes).
std::string TapAlias(const std::string& state_dir, const std::string& vm_id);

struct TapLeftover {
  std::string name;
  std::string why;  // for the log line: what the tap was for and why it goes
};

// The taps among `links` (this network namespace's tun/tap interfaces) that the ferryd with
// state directory `state_dir` removes at start-up, given `vms`, every VM record after
// re-adoption: those whose alias says this ferryd made them, under the name it gives that VM's
// tap, and on which no QEMU runs: their VM is gone from the registry, or is not on tap
// networking, or has no process (stopped, failed).
std::vector<TapLeftover> FindTapLeftovers(const std::vector<TunLink>& links,
                                          const std::vector<VmRecord>& vms,
                                          const std::string& state_dir);

}  // namespace ferry::vm
