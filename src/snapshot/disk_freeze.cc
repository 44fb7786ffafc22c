#include "snapshot/disk_freeze.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <nlohmann/json.hpp>

#include "core/fault_point.h"
#include "qemu/launch_spec.h"
#include "qemu/qmp_commands.h"
#include "snapshot/disk_recovery.h"
#include "vm/vm_disk.h"

namespace ferry::snapshot {

Result<FrozenDisk> FreezeDisk(vm::VmRuntime& rt, const vm::VmRecord& vm,
                              const std::string& frozen_path, const std::string& new_top,
                              const std::string& qemu_img) {
  const std::string what = "disk of vm " + vm.spec.name;
  // The frozen image keeps the inode QEMU has open; only a new name is made for it, so nothing
  // is copied and the VM's data stays where it is.
  if (::link(vm.disk_path.c_str(), frozen_path.c_str()) != 0) {
    return Status::Internal(what + ": cannot link " + vm.disk_path + " to " + frozen_path + ": " +
                            std::strerror(errno) + "; the state directory must be one filesystem");
  }
  auto undo = [&] {
    ::unlink(new_top.c_str());
    ::unlink(frozen_path.c_str());
  };
  // The overlay names the frozen image by its lasting path, so the old name can go.
  Status made = vm::CreateOverlay(qemu_img, new_top, frozen_path);
  if (!made.ok()) {
    undo();
    return made.WithContext(what);
  }
  // A ferryd that dies from here until the switch leaves both files unused (disk_recovery.h).
  FaultPoint("snapshot.disk.before_switch");
  // QEMU runs unprivileged and cannot open a path in ferryd's directories: ferryd opens the
  // overlay and hands QEMU the descriptor (add-fd). The overlay node gets no backing of its own;
  // blockdev-snapshot puts the running disk beneath it.
  // The set holds a read-write and a read-only descriptor: QEMU opens /dev/fdset/N again with
  // the access it needs, and read-only when it inactivates the disk at the end of a migration
  // (the device-state save of the next snapshot): with only a read-write one that fails.
  Result<int64_t> fdset = Status::Internal("");
  for (int flags : {O_RDWR, O_RDONLY}) {
    const int fd = ::open(new_top.c_str(), flags | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
      fdset = Status::Internal(what + ": cannot open the new overlay " + new_top + ": " +
                               std::strerror(errno));
    } else {
      auto added = rt.QmpAddFd(fd, flags == O_RDWR ? std::nullopt : std::optional<int64_t>(*fdset));
      fdset = added.ok() ? Result<int64_t>(added->fdset) : Result<int64_t>(added.status());
      ::close(fd);  // QEMU holds its own copy now
    }
    if (!fdset.ok()) break;
  }
  // The name tells a restarted ferryd which overlay QEMU switched to (disk_recovery.h).
  const std::string node = qemu::DiskNodeName(new_top);
  Status switched = fdset.status();
  if (fdset.ok()) switched = qemu::BlockdevAddQcow2(rt, node, *fdset);
  if (switched.ok()) {
    switched = qemu::BlockdevSnapshot(rt, qemu::DiskNodeName(vm.disk_path), node);
    if (!switched.ok()) (void)qemu::BlockdevDelQcow2(rt, node);
  }
  if (!switched.ok()) {
    // On success the set stays: QEMU's block layer reopens the overlay through it when it
    // changes its access (e.g. at the next snapshot).
    if (fdset.ok()) (void)qemu::RemoveFdSet(rt, *fdset);
    undo();
    return switched.WithContext(what + ": QEMU did not switch to a new overlay");
  }
  ::unlink(vm.disk_path.c_str());
  ::chmod(frozen_path.c_str(), 0400);
  FrozenDisk out;
  out.frozen = frozen_path;
  out.top = new_top;
  out.chain.push_back(frozen_path);
  out.chain.insert(out.chain.end(), vm.disk_chain.begin(), vm.disk_chain.end());
  return out;
}

}  // namespace ferry::snapshot
