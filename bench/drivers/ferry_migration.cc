#include "bench/drivers/ferry_migration.h"

#include "bench/drivers/ferry_ops.h"
#include "bench/harness/testbed.h"
#include "core/files.h"

namespace ferry::bench {

using nlohmann::json;
using std::chrono::milliseconds;

namespace {
constexpr milliseconds kLocalCommandTimeout(60000);
constexpr milliseconds kMigrateTimeout(600000);
constexpr milliseconds kCleanupTimeout(60000);

double Number(const json& j, const char* key) {
  return j.contains(key) && j[key].is_number() ? j[key].get<double>() : 0.0;
}
}  // namespace

Result<std::unique_ptr<FerryFleet>> FerryFleet::Start(const BenchConfig& config,
                                                      NamespaceHosts& hosts, const std::string& dir,
                                                      const std::vector<std::string>& vm_names) {
  std::unique_ptr<FerryFleet> fleet(new FerryFleet(dir, config.ferry_binary()));
  const std::string ferry = config.ferry_binary();
  auto local = [&](std::vector<std::string> args) {
    args.insert(args.begin(), ferry);
    return RunTool(args, kLocalCommandTimeout).status();
  };
  FERRY_RETURN_IF_ERROR(MakeDirs(dir, 0700));
  const std::string ca = dir + "/ca";
  FERRY_RETURN_IF_ERROR(local({"ca", "init", "--dir", ca}));
  const char* zones[] = {"", "zone=a", "zone=b"};
  for (int i = 1; i <= 2; ++i) {
    FERRY_RETURN_IF_ERROR(local({"host", "enroll", "--ca", ca, "--host-id", "h" + std::to_string(i),
                                 "--label", zones[i], "--out", dir + "/tls" + std::to_string(i)}));
  }
  const std::string owner = dir + "/owner.key";
  FERRY_RETURN_IF_ERROR(local({"owner", "keygen", "--out", owner}));
  for (const std::string& vm : vm_names) {
    FERRY_RETURN_IF_ERROR(local({"policy", "sign", "--key", owner, "--vm", vm, "--allow-label",
                                 "zone=b", "--out", fleet->PolicyFile(vm)}));
  }
  for (int i = 1; i <= 2; ++i) {
    BenchFerrydOptions options;
    options.netns = hosts.Host(i);
    options.extra_args = {
        "--listen",       NamespaceHosts::HostAddress(i) + ":" + std::to_string(kPeerPort),
        "--tls-dir",      dir + "/tls" + std::to_string(i),
        "--allow-bridge", NamespaceHosts::kBridge};
    auto d = BenchFerryd::Start(config, options);
    if (!d.ok()) return d.status().WithContext("ferryd in " + hosts.Host(i));
    (i == 1 ? fleet->h1_ : fleet->h2_) = std::move(d).value();
  }
  FERRY_ASSIGN_OR_RETURN(
      CliRun peer,
      fleet->h1_->Cli(
          {"peer", "add", "h2", NamespaceHosts::HostAddress(2) + ":" + std::to_string(kPeerPort)},
          kVmCommandTimeout));
  FERRY_RETURN_IF_ERROR(peer.ToStatus());
  return fleet;
}

FerryFleet::~FerryFleet() { Stop(); }

void FerryFleet::Stop() {
  if (h1_) h1_->Stop();
  if (h2_) h2_->Stop();
  h1_.reset();
  h2_.reset();
}

Result<std::unique_ptr<FerryMigratingGuest>> FerryMigratingGuest::Boot(FerryFleet& fleet,
                                                                       const std::string& name,
                                                                       uint64_t memory_mib,
                                                                       uint64_t disk_mib) {
  std::unique_ptr<FerryMigratingGuest> g(new FerryMigratingGuest(fleet, name));
  BenchFerryd& h1 = fleet.host(1);
  std::vector<std::string> args = {"vm",
                                   "create",
                                   name,
                                   "--net",
                                   "tap",
                                   "--bridge",
                                   NamespaceHosts::kBridge,
                                   "--ip",
                                   std::string(FerryFleet::kGuestAddress) + "/24",
                                   "--memory",
                                   std::to_string(memory_mib),
                                   "--policy",
                                   fleet.PolicyFile(name),
                                   "--wait-ready"};
  if (disk_mib != 0) args.insert(args.end(), {"--disk", std::to_string(disk_mib) + "M"});
  FERRY_ASSIGN_OR_RETURN(CliRun create, h1.Cli(args, kVmBootTimeout));
  FERRY_RETURN_IF_ERROR(create.ToStatus());
  FERRY_ASSIGN_OR_RETURN(g->show_, h1.CliJson({"vm", "show", name, "--json"}, kVmCommandTimeout));
  return g;
}

FerryMigratingGuest::~FerryMigratingGuest() {
  for (int i = 1; i <= 2; ++i) {
    (void)fleet_.host(i).Cli({"vm", "delete", name_, "--force"}, kCleanupTimeout,
                             BenchFerryd::Wait::kEvenIfInterrupted);
  }
}

Result<MoveFigures> FerryMigratingGuest::MoveToH2() {
  FERRY_ASSIGN_OR_RETURN(
      CliRun run, fleet_.host(1).Cli({"migrate", name_, "--to", "h2", "--json"}, kMigrateTimeout));
  FERRY_RETURN_IF_ERROR(run.ToStatus());
  json r = json::parse(run.output, nullptr, /*allow_exceptions=*/false);
  if (r.is_discarded() || !r.contains("qemu_total_ms") || !r.contains("downtime_ms")) {
    return Status::Corruption("`ferry migrate --json` printed no qemu_total_ms/downtime_ms: " +
                              run.output.substr(0, 300));
  }
  MoveFigures f;
  f.qemu_total_ms = Number(r, "qemu_total_ms");
  f.qemu_downtime_ms = Number(r, "downtime_ms");
  f.ram_transferred_bytes = static_cast<uint64_t>(Number(r, "ram_transferred_bytes"));
  f.wall_ms = DurationMs(run.elapsed);
  f.ferry_total_ms = Number(r, "total_ms");
  f.ferry_wire_bytes_sent = static_cast<uint64_t>(Number(r, "wire_bytes_sent"));
  f.disk_copy_ms = Number(r, "disk_copy_ms");
  f.switchover_ms = Number(r, "switchover_continued_ms");
  f.disk_bytes_copied = static_cast<uint64_t>(Number(r, "disk_bytes_copied"));
  if (r.contains("qemu_migrate") && r["qemu_migrate"].is_object())
    f.qemu_migrate = r["qemu_migrate"];
  if (r.contains("qemu_settings") && r["qemu_settings"].is_object()) {
    f.qemu_settings = r["qemu_settings"];
  }
  auto show = fleet_.host(2).CliJson({"vm", "show", name_, "--json"}, kVmCommandTimeout);
  if (show.ok()) {
    show_ = *show;
    f.destination_exited = show->value("state", "") != "running";
  }
  return f;
}

std::string FerryMigratingGuest::Console(int host, size_t max_bytes) {
  auto show = fleet_.host(host).CliJson({"vm", "show", name_, "--json"}, kVmCommandTimeout);
  if (!show.ok()) return "";
  const std::string path = show->value("paths", json::object()).value("console_log", "");
  std::string text = path.empty() ? "" : TailFile(path, max_bytes);
  // ferryd's own account of a QEMU that ended, after what the guest printed.
  const std::string failure = show->value("failure", "");
  if (!failure.empty()) text += (text.empty() ? "" : "\n") + ("ferryd: " + failure);
  return text;
}

void StopFleetAndSweep(std::unique_ptr<FerryFleet>& fleet, NamespaceHosts& hosts,
                       const std::vector<std::optional<ScratchDir>*>& dirs) {
  if (fleet) fleet->Stop();
  fleet.reset();
  SweepAndRemove(dirs);
  hosts.Teardown();
}

}  // namespace ferry::bench
