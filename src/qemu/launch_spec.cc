#include "qemu/launch_spec.h"

namespace ferry::qemu {

std::string EscapeOptionValue(const std::string& value) {
  std::string out;
  out.reserve(value.size());
  for (char c : value) {
    out += c;
    if (c == ',') out += ',';
  }
  return out;
}

uint64_t GuestRamKib(const LaunchSpec& spec) {
  // QEMU before 9.0 loses guest stores during a live migration under TCG when the RAM block's
  // length is a multiple of 256 KiB: its fast dirty-bitmap sync clears the bits without
  // resetting TCG's write tracking, so pages the guest writes after a sync are never sent
  // again, and the destination resumes with stale kernel memory and panics (upstream fix:
  // "physmem: Fix migration dirty bitmap coherency with TCG memory access", 03bfc2188f).
  // 8 KiB less (QEMU's -m granularity) takes the page-by-page path, which is correct. KVM
  // tracks dirty pages in the kernel and keeps the exact size.
  const uint64_t kib = spec.memory_mib * 1024;
  return spec.accelerator == Accelerator::kTcg ? kib - 8 : kib;
}

std::vector<std::string> BuildCommandLine(const LaunchSpec& spec) {
  const std::string mem = std::to_string(GuestRamKib(spec)) + "K";
  std::vector<std::string> argv = {spec.qemu_binary};
  auto add = [&argv](std::initializer_list<std::string> items) {
    argv.insert(argv.end(), items.begin(), items.end());
  };
  add({"-name", "guest=" + EscapeOptionValue(spec.name) + ",debug-threads=on"});
  add({"-machine",
       std::string("q35,accel=") + AcceleratorName(spec.accelerator) + ",memory-backend=ram0"});
  // KVM passes the host CPU through; TCG emulates the richest model it can.
  add({"-cpu", spec.accelerator == Accelerator::kKvm ? "host" : "max"});
  add({"-smp", std::to_string(spec.cpus)});
  add({"-m", mem});
  add({"-object", "memory-backend-file,id=ram0,size=" + mem +
                      ",mem-path=" + EscapeOptionValue(spec.ram_path) +
                      ",share=" + (spec.ram_shared ? "on" : "off")});
  // No default devices, no user config, no display: the guest sees exactly what we list here.
  add({"-nodefaults", "-no-user-config", "-display", "none"});
  // A guest reboot (e.g. kernel panic with panic=-1) ends QEMU instead of looping silently.
  add({"-no-reboot"});
  add({"-kernel", spec.kernel, "-initrd", spec.initrd, "-append", spec.kernel_cmdline});
  // append=on: ferryd rotates the file by truncating it, and QEMU's writes then go on at its new
  // end instead of leaving a hole the size of what was cut.
  add({"-chardev", "file,id=serial0,append=on,path=" + EscapeOptionValue(spec.console_log),
       "-serial", "chardev:serial0"});
  add({"-device", "virtio-serial-pci,id=vser0", "-chardev",
       "socket,id=guest0,path=" + EscapeOptionValue(spec.guest_socket) + ",server=on,wait=off",
       "-device", "virtserialport,bus=vser0.0,chardev=guest0,name=org.ferry.guest"});
  for (size_t i = 0; i < spec.nics.size(); ++i) {
    const NicSpec& nic = spec.nics[i];
    const std::string id = "net" + std::to_string(i);
    std::string netdev;
    if (nic.backend == NicSpec::Backend::kTap) {
      // vhost=off: the kernel's vhost-net worker would move packets outside QEMU, which TCG and
      // a later live migration of this QEMU do not need; QEMU's own virtio-net path is enough.
      netdev = "tap,id=" + id + ",ifname=" + EscapeOptionValue(nic.ifname) +
               ",script=no,downscript=no,vhost=off";
    } else {
      // restrict=on: the guest reaches nothing through slirp (not the host's loopback at
      // 10.0.2.2, not other VMs' forwards) but the forwards below, which still reach it.
      netdev = "user,id=" + id + ",restrict=on";
      for (const PortForward& f : nic.forwards) {
        netdev += ",hostfwd=" +
                  EscapeOptionValue("tcp:" + f.host_address + ":" + std::to_string(f.host_port) +
                                    "-:" + std::to_string(f.guest_port));
      }
    }
    std::string device = "virtio-net-pci,netdev=" + id;
    if (nic.mac) device += ",mac=" + EscapeOptionValue(nic.mac->ToString());
    add({"-netdev", netdev, "-device", device});
  }
  add({"-device", "virtio-rng-pci"});
  if (!spec.disk_path.empty()) {
    // id=disk0 is the name QMP uses for it (blockdev-snapshot-sync at snapshot time).
    add({"-drive", "file=" + EscapeOptionValue(spec.disk_path) + ",if=none,id=" + kDiskDriveId +
                       ",format=qcow2,discard=unmap"});
    add({"-device", std::string("virtio-blk-pci,drive=") + kDiskDriveId + ",id=vd0"});
  }
  add({"-device",
       "vmgenid,guid=" + EscapeOptionValue(spec.vmgenid ? spec.vmgenid->ToString() : "auto")});
  // -S keeps the restored guest paused until ferryd has checked the restore and resumes it.
  if (spec.incoming) add({"-S", "-incoming", "defer"});
  add({"-qmp", "unix:" + EscapeOptionValue(spec.qmp_socket) + ",server=on,wait=off"});
  // The seccomp filter forbids obsolete system calls, new processes and scheduler/resource
  // changes. elevateprivileges stays allowed because -runas's setuid comes after the filter is
  // installed (QEMU 7.2 dies with "Bad system call" otherwise); once QEMU has dropped to the
  // unprivileged user it holds no saved root id to regain.
  add({"-sandbox", "on,obsolete=deny,spawn=deny,resourcecontrol=deny"});
  if (!spec.run_as.empty()) add({"-runas", spec.run_as});
  return argv;
}

std::vector<std::string> QemuEnvironment() { return {"GLIBC_TUNABLES=glibc.malloc.hugetlb=1"}; }

}  // namespace ferry::qemu
