// QEMU's device state, moved through its migration machinery with x-ignore-shared: the RAM block
// is a file ferryd owns, so the stream carries only CPU and device state (about 1 MB).
#pragma once

#include <chrono>
#include <string>

#include "core/status.h"
#include "qemu/qemu_version.h"
#include "vm/vm_runtime.h"

namespace ferry::snapshot {

// How long ferryd lets QEMU save or load a device state (about 1 MB) before it gives up.
inline constexpr std::chrono::milliseconds kDeviceStateTimeout{60000};

// Writes the device state of a paused VM to `path`. The VM stays paused (QEMU: postmigrate).
Status SaveDeviceState(vm::VmRuntime& vm, const std::string& path,
                       std::chrono::milliseconds timeout);
// How a device state stream leaves out the guest's RAM: QEMU must load it with the x-ignore-shared
// it was saved with (the block list's layout differs).
enum class GuestRamInStream {
  kSkipped,   // saved with x-ignore-shared on (SaveDeviceState)
  kStripped,  // saved with it off, the RAM's pages taken out by ferry (ram_precopy.h)
};

// Loads `path` into a QEMU started with -S -incoming defer. The VM stays paused. Both pass QEMU
// a descriptor of the file (QMP getfd, "fd:" URI).
Status LoadDeviceState(vm::VmRuntime& vm, const std::string& path,
                       std::chrono::milliseconds timeout,
                       GuestRamInStream guest_ram = GuestRamInStream::kSkipped);
// OK when the device state file at `path` loads into QEMU `host`: its stream's machine type is
// that QEMU's own (qemu/machine_type.h). Read before a QEMU is asked to load it, so that a
// snapshot or hold from another QEMU release is refused with both named.
Status CheckDeviceStateLoads(const std::string& path, const qemu::QemuVersion& host);
// Polls query-migrate until the migration completes (Ok), fails or is cancelled (Unavailable
// with QEMU's reason), or `timeout` passes (DeadlineExceeded). `what` names it in errors.
Status AwaitMigration(vm::VmRuntime& vm, const std::string& what,
                      std::chrono::milliseconds timeout);

}  // namespace ferry::snapshot
