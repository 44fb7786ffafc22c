// What the entries that start QEMU themselves share: the guest image, the accelerator, and the
// launch of a bare QEMU filled field by field as ferryd's VmLauncher::LaunchSpecFor fills it, its
// files opened by the same vm::OpenQemuFiles, so a bare QEMU gets ferryd's command line, the
// descriptor numbers included, up to per-VM name, MAC and port. CheckSameCommandLine compares
// the two on a VM ferryd booted, so a comparison cannot drift silently when ferryd's launch
// changes.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "bench/harness/runner.h"
#include "core/status.h"
#include "qemu/accelerator.h"
#include "qemu/launch_spec.h"
#include "vm/image.h"
#include "vm/qemu_files.h"
#include "vm/vm_runtime.h"

namespace ferry::bench {

// What a bare QEMU starts from: the LaunchSpec without descriptors and the files it gets, by
// path. Open hands the files over the way ferryd hands over its QEMU's: as descriptors QEMU
// inherits, opened in the order OpenQemuFiles fixes, so both command lines name the same
// numbers.
struct BareLaunch {
  qemu::LaunchSpec spec;
  vm::QemuFilePaths files;
  // The QEMU's own RAM file, which Open makes (sparse, spec.memory_mib, mode 0600) as ferryd makes
  // a VM's; "" when the RAM is files.shared_image (then spec.ram_shared is false).
  std::string ram_path;

  // What QEMU is spawned with: the descriptors it inherits (QemuStart::fds, each its
  // InheritedFd(i)) and its command line, BuildCommandLine of `spec` with their numbers in it.
  struct Opened {
    vm::QemuStart start;
    qemu::LaunchSpec spec;
    std::vector<std::string> argv;
  };
  // Makes the RAM file and opens every file (binds the sockets, opens a queue of files.tap),
  // inside network namespace `netns` when given (where the tap is). On failure the RAM file is
  // removed again and the error names the file.
  Result<Opened> Open(const std::string& netns = "") const;
};

// What differs between two VMs started with the same command line: the name, the MAC, the
// forwarded port (user networking) or the address (tap networking). Empty/0: absent. Files are
// not among them: both command lines name them by descriptor number.
struct PerVmValues {
  std::string name, mac;
  uint16_t host_port = 0;
  std::string address;

  // A VM ferryd runs, from its `vm show --json` (port 0, address as the spec says).
  static PerVmValues FromShow(const nlohmann::json& show);
  // The VM a LaunchSpec describes (its first NIC's MAC), with `host_port` and address given.
  static PerVmValues FromSpec(const qemu::LaunchSpec& spec, uint16_t host_port = 0,
                              std::string address = "");
};

// FailedPrecondition naming the first argument where ferryd's command line and the bench's
// differ once per-VM values are replaced by placeholders; `fix_hint` says what to change.
Status CompareCommandLines(const std::vector<std::string>& ferry_argv, const PerVmValues& ferry_vm,
                           const std::vector<std::string>& bare_argv, const PerVmValues& bare_vm,
                           const std::string& fix_hint);

struct GuestSetup {
  vm::Image image;
  uint16_t guest_port = 6379;  // the image's first service (redis)
  qemu::AcceleratorChoice accel;
  // BenchConfig::qemu_binary and what it says it is: ferryd gives a QEMU what its version needs
  // (qemu::GuestRamKib), and so does BareSpec.
  std::string qemu_binary = "qemu-system-x86_64";
  qemu::QemuVersion qemu_version;
  std::string qemu_version_line;  // as `--version` printed it, for the notes

  // Checks that ferryd and ferry are built and finds the default image with its ready marker.
  static Result<GuestSetup> Find(const BenchConfig& config);

  // A bare QEMU named `name`: sockets and console in `dir`, RAM file in `ram_dir`, guest port
  // forwarded from 127.0.0.1:host_port. Set spec.incoming on the result for a restore.
  BareLaunch BareSpec(const std::string& name, const std::string& dir, const std::string& ram_dir,
                      uint64_t memory_mib, uint16_t host_port) const;

  // FailedPrecondition unless ferryd's qemu_argv in `show` (`vm show --json` of a booted VM
  // forwarding ferry_port) equals the command line BareSpec's files open to, per-VM values
  // aside. The files are opened (in `scratch_dir`/check) and removed again.
  Status CheckSameCommandLine(const nlohmann::json& show, uint16_t ferry_port,
                              const std::string& scratch_dir) const;

  // "accelerator: tcg (...)" and "guest: image ..." lines for an entry's notes.
  std::string AcceleratorNote() const;
  std::string ImageNote() const;
};

}  // namespace ferry::bench
