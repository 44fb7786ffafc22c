#include "migrate/disk_mirror.h"

#include <spdlog/spdlog.h>

#include <thread>

#include "crypto/aead.h"
#include "migrate/migration_messages.h"
#include "migrate/nbd_tls.h"
#include "qemu/launch_spec.h"
#include "qemu/qmp_commands.h"
#include "qemu/qmp_disk_mirror.h"

namespace ferry::migrate {
namespace {

using std::chrono::milliseconds;

constexpr const char* kClientFdName = "ferry-nbd";
constexpr const char* kTargetNode = "ferry-mirror-target";
constexpr const char* kJobId = "ferry-mirror";
constexpr milliseconds kLinkedTimeout{30000};
constexpr milliseconds kPollEvery{20};
constexpr milliseconds kConcludeTimeout{60000};

}  // namespace

Result<std::unique_ptr<DiskMirror>> DiskMirror::Start(vm::VmRuntime& rt, PeerLink& link,
                                                      const std::string& migration,
                                                      const std::string& token,
                                                      const std::string& key_dir,
                                                      std::string what) {
  std::unique_ptr<DiskMirror> mirror(new DiskMirror(rt, std::move(what)));
  FERRY_RETURN_IF_ERROR(SendPeerMessage(link, DiskLinkRequest{migration, token}));
  FERRY_RETURN_IF_ERROR(
      ExpectPeerMessage<DiskLinkedReply>(link, kLinkedTimeout, "the destination's disk-linked")
          .status());
  FERRY_ASSIGN_OR_RETURN(UniqueFd connection, link.HandOverSocket(kLinkedTimeout));
  FERRY_ASSIGN_OR_RETURN(std::string key, NbdTlsKey(token));
  auto keys = AddNbdTlsCreds(rt, /*server=*/false, key, key_dir);
  crypto::Wipe(key);
  if (!keys.ok()) return keys.status();
  mirror->creds_added_ = true;
  DropNbdTlsKeyDir(rt, *keys);  // the client read its key when its object was made
  FERRY_RETURN_IF_ERROR(rt.QmpPassFd(kClientFdName, connection.get()));
  connection.Reset();  // QEMU holds its own copy
  FERRY_ASSIGN_OR_RETURN(std::string node, qemu::QueryBlockNodeName(rt, qemu::kDiskDeviceId));
  FERRY_RETURN_IF_ERROR(
      qemu::BlockdevAddNbdOnFd(rt, kTargetNode, kClientFdName, qemu::kDiskExportName,
                               kNbdTlsCredsId)
          .WithContext("connecting to the destination's copy of the " + mirror->what_));
  mirror->node_added_ = true;
  // Watched before the job exists, so that its readiness cannot come unseen.
  auto ready_events = rt.WatchQmpEvent("BLOCK_JOB_READY");
  if (ready_events.ok()) mirror->ready_events_ = std::move(*ready_events);
  FERRY_RETURN_IF_ERROR(qemu::BlockdevMirrorWriteBlocking(rt, kJobId, node, kTargetNode));
  mirror->job_started_ = true;
  return mirror;
}

DiskMirror::~DiskMirror() {
  if (!completed_) Abandon();
  ReleaseTarget();
}

Status DiskMirror::AwaitReady(const std::function<void(uint64_t, uint64_t)>& progress,
                              const std::function<bool()>& keep_going) {
  for (;;) {
    if (!keep_going()) return Status::Cancelled("the copy of the " + what_ + " was stopped");
    FERRY_ASSIGN_OR_RETURN(auto job, qemu::QueryBlockJob(rt_, kJobId));
    if (!job) return Status::Unavailable("QEMU's copy of the " + what_ + " ended by itself");
    copied_ = job->offset;
    const bool target_failed = job->status == "paused" && job->io_status != "ok";
    if (!job->error.empty() || job->status == "concluded" || target_failed) {
      return Status::Unavailable("the copy of the " + what_ + " failed (" +
                                 (!job->error.empty() ? job->error
                                  : target_failed ? "the destination's copy cannot be written"
                                                  : "it ended early") +
                                 "); the VM runs on here with its disk as it was");
    }
    if (progress) progress(job->offset, job->length);
    if (job->ready) return Status::Ok();
    // Woken at once by the job's readiness; the look every kPollEvery carries the progress.
    if (ready_events_) {
      (void)ready_events_->Wait(kPollEvery);
    } else {
      std::this_thread::sleep_for(kPollEvery);
    }
  }
}

Status DiskMirror::Complete() {
  auto changes = rt_.WatchQmpEvent("JOB_STATUS_CHANGE");
  FERRY_RETURN_IF_ERROR(qemu::BlockJobCancel(rt_, kJobId, /*force=*/false));
  FERRY_RETURN_IF_ERROR(AwaitConcluded(kConcludeTimeout, changes.ok() ? &*changes : nullptr,
                                       /*dismiss_later=*/true));
  job_started_ = false;
  completed_ = true;
  return Status::Ok();
}

void DiskMirror::ReleaseTarget() {
  if (dismiss_owed_) (void)qemu::JobDismiss(rt_, kJobId);
  dismiss_owed_ = false;
  if (!completed_ || !node_added_) return;
  // The destination has every block; its NBD server stops before its guest resumes.
  if (Status deleted = qemu::BlockdevDel(rt_, kTargetNode); !deleted.ok()) {
    spdlog::warn("{}: deleting the copy's client node: {}", what_, deleted.message());
  }
  node_added_ = false;
  RemoveCreds();
}

void DiskMirror::RemoveCreds() {
  if (creds_added_ && !node_added_) (void)qemu::ObjectDel(rt_, kNbdTlsCredsId);
  creds_added_ = false;
}

namespace {

// The next of the job's statuses worth acting on ("pending", "concluded") its events announce
// within `wait`; "" when none did (or there are no events: then after a short sleep).
std::string NextJobStatus(qemu::QmpClient::EventWaiter* changes, milliseconds wait) {
  if (!changes) {
    std::this_thread::sleep_for(wait / 10);
    return "";
  }
  const auto until = std::chrono::steady_clock::now() + wait;
  for (;;) {
    auto left = std::chrono::duration_cast<milliseconds>(until - std::chrono::steady_clock::now());
    if (left.count() <= 0) return "";
    auto event = changes->Wait(left);
    if (!event.ok()) return "";
    const auto& data = event->data;
    if (!data.is_object() || data.value("id", std::string()) != kJobId) continue;
    std::string status = data.value("status", std::string());
    if (status == "pending" || status == "concluded") return status;
  }
}

}  // namespace

Status DiskMirror::AwaitConcluded(milliseconds timeout, qemu::QmpClient::EventWaiter* changes,
                                  bool dismiss_later) {
  const auto until = std::chrono::steady_clock::now() + timeout;
  // With events, the first look waits for one: the job was just told to end.
  std::string announced = changes ? NextJobStatus(changes, kPollEvery) : "";
  for (;;) {
    if (announced == "pending") {
      (void)qemu::JobFinalize(rt_, kJobId);
      announced = NextJobStatus(changes, kPollEvery);
      continue;
    }
    FERRY_ASSIGN_OR_RETURN(auto job, qemu::QueryBlockJob(rt_, kJobId));
    if (!job) return Status::Unavailable("QEMU's copy of the " + what_ + " vanished");
    if (job->status == "pending") {
      (void)qemu::JobFinalize(rt_, kJobId);
    } else if (job->status == "concluded") {
      if (dismiss_later) {
        dismiss_owed_ = true;
      } else {
        (void)qemu::JobDismiss(rt_, kJobId);
      }
      if (!job->error.empty()) {
        return Status::Unavailable("the copy of the " + what_ +
                                   " failed at the end: " + job->error);
      }
      copied_ = job->offset;
      return Status::Ok();
    }
    if (std::chrono::steady_clock::now() > until) {
      return Status::DeadlineExceeded("the copy of the " + what_ + " did not end in " +
                                      std::to_string(timeout.count() / 1000) + " s");
    }
    announced = NextJobStatus(changes, kPollEvery);
  }
}

void DiskMirror::Abandon() {
  // The job ends with the guest stopped and its I/O drained (see qemu::JobFinalize); a guest
  // that ran goes on right after, on its own image, which the copy never wrote.
  auto status = qemu::QueryStatus(rt_);
  const bool was_running = status.ok() && status->running;
  if ((job_started_ || node_added_) && was_running) (void)qemu::Stop(rt_);
  if (job_started_) {
    if (Status cancelled = qemu::BlockJobCancel(rt_, kJobId, /*force=*/true); !cancelled.ok()) {
      spdlog::warn("{}: cancelling the copy: {}", what_, cancelled.message());
    }
    (void)AwaitConcluded(milliseconds(10000));
    job_started_ = false;
  }
  if (node_added_) {
    (void)qemu::BlockdevDel(rt_, kTargetNode);
    node_added_ = false;
  }
  if (was_running) {
    if (Status resumed = qemu::Cont(rt_); !resumed.ok()) {
      spdlog::error("{}: resuming the guest after the copy stopped: {}", what_, resumed.message());
    }
  }
  RemoveCreds();
}

}  // namespace ferry::migrate
