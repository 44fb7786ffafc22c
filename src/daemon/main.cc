// ferryd: one per host. Wiring only: flags, the state-directory lock, the VM service, the API.
#include <fcntl.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/file.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <ctime>
#include <optional>

#include "api/api_server.h"
#include "api/telemetry.h"
#include "cli/manual.h"
#include "core/files.h"
#include "core/service_notify.h"
#include "hold/host_store.h"
#include "migrate/migration_service.h"
#include "snapshot/spare_qemus.h"
#include "vm/qemu_user.h"
#include "vm/vm_service.h"

// Where the .deb puts the default image (CMakeLists.txt); a build tree's ferryd looks in its
// own images/ first.
#define FERRY_INSTALLED_IMAGE_DIR "/usr/lib/ferry/images"
#ifndef FERRY_DEFAULT_IMAGE_DIR
#define FERRY_DEFAULT_IMAGE_DIR FERRY_INSTALLED_IMAGE_DIR
#endif

namespace {

// Everything ferryd's flags set.
struct DaemonFlags {
  ferry::vm::ServiceConfig config;
  ferry::migrate::MigrationConfig migration;
  std::string socket_path;
  std::string log_level = "info";
  int ready_timeout_s = 300;
  std::string qemu_uids = config.qemu_uids.ToString();
  std::string store_dir;
  std::string metrics_listen;
  std::string snapshot_copy = "live";
  bool no_spare_qemus = false;
};

// Descriptors 0-2 stay taken: started with one closed, ferryd's next open() would get that
// number, and whatever later writes to stdout or stderr (a library, a child's inherited copy)
// would write into a database or a socket.
bool KeepStandardDescriptorsTaken() {
  for (int fd = 0; fd <= 2; ++fd) {
    if (::fcntl(fd, F_GETFD) == -1 && ::open("/dev/null", O_RDWR) != fd) return false;
  }
  return true;
}

void AddVmFlags(CLI::App& app, DaemonFlags& f) {
  ferry::vm::ServiceConfig& config = f.config;
  app.add_option("--state-dir", config.state_dir, "durable state: registry, VM directories")
      ->required();
  app.add_option("--ram-dir", config.ram_dir, "tmpfs directory for guest RAM files")
      ->capture_default_str();
  app.add_option("--socket", f.socket_path, "API socket (default: STATE_DIR/ferryd.sock)");
  app.add_option("--image-dir", config.image_dirs, "directory of guest images (repeatable)");
  app.add_option("--qemu", config.qemu_binary, "QEMU binary")->capture_default_str();
  app.add_option("--qemu-user", config.qemu_user,
                 "system user whose group every QEMU runs with (created if missing)")
      ->capture_default_str();
  app.add_option("--qemu-uids", f.qemu_uids,
                 "FIRST:COUNT: uids no user has, one per running QEMU (one ferryd per range)")
      ->capture_default_str();
  app.add_option("--console-max-kib", config.console_max_kib,
                 "size at which a VM's console.log is rotated to console.log.1")
      ->capture_default_str();
  app.add_option("--ready-timeout", f.ready_timeout_s, "seconds a guest may take to become ready")
      ->capture_default_str();
}

void AddPeerFlags(CLI::App& app, DaemonFlags& f) {
  ferry::migrate::MigrationConfig& migration = f.migration;
  app.add_option("--listen", migration.listen,
                 "peer port for migrations, ADDRESS:PORT (mutual TLS 1.3 only; needs --tls-dir)");
  app.add_option("--tls-dir", migration.tls_dir,
                 "this host's key, certificate and fleet CA (ferry host enroll --out DIR)");
  app.add_option("--downtime-ms", migration.default_downtime_ms,
                 "default downtime limit of a live migration")
      ->capture_default_str();
  app.add_option("--allow-bridge", migration.allow_bridges,
                 "a bridge an incoming tap VM may join (repeatable; none: no tap VM arrives)");
  app.add_flag("--require-policy", migration.require_policy,
               "refuse an incoming VM that has no owner's policy");
  app.add_option("--accept-owner", migration.accept_owners,
                 "an owner key fingerprint whose VMs may arrive (repeatable; none: any owner)");
  app.add_option("--store-dir", f.store_dir,
                 "where holds are kept, sealed (default STATE_DIR/store; needs --tls-dir)");
}

void AddServiceFlags(CLI::App& app, DaemonFlags& f) {
  app.add_option("--metrics-listen", f.metrics_listen,
                 "also serve GET /metrics (Prometheus text format) on TCP ADDRESS:PORT, e.g. "
                 "127.0.0.1:9464 (it is always on the API socket)");
  app.add_option("--snapshot-copy", f.snapshot_copy,
                 "live: copy a running VM's RAM while it runs, pausing it only for the last pass; "
                 "paused: pause it for the whole copy")
      ->check(CLI::IsMember({"live", "paused"}))
      ->capture_default_str();
  app.add_flag("--no-spare-qemus", f.no_spare_qemus,
               "start no spare QEMUs ahead of plain clones (each waits, with its own memory, for "
               "a clone of its shape); plain clones then start their own QEMU");
  app.add_option("--log-level", f.log_level, "trace, debug, info, warn, error")
      ->capture_default_str();
}

// Logging set up and the defaults that depend on other flags filled in.
void ApplyFlags(DaemonFlags& f) {
  spdlog::set_level(spdlog::level::from_str(f.log_level));
  // Under systemd the journal stamps every line itself.
  spdlog::set_pattern(ferry::StderrIsJournal() ? "%l %v" : "%Y-%m-%dT%H:%M:%S.%e %^%l%$ %v");
  f.config.image_dirs.push_back(FERRY_DEFAULT_IMAGE_DIR);
  if (std::string(FERRY_DEFAULT_IMAGE_DIR) != FERRY_INSTALLED_IMAGE_DIR) {
    f.config.image_dirs.push_back(FERRY_INSTALLED_IMAGE_DIR);
  }
  f.config.ready_timeout = std::chrono::seconds(f.ready_timeout_s);
  if (f.socket_path.empty()) f.socket_path = f.config.state_dir + "/ferryd.sock";
}

// Blocks the signals we wait for before any thread starts, so only sigwait sees them.
sigset_t BlockStopSignals() {
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  ::signal(SIGPIPE, SIG_IGN);
  return signals;
}

// Both directories are ferryd's alone: a local user who could plant or swap a file there could
// hand QEMU a RAM or disk file of their choosing, or read a guest's memory.
ferry::Status PrepareHost(DaemonFlags& f) {
  ferry::Status st = ferry::EnsurePrivateDir(f.config.state_dir, "state directory");
  if (st.ok()) st = ferry::EnsurePrivateDir(f.config.ram_dir, "RAM directory");
  if (st.ok()) st = ferry::vm::EnsureQemuUser(f.config.qemu_user);
  if (st.ok()) {
    auto range = ferry::vm::QemuUidRange::Parse(f.qemu_uids);
    st = range.status();
    if (range.ok()) f.config.qemu_uids = *range;
  }
  return st;
}

// One ferryd per state directory: two would fight over the same VMs. The lock is held until
// ferryd exits (its descriptor is never closed).
bool LockStateDirectory(const std::string& state_dir) {
  const std::string lock_path = state_dir + "/ferryd.lock";
  int lock_fd = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (lock_fd < 0 || ::flock(lock_fd, LOCK_EX | LOCK_NB) != 0) {
    std::fprintf(stderr, "ferryd: another ferryd already uses state directory %s; stop it first\n",
                 state_dir.c_str());
    return false;
  }
  return true;
}

// The peer port, when there is a host identity to serve it with. Null without --tls-dir.
ferry::Result<std::unique_ptr<ferry::migrate::MigrationService>> StartMigrations(
    ferry::vm::VmService& service, ferry::registry::Registry& registry,
    const ferry::migrate::MigrationConfig& migration) {
  if (!migration.tls_dir.empty()) {
    return ferry::migrate::MigrationService::Start(service, registry, migration);
  }
  if (!migration.listen.empty()) {
    return ferry::Status::InvalidArgument(
        "--listen needs --tls-dir (peers speak only mutual TLS)");
  }
  return std::unique_ptr<ferry::migrate::MigrationService>();
}

// Holds are signed with the host's fleet key: a ferryd without one keeps none (`holds` null).
ferry::Status OpenHolds(const DaemonFlags& f, ferry::vm::VmService& service,
                        ferry::registry::Registry& registry,
                        ferry::migrate::MigrationService* migrations,
                        ferry::hold::HostStore& host_store,
                        std::unique_ptr<ferry::hold::HoldService>& holds) {
  if (f.migration.tls_dir.empty()) {
    if (f.store_dir.empty()) return ferry::Status::Ok();
    return ferry::Status::InvalidArgument(
        "--store-dir needs --tls-dir (holds are signed by the host)");
  }
  auto opened = ferry::hold::OpenHostStore(
      f.store_dir.empty() ? f.config.state_dir + "/store" : f.store_dir, f.migration.tls_dir);
  if (!opened.ok()) return opened.status();
  host_store = std::move(opened).value();
  holds =
      std::make_unique<ferry::hold::HoldService>(service, registry, *host_store.store, migrations);
  return ferry::Status::Ok();
}

// The main loop: waits for a stop signal, telling systemd's watchdog that ferryd lives.
int WaitForStopSignal(const sigset_t& signals) {
  const auto watchdog = ferry::WatchdogInterval();
  int sig = 0;
  while (sig == 0) {
    if (!watchdog) {
      if (sigwait(&signals, &sig) != 0) sig = 0;
      continue;
    }
    const auto half = *watchdog / 2;
    timespec timeout{static_cast<time_t>(half.count() / 1000000),
                     static_cast<long>(half.count() % 1000000) * 1000};
    int got = sigtimedwait(&signals, nullptr, &timeout);
    if (got > 0) {
      sig = got;
    } else {
      ferry::NotifyServiceManager("WATCHDOG=1");
    }
  }
  return sig;
}

int Fail(const ferry::Status& st) {
  std::fprintf(stderr, "ferryd: %s\n", st.message().c_str());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  if (!KeepStandardDescriptorsTaken()) return 1;
  CLI::App app{"ferryd: the ferry agent; runs QEMU VMs and serves the ferry API", "ferryd"};
  DaemonFlags flags;
  AddVmFlags(app, flags);
  AddPeerFlags(app, flags);
  AddServiceFlags(app, flags);
  ferry::cli::AddSelfDescriptionFlags(app, ferry::cli::FerrydManual());
  CLI11_PARSE(app, argc, argv);
  ApplyFlags(flags);
  const ferry::vm::ServiceConfig& config = flags.config;
  const std::string& socket_path = flags.socket_path;

  const sigset_t signals = BlockStopSignals();
  if (ferry::Status st = PrepareHost(flags); !st.ok()) return Fail(st);
  if (!LockStateDirectory(config.state_dir)) return 1;

  // Events and metrics from the first VM re-adopted on.
  ferry::api::Telemetry telemetry(ferry::metrics::Default(), ferry::Events());
  ferry::SetOperationObserver(&telemetry);
  flags.config.observer = &telemetry;
  auto registry = ferry::registry::Registry::Open(config.state_dir + "/registry.db");
  if (!registry.ok()) return Fail(registry.status());
  auto service = ferry::vm::VmService::Open(config, **registry);
  if (!service.ok()) return Fail(service.status());
  ferry::snapshot::SnapshotService snapshots(**service, **registry);
  snapshots.SetCopyMode(flags.snapshot_copy == "paused" ? ferry::snapshot::SnapshotCopy::kPaused
                                                        : ferry::snapshot::SnapshotCopy::kLive);
  ferry::snapshot::TemplateService templates(**service, **registry, snapshots);
  // Plain clones take a spare QEMU when one is ready; destroyed (its spares killed) after the API.
  std::optional<ferry::snapshot::SpareQemus> spares;
  if (!flags.no_spare_qemus) spares.emplace(**service);
  snapshots.SetSpareQemus(spares ? &*spares : nullptr);
  auto started = StartMigrations(**service, **registry, flags.migration);
  if (!started.ok()) return Fail(started.status());
  std::unique_ptr<ferry::migrate::MigrationService> migrations = std::move(started).value();
  ferry::hold::HostStore host_store;
  std::unique_ptr<ferry::hold::HoldService> holds;
  ferry::Status st = OpenHolds(flags, **service, **registry, migrations.get(), host_store, holds);
  if (!st.ok()) return Fail(st);
  telemetry.Collect(**service, templates, config.ram_dir);
  ferry::api::ApiServer api(**service, snapshots, templates, migrations.get(), holds.get());
  st = api.Start(socket_path);
  if (st.ok() && !flags.metrics_listen.empty()) st = api.ServeMetrics(flags.metrics_listen);
  if (!st.ok()) return Fail(st);
  spdlog::info("ferryd serving on {} (state {}, RAM {}{})", socket_path, config.state_dir,
               config.ram_dir,
               flags.metrics_listen.empty() ? "" : ", metrics on " + flags.metrics_listen);
  // VMs were re-adopted in Open and the API's socket takes connections: ready.
  st = ferry::NotifyServiceManager("READY=1\nSTATUS=serving on " + socket_path);
  if (!st.ok()) spdlog::warn("ferryd: {}", st.message());

  const int sig = WaitForStopSignal(signals);
  ferry::NotifyServiceManager("STOPPING=1");
  spdlog::info("ferryd: signal {}, shutting down; VMs keep running", sig);
  api.Stop();
  if (holds) holds->Stop();  // it uses the peer port: stopped before it goes
  migrations.reset();  // closes the peer port and its links before the VM service goes
  ::unlink(socket_path.c_str());
  // Background operations (holds' among them) end first; then the hold service (its reaper), the
  // store, templates (their pool QEMUs), snapshots and the VM service go, in that order, as the
  // scope unwinds.
  (*service)->Shutdown();
  ferry::SetOperationObserver(nullptr);
  return 0;
}
