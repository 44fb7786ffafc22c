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
#include "qemu/qemu_version.h"

namespace ferry::qemu {

struct PortForward {
  std::string host_address = "127.0.0.1";  // forwards listen on loopback only
  uint16_t host_port = 0;
  uint16_t guest_port = 0;
};

// Every file QEMU uses is a descriptor it inherits (core/process.h: SpawnOptions::inherit),
// named here by its number in QEMU; -1 is none. QEMU runs as an unprivileged user that cannot
// reach ferryd's directories, and nothing is reopened by a path someone could swap after ferryd
// checked it.

// One guest NIC: virtio-net with `mac` (unset: QEMU's default), on QEMU's user-mode network (with
// host `forwards`) or on a queue of a host tap interface that ferryd created and opened
// beforehand (`tap_fd`: persistent, already on its bridge).
struct NicSpec {
  enum class Backend { kUser, kTap };
  Backend backend = Backend::kUser;
  std::optional<MacAddress> mac;
  std::vector<PortForward> forwards;  // kUser only
  int tap_fd = -1;                    // kTap only
};

// One qcow2 image of the data disk's chain. QEMU reopens an image with the access it needs
// (read-only when it inactivates the disk at the end of a migration or snapshot, read-write
// again on the destination): the top gets both descriptors in one fd set, the backing images,
// which QEMU only reads, a read-only one.
struct DiskImage {
  int read_write_fd = -1;
  int read_only_fd = -1;
};

struct LaunchSpec {
  std::string qemu_binary = "qemu-system-x86_64";
  // What qemu_binary says it is (probed once by ferryd); unknown reads as 7.2.
  QemuVersion qemu_version;
  std::string name;
  Accelerator accelerator = Accelerator::kTcg;
  int cpus = 1;
  uint64_t memory_mib = 256;
  // Guest RAM is this file, owned by ferryd; share=on makes QEMU write through to it. Not
  // shared: a snapshot's RAM image that clones map copy-on-write.
  int ram_fd = -1;
  bool ram_shared = true;
  int kernel_fd = -1;
  int initrd_fd = -1;
  std::string kernel_cmdline;
  // Unix sockets ferryd bound: QMP and the guest channel (virtio-serial).
  int qmp_fd = -1;
  int guest_fd = -1;
  // The serial console's log, opened write-only for appending.
  int console_fd = -1;
  std::vector<NicSpec> nics;
  // VM generation ID: unset is QEMU's "auto" (a fresh boot); a clone gets a new GUID so its
  // kernel knows it is a copy and reseeds its RNG.
  std::optional<Guid> vmgenid;
  // The data disk (the guest's /dev/vda): its chain, top first; empty for none. The top's node
  // is `disk_node` (DiskNodeName of its path).
  std::vector<DiskImage> disk;
  std::string disk_node;
  // Start paused, waiting for `migrate-incoming` (restore of a snapshot's device state).
  bool incoming = false;
  // A spare (REQUIRES: incoming): started before anyone knows which snapshot it will run, so
  // with no guest RAM yet. QEMU stops before building the machine (-preconfig) and is given its
  // RAM over QMP (BindSpareRam, qmp_commands.h) as NUMA node 0's memory: QEMU 7.2 resolves
  // `-machine memory-backend=` at start-up, but a node's memdev only when the machine is built.
  // A guest saved with memory-backend= restores into it (the RAM block is "ram0" either way).
  bool preconfig = false;
  // A spare's RAM slot: a directory only this QEMU's uid may search, where ferryd links the
  // snapshot's RAM image at take time (QEMU refuses getfd/add-fd before the machine is built,
  // so it opens the image by a path, /proc/self/fd/N/ram). Not on the command line.
  int ram_slot_fd = -1;
};

// The QMP node name of the data disk's top image at `path`: "top-" and the file's name without
// its extension. The top changes at each snapshot (a new overlay), so QMP commands name the
// node of the image the VM record says is on top.
std::string DiskNodeName(const std::string& path);
// The name of the file node beneath the qcow2 node `node`: a node of its own, never a child
// inside the qcow2 node (qmp_commands.cc, BlockdevAddQcow2, says why).
std::string FileNodeName(const std::string& node);

// The id of the data disk's virtio-blk device: query-block finds the disk's active node by it.
inline constexpr const char* kDiskDeviceId = "vd0";

// The guest's RAM as QEMU gets it (-m and the backend's size=), in KiB: memory_mib, or 8 KiB
// less under TCG with a QEMU before 9.0 or of unknown version (see launch_spec.cc: a TCG
// migration bug fixed in 9.0). The RAM file stays memory_mib MiB; QEMU maps the first part of it.
uint64_t GuestRamKib(const LaunchSpec& spec);

// Where a spare (LaunchSpec::preconfig) opens the RAM linked into its slot.
std::string SpareRamPath(int ram_slot_fd);

// argv for execvp, argv[0] included.
std::vector<std::string> BuildCommandLine(const LaunchSpec& spec);

// What QEMU's environment gets on top of ferryd's ("NAME=VALUE" each). glibc's malloc asks for
// transparent huge pages for its heap (glibc.malloc.hugetlb=1): QEMU's start-up is mostly page
// faults (loading 50 libraries, then its heap), and each costs a trip to the hypervisor on a
// nested host; this takes about a quarter off the time from spawn to QMP answering there. An
// older glibc ignores the tunable.
std::vector<std::string> QemuEnvironment();

// QEMU option values separate keys with ',': a literal comma is written twice. Every string
// value BuildCommandLine puts after a "key=" goes through this, typed values included.
std::string EscapeOptionValue(const std::string& value);

}  // namespace ferry::qemu
