// MigrationSource: the source end of one live migration, as the phases of migration_protocol.h,
// one function (and one file) each:
//
//   Begin    migration_source_begin.cc    the peer, the lease, the owner's policy, the link
//   Prepare  migration_source_prepare.cc  the destination starts a waiting QEMU
//   Perform  migration_source_perform.cc  QEMU precopies; ferryd carries the stream
//   Finish   migration_source_finish.cc   "finish": from here only the destination runs the guest
//   Confirm  migration_source_confirm.cc  the copy here goes; the outcome
//
// What a failure undoes depends only on the stage the migration reached, and is decided in one
// place (Recover, migration_source.cc):
//
//   stage      a failure there
//   kBegin     closes the link if one is open, releases the lease if one is held
//   kPrepare   as kBegin: the destination drops what it prepared when the link ends
//   kPrepared  tells the destination to abort, then as kBegin
//   kPerform   tells the destination to abort, cancels or resumes QEMU's migration here (the
//              guest runs here again), drops the journal entry, releases the lease
//   kFinish    never resumes on a guess: asks the destination on a new link (Settle); the lease
//              stays held until it answers
//   kConfirm   nothing fails here: the destination runs the guest
//
// Thread-safety: one MigrationSource is used by one thread (the operation's), besides Perform's
// progress thread, which only reads QEMU's counters and sets the operation's phase.
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "core/operation.h"
#include "core/status.h"
#include "crypto/owner_policy.h"
#include "migrate/disk_mirror.h"
#include "migrate/migration_service.h"
#include "migrate/peer_link.h"
#include "migrate/qemu_stream.h"
#include "vm/vm_service.h"

namespace ferry::migrate {

class MigrationService::MigrationSource {
 public:
  // REQUIRES: `cancel` is the flag MigrationService::Cancel sets for `op`.
  MigrationSource(MigrationService& service, const MigrateRequest& request,
                  std::shared_ptr<Operation> op, std::shared_ptr<std::atomic<bool>> cancel);

  // Runs the phases in order. The summary for the operation: the guest runs on the destination.
  // An error: the migration stopped, and Recover did what its stage asks. The operation is left
  // to the caller either way.
  Result<nlohmann::json> Run();

 private:
  enum class Stage { kBegin, kPrepare, kPrepared, kPerform, kFinish, kConfirm };

  using Clock = std::chrono::steady_clock;
  static constexpr std::chrono::milliseconds kConnectTimeout{10000};
  static constexpr std::chrono::milliseconds kPrepareTimeout{120000};
  static constexpr std::chrono::milliseconds kReplyTimeout{60000};
  static constexpr std::chrono::milliseconds kSettleTimeout{30000};

  // The phases. Each one sets stage_ as it goes and returns the first error.
  Status Begin();
  Status Prepare();
  Status Perform();
  Status Finish();
  void Confirm();

  // Perform's steps.
  Status MirrorDisk();  // a VM with a data disk: its live copy, until in step
  Status ConfigureQemuMigration();
  Status StartQemuMigration();
  Status CarryStream();
  void ReportProgress(const std::atomic<bool>& pumping);
  // Waits (its own thread, while the stream is carried) for QEMU's pause before the switchover.
  void AwaitSwitchover(const std::atomic<bool>& pumping);
  // At QEMU's pause before the switchover: ends the disk copy in step, then lets QEMU go on.
  // On failure cancels QEMU's migration (the guest runs here again) and keeps the reason.
  void SwitchDiskOver();
  // At the switchover, the guest stopped: QEMU's end of the stream gets the full buffer for its
  // last pass, and ferryd lets go of it.
  void WidenStreamForLastPass();
  Result<nlohmann::json> AwaitQemuCompletion();

  // The failure table above: undoes what `stage_` holds. Returns the migration's outcome: `why`,
  // or Ok when a failed Finish turns out to have moved the guest after all.
  Status Recover(const Status& why);
  // Recover for kFinish.
  Status SettleAfterFailedFinish(const Status& why);
  void CloseLink();
  void ReleaseLease();
  bool Cancelled() const { return cancel_->load(); }
  nlohmann::json Summary() const;

  MigrationService& service_;
  const MigrateRequest request_;
  const std::shared_ptr<Operation> op_;
  const std::shared_ptr<std::atomic<bool>> cancel_;
  const std::string what_;  // "migration of vm NAME to HOST", for logs

  Stage stage_ = Stage::kBegin;
  std::optional<vm::VmLease> lease_;  // from Begin until released or the VM is deleted
  std::unique_ptr<PeerLink> link_;    // from Begin until Finish closes it
  std::optional<crypto::OwnerPolicy> policy_;
  int downtime_ms_ = 0;
  // ferryd's end of QEMU's migration stream. Open until the run ends, as it was when QEMU's
  // migration is cancelled after a failure.
  StreamFd stream_;
  // With a disk, a copy of QEMU's end, held from the precopy's start until the switchover
  // (WidenStreamForLastPass) or until the precopy ends otherwise: while it is open, ferryd's end
  // sees no EOF.
  StreamFd qemu_stream_end_;
  Clock::time_point started_;   // when QEMU was about to start sending
  nlohmann::json qemu_result_;  // QEMU's query-migrate reply once it completed
  // QEMU's migration parameters and capabilities as they stood when the precopy started
  // (query-migrate-parameters/-capabilities), for the summary: what QEMU ran with, not what
  // ferryd asked for.
  nlohmann::json qemu_settings_;
  PeerLink::Counters wire_;     // the link's counters when Finish closed it
  bool settled_there_ = false;  // a failed Finish learnt that the destination runs the guest
  // A VM with a data disk: what its images take here, the destination's token for the disk's
  // link, the live copy (Perform, destroyed before the lease) and why the switchover failed
  // (written by the progress thread, read after it was joined).
  uint64_t disk_bytes_ = 0;
  int64_t disk_copy_ms_ = 0;  // from the copy's start until it was in step
  // The switchover's own part of the downtime: from QEMU's pre-switchover event being seen to
  // the disk copy ended in step, and to migrate-continue answered (microseconds).
  int64_t switchover_seen_to_disk_done_us_ = 0;
  int64_t switchover_seen_to_continued_us_ = 0;
  std::optional<std::string> disk_token_;
  std::unique_ptr<DiskMirror> mirror_;
  std::optional<qemu::QmpClient::EventWaiter> switchover_events_;  // QEMU's MIGRATION events
  Status switchover_failure_;
};

// "12 MiB", for progress and logs.
std::string MigrationMib(uint64_t bytes);

}  // namespace ferry::migrate
