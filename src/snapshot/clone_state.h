// The whole state of a paused clone, saved as a VM of its own would have it: a RAM image and a
// device state that loads into a QEMU mapping that image share=on (with x-ignore-shared on, as
// LoadDeviceState does). A clone maps its snapshot's RAM file share=off, so QEMU sends all of its
// RAM in the migration stream; ferryd reads the stream from a pipe as QEMU writes it and splits
// it (stream_ram_split.h): the guest RAM's pages into the image, the rest into the device state.
//
// The stream is untrusted: QEMU may have been subverted by its guest. The reader's limits
// apply, the RAM block must have the VM's size, the device state is bounded, and a stream that
// stops sending for `idle_timeout` is given up. On any failure the migration is cancelled and
// the clone stays paused, as it was, for the caller to resume; a QEMU that died is reported.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

#include "core/status.h"
#include "snapshot/stream_ram_split.h"
#include "vm/vm_runtime.h"

namespace ferry::snapshot {

// The device state of a ferry VM with its ROM pages is about 1 MiB; this leaves room.
inline constexpr uint64_t kMaxCloneDeviceStateBytes = uint64_t{64} << 20;
// How long QEMU may send nothing before the save is given up.
inline constexpr std::chrono::milliseconds kCloneStreamIdleTimeout{60000};
// How long the whole save may take (a 16 GiB clone at 30 MiB/s fits).
inline constexpr std::chrono::milliseconds kCloneStateTimeout{600000};

struct CloneStateFiles {
  int ram_fd = -1;           // an empty file: becomes the sparse RAM image
  std::string ram_path;      // for messages
  uint64_t ram_bytes = 0;    // QEMU's guest RAM size: the guest RAM block must have exactly this
  uint64_t image_bytes = 0;  // the RAM image's file size (the VM's memory), >= ram_bytes
  int device_state_fd = -1;  // an empty file: receives the device state
  std::string device_state_path;
};

struct CloneStateSaved {
  uint64_t stream_bytes = 0;  // what QEMU sent
  StreamRamSplitStats split;
};

// REQUIRES: the clone is paused.
Result<CloneStateSaved> SaveCloneState(
    vm::VmRuntime& vm, const CloneStateFiles& files,
    std::chrono::milliseconds idle_timeout = kCloneStreamIdleTimeout);

}  // namespace ferry::snapshot
