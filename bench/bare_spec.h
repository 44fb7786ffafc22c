// What the entries that start QEMU themselves share: the guest image, the accelerator, and the
// LaunchSpec filled field by field as ferryd's VmService::LaunchSpecFor fills it, so a bare QEMU
// gets ferryd's command line up to per-VM names, paths, MAC and port. CheckSameCommandLine
// compares the two on a VM ferryd booted, so a comparison cannot drift silently when ferryd's
// launch changes. (cold_boot.cc keeps its own copy of this, with the same check.)
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "bench/runner.h"
#include "core/status.h"
#include "qemu/accelerator.h"
#include "qemu/launch_spec.h"
#include "vm/image.h"

namespace ferry::bench {

// What differs between two VMs started with the same command line: names, paths, MAC, the
// forwarded port (user networking) or the tap and address (tap networking). Empty/0: absent.
struct PerVmValues {
  std::string name, mac, ram_path, console_log, qmp_socket, guest_socket;
  uint16_t host_port = 0;
  std::string tap, address;

  // A VM ferryd runs, from its `vm show --json` (port 0, tap and address as the spec says).
  static PerVmValues FromShow(const nlohmann::json& show);
  // The VM a LaunchSpec describes (its first NIC's MAC), with `host_port`, tap and address given.
  static PerVmValues FromSpec(const qemu::LaunchSpec& spec, uint16_t host_port = 0,
                              std::string tap = "", std::string address = "");
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

  // Checks that ferryd and ferry are built and finds the default image with its ready marker.
  static Result<GuestSetup> Find(const BenchConfig& config);

  // A bare QEMU named `name`: sockets and console in `dir`, RAM file in `ram_dir`, guest port
  // forwarded from 127.0.0.1:host_port. Set `incoming` on the result for a restore.
  qemu::LaunchSpec BareSpec(const std::string& name, const std::string& dir,
                            const std::string& ram_dir, uint64_t memory_mib,
                            uint16_t host_port) const;

  // FailedPrecondition unless ferryd's qemu_argv in `show` (`vm show --json` of a booted VM
  // forwarding ferry_port) equals BareSpec's, per-VM values aside.
  Status CheckSameCommandLine(const nlohmann::json& show, uint16_t ferry_port,
                              const std::string& scratch_dir) const;

  // "accelerator: tcg (...)" and "guest: image ..." lines for an entry's notes.
  std::string AcceleratorNote() const;
  std::string ImageNote() const;
};

// First line of `qemu-system-x86_64 --version`; "" if it cannot be run. `scratch_dir` holds the
// output file for a moment.
std::string QemuVersionLine(const std::string& scratch_dir);

}  // namespace ferry::bench
