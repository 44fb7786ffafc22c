#include "bench/baselines/bare_migration.h"

#include <unistd.h>

#include <algorithm>
#include <thread>
#include <vector>

#include "bench/drivers/ferry_ops.h"
#include "bench/harness/testbed.h"
#include "core/files.h"
#include "core/ids.h"
#include "vm/vm_disk.h"

namespace ferry::bench {

using nlohmann::json;
using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

namespace {

constexpr milliseconds kQmpTimeout(30000);
constexpr milliseconds kMoveTimeout(600000);
constexpr milliseconds kPoll(10);  // as ferryd polls query-migrate once the stream is through
constexpr int64_t kUnlimitedBandwidth = int64_t{1} << 40;  // what ferryd sets: no throttle
constexpr const char* kTlsObjectId = "tls0";
// The disk's copy, named as ferryd names its own (disk_mirror.cc, qmp_disk_mirror.h).
constexpr const char* kMirrorTarget = "bench-mirror-target";
constexpr const char* kMirrorJob = "bench-mirror";
constexpr const char* kExportId = "bench-disk";
constexpr const char* kExportName = "disk";
constexpr uint16_t kNbdPortOffset = 1000;  // the NBD server's port: the migration's + this
constexpr milliseconds kConcludePoll(2);   // as ferryd's DiskMirror::AwaitConcluded
constexpr milliseconds kEventWait(100);

double Number(const json& j, const char* key) {
  return j.contains(key) && j[key].is_number() ? j[key].get<double>() : 0.0;
}

}  // namespace

BareLaunch BareMigrationContext::SourceSpec(const std::string& name, const std::string& guest_dir,
                                            uint64_t memory_mib, const std::string& tap,
                                            const std::string& disk) const {
  BareLaunch b = guest->BareSpec(name, guest_dir, ram_dir, memory_mib, 0);
  // As VmLauncher::LaunchSpecFor does for --net tap: the address on the kernel command line for
  // the image's init, and a tap NIC without forwards, on a queue of the tap opened beforehand.
  b.spec.kernel_cmdline +=
      " ferry.ip=" + std::string(kGuestAddress) + "/" + std::to_string(kPrefix);
  b.spec.nics[0].backend = qemu::NicSpec::Backend::kTap;
  b.spec.nics[0].forwards.clear();
  b.files.tap = tap;
  b.files.disk = disk;
  return b;
}

Status BareMigrationContext::CheckSameCommandLine(const json& show, uint64_t disk_mib) const {
  std::vector<std::string> ferry_argv = show.value("qemu_argv", std::vector<std::string>{});
  PerVmValues ferry_vm = PerVmValues::FromShow(show);
  if (ferry_argv.empty() || show.value("tap", "").empty()) {
    return Status::FailedPrecondition("`ferry vm show --json` of a tap VM has no qemu_argv or tap");
  }
  const std::string check_dir = dir + "/check";
  const std::string tap = "fbcheck";
  FERRY_RETURN_IF_ERROR(MakeDirs(check_dir, 0700));
  // Named as ferryd names a VM's disk: QEMU's node name comes from the file's name.
  const std::string disk = disk_mib == 0 ? "" : check_dir + "/disk.qcow2";
  BareLaunch bare =
      SourceSpec("check", check_dir, show.value("memory_mib", uint64_t{256}), tap, disk);
  if (!disk.empty()) {
    FERRY_RETURN_IF_ERROR(
        vm::CreateBlankDisk(vm::QemuImgFor(bare.spec.qemu_binary), disk, disk_mib));
  }
  // Opened for real, tap included, so the descriptor numbers are the ones a bare QEMU gets;
  // nothing runs.
  const Status tap_made = hosts->AddTap(1, tap);
  Result<BareLaunch::Opened> opened =
      tap_made.ok() ? bare.Open(hosts->Host(1)) : Result<BareLaunch::Opened>(tap_made);
  hosts->RemoveTap(1, tap);
  RemoveAll(check_dir);
  ::unlink(bare.ram_path.c_str());
  if (!opened.ok()) return opened.status().WithContext("checking the bare command line");
  return CompareCommandLines(
      ferry_argv, ferry_vm, opened->argv,
      PerVmValues::FromSpec(bare.spec, 0,
                            std::string(kGuestAddress) + "/" + std::to_string(kPrefix)),
      "make BareMigrationContext::SourceSpec in bench/bare_migration.cc fill the LaunchSpec and "
      "its files as ferryd does for a tap VM");
}

BareMigratingGuest::BareMigratingGuest(const BareMigrationContext& ctx, BareTransport transport,
                                       std::string name, uint64_t memory_mib, uint16_t port,
                                       uint64_t disk_mib)
    : ctx_(ctx),
      transport_(transport),
      name_(std::move(name)),
      memory_mib_(memory_mib),
      port_(port),
      disk_mib_(disk_mib) {
  source_dir_ = ctx_.dir + "/" + name_ + "-src";
  dest_dir_ = ctx_.dir + "/" + name_ + "-dst";
  source_tap_ = "fbs" + name_;
  dest_tap_ = "fbd" + name_;
}

BareMigratingGuest::~BareMigratingGuest() {
  source_.reset();  // kills QEMU, removes its RAM file
  dest_.reset();
  ctx_.hosts->RemoveTap(1, source_tap_);
  ctx_.hosts->RemoveTap(2, dest_tap_);
  RemoveAll(source_dir_);
  RemoveAll(dest_dir_);
}

Result<std::unique_ptr<BareMigratingGuest>> BareMigratingGuest::Boot(
    const BareMigrationContext& ctx, BareTransport transport, const std::string& name,
    uint64_t memory_mib, uint16_t port, uint64_t disk_mib) {
  std::unique_ptr<BareMigratingGuest> g(
      new BareMigratingGuest(ctx, transport, name, memory_mib, port, disk_mib));
  FERRY_RETURN_IF_ERROR(MakeDirs(g->source_dir_, 0700));
  FERRY_RETURN_IF_ERROR(MakeDirs(g->dest_dir_, 0700));
  const std::string qemu_img = vm::QemuImgFor(ctx.guest->qemu_binary);
  for (int host = 1; host <= 2 && disk_mib != 0; ++host) {
    FERRY_RETURN_IF_ERROR(vm::CreateBlankDisk(qemu_img, g->DiskPath(host), disk_mib));
  }
  FERRY_RETURN_IF_ERROR(ctx.hosts->AddTap(1, g->source_tap_));
  BareQemuOptions options;
  options.netns = ctx.hosts->Host(1);
  if (transport == BareTransport::kTls) {
    options.extra_args = {"-object", std::string("tls-creds-x509,id=") + kTlsObjectId +
                                         ",dir=" + qemu::EscapeOptionValue(ctx.tls.client_dir) +
                                         ",endpoint=client"};
  }
  FERRY_ASSIGN_OR_RETURN(g->source_,
                         BareQemu::Launch(ctx.SourceSpec(name + "-src", g->source_dir_, memory_mib,
                                                         g->source_tap_, g->DiskPath(1)),
                                          g->source_dir_ + "/qemu.log", options));
  auto ready = g->source_->WaitForConsole(ctx.guest->image.ready_marker, kVmBootTimeout);
  if (!ready.ok()) return ready.status().WithContext("bare QEMU " + name + " booting in h1");
  return g;
}

std::string BareMigratingGuest::DiskPath(int host) const {
  if (disk_mib_ == 0) return "";
  return (host == 1 ? source_dir_ : dest_dir_) + "/disk.qcow2";
}

Status BareMigratingGuest::SetUpSource(qemu::QmpClient& qmp) {
  const bool disk = disk_mib_ != 0;
  FERRY_RETURN_IF_ERROR(
      qmp.Execute("migrate-set-capabilities",
                  {{"capabilities",
                    json::array({{{"capability", "auto-converge"}, {"state", true}},
                                 {{"capability", "x-ignore-shared"}, {"state", false}},
                                 {{"capability", "events"}, {"state", disk}},
                                 {{"capability", "pause-before-switchover"}, {"state", disk}}})}})
          .status());
  json params = {{"downtime-limit", ctx_.downtime_limit_ms},
                 {"max-bandwidth", kUnlimitedBandwidth}};
  if (transport_ == BareTransport::kTls) params["tls-creds"] = kTlsObjectId;
  return qmp.Execute("migrate-set-parameters", params).status();
}

Result<MoveFigures> BareMigratingGuest::MoveToH2() {
  FERRY_ASSIGN_OR_RETURN(qemu::QmpClient * src, source_->Qmp(kQmpTimeout));
  // The destination keeps the guest's VM generation id, as ferryd's destination does: a new one
  // would tell the guest it is a copy.
  FERRY_ASSIGN_OR_RETURN(json guid, src->Execute("query-vm-generation-id"));
  FERRY_RETURN_IF_ERROR(SetUpSource(*src));
  MoveFigures f;
  // As ferryd reads them back for its summary: what QEMU runs with.
  if (auto p = src->Execute("query-migrate-parameters"); p.ok()) f.qemu_settings["parameters"] = *p;
  if (auto c = src->Execute("query-migrate-capabilities"); c.ok()) {
    f.qemu_settings["capabilities"] = *c;
  }
  FERRY_ASSIGN_OR_RETURN(json status, src->Execute("query-status"));
  if (status.value("status", "") != "running") {
    return Status::FailedPrecondition("bare source " + name_ + " is " +
                                      status.value("status", "?") + ", not running");
  }

  const std::string uri = "tcp:" + NamespaceHosts::HostAddress(2) + ":" + std::to_string(port_);
  BareLaunch launch =
      ctx_.SourceSpec(name_ + "-dst", dest_dir_, memory_mib_, dest_tap_, DiskPath(2));
  launch.spec.nics[0].mac = source_->launch().spec.nics[0].mac;
  if (auto id = Guid::Parse(guid.value("guid", "")); id.ok()) launch.spec.vmgenid = *id;
  BareQemuOptions options;
  options.netns = ctx_.hosts->Host(2);
  if (transport_ == BareTransport::kTls) {
    options.extra_args = {"-object",
                          std::string("tls-creds-x509,id=") + kTlsObjectId +
                              ",dir=" + qemu::EscapeOptionValue(ctx_.tls.server_dir) +
                              ",endpoint=server,verify-peer=on",
                          "-incoming", "defer"};
  } else {
    options.extra_args = {"-incoming", uri};
  }
  FERRY_RETURN_IF_ERROR(ctx_.hosts->AddTap(2, dest_tap_));

  // The wall clock starts where ferry's CLI starts its destination: the destination QEMU.
  const auto started = Clock::now();
  FERRY_ASSIGN_OR_RETURN(dest_, BareQemu::Launch(launch, dest_dir_ + "/qemu.log", options));
  FERRY_ASSIGN_OR_RETURN(qemu::QmpClient * dst, dest_->Qmp(kQmpTimeout));
  if (transport_ == BareTransport::kTls) {
    FERRY_RETURN_IF_ERROR(
        dst->Execute("migrate-set-parameters", {{"tls-creds", kTlsObjectId}}).status());
    FERRY_RETURN_IF_ERROR(dst->Execute("migrate-incoming", {{"uri", uri}}).status());
  }
  if (disk_mib_ != 0) {
    FERRY_RETURN_IF_ERROR(ExportDisk(*dst));
    FERRY_RETURN_IF_ERROR(MirrorDisk(*src, f));
  }
  // Watched before QEMU can reach it, as ferryd does.
  qemu::QmpClient::EventWaiter events = src->WatchEvent("MIGRATION");
  FERRY_RETURN_IF_ERROR(src->Execute("migrate", {{"uri", uri}}).status());
  if (disk_mib_ != 0) {
    FERRY_RETURN_IF_ERROR(AwaitPreSwitchover(*src, events));
    const auto seen = Clock::now();
    FERRY_RETURN_IF_ERROR(SwitchDiskOver(*src, f));
    f.switchover_ms = DurationMs(Clock::now() - seen);
  }
  json done;
  FERRY_RETURN_IF_ERROR(AwaitCompleted(*src, done));
  if (disk_mib_ != 0) (void)dst->Execute("nbd-server-stop");
  const auto deadline = Clock::now() + kMoveTimeout;

  f.qemu_total_ms = Number(done, "total-time");
  f.qemu_downtime_ms = Number(done, "downtime");
  f.qemu_setup_ms = Number(done, "setup-time");
  f.qemu_migrate = done;
  f.ram_transferred_bytes =
      static_cast<uint64_t>(Number(done.value("ram", json::object()), "transferred"));
  // The destination resumes on its own once it has loaded the stream (no -S): wait for that.
  while (true) {
    if (Interrupted()) return Status::Unavailable("interrupted");
    if (!dest_->Running()) {
      f.destination_exited = true;
      break;
    }
    auto st = dst->Execute("query-status");
    if (st.ok() && st->value("status", "") == "running") break;
    if (!st.ok() && !dest_->Running()) {
      f.destination_exited = true;
      break;
    }
    if (Clock::now() > deadline) {
      return Status::DeadlineExceeded("the destination of " + name_ + " did not run within " +
                                      std::to_string(kMoveTimeout.count() / 1000) + " s");
    }
    std::this_thread::sleep_for(kPoll);
  }
  f.wall_ms = DurationMs(Clock::now() - started);
  return f;
}

Status BareMigratingGuest::AwaitCompleted(qemu::QmpClient& src, json& done) {
  const auto deadline = Clock::now() + kMoveTimeout;
  while (done.is_null()) {
    if (Interrupted()) return Status::Unavailable("interrupted");
    if (Clock::now() > deadline) {
      return Status::DeadlineExceeded("bare migration of " + name_ + " did not complete within " +
                                      std::to_string(kMoveTimeout.count() / 1000) + " s");
    }
    FERRY_ASSIGN_OR_RETURN(json q, src.Execute("query-migrate"));
    const std::string s = q.value("status", "");
    // QEMU 7.2 says completed a moment before it fills in total-time and downtime (0 until then).
    if (s == "completed" && Number(q, "total-time") > 0) done = q;
    if (s == "failed" || s == "cancelled") {
      return Status::Unavailable(
          "bare migration of " + name_ + " " + s + ": " +
          q.value("error-desc", std::string("no reason given")) +
          "; destination QEMU said: " + TailFile(dest_dir_ + "/qemu.log", 300));
    }
    if (done.is_null()) std::this_thread::sleep_for(kPoll);
  }
  return Status::Ok();
}

Status BareMigratingGuest::ExportDisk(qemu::QmpClient& dst) {
  const json inet = {{"host", NamespaceHosts::HostAddress(2)},
                     {"port", std::to_string(port_ + kNbdPortOffset)}};
  json start = {{"addr", {{"type", "inet"}, {"data", inet}}}};
  if (transport_ == BareTransport::kTls) start["tls-creds"] = kTlsObjectId;
  FERRY_RETURN_IF_ERROR(dst.Execute("nbd-server-start", start).status());
  return dst
      .Execute("block-export-add", {{"type", "nbd"},
                                    {"id", kExportId},
                                    {"node-name", qemu::DiskNodeName(DiskPath(2))},
                                    {"name", kExportName},
                                    {"writable", true}})
      .status();
}

Status BareMigratingGuest::MirrorDisk(qemu::QmpClient& src, MoveFigures& f) {
  const auto started = Clock::now();
  json target = {{"driver", "nbd"},
                 {"node-name", kMirrorTarget},
                 {"server",
                  {{"type", "inet"},
                   {"host", NamespaceHosts::HostAddress(2)},
                   {"port", std::to_string(port_ + kNbdPortOffset)}}},
                 {"export", kExportName}};
  if (transport_ == BareTransport::kTls) target["tls-creds"] = kTlsObjectId;
  FERRY_RETURN_IF_ERROR(src.Execute("blockdev-add", target).status());
  qemu::QmpClient::EventWaiter ready = src.WatchEvent("BLOCK_JOB_READY");
  FERRY_RETURN_IF_ERROR(src.Execute("blockdev-mirror", {{"job-id", kMirrorJob},
                                                        {"device", qemu::DiskNodeName(DiskPath(1))},
                                                        {"target", kMirrorTarget},
                                                        {"sync", "full"},
                                                        {"copy-mode", "write-blocking"},
                                                        {"auto-dismiss", false}})
                            .status());
  const auto deadline = started + kMoveTimeout;
  for (;;) {
    if (Interrupted()) return Status::Unavailable("interrupted");
    auto event = ready.Wait(kEventWait);
    if (event.ok()) break;
    if (event.status().code() != Status::Code::kDeadlineExceeded) return event.status();
    FERRY_ASSIGN_OR_RETURN(json jobs, src.Execute("query-block-jobs"));
    if (jobs.empty() || Clock::now() > deadline) {
      return Status::Unavailable("the bare disk copy of " + name_ +
                                 " ended or took too long: " + jobs.dump().substr(0, 200));
    }
  }
  f.disk_copy_ms = DurationMs(Clock::now() - started);
  return Status::Ok();
}

Status BareMigratingGuest::AwaitPreSwitchover(qemu::QmpClient& src,
                                              qemu::QmpClient::EventWaiter& events) {
  const auto deadline = Clock::now() + kMoveTimeout;
  for (;;) {
    if (Interrupted()) return Status::Unavailable("interrupted");
    auto event = events.Wait(kEventWait);
    if (event.ok()) {
      if (event->data.is_object() && event->data.value("status", "") == "pre-switchover") {
        return Status::Ok();
      }
      continue;
    }
    if (event.status().code() != Status::Code::kDeadlineExceeded) return event.status();
    FERRY_ASSIGN_OR_RETURN(json q, src.Execute("query-migrate"));
    const std::string s = q.value("status", "");
    if (s == "pre-switchover") return Status::Ok();
    if (s == "failed" || s == "cancelled" || Clock::now() > deadline) {
      return Status::Unavailable("bare migration of " + name_ + " " + s + " before the switchover");
    }
  }
}

Status BareMigratingGuest::SwitchDiskOver(qemu::QmpClient& src, MoveFigures& f) {
  FERRY_RETURN_IF_ERROR(
      src.Execute("block-job-cancel", {{"device", kMirrorJob}, {"force", false}}).status());
  const auto deadline = Clock::now() + kQmpTimeout;
  for (;;) {
    FERRY_ASSIGN_OR_RETURN(json jobs, src.Execute("query-block-jobs"));
    if (jobs.empty() || !jobs[0].is_object()) {
      return Status::Unavailable("the bare disk copy of " + name_ + " vanished");
    }
    if (jobs[0].value("status", "") == "concluded") {
      f.disk_bytes_copied = jobs[0].value("offset", uint64_t{0});
      if (jobs[0].contains("error")) {
        return Status::Unavailable("the bare disk copy failed: " + jobs[0].dump());
      }
      break;
    }
    if (Clock::now() > deadline) {
      return Status::DeadlineExceeded("the bare disk copy of " + name_ + " did not end");
    }
    std::this_thread::sleep_for(kConcludePoll);
  }
  FERRY_RETURN_IF_ERROR(src.Execute("job-dismiss", {{"id", kMirrorJob}}).status());
  FERRY_RETURN_IF_ERROR(src.Execute("blockdev-del", {{"node-name", kMirrorTarget}}).status());
  return src.Execute("migrate-continue", {{"state", "pre-switchover"}}).status();
}

std::string BareMigratingGuest::Console(int host, size_t max_bytes) {
  const auto& qemu = host == 1 ? source_ : dest_;
  return qemu ? TailFile(qemu->launch().files.console_log, max_bytes) : "";
}

}  // namespace ferry::bench
