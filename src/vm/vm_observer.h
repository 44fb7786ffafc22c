// What the VM service tells the rest of ferryd as it happens (ferryd's events and metrics): one
// small interface, so the state machine itself stays free of them.
#pragma once

#include <string>

#include "core/process.h"
#include "vm/vm_record.h"

namespace ferry::vm {

// Called with the VM's lock (Vm::mu) held: an observer must be quick and must not call back into
// the VM service.
class VmObserver {
 public:
  virtual ~VmObserver() = default;
  // A VM's record was saved (its state may have changed), or, `deleted`, removed.
  virtual void VmPersisted(const VmRecord& rec, bool deleted) = 0;
  // A VM's QEMU ended and the VM became what `rec.state` says; `shutdown_reason` is QEMU's
  // SHUTDOWN reason ("" when it sent none).
  virtual void QemuExited(const VmRecord& rec, const ProcessExit& exit,
                          const std::string& shutdown_reason) = 0;
};

}  // namespace ferry::vm
