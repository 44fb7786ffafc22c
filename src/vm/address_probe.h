// The duplicate address probe of one clone request (arp_probe.h), run beside the clones' start
// instead of before it. The probe listens kListen for answers; a clone's QEMU start, device
// state load and identity reset take longer than that, so a clone that waits for the probe only
// right before its tap joins the bridge waits for nothing, and still:
//
//   - no frame of a clone reaches the segment before every address of the request is known
//     free: its tap is off the bridge until JoinSegment (vm_launcher.h), which comes after the
//     wait (RestoreClone), so the address its identity reset set was seen by no one;
//   - an address in use fails the request: the clone being started is rolled back (its QEMU
//     killed, its tap, files and name removed: LaunchRollback), so nothing of it is left, it was
//     never reported running, and the clones after it are not begun.
//
// Measured (bench tap_clone): waiting before the guest is resumed instead hid only ~20 of the
// 120 ms, since QEMU start and device state load are that quick; the identity reset hides it all.
//
// Thread-safe: one probe, shared by the request and each clone it starts.
#pragma once

#include <future>
#include <memory>
#include <vector>

#include "core/status.h"
#include "vm/vm_spec.h"

namespace ferry::vm {

class AddressProbe {
 public:
  // Starts probing the addresses of `clones` on tap networking, on a thread of its own (one
  // probe per bridge, every address of a bridge at once). Clones on user networking have none.
  static std::shared_ptr<const AddressProbe> Start(std::vector<VmSpec> clones);

  // Blocks until the probe is done: Ok when every address is free; AddressInUse
  // (vm_admission.h) for the first one in use; Unavailable when the probe could not be made.
  Status Wait() const;

  // What Wait says of the clone `name`, without naming the VM twice: the in-use message of this
  // clone's own address begins "vm NAME: "; for a failure that concerns another clone of the
  // request, or none, the whole message.
  Status WaitFor(const std::string& name) const;

 private:
  explicit AddressProbe(std::shared_future<Status> result) : result_(std::move(result)) {}

  std::shared_future<Status> result_;
};

}  // namespace ferry::vm
