// The JSON views of VMs and the host (`ferry vm show`, `vm list`, `host show`), and the read-only
// queries other services ask of the VMs. Nothing here changes a VM.
#include <algorithm>

#include "qemu/guest_messages.h"
#include "qemu/qmp_commands.h"
#include "vm/console_ring.h"
#include "vm/host_probe.h"
#include "vm/tap_device.h"
#include "vm/vm_policy.h"
#include "vm/vm_service.h"
#include "vm/vm_state_machine.h"

namespace ferry::vm {

using nlohmann::json;

json VmService::Describe(Vm& vm) {
  const VmRecord r = vm.rec;  // a copy: the analysis follows no reference into vm
  json j = r.ToJson();
  json summary = {{"name", r.spec.name},
                  {"state", VmStateName(r.state)},
                  {"memory_mib", r.spec.memory_mib},
                  {"accelerator", qemu::AcceleratorName(r.accelerator)}};
  j.update(summary);
  const int64_t now = NowUnixMs();
  j["uptime_ms"] = HasProcess(r.state) && r.started_at_ms ? now - r.started_at_ms : 0;
  j["boot_to_ready_ms"] = r.ready_at_ms ? r.ready_at_ms - r.started_at_ms : 0;
  j["paths"] = {{"dir", vm.paths.dir},
                {"qmp_socket", vm.paths.qmp_socket},
                {"guest_socket", vm.paths.guest_socket},
                {"console_log", vm.paths.console_log},
                {"qemu_log", vm.paths.qemu_log},
                {"ram_file", r.ram_path}};
  if (!r.disk_path.empty()) {
    j["paths"]["disk"] = r.disk_path;
    j["paths"]["disk_chain"] = r.disk_chain;
  }
  j["busy_with"] = vm.holder.Describe();
  j["policy"] = DescribePolicy(r.spec, r.origin);
  j["owner"] = j["policy"]["owner"];
  if (r.spec.network.mode == NetworkMode::kTap) j["tap"] = TapDevice::NameFor(r.id);
  return j;
}

Result<json> VmService::Show(const std::string& name) {
  FERRY_ASSIGN_OR_RETURN(auto vm, Find(name));
  json j;
  std::shared_ptr<VmRuntime> rt;
  bool ask_guest;
  {
    MutexLock lock(vm->mu);
    j = Describe(*vm);
    ask_guest = vm->rec.guest_ready && vm->rec.state == VmState::kRunning;
    rt = vm->rt;
  }
  if (ask_guest && rt) {
    auto reply = rt->GuestCall(guest::ops::kIdentity, json::object(), std::chrono::seconds(2));
    auto identity =
        reply.ok() ? qemu::ParseIdentityReply(*reply) : Result<qemu::GuestIdentity>(reply.status());
    if (identity.ok()) {
      j["guest"] = identity->ToJson();
    } else {
      j["guest"] = {{"error", identity.status().message()}};
    }
  }
  return j;
}

json VmService::List() {
  std::vector<std::shared_ptr<Vm>> vms;
  {
    MutexLock lock(mu_);
    for (auto& [name, vm] : vms_) vms.push_back(vm);
  }
  json out = json::array();
  for (auto& vm : vms) {
    MutexLock lock(vm->mu);
    json d = Describe(*vm);
    out.push_back({{"name", d["name"]},
                   {"state", d["state"]},
                   {"memory_mib", d["memory_mib"]},
                   {"cpus", vm->rec.spec.cpus},
                   {"uptime_ms", d["uptime_ms"]},
                   {"accelerator", d["accelerator"]},
                   {"forwards", d["spec"]["network"]["forwards"]},
                   {"failure", vm->rec.failure}});
  }
  return out;
}

Result<std::string> VmService::Console(const std::string& name, size_t max_bytes) {
  FERRY_ASSIGN_OR_RETURN(auto vm, Find(name));
  std::string path;
  {
    MutexLock lock(vm->mu);
    path = vm->paths.console_log;
  }
  return ConsoleTail(path, max_bytes);
}

json VmService::HostInfo() {
  json images = images_.Names();
  auto cap = ProbeCapacity(config_.ram_dir);
  return {{"accelerator", qemu::AcceleratorName(accel_.accelerator)},
          {"accelerator_reason", accel_.reason},
          {"qemu_version", qemu_version_.ToString()},
          {"state_dir", config_.state_dir},
          {"ram_dir", config_.ram_dir},
          {"images", images},
          {"mem_available_mib", cap.mem_available_bytes >> 20},
          {"ram_dir_free_mib", cap.ram_dir_free_bytes >> 20}};
}

std::vector<std::string> VmService::VmsUsingDisk(const std::string& frozen_path) {
  MutexLock lock(mu_);
  std::vector<std::string> names;
  for (auto& [name, vm] : vms_) {
    MutexLock l(vm->mu);
    const auto& chain = vm->rec.disk_chain;
    if (std::find(chain.begin(), chain.end(), frozen_path) != chain.end()) names.push_back(name);
  }
  return names;
}

Result<std::optional<std::string>> VmService::DiskNode(const std::string& name) {
  FERRY_ASSIGN_OR_RETURN(auto vm, Find(name));
  std::shared_ptr<VmRuntime> rt;
  {
    MutexLock lock(vm->mu);
    if (HasProcess(vm->rec.state) && vm->rt && !vm->rt->Exited()) rt = vm->rt;
  }
  if (!rt) return std::optional<std::string>();
  auto node = qemu::QueryBlockNodeName(*rt, qemu::kDiskDeviceId);
  if (!node.ok()) return node.status().WithContext("vm " + name);
  return std::optional<std::string>(*node);
}

std::vector<std::string> VmService::VmsMapping(const std::string& ram_path) {
  std::vector<std::string> names;
  MutexLock lock(mu_);
  for (auto& [name, vm] : vms_) {
    MutexLock l(vm->mu);
    // A stopped clone maps nothing: started again, it boots with RAM of its own.
    const bool live = HasProcess(vm->rec.state) || vm->rec.state == VmState::kCreating;
    if (live && !vm->rec.ram_owned && vm->rec.ram_path == ram_path) names.push_back(name);
  }
  return names;
}

bool VmService::OwnsDir(const std::string& dir) {
  MutexLock lock(mu_);
  for (auto& [name, vm] : vms_) {
    MutexLock l(vm->mu);
    if (vm->paths.dir == dir) return true;
  }
  return false;
}

bool VmService::Exists(const std::string& name) {
  MutexLock lock(mu_);
  return vms_.count(name) > 0;
}

Result<VmRecord> VmService::Get(const std::string& name) {
  FERRY_ASSIGN_OR_RETURN(auto vm, Find(name));
  MutexLock lock(vm->mu);
  return vm->rec;
}

Result<std::shared_ptr<VmRuntime>> VmService::RunningGuest(const std::string& name) {
  FERRY_ASSIGN_OR_RETURN(auto vm, Find(name));
  MutexLock lock(vm->mu);
  if (vm->rec.state != VmState::kRunning) {
    return Status::FailedPrecondition("vm " + name + " is " + VmStateName(vm->rec.state) +
                                      "; its guest must be running");
  }
  if (!vm->rt) return Status::Unavailable("vm " + name + ": QEMU is not connected");
  return vm->rt;
}

Result<json> VmService::GuestRandom(const std::string& name, int bytes) {
  FERRY_ASSIGN_OR_RETURN(std::shared_ptr<VmRuntime> rt, RunningGuest(name));
  auto r = rt->GuestCall(guest::ops::kUrandom, {{"bytes", bytes}}, std::chrono::seconds(5));
  if (!r.ok()) return r.status().WithContext("vm " + name);
  auto random = qemu::ParseRandomReply(*r, bytes > 0 ? static_cast<size_t>(bytes) : 0);
  if (!random.ok()) return random.status().WithContext("vm " + name);
  return json{{"hex", random->hex}};
}

Result<json> VmService::GuestBallast(const std::string& name, uint64_t mib) {
  FERRY_ASSIGN_OR_RETURN(std::shared_ptr<VmRuntime> rt, RunningGuest(name));
  // Filling a GiB takes seconds under TCG.
  auto r = rt->GuestCall(guest::ops::kBallast, {{"mib", mib}}, std::chrono::minutes(5));
  if (!r.ok()) return r.status().WithContext("vm " + name);
  auto ballast = qemu::ParseBallastReply(*r, mib);
  if (!ballast.ok()) return ballast.status().WithContext("vm " + name);
  return json{{"mib", ballast->mib}, {"fill_ms", ballast->fill_ms}};
}

}  // namespace ferry::vm
