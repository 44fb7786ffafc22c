// Everything the QEMU command line is built from. Filled by the VM layer from a VmSpec, an image
// and the VM's paths; kept free of VM-layer types so the builder can be tested on its own.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/guid.h"
#include "core/mac_address.h"
#include "qemu/accelerator.h"

namespace ferry::qemu {

struct PortForward {
  std::string host_address = "127.0.0.1";  // forwards listen on loopback only
  uint16_t host_port = 0;
  uint16_t guest_port = 0;
};

// One guest NIC: virtio-net with `mac` (unset: QEMU's default), on QEMU's user-mode network (with
// host `forwards`) or on a host tap interface `ifname` that ferryd created beforehand (persistent,
// already on its bridge: QEMU runs no scripts and only opens it).
struct NicSpec {
  enum class Backend { kUser, kTap };
  Backend backend = Backend::kUser;
  std::optional<MacAddress> mac;
  std::vector<PortForward> forwards;  // kUser only
  std::string ifname;                 // kTap only
};

struct LaunchSpec {
  std::string qemu_binary = "qemu-system-x86_64";
  std::string name;
  Accelerator accelerator = Accelerator::kTcg;
  int cpus = 1;
  uint64_t memory_mib = 256;
  // Guest RAM is this file, owned by ferryd; share=on makes QEMU write through to it.
  std::string ram_path;
  bool ram_shared = true;
  std::string kernel;
  std::string initrd;
  std::string kernel_cmdline;
  std::string qmp_socket;
  std::string guest_socket;
  std::string console_log;
  std::vector<NicSpec> nics;
  // VM generation ID: unset is QEMU's "auto" (a fresh boot); a clone gets a new GUID so its
  // kernel knows it is a copy and reseeds its RNG.
  std::optional<Guid> vmgenid;
  // The data disk (qcow2, the guest's /dev/vda); "" for none.
  std::string disk_path;
  // Start paused, waiting for `migrate-incoming` (restore of a snapshot's device state).
  bool incoming = false;
  // "UID:GID" QEMU drops to once it has opened what this spec names (-runas); "" keeps ours.
  std::string run_as;
};

// The QMP device name of the data disk.
inline constexpr const char* kDiskDriveId = "disk0";

// The guest's RAM as QEMU gets it (-m and the backend's size=), in KiB: memory_mib, or 8 KiB
// less under TCG (see launch_spec.cc: a QEMU 7.2 TCG migration bug). The RAM file stays
// memory_mib MiB; QEMU maps the first part of it.
uint64_t GuestRamKib(const LaunchSpec& spec);

// argv for execvp, argv[0] included.
std::vector<std::string> BuildCommandLine(const LaunchSpec& spec);

// What QEMU's environment gets on top of ferryd's ("NAME=VALUE" each). glibc's malloc asks for
// transparent huge pages for its heap (glibc.malloc.hugetlb=1): QEMU's start-up is mostly page
// faults (loading 50 libraries, then its heap), and each costs a trip to the hypervisor on a
// nested host; this takes about a quarter off the time from spawn to QMP answering there. An
// older glibc ignores the tunable.
std::vector<std::string> QemuEnvironment();

// QEMU option values separate keys with ',': a literal comma is written twice. Every value
// BuildCommandLine puts after a "key=" goes through this, typed values included.
std::string EscapeOptionValue(const std::string& value);

}  // namespace ferry::qemu
