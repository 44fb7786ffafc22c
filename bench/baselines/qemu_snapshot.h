// QEMU's own live snapshot of a running QEMU into a file: what ferry's live snapshot is measured
// against (entry snapshot_pause) and what the copy-before-write probe (uffd_wp_probe.cc) tries.
//
//   background   migrate-set-capabilities background-snapshot=on (QEMU 7.2): QEMU stops the
//                guest, saves CPU and device state into a buffer, write-protects guest RAM with
//                userfaultfd (UFFDIO_WRITEPROTECT), resumes the guest, then writes every page
//                to the file, copying a page first when the guest is about to write it
//                (copy-before-write); the device state follows the pages. The pause is the
//                stop to the resume only.
//   stop+save    what QEMU offers where background-snapshot is refused: `stop`, `migrate` to
//                the file with the guest stopped, `cont`. The pause is the whole save.
//
// Both write to a regular file QEMU gets as a descriptor (QMP getfd, URI `fd:NAME`), with
// x-ignore-shared off (every RAM page in the stream) and max-bandwidth unthrottled, as ferryd
// sets it for its own copy.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

#include "core/status.h"
#include "qemu/qmp_client.h"

namespace ferry::bench {

enum class QemuSnapshotKind { kBackground, kStopAndSave };
const char* QemuSnapshotKindName(QemuSnapshotKind kind);  // "background-snapshot", "stop+save"

// Whether this QEMU takes background-snapshot for its guest RAM as it is configured: sets the
// capability (and leaves it set) or says why not, QEMU's words in `refusal`.
QemuSnapshotKind ChooseQemuSnapshotKind(qemu::QmpClient& qmp, std::string* refusal);

struct QemuSnapshotFigures {
  double total_ms = 0;     // `migrate` (stop+save: `stop`) sent to the file complete
  double pause_ms = 0;     // the guest's STOP to RESUME event, by QEMU's own event timestamps
  double downtime_ms = 0;  // query-migrate's downtime once completed
  uint64_t file_bytes = 0;
};

// Takes one snapshot of the running guest into `file` (created; the caller removes it).
// REQUIRES: ChooseQemuSnapshotKind said `kind` on this QEMU.
Result<QemuSnapshotFigures> TakeQemuSnapshot(qemu::QmpClient& qmp, QemuSnapshotKind kind,
                                             const std::string& file,
                                             std::chrono::milliseconds timeout);

}  // namespace ferry::bench
