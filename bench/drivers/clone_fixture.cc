#include "bench/drivers/clone_fixture.h"

namespace ferry::bench {

Result<nlohmann::json> SnapshotFreshVm(BenchFerryd& ferryd, const std::string& vm,
                                       const std::string& snapshot, uint64_t memory_mib,
                                       uint16_t guest_port,
                                       const std::function<Status(const BootedVm&)>& check) {
  FERRY_ASSIGN_OR_RETURN(BootedVm src, BootVm(ferryd, vm, memory_mib, guest_port));
  if (check) FERRY_RETURN_IF_ERROR(check(src));
  FERRY_ASSIGN_OR_RETURN(nlohmann::json snap, TakeSnapshot(ferryd, vm, snapshot));
  VmsToDelete source(ferryd);
  source.Add(vm);
  FERRY_RETURN_IF_ERROR(source.DeleteNow());
  return snap;
}

Status MakeWarmPool(BenchFerryd& ferryd, const std::string& tmpl, const std::string& snapshot,
                    bool& made) {
  FERRY_ASSIGN_OR_RETURN(
      CliRun created,
      ferryd.Cli({"template", "create", tmpl, "--from-snapshot", snapshot}, kVmCommandTimeout));
  FERRY_RETURN_IF_ERROR(created.ToStatus());
  made = true;
  FERRY_ASSIGN_OR_RETURN(CliRun pool,
                         ferryd.Cli({"template", "pool", tmpl, "--size", "1"}, kVmCommandTimeout));
  FERRY_RETURN_IF_ERROR(pool.ToStatus());
  return WaitPoolReady(ferryd, tmpl, 1, kWarmPoolTimeout);
}

void StopAndSweep(std::unique_ptr<BenchFerryd>& ferryd, const std::string& tmpl,
                  const std::vector<std::optional<ScratchDir>*>& dirs) {
  if (ferryd && !tmpl.empty()) {
    (void)ferryd->Cli({"template", "pool", tmpl, "--size", "0"}, kVmCommandTimeout,
                      BenchFerryd::Wait::kEvenIfInterrupted);
    (void)ferryd->Cli({"template", "delete", tmpl}, kVmCommandTimeout,
                      BenchFerryd::Wait::kEvenIfInterrupted);
  }
  if (ferryd) ferryd->Stop();
  ferryd.reset();
  SweepAndRemove(dirs);
}

std::vector<std::string> RunCloneNames(const std::string& prefix, int round, int count) {
  std::vector<std::string> names;
  for (int i = 1; i <= count; ++i) {
    names.push_back(prefix + std::to_string(round) + "-" + std::to_string(i));
  }
  return names;
}

Result<std::vector<CloneRun>> ClonesPinged(BenchFerryd& ferryd, VmsToDelete& cleanup,
                                           const std::string& snapshot,
                                           const std::vector<std::string>& names,
                                           uint16_t guest_port,
                                           std::chrono::milliseconds ping_timeout) {
  cleanup.Add(names);
  FERRY_ASSIGN_OR_RETURN(auto clones, CloneSnapshot(ferryd, snapshot, names, guest_port));
  for (const CloneRun& c : clones) {
    FERRY_RETURN_IF_ERROR(RedisPing(c.host_port, ping_timeout).WithContext("clone " + c.name));
  }
  return clones;
}

Result<CloneRun> ClonePinged(BenchFerryd& ferryd, VmsToDelete& cleanup, const std::string& snapshot,
                             const std::string& name, uint16_t guest_port,
                             std::chrono::milliseconds ping_timeout) {
  FERRY_ASSIGN_OR_RETURN(auto clones,
                         ClonesPinged(ferryd, cleanup, snapshot, {name}, guest_port, ping_timeout));
  return std::move(clones.front());
}

Result<CloneRun> PoolClonePinged(BenchFerryd& ferryd, VmsToDelete& cleanup, const std::string& tmpl,
                                 const std::string& name, uint16_t guest_port,
                                 std::chrono::milliseconds ping_timeout) {
  FERRY_RETURN_IF_ERROR(WaitPoolReady(ferryd, tmpl, 1, kWarmPoolTimeout));
  cleanup.Add(name);
  FERRY_ASSIGN_OR_RETURN(CloneRun c, CloneTemplate(ferryd, tmpl, name, guest_port));
  if (!c.FromWarmPool()) {
    return Status::FailedPrecondition("vm " + name + " did not come from the warm pool (origin: " +
                                      c.vm.value("origin", nlohmann::json::object()).dump() + ")");
  }
  FERRY_RETURN_IF_ERROR(RedisPing(c.host_port, ping_timeout).WithContext("clone " + name));
  return c;
}

}  // namespace ferry::bench
