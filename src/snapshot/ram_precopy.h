// A live snapshot's RAM copied while the guest runs: QEMU's own dirty tracking drives it.
//
// ferryd migrates the running VM into a socket it reads itself (x-ignore-shared off, so the
// guest's RAM backend, ram0, is in the stream), with pause-before-switchover on when something
// must happen at the instant (a data disk to freeze):
//
//   active          QEMU sends every page, then the pages dirtied since, pass after pass; each
//                   page is written at its offset into the snapshot's RAM image (a ZERO record
//                   for a page written before punches it out again). The guest runs.
//   pre-switchover  the dirty rest is small enough for the downtime limit: QEMU has stopped the
//                   guest and waits. This is the snapshot's instant: the disk is frozen here.
//                   Without a disk QEMU goes on at once: its stop is the instant.
//   completed       migrate-continue: the last dirty pages and the device state follow; the
//                   device state is kept without ram0's pages (stream_ram_split.h), so a clone
//                   loads it, with x-ignore-shared off, over a mapping of the image. Then cont.
//
// The image's chunk table (ram_image.h) is kept page by page as the stream is written, a page
// sent again replacing its CRC (ram_digest.h), so the finished image is sealed (synced, mode
// 0400) without being read back.
//
// The guest stands still only from QEMU's stop to the cont: the last pass, the disk freeze and
// the device state, whatever the RAM's size. Every byte of the stream is read fail-closed
// (qemu/migration_stream.h): QEMU's process is no more trusted than the guest in it.
//
// On any failure the migration is cancelled and the guest resumed if it was stopped; the image
// and device state files are the caller's to remove.
//
// Why pre-copy and not copy-before-write (userfaultfd write-protect): write-protect is per
// mapping, so ferryd cannot protect the RAM QEMU writes through its own mapping; QEMU's own
// background-snapshot needs userfaultfd, which QEMU under ferryd's per-VM uid is refused; and its
// pause, write-protecting every page, grows with RAM (12 ms at 256 MiB, 262 ms at 4 GiB on the
// test host). docs/snapshots.md has the measurements (bench/uffd_wp_probe.cc, snapshot_pause).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "core/status.h"
#include "core/unique_fd.h"
#include "snapshot/stream_ram_split.h"

namespace ferry {
class Operation;
}
namespace ferry::vm {
class VmRuntime;
}

namespace ferry::snapshot {

struct PrecopyOptions {
  std::string what;  // "copying RAM", for errors and logs
  // QEMU's guest RAM block must be exactly this long; the image file is image_bytes long.
  StreamRamSplitLimits limits;
  // QEMU switches over when it expects the rest to take less than this, at the bandwidth it
  // measured while copying. Under a write load the pause of a 4 GiB guest was 1.67x a 256 MiB
  // one's with 10 ms, 1.07x with 5 ms, the copy as long (bench/README.md, snapshot_pause).
  std::chrono::milliseconds downtime_limit{5};
  // The whole copy; past it the migration is cancelled and the guest runs on.
  std::chrono::milliseconds timeout{std::chrono::minutes(10)};
};

struct PrecopyResult {
  // QEMU's stop to the cont that resumed the guest. By the timestamps of QEMU's STOP and RESUME
  // events when QEMU sent both (pause_us; pause_ms is then it rounded up), else QEMU's downtime
  // plus the time to the cont's reply, in whole ms (pause_us 0).
  int64_t pause_ms = 0;
  int64_t pause_us = 0;
  int64_t copy_ms = 0;        // migrate to completed
  int64_t switchover_ms = 0;  // what the at_switchover step took, inside the pause
  uint64_t passes = 0;        // RAM sections QEMU sent
  int64_t seal_ms = 0;        // after the stream's end: chunk table folded, image synced, 0400
  StreamRamSplitStats split;
  RamImage ram;  // the image's chunk table, as VerifyRamFile finds it (copy_micros unset)
};

// Copies the running VM `rt` into `image_path` (created, must not exist; left mode 0400) and
// `device_state_path` (created), calling `at_switchover`, unless empty, while the guest is
// stopped at the snapshot's instant (a failure there cancels). REQUIRES: the guest runs; its RAM is
// its own share=on file.
Result<PrecopyResult> PrecopySnapshot(vm::VmRuntime& rt, const std::string& image_path,
                                      const std::string& device_state_path,
                                      const std::function<Status()>& at_switchover, Operation& op,
                                      const PrecopyOptions& options);

}  // namespace ferry::snapshot
