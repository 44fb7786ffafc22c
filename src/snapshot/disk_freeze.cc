#include "snapshot/disk_freeze.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "qemu/launch_spec.h"
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
  auto switched = rt.Qmp("blockdev-snapshot-sync", {{"device", qemu::kDiskDriveId},
                                                    {"snapshot-file", new_top},
                                                    {"format", "qcow2"},
                                                    {"mode", "existing"}});
  if (!switched.ok()) {
    undo();
    return switched.status().WithContext(what + ": QEMU did not switch to a new overlay");
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
