// Where one VM's files live. Durable files sit under the state directory; guest RAM is a file on
// tmpfs in the RAM directory (see VmRecord::ram_path).
#pragma once

#include <string>

namespace ferry::vm {

struct VmPaths {
  std::string dir;           // STATE/vms/NAME
  std::string qmp_socket;    // QMP, served by QEMU
  std::string guest_socket;  // ferry-guest's virtio-serial port, served by QEMU
  std::string console_log;   // the guest's serial console
  std::string qemu_log;      // QEMU's stdout and stderr

  static VmPaths For(const std::string& state_dir, const std::string& vm_name) {
    return ForDir(state_dir + "/vms/" + vm_name);
  }
  // A VM taken from the warm pool keeps the directory its QEMU was started in.
  static VmPaths ForDir(const std::string& dir) {
    VmPaths p;
    p.dir = dir;
    p.qmp_socket = p.dir + "/qmp.sock";
    p.guest_socket = p.dir + "/guest.sock";
    p.console_log = p.dir + "/console.log";
    p.qemu_log = p.dir + "/qemu.log";
    return p;
  }
};

}  // namespace ferry::vm
