#include "qemu/launch_spec.h"

#include <nlohmann/json.hpp>

#include "guest/protocol.h"

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

std::string DiskNodeName(const std::string& path) {
  std::string name = path.substr(path.rfind('/') + 1);
  name = name.substr(0, name.find('.'));
  return "top-" + name;
}

std::string FileNodeName(const std::string& node) { return node + "-file"; }

uint64_t GuestRamKib(const LaunchSpec& spec) {
  // QEMU before 9.0 loses guest stores during a live migration under TCG when the RAM block's
  // length is a multiple of 256 KiB: its fast dirty-bitmap sync clears the bits without
  // resetting TCG's write tracking, so pages the guest writes after a sync are never sent
  // again, and the destination resumes with stale kernel memory and panics (upstream fix:
  // "physmem: Fix migration dirty bitmap coherency with TCG memory access", 03bfc2188f).
  // 8 KiB less (QEMU's -m granularity) takes the page-by-page path, which is correct but slow:
  // it resets the vCPU's TLB for every dirty page under QEMU's big lock, so a live snapshot's
  // pause grows with RAM. KVM tracks dirty pages in the kernel and keeps the exact size, and so
  // does a QEMU with the fix. A QEMU whose version is unknown gets the workaround.
  const uint64_t kib = spec.memory_mib * 1024;
  const bool lossy_fast_sync =
      spec.accelerator == Accelerator::kTcg && !spec.qemu_version.AtLeast(9, 0);
  return lossy_fast_sync ? kib - 8 : kib;
}

namespace {

// How QEMU names an inherited descriptor where it wants a path it open()s itself.
std::string FdPath(int fd) { return "/proc/self/fd/" + std::to_string(fd); }

}  // namespace

std::string SpareRamPath(int ram_slot_fd) { return FdPath(ram_slot_fd) + "/ram"; }

namespace {

// QEMU's argv as it is built.
class Argv {
 public:
  explicit Argv(std::string binary) { argv_.push_back(std::move(binary)); }
  void Add(std::initializer_list<std::string> items) {
    argv_.insert(argv_.end(), items.begin(), items.end());
  }
  // An fd set holding `fds`, named after its first descriptor; QEMU opens it as /dev/fdset/ID
  // with the access it asks for, and never touches a path.
  std::string FdSet(std::initializer_list<int> fds) {
    int id = -1;
    for (int fd : fds) {
      if (fd < 0) continue;
      if (id < 0) id = fd;
      Add({"-add-fd", "fd=" + std::to_string(fd) + ",set=" + std::to_string(id)});
    }
    return "/dev/fdset/" + std::to_string(id);
  }
  std::vector<std::string> Take() { return std::move(argv_); }

 private:
  std::vector<std::string> argv_;
};

void AddNics(Argv& argv, const LaunchSpec& spec) {
  for (size_t i = 0; i < spec.nics.size(); ++i) {
    const NicSpec& nic = spec.nics[i];
    const std::string id = "net" + std::to_string(i);
    std::string netdev;
    if (nic.backend == NicSpec::Backend::kTap) {
      // vhost=off: the kernel's vhost-net worker would move packets outside QEMU, which TCG and
      // a later live migration of this QEMU do not need; QEMU's own virtio-net path is enough.
      netdev = "tap,id=" + id + ",fd=" + std::to_string(nic.tap_fd) + ",vhost=off";
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
    argv.Add({"-netdev", netdev, "-device", device});
  }
}

void AddDisk(Argv& argv, const LaunchSpec& spec) {
  // The disk chain as explicit block nodes, base first: QEMU opens no backing file by the name
  // recorded in an image. The top is node `disk_node`, the name QMP uses for it
  // (blockdev-snapshot at snapshot time).
  // JSON, not key=value: only JSON can say "no backing" (null).
  nlohmann::json below = nullptr;
  for (size_t i = spec.disk.size(); i-- > 0;) {
    const DiskImage& image = spec.disk[i];
    const bool top = i == 0;
    const std::string node = top ? spec.disk_node : "backing" + std::to_string(i);
    nlohmann::json file = {{"driver", "file"},
                           {"node-name", FileNodeName(node)},
                           {"filename", argv.FdSet({image.read_write_fd, image.read_only_fd})}};
    nlohmann::json format = {
        {"driver", "qcow2"}, {"node-name", node}, {"file", FileNodeName(node)}, {"backing", below}};
    for (nlohmann::json* n : {&file, &format}) {
      // The guest's discards free space in the top image's file; the images below only read.
      if (top) (*n)["discard"] = "unmap";
      if (!top) (*n)["read-only"] = true;
    }
    argv.Add({"-blockdev", file.dump(), "-blockdev", format.dump()});
    below = node;
  }
  if (!spec.disk.empty()) {
    argv.Add({"-device", "virtio-blk-pci,drive=" + EscapeOptionValue(spec.disk_node) +
                             ",id=" + kDiskDeviceId});
  }
}

}  // namespace

std::vector<std::string> BuildCommandLine(const LaunchSpec& spec) {
  const std::string mem = std::to_string(GuestRamKib(spec)) + "K";
  Argv argv(spec.qemu_binary);
  argv.Add({"-name", "guest=" + EscapeOptionValue(spec.name) + ",debug-threads=on"});
  // A spare (preconfig) names no backend: it gets one, as NUMA node 0's, at take time.
  if (spec.preconfig) argv.Add({"-preconfig"});
  argv.Add({"-machine", std::string("q35,accel=") + AcceleratorName(spec.accelerator) +
                            (spec.preconfig ? "" : ",memory-backend=ram0")});
  // KVM passes the host CPU through; TCG emulates the richest model it can.
  argv.Add({"-cpu", CpuModelFor(spec.accelerator)});
  argv.Add({"-smp", std::to_string(spec.cpus)});
  argv.Add({"-m", mem});
  // QEMU 7.2's memory-backend-file takes a path, not a descriptor; /proc/self/fd/N reaches the
  // file ferryd opened without a lookup in ferryd's directories.
  if (!spec.preconfig) {
    argv.Add({"-object", "memory-backend-file,id=ram0,size=" + mem + ",mem-path=" +
                             FdPath(spec.ram_fd) + ",share=" + (spec.ram_shared ? "on" : "off")});
  }
  // No default devices, no user config, no display: the guest sees exactly what we list here.
  argv.Add({"-nodefaults", "-no-user-config", "-display", "none"});
  // A guest reboot (e.g. kernel panic with panic=-1) ends QEMU instead of looping silently.
  argv.Add({"-no-reboot"});
  argv.Add({"-kernel", FdPath(spec.kernel_fd), "-initrd", FdPath(spec.initrd_fd), "-append",
            spec.kernel_cmdline});
  // append=on: ferryd rotates the file by truncating it, and QEMU's writes then go on at its new
  // end instead of leaving a hole the size of what was cut.
  const std::string console = argv.FdSet({spec.console_fd});
  argv.Add({"-chardev", "file,id=serial0,append=on,path=" + console, "-serial", "chardev:serial0"});
  argv.Add({"-device", "virtio-serial-pci,id=vser0", "-chardev",
            "socket,id=guest0,fd=" + std::to_string(spec.guest_fd) + ",server=on,wait=off",
            "-device",
            "virtserialport,bus=vser0.0,chardev=guest0,name=" + std::string(guest::kPortName)});
  AddNics(argv, spec);
  argv.Add({"-device", "virtio-rng-pci"});
  AddDisk(argv, spec);
  argv.Add({"-device",
            "vmgenid,guid=" + EscapeOptionValue(spec.vmgenid ? spec.vmgenid->ToString() : "auto")});
  // -S keeps the restored guest paused until ferryd has checked the restore and resumes it.
  if (spec.incoming) argv.Add({"-S", "-incoming", "defer"});
  argv.Add({"-chardev", "socket,id=qmp0,fd=" + std::to_string(spec.qmp_fd) + ",server=on,wait=off",
            "-mon", "chardev=qmp0,mode=control"});
  // QEMU starts unprivileged (ferryd spawns it as its own user), so the filter may forbid every
  // way back: obsolete calls, setuid and friends, new processes, scheduler and resource changes.
  argv.Add({"-sandbox", "on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny"});
  return argv.Take();
}

std::vector<std::string> QemuEnvironment() { return {"GLIBC_TUNABLES=glibc.malloc.hugetlb=1"}; }

}  // namespace ferry::qemu
