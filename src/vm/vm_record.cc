#include "vm/vm_record.h"

#include <array>

namespace ferry::vm {

using nlohmann::json;

namespace {
constexpr std::array<const char*, 7> kStateNames = {"creating", "booting", "running", "paused",
                                                    "stopping", "stopped", "failed"};
}  // namespace

const char* VmStateName(VmState s) { return kStateNames[static_cast<size_t>(s)]; }

Result<VmState> VmStateFromName(const std::string& name) {
  for (size_t i = 0; i < kStateNames.size(); ++i) {
    if (name == kStateNames[i]) return static_cast<VmState>(i);
  }
  return Status::Corruption("unknown VM state '" + name + "'");
}

bool HasProcess(VmState s) {
  return s == VmState::kBooting || s == VmState::kRunning || s == VmState::kPaused ||
         s == VmState::kStopping;
}

json VmRecord::ToJson() const {
  return {{"spec", spec.ToJson()},
          {"id", id},
          {"state", VmStateName(state)},
          {"accelerator", qemu::AcceleratorName(accelerator)},
          {"mac", mac},
          {"ram_path", ram_path},
          {"ram_owned", ram_owned},
          {"disk_path", disk_path},
          {"disk_chain", disk_chain},
          {"dir", dir},
          {"owner", owner},
          {"origin", origin},
          {"timings", timings},
          {"pid", pid},
          {"pid_start_time", pid_start_time},
          {"guest_ready", guest_ready},
          {"created_at_ms", created_at_ms},
          {"started_at_ms", started_at_ms},
          {"ready_at_ms", ready_at_ms},
          {"failure", failure},
          {"last_words", last_words},
          {"stop_mode", stop_mode},
          {"qemu_argv", qemu_argv}};
}

Result<VmRecord> VmRecord::FromJson(const json& j) {
  if (!j.is_object() || !j.contains("spec")) return Status::Corruption("VM record has no spec");
  VmRecord r;
  FERRY_ASSIGN_OR_RETURN(r.spec, VmSpec::FromJson(j["spec"]));
  try {
    FERRY_ASSIGN_OR_RETURN(r.state, VmStateFromName(j.at("state").get<std::string>()));
    r.id = j.at("id");
    r.accelerator =
        qemu::AcceleratorFromName(j.value("accelerator", "")).value_or(qemu::Accelerator::kTcg);
    r.mac = j.value("mac", "");
    r.ram_path = j.value("ram_path", "");
    r.ram_owned = j.value("ram_owned", true);
    r.disk_path = j.value("disk_path", std::string());
    r.disk_chain = j.value("disk_chain", std::vector<std::string>{});
    r.dir = j.value("dir", "");
    r.owner = j.value("owner", "");
    r.origin = j.value("origin", json::object());
    r.timings = j.value("timings", json::object());
    r.pid = j.value("pid", 0);
    r.pid_start_time = j.value("pid_start_time", uint64_t{0});
    r.guest_ready = j.value("guest_ready", false);
    r.created_at_ms = j.value("created_at_ms", int64_t{0});
    r.started_at_ms = j.value("started_at_ms", int64_t{0});
    r.ready_at_ms = j.value("ready_at_ms", int64_t{0});
    r.failure = j.value("failure", "");
    r.last_words = j.value("last_words", "");
    r.stop_mode = j.value("stop_mode", "");
    r.qemu_argv = j.value("qemu_argv", std::vector<std::string>{});
  } catch (const json::exception& e) {
    return Status::Corruption(std::string("VM record: ") + e.what());
  }
  return r;
}

Result<VmRecord> VmRecord::FromJson(const std::string& name, const json& j) {
  FERRY_ASSIGN_OR_RETURN(VmRecord r, FromJson(j));
  if (r.spec.name != name) {
    return Status::Corruption("the row of vm " + name + " holds vm " + r.spec.name);
  }
  return r;
}

}  // namespace ferry::vm
