// The directory of a QEMU that waits for a clone (a template's warm-pool QEMU, a spare QEMU):
// `pid` in it names the QEMU, so that a restarted ferryd finds and ends the ones still waiting.
#pragma once

#include <string>

#include "vm/vm_runtime.h"
#include "vm/vm_service.h"

namespace ferry::snapshot {

// Writes DIR/pid ("PID START_TIME") for `qemu`.
void RecordWaitingQemu(const std::string& dir, const vm::VmRuntime& qemu);

// Kills the QEMU of every STATE/vms/PREFIX* directory that no VM took (a QEMU that became a VM
// keeps its directory: that one is the VM's), and removes those directories.
void KillStaleWaitingQemus(vm::VmService& vms, const std::string& prefix);

}  // namespace ferry::snapshot
