// The source's half of a storage migration (migration_protocol.h, "A VM with a data disk"): the
// VM's data disk copied live into the destination's NBD export while the guest runs.
//
//   Start     a second link to the destination, proven with the token of its "prepared", whose
//             TCP connection, once both agents ended their TLS on it in step
//             (PeerLink::HandOverSocket), QEMU's NBD client gets (getfd), to speak TLS with a
//             key both agents derive from the token (nbd_tls.h); blockdev-mirror of the disk's
//             active node into the client node, sync=full (the whole chain lands in one image
//             there), copy-mode=write-blocking (a guest write completes once it is on both
//             sides, so the copy converges under any write load).
//   AwaitReady  until the job says ready (woken by BLOCK_JOB_READY, and a look every 20 ms for
//             progress and failures): from here both sides stay equal.
//   Complete  at the switchover, with the guest stopped before QEMU sends its last memory pass
//             (pause-before-switchover): block-job-cancel of the ready job ends the copy with
//             the target equal to the source, and leaves the guest on its own image. Its steps
//             follow QEMU's JOB_STATUS_CHANGE events, not a timer: all of it is downtime.
//   ReleaseTarget  deletes the client node, once the guest's last memory pass is on its way:
//             nothing uses it after Complete, so it need not count as downtime.
//   Abandon   after a failure: the job cancelled (force), the client node deleted (which
//             closes the connection). The source's own image is never written by any of this: the
//             mirror only reads it, so every fault that leaves the VM here leaves its disk as it
//             was.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "core/status.h"
#include "migrate/peer_link.h"
#include "vm/vm_runtime.h"

namespace ferry::migrate {

class DiskMirror {
 public:
  // `link`: a new link to the destination, nothing sent on it yet; handed over to QEMU here.
  // `key_dir`: where QEMU reads its TLS key from (made and removed here). `what`: "disk of vm
  // db".
  static Result<std::unique_ptr<DiskMirror>> Start(vm::VmRuntime& rt, PeerLink& link,
                                                   const std::string& migration,
                                                   const std::string& token,
                                                   const std::string& key_dir, std::string what);
  DiskMirror(const DiskMirror&) = delete;
  DiskMirror& operator=(const DiskMirror&) = delete;
  ~DiskMirror();  // Abandon() unless Complete() succeeded, else ReleaseTarget()

  // Waits until the copy is in step. `progress(copied, total)` is called as it goes; `keep_going`
  // is asked between polls (false: Cancelled). The job failing (the link cut, the destination's
  // QEMU gone) is Unavailable with QEMU's reason.
  Status AwaitReady(const std::function<void(uint64_t, uint64_t)>& progress,
                    const std::function<bool()>& keep_going);
  // Ends the copy in step. REQUIRES: the guest is stopped (pre-switchover).
  Status Complete();
  // Deletes the NBD client node after Complete (best effort: the QEMU it lives in is done).
  void ReleaseTarget();
  // Undoes Start; idempotent.
  void Abandon();

  uint64_t bytes_copied() const { return copied_; }

 private:
  DiskMirror(vm::VmRuntime& rt, std::string what) : rt_(rt), what_(std::move(what)) {}
  // Waits until QEMU's job has concluded, finalizing it when pending; its error, if any.
  // `changes`, if given, drives the wait: the job's "pending" is finalized as it is announced
  // and only its "concluded" is looked at (each QMP round trip at the switchover is downtime);
  // without events, or when none comes within a poll, the job is queried. The concluded job is
  // dismissed here unless `dismiss_later` (ReleaseTarget does it, after the guest's last pass).
  Status AwaitConcluded(std::chrono::milliseconds timeout,
                        qemu::QmpClient::EventWaiter* changes = nullptr,
                        bool dismiss_later = false);
  // Deletes the client's TLS object once no node uses it.
  void RemoveCreds();

  vm::VmRuntime& rt_;
  const std::string what_;
  std::optional<qemu::QmpClient::EventWaiter> ready_events_;
  bool creds_added_ = false;
  bool node_added_ = false;
  bool job_started_ = false;
  bool completed_ = false;
  bool dismiss_owed_ = false;  // concluded, not yet dismissed
  uint64_t copied_ = 0;
};

}  // namespace ferry::migrate
