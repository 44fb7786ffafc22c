#include "qemu/qmp_commands.h"

#include <chrono>
#include <thread>

#include "core/json_fields.h"
#include "core/json_lines.h"
#include "qemu/launch_spec.h"

namespace ferry::qemu {

using nlohmann::json;

namespace {

Result<JsonFields> Reply(const std::string& command, const json& ret) {
  return JsonFields::Of(ret, "QMP " + command + " reply");
}

MigrationState StateNamed(const std::string& s) {
  if (s.empty() || s == "none") return MigrationState::kNone;
  if (s == "setup") return MigrationState::kSetup;
  if (s == "active") return MigrationState::kActive;
  if (s == "device") return MigrationState::kDevice;
  if (s == "pre-switchover") return MigrationState::kPreSwitchover;
  if (s.rfind("postcopy", 0) == 0) return MigrationState::kPostcopy;
  if (s == "cancelling") return MigrationState::kCancelling;
  if (s == "cancelled") return MigrationState::kCancelled;
  if (s == "completed") return MigrationState::kCompleted;
  if (s == "failed") return MigrationState::kFailed;
  return MigrationState::kOther;
}

Status Run(QmpExecutor& qmp, const std::string& command, const json& args = json::object(),
           std::chrono::milliseconds timeout = kQmpTimeout) {
  return qmp.Qmp(command, args, timeout).status();
}

}  // namespace

bool MigrationInfo::InProgress() const {
  switch (state) {
    case MigrationState::kSetup:
    case MigrationState::kActive:
    case MigrationState::kDevice:
    case MigrationState::kPreSwitchover:
    case MigrationState::kPostcopy:
    case MigrationState::kCancelling:
      return true;
    default:
      return false;
  }
}

Result<QmpVmStatus> ParseQueryStatus(const json& ret) {
  FERRY_ASSIGN_OR_RETURN(JsonFields f, Reply("query-status", ret));
  QmpVmStatus out;
  FERRY_ASSIGN_OR_RETURN(out.running, f.Bool("running"));
  FERRY_ASSIGN_OR_RETURN(out.status, f.String("status", ""));
  return out;
}

Result<MigrationInfo> ParseQueryMigrate(const json& ret) {
  FERRY_ASSIGN_OR_RETURN(JsonFields f, Reply("query-migrate", ret));
  MigrationInfo out;
  FERRY_ASSIGN_OR_RETURN(out.status, f.String("status", ""));
  out.state = StateNamed(out.status);
  FERRY_ASSIGN_OR_RETURN(out.error_desc, f.String("error-desc", ""));
  if (f.Has("ram")) {
    FERRY_ASSIGN_OR_RETURN(JsonFields ram, f.Object("ram"));
    out.has_ram = true;
    FERRY_ASSIGN_OR_RETURN(int64_t total, ram.Int("total", 0));
    FERRY_ASSIGN_OR_RETURN(int64_t transferred, ram.Int("transferred", 0));
    FERRY_ASSIGN_OR_RETURN(int64_t remaining, ram.Int("remaining", 0));
    FERRY_ASSIGN_OR_RETURN(int64_t dirty, ram.Int("dirty-pages-rate", 0));
    FERRY_ASSIGN_OR_RETURN(out.ram_mbps, ram.Number("mbps", 0.0));
    for (int64_t v : {total, transferred, remaining, dirty}) {
      if (v < 0) return ram.Error("total", "and the other counters must not be negative");
    }
    out.ram_total = static_cast<uint64_t>(total);
    out.ram_transferred = static_cast<uint64_t>(transferred);
    out.ram_remaining = static_cast<uint64_t>(remaining);
    out.dirty_pages_rate = static_cast<uint64_t>(dirty);
  }
  FERRY_ASSIGN_OR_RETURN(int64_t downtime, f.Int("downtime", 0));
  if (downtime < 0) return f.Error("downtime", "must not be negative");
  out.downtime_ms = downtime;
  out.raw = ret;
  return out;
}

Result<MigrationState> ParseMigrationEvent(const json& data) {
  FERRY_ASSIGN_OR_RETURN(JsonFields f, JsonFields::Of(data, "QMP MIGRATION event"));
  FERRY_ASSIGN_OR_RETURN(std::string status, f.String("status"));
  return StateNamed(status);
}

Result<std::string> ParseVmGenerationId(const json& ret) {
  FERRY_ASSIGN_OR_RETURN(JsonFields f, Reply("query-vm-generation-id", ret));
  return f.String("guid");
}

Result<QemuVersion> ParseQueryVersion(const json& ret) {
  FERRY_ASSIGN_OR_RETURN(JsonFields f, Reply("query-version", ret));
  FERRY_ASSIGN_OR_RETURN(JsonFields q, f.Object("qemu"));
  QemuVersion v;
  int* parts[] = {&v.major, &v.minor, &v.micro};
  const char* names[] = {"major", "minor", "micro"};
  for (int i = 0; i < 3; ++i) {
    FERRY_ASSIGN_OR_RETURN(int64_t n, q.Int(names[i]));
    if (n < 0 || n > 1000 || (i == 0 && n == 0)) {
      return Status::Corruption("QMP query-version reply: \"" + std::string(names[i]) + "\" is " +
                                std::to_string(n));
    }
    *parts[i] = static_cast<int>(n);
  }
  return v;
}

Result<std::string> ParseBlockNodeName(const json& ret, const std::string& device) {
  const std::string source = "QMP query-block reply";
  if (!ret.is_array()) return Status::Corruption(source + ": not an array");
  for (const json& entry : ret) {
    FERRY_ASSIGN_OR_RETURN(JsonFields f, JsonFields::Of(entry, source));
    // A disk made of -blockdev nodes has no drive name ("device" is empty); its guest device
    // is named by "qdev": the device id, or QOM's path to it (/machine/peripheral/ID/...).
    FERRY_ASSIGN_OR_RETURN(std::string qdev, f.String("qdev", ""));
    const std::string under = "/machine/peripheral/" + device + "/";
    if (qdev != device && qdev.rfind(under, 0) != 0) continue;
    if (!f.Has("inserted")) {
      return Status::NotFound(source + ": device " + device + " has no medium");
    }
    FERRY_ASSIGN_OR_RETURN(JsonFields inserted, f.Object("inserted"));
    return inserted.String("node-name");
  }
  return Status::NotFound(source + ": no device " + device);
}

Result<std::vector<std::string>> ParseBlockNodeNames(const json& ret) {
  const std::string source = "QMP query-named-block-nodes reply";
  if (!ret.is_array()) return Status::Corruption(source + ": not an array");
  std::vector<std::string> names;
  for (const json& entry : ret) {
    FERRY_ASSIGN_OR_RETURN(JsonFields f, JsonFields::Of(entry, source));
    FERRY_ASSIGN_OR_RETURN(std::string name, f.String("node-name"));
    names.push_back(std::move(name));
  }
  return names;
}

Result<QmpLine> ClassifyQmpMessage(const json& message) {
  FERRY_ASSIGN_OR_RETURN(JsonFields f, JsonFields::Of(message, "QMP message"));
  QmpLine out;
  if (f.Has("id")) {
    FERRY_ASSIGN_OR_RETURN(uint64_t id, f.Uint("id"));
    out.id = id;
  }
  if (message.contains("return")) {
    out.kind = QmpLine::Kind::kReturn;
    out.value = message["return"];
    return out;
  }
  if (f.Has("error")) {
    FERRY_ASSIGN_OR_RETURN(JsonFields error, f.Object("error"));
    out.kind = QmpLine::Kind::kError;
    FERRY_ASSIGN_OR_RETURN(out.error_class, error.String("class", "GenericError"));
    FERRY_ASSIGN_OR_RETURN(out.error_desc, error.String("desc", ""));
    return out;
  }
  if (f.Has("event")) {
    out.kind = QmpLine::Kind::kEvent;
    FERRY_ASSIGN_OR_RETURN(out.event, f.String("event"));
    if (f.Has("data")) {
      FERRY_ASSIGN_OR_RETURN(JsonFields data, f.Object("data"));
      out.value = data.raw();
    } else {
      out.value = json::object();
    }
    return out;
  }
  if (f.Has("QMP")) {
    FERRY_ASSIGN_OR_RETURN(JsonFields greeting, f.Object("QMP"));
    out.kind = QmpLine::Kind::kGreeting;
    out.value = greeting.raw();
    return out;
  }
  return Status::Corruption("QMP message is neither a reply, an event nor the greeting");
}

Result<QmpLine> ParseQmpLine(std::string_view line) {
  FERRY_ASSIGN_OR_RETURN(json message, ParseJsonLine(line));
  return ClassifyQmpMessage(message);
}

Status Cont(QmpExecutor& qmp) {
  // QEMU reports a migration "completed" a moment before it leaves finish-migrate, and refuses
  // `cont` in between with this error (QEMU 10 showed it after a live snapshot's copy): that
  // moment is waited out, at most kContAfterMigrationWait.
  const auto until = std::chrono::steady_clock::now() + kContAfterMigrationWait;
  for (;;) {
    Status st = Run(qmp, "cont");
    if (st.ok() || st.message().find("Migration is not finalized yet") == std::string::npos ||
        std::chrono::steady_clock::now() >= until) {
      return st;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}
Status Stop(QmpExecutor& qmp) { return Run(qmp, "stop"); }
Status Quit(QmpExecutor& qmp, std::chrono::milliseconds timeout) {
  return Run(qmp, "quit", json::object(), timeout);
}

Result<QmpVmStatus> QueryStatus(QmpExecutor& qmp, std::chrono::milliseconds timeout) {
  FERRY_ASSIGN_OR_RETURN(json ret, qmp.Qmp("query-status", json::object(), timeout));
  return ParseQueryStatus(ret);
}

Result<MigrationInfo> QueryMigrate(QmpExecutor& qmp) {
  FERRY_ASSIGN_OR_RETURN(json ret, qmp.Qmp("query-migrate", json::object(), kQmpTimeout));
  return ParseQueryMigrate(ret);
}

Result<std::string> QueryVmGenerationId(QmpExecutor& qmp) {
  FERRY_ASSIGN_OR_RETURN(json ret, qmp.Qmp("query-vm-generation-id", json::object(), kQmpTimeout));
  return ParseVmGenerationId(ret);
}

Result<QemuVersion> QueryVersion(QmpExecutor& qmp) {
  FERRY_ASSIGN_OR_RETURN(json ret, qmp.Qmp("query-version", json::object(), kQmpTimeout));
  return ParseQueryVersion(ret);
}

Result<std::string> QueryBlockNodeName(QmpExecutor& qmp, const std::string& device) {
  FERRY_ASSIGN_OR_RETURN(json ret, qmp.Qmp("query-block", json::object(), kQmpTimeout));
  return ParseBlockNodeName(ret, device);
}

Result<std::vector<std::string>> QueryBlockNodeNames(QmpExecutor& qmp) {
  FERRY_ASSIGN_OR_RETURN(json ret,
                         qmp.Qmp("query-named-block-nodes", {{"flat", true}}, kQmpTimeout));
  return ParseBlockNodeNames(ret);
}

Status Migrate(QmpExecutor& qmp, const std::string& uri) {
  return Run(qmp, "migrate", {{"uri", uri}});
}

Status MigrateIncoming(QmpExecutor& qmp, const std::string& uri) {
  return Run(qmp, "migrate-incoming", {{"uri", uri}});
}

Status BindSpareRam(QmpExecutor& qmp, const std::string& mem_path, uint64_t ram_kib) {
  // Opened and mapped by object-add itself: once it returns, the path may go.
  FERRY_RETURN_IF_ERROR(Run(qmp, "object-add",
                            {{"qom-type", "memory-backend-file"},
                             {"id", "ram0"},
                             {"size", ram_kib * 1024},
                             {"mem-path", mem_path},
                             {"share", false}}));
  FERRY_RETURN_IF_ERROR(
      Run(qmp, "set-numa-node", {{"type", "node"}, {"nodeid", 0}, {"memdev", "ram0"}}));
  return Run(qmp, "x-exit-preconfig");
}

Status MigrateCancel(QmpExecutor& qmp) { return Run(qmp, "migrate_cancel"); }

Status MigrateCancelAndWait(QmpExecutor& qmp, std::chrono::milliseconds timeout) {
  constexpr std::chrono::milliseconds kPollInterval(1);
  FERRY_RETURN_IF_ERROR(MigrateCancel(qmp));
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    auto info = QueryMigrate(qmp);
    if (!info.ok() || !info->InProgress()) break;
    std::this_thread::sleep_for(kPollInterval);
  }
  return Status::Ok();
}

Status MigrateContinueFromPreSwitchover(QmpExecutor& qmp) {
  return Run(qmp, "migrate-continue", {{"state", "pre-switchover"}});
}

Status SetMigrationCapability(QmpExecutor& qmp, const std::string& capability, bool on) {
  return SetMigrationCapabilities(qmp, {{capability, on}});
}

Status SetMigrationCapabilities(QmpExecutor& qmp,
                                const std::vector<std::pair<std::string, bool>>& capabilities) {
  json list = json::array();
  for (const auto& [capability, on] : capabilities) {
    list.push_back({{"capability", capability}, {"state", on}});
  }
  return Run(qmp, "migrate-set-capabilities", {{"capabilities", list}});
}

Status SetMigrationParameters(QmpExecutor& qmp, const MigrationParameters& parameters) {
  return Run(qmp, "migrate-set-parameters",
             {{"downtime-limit", parameters.downtime_limit_ms},
              {"max-bandwidth", parameters.max_bandwidth_bytes_per_s}});
}

Result<std::string> HumanMonitorCommand(QmpExecutor& qmp, const std::string& command_line) {
  FERRY_ASSIGN_OR_RETURN(
      json ret, qmp.Qmp("human-monitor-command", {{"command-line", command_line}}, kQmpTimeout));
  return ret.is_string() ? ret.get<std::string>() : std::string();
}

// Two nodes, as the launch makes a disk's (launch_spec.cc, AddDisk): a file node of its own, not
// a child inside the qcow2 node. Such a child inherits its parent's reopens: when the next freeze
// makes the qcow2 node a backing image, the child is reopened read-only, QEMU takes the set's
// read-only descriptor and closes its copy of the read-write one without unlocking it, and the
// set's own copy keeps that description's write lock alive. The cont after the next live
// snapshot then failed: "Failed to get shared "write" lock".
Status BlockdevAddQcow2(QmpExecutor& qmp, const std::string& node_name, int64_t fdset_id) {
  const std::string file_node = FileNodeName(node_name);
  FERRY_RETURN_IF_ERROR(Run(qmp, "blockdev-add",
                            {{"driver", "file"},
                             {"node-name", file_node},
                             {"filename", "/dev/fdset/" + std::to_string(fdset_id)},
                             {"discard", "unmap"}}));
  Status added = Run(qmp, "blockdev-add",
                     {{"driver", "qcow2"},
                      {"node-name", node_name},
                      {"file", file_node},
                      {"backing", nullptr},
                      {"discard", "unmap"}});
  if (!added.ok()) (void)BlockdevDel(qmp, file_node);
  return added;
}

Status BlockdevDelQcow2(QmpExecutor& qmp, const std::string& node_name) {
  Status deleted = BlockdevDel(qmp, node_name);
  Status file_deleted = BlockdevDel(qmp, FileNodeName(node_name));
  return deleted.ok() ? file_deleted : deleted;
}

Status BlockdevSnapshot(QmpExecutor& qmp, const std::string& node, const std::string& overlay) {
  return Run(qmp, "blockdev-snapshot", {{"node", node}, {"overlay", overlay}});
}

Status BlockdevDel(QmpExecutor& qmp, const std::string& node_name) {
  return Run(qmp, "blockdev-del", {{"node-name", node_name}});
}

Status RemoveFdSet(QmpExecutor& qmp, int64_t fdset_id) {
  return Run(qmp, "remove-fd", {{"fdset-id", fdset_id}});
}

}  // namespace ferry::qemu
