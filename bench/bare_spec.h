// What the entries that start QEMU themselves share: the guest image, the accelerator, and the
// LaunchSpec filled field by field as ferryd's VmService::LaunchSpecFor fills it, so a bare QEMU
// gets ferryd's command line up to per-VM names, paths, MAC and port. CheckSameCommandLine
// compares the two on a VM ferryd booted, so a comparison cannot drift silently when ferryd's
// launch changes. (cold_boot.cc keeps its own copy of this, with the same check.)
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

#include "bench/runner.h"
#include "core/status.h"
#include "qemu/accelerator.h"
#include "qemu/launch_spec.h"
#include "vm/image.h"

namespace ferry::bench {

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
