// The unprivileged user every QEMU runs as. One system user shared by all QEMUs of a host
// (docs/security.md says why not one uid per VM): QEMU starts as root, opens what its command
// line names, then drops to this user (-runas) before it runs the guest.
#pragma once

#include <sys/types.h>

#include <string>

#include "core/status.h"

namespace ferry::vm {

struct QemuUser {
  uid_t uid = 0;
  gid_t gid = 0;
  // QEMU's -runas value: numeric, so QEMU looks nothing up.
  std::string RunAs() const { return std::to_string(uid) + ":" + std::to_string(gid); }
};

// Looks `name` up; creates it as a system user and group without home or shell (useradd
// --system) when it does not exist. "" is accepted and does nothing.
Status EnsureQemuUser(const std::string& name);
// The user `name`, which must exist and be neither uid 0 nor gid 0.
Result<QemuUser> LookUpQemuUser(const std::string& name);

}  // namespace ferry::vm
