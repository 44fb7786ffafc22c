#include "api/telemetry.h"

#include <sys/stat.h>
#include <sys/statvfs.h>

#include <filesystem>

#include "snapshot/template_service.h"
#include "vm/vm_service.h"

namespace ferry::api {

using nlohmann::json;

Telemetry::Telemetry(metrics::Registry& registry, EventLog& events)
    : registry_(registry),
      events_(events),
      operations_(registry.AddCounter("ferry_operations_total",
                                      "Operations finished, by kind and result (succeeded, failed)",
                                      {"kind", "result"})),
      operation_seconds_(registry.AddHistogram("ferry_operation_duration_seconds",
                                               "Wall time of finished operations",
                                               {"kind", "result"}, metrics::SecondsBuckets())),
      snapshot_pause_(registry.AddHistogram("ferry_snapshot_pause_seconds",
                                            "How long a snapshot kept its VM paused", {},
                                            metrics::SecondsBuckets())),
      clone_restore_(registry.AddHistogram(
          "ferry_clone_restore_seconds",
          "A clone's restore, from its QEMU's start (or the warm pool) to its new identity",
          {"warm_pool"}, metrics::SecondsBuckets())),
      migration_bytes_(registry.AddHistogram("ferry_migration_wire_bytes",
                                             "Bytes a finished outgoing migration sent on the wire",
                                             {}, metrics::BytesBuckets())),
      migration_downtime_(registry.AddHistogram(
          "ferry_migration_downtime_seconds", "Downtime of finished outgoing migrations (QEMU's)",
          {}, metrics::SecondsBuckets())),
      migration_total_(registry.AddHistogram("ferry_migration_total_seconds",
                                             "Total time of finished outgoing migrations", {},
                                             metrics::SecondsBuckets())),
      qemu_exits_(registry.AddCounter("ferry_qemu_exits_total",
                                      "QEMU processes that ended, by cause", {"cause"})),
      vm_transitions_(registry.AddCounter("ferry_vm_state_changes_total",
                                          "VM state changes, by the state entered", {"state"})) {}

void Telemetry::Collect(vm::VmService& vms, snapshot::TemplateService& templates,
                        const std::string& ram_dir) {
  registry_.AddCollector("ferry_vms", "VMs this ferryd has, by state", {"state"}, [&vms] {
    std::map<std::string, double> by_state;
    for (const char* s : {"creating", "booting", "running", "paused", "stopping", "stopped",
                          "failed"}) {
      by_state[s] = 0;
    }
    for (const json& v : vms.List()) by_state[v.value("state", "unknown")] += 1;
    metrics::GaugeSamples out;
    for (const auto& [s, n] : by_state) out.push_back({{s}, n});
    return out;
  });
  auto pool = [&templates](const char* field) {
    metrics::GaugeSamples out;
    for (const json& t : templates.List()) {
      out.push_back({{t.value("name", "")}, t.value(field, 0.0)});
    }
    return out;
  };
  registry_.AddCollector("ferry_pool_size", "Warm-pool QEMUs a template should keep ready",
                         {"template"}, [pool] { return pool("pool_size"); });
  registry_.AddCollector("ferry_pool_ready", "Warm-pool QEMUs ready now", {"template"},
                         [pool] { return pool("pool_ready"); });
  registry_.AddCollector("ferry_ram_dir_used_bytes",
                         "Bytes the guest RAM files in the RAM directory take", {},
                         [ram_dir] {
                           return metrics::GaugeSamples{{{}, MeasureDirectory(ram_dir).used}};
                         });
  registry_.AddCollector("ferry_ram_dir_free_bytes",
                         "Bytes free on the RAM directory's filesystem", {}, [ram_dir] {
                           return metrics::GaugeSamples{{{}, MeasureDirectory(ram_dir).free}};
                         });
  registry_.AddCollector("ferry_events_last_sequence",
                         "Sequence number of the newest event (GET /v1/events)", {},
                         [this] {
                           return metrics::GaugeSamples{
                               {{}, static_cast<double>(events_.last_seq())}};
                         });
}

void Telemetry::OperationStarted(Operation& op) {
  events_.Publish("operation.started",
                  {{"id", op.id()}, {"kind", op.kind()}, {"target", op.target()}});
}

void Telemetry::OperationFinished(Operation& op, int64_t duration_ms) {
  json j = op.ToJson();
  const std::string state = j.value("state", "");
  operations_.With({op.kind(), state}).Inc();
  operation_seconds_.With({op.kind(), state}).Observe(duration_ms / 1000.0);
  json event = {{"id", op.id()},
                {"kind", op.kind()},
                {"target", op.target()},
                {"result", state},
                {"duration_ms", duration_ms}};
  if (j.contains("error")) event["error"] = j["error"];
  events_.Publish("operation.finished", event);
  if (state != "succeeded") return;
  const json& r = j.value("result", json::object());
  if (!r.is_object()) return;
  if (op.kind() == "snapshot" && r.contains("pause_ms") && r["pause_ms"].is_number()) {
    snapshot_pause_.With().Observe(r["pause_ms"].get<double>() / 1000.0);
  }
  if (op.kind() == "clone" && r.contains("timings") && r["timings"].is_object()) {
    const json& t = r["timings"];
    if (t.contains("restore_total_ms") && t["restore_total_ms"].is_number()) {
      bool warm = r.value("origin", json::object()).value("warm_pool", false);
      clone_restore_.With({warm ? "true" : "false"})
          .Observe(t["restore_total_ms"].get<double>() / 1000.0);
    }
  }
  if (op.kind() == "migrate" && r.contains("total_ms")) {
    auto num = [&](const char* k) { return r.contains(k) && r[k].is_number() ? r[k].get<double>() : -1; };
    if (num("wire_bytes_sent") >= 0) migration_bytes_.With().Observe(num("wire_bytes_sent"));
    if (num("downtime_ms") >= 0) migration_downtime_.With().Observe(num("downtime_ms") / 1000.0);
    if (num("total_ms") >= 0) migration_total_.With().Observe(num("total_ms") / 1000.0);
    events_.Publish("migration.finished", {{"vm", r.value("vm", op.target())},
                                           {"to", r.value("to", "")},
                                           {"total_ms", r.value("total_ms", 0)},
                                           {"downtime_ms", r.value("downtime_ms", 0)}});
  }
}

void Telemetry::VmPersisted(const vm::VmRecord& rec, bool deleted) {
  const std::string& name = rec.spec.name;
  std::string state = deleted ? "deleted" : vm::VmStateName(rec.state);
  std::string previous;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = last_state_.find(name);
    if (it != last_state_.end()) previous = it->second;
    if (previous == state) return;  // saved for another reason: no state change
    if (deleted) {
      if (it != last_state_.end()) last_state_.erase(it);
    } else {
      last_state_[name] = state;
    }
  }
  if (deleted) {
    events_.Publish("vm.deleted", {{"vm", name}, {"previous", previous}});
    return;
  }
  vm_transitions_.With({state}).Inc();
  json e = {{"vm", name}, {"state", state}};
  if (!previous.empty()) e["previous"] = previous;
  events_.Publish("vm.state", e);
}

void Telemetry::QemuExited(const vm::VmRecord& rec, const ProcessExit& exit,
                           const std::string& shutdown_reason) {
  const std::string cause = ExitCause(rec, exit, shutdown_reason);
  qemu_exits_.With({cause}).Inc();
  events_.Publish("vm.qemu_exited",
                  {{"vm", rec.spec.name}, {"cause", cause}, {"exit", exit.Describe()}});
}

std::string ExitCause(const vm::VmRecord& rec, const ProcessExit& exit,
                      const std::string& shutdown_reason) {
  if (rec.state == vm::VmState::kStopped) {
    return shutdown_reason.rfind("guest", 0) == 0 ? "guest_poweroff" : "stopped";
  }
  if (exit.known && exit.signaled) return "signal";
  return "error";
}

DirectoryBytes MeasureDirectory(const std::string& dir) {
  DirectoryBytes b;
  struct statvfs vfs;
  if (::statvfs(dir.c_str(), &vfs) == 0) {
    b.free = static_cast<double>(vfs.f_bavail) * static_cast<double>(vfs.f_frsize);
  }
  std::error_code ec;
  for (auto it = std::filesystem::recursive_directory_iterator(
           dir, std::filesystem::directory_options::skip_permission_denied, ec);
       !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
    struct stat st;
    if (::lstat(it->path().c_str(), &st) == 0 && S_ISREG(st.st_mode)) {
      b.used += static_cast<double>(st.st_blocks) * 512.0;
    }
  }
  return b;
}

}  // namespace ferry::api
