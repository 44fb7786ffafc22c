// Entry clone_sizes: whether a snapshot's pause and a clone's restore grow with guest RAM.
//
//   ferry side (no comparison side: the rows set 1 GiB against 256 MiB, both from the same
//   runs): two VMs of the default image, 256 MiB and 1 GiB, booted once and left idle, and one
//   snapshot of each taken right after ready, that every clone of its size comes from (so, as
//   in the other entries, the timed clones find the snapshot already verified by the warm-up's).
//   Per run, for each size in alternating order: `ferry snapshot create VM --name S --json` of
//   the running VM (its pause_ms, device_state_ms, ram_copy_ms; that snapshot is deleted at
//   once), then `ferry clone S0 --name C --forward 0:6379 --json` of the set-up snapshot, timed
//   from spawning the CLI to its exit, with ferryd's restore timings; the clone is checked
//   (redis PING) and deleted.
#include <optional>

#include "bench/baselines/bare_spec.h"
#include "bench/harness/bench_ferryd.h"
#include "bench/drivers/ferry_ops.h"
#include "bench/harness/runner.h"

namespace ferry::bench {
namespace {

using nlohmann::json;
using std::chrono::milliseconds;

constexpr milliseconds kPingTimeout(10000);
constexpr uint64_t kSmallMiB = 256;
constexpr uint64_t kLargeMiB = 1024;

std::string Key(const std::string& what, uint64_t mib) {
  return what + (mib == kSmallMiB ? "_256m" : "_1g");
}

FigureSpec Row(std::string name, std::string ferry, std::string comparison, Goal goal = {},
               bool optional = false) {
  FigureSpec f;
  f.optional = optional;
  f.name = std::move(name);
  f.ferry_key = std::move(ferry);
  f.comparison_key = std::move(comparison);
  f.goal = std::move(goal);
  f.comparison_on_ferry_side = !f.comparison_key.empty();
  return f;
}

class CloneSizes : public BenchEntry {
 public:
  EntryInfo Info() const override {
    const uint64_t S = kSmallMiB, L = kLargeMiB;
    return {
        "clone_sizes",
        "snapshot pause and clone restore at 1 GiB next to 256 MiB (same image, idle guest)",
        "per size: `ferry snapshot create VM --name S --json` (pause_ms), and `ferry clone S0 "
        "--name C --forward 0:6379 --json` of a snapshot taken in set-up: CLI spawn to exit, "
        "and ferryd's restore timings",
        "",
        {
            Row("clone restore 1 GiB vs 256 MiB: CLI wall (command to identity reset done)",
                Key("clone_cli_ms", L), Key("clone_cli_ms", S), Goal::MaxRatio(1.2, "within 1.2x")),
            Row("clone restore 1 GiB vs 256 MiB: ferryd restore_total_ms",
                Key("restore_total_ms", L), Key("restore_total_ms", S),
                Goal::MaxRatio(1.2, "within 1.2x")),
            Row("clone restore 1 GiB vs 256 MiB: ferryd running_ms (to running)",
                Key("running_ms", L), Key("running_ms", S)),
            Row("clone restore 1 GiB vs 256 MiB: device_state_ms", Key("device_state_ms", L),
                Key("device_state_ms", S)),
            Row("clone restore 1 GiB vs 256 MiB: identity reset", Key("identity_ms", L),
                Key("identity_ms", S)),
            Row("  identity step dhcp", Key("step_dhcp_ms", L), Key("step_dhcp_ms", S),
                Goal::None(), true),
            Row("  identity step ssh_keys", Key("step_ssh_keys_ms", L), Key("step_ssh_keys_ms", S),
                Goal::None(), true),
            Row("  identity step mac", Key("step_mac_ms", L), Key("step_mac_ms", S), Goal::None(),
                true),
            Row("  identity minus its steps (guest channel reconnect, RPC)",
                Key("identity_rest_ms", L), Key("identity_rest_ms", S)),
            Row("clone restore 1 GiB vs 256 MiB: outside the restore (CLI - restore_total)",
                Key("outside_ms", L), Key("outside_ms", S)),
            Row("first clone of a new snapshot 1 GiB vs 256 MiB: CLI wall",
                Key("first_clone_cli_ms", L), Key("first_clone_cli_ms", S)),
            Row("  outside the restore (CLI - restore_total; RAM image check)",
                Key("first_outside_ms", L), Key("first_outside_ms", S)),
            Row("snapshot pause at 256 MiB (pause_ms)", Key("pause_ms", S), ""),
            Row("snapshot pause at 1 GiB (pause_ms)", Key("pause_ms", L), ""),
            Row("snapshot pause 1 GiB vs 256 MiB", Key("pause_ms", L), Key("pause_ms", S)),
            Row("snapshot 1 GiB vs 256 MiB: device_state_ms", Key("snap_device_state_ms", L),
                Key("snap_device_state_ms", S)),
            Row("snapshot 1 GiB vs 256 MiB: ram_copy_ms", Key("ram_copy_ms", L),
                Key("ram_copy_ms", S)),
        }};
  }

  Status SetUp(const BenchConfig& config) override {
    FERRY_ASSIGN_OR_RETURN(guest_, GuestSetup::Find(config));
    FERRY_ASSIGN_OR_RETURN(ferryd_, BenchFerryd::Start(config));
    for (uint64_t mib : {kSmallMiB, kLargeMiB}) {
      FERRY_ASSIGN_OR_RETURN(BootedVm vm, BootVm(*ferryd_, VmName(mib), mib, guest_.guest_port));
      (void)vm;
      FERRY_ASSIGN_OR_RETURN(json snap, TakeSnapshot(*ferryd_, VmName(mib), CloneSource(mib)));
      ram_data_mib_[mib] = snap.value("ram_data_bytes", uint64_t{0}) >> 20;
    }
    return Status::Ok();
  }

  Result<Measurements> RunOnce(const Trial& trial) override {
    Measurements m;
    const bool small_first = trial.round % 2 == 1;
    for (uint64_t mib : small_first ? std::vector<uint64_t>{kSmallMiB, kLargeMiB}
                                    : std::vector<uint64_t>{kLargeMiB, kSmallMiB}) {
      FERRY_RETURN_IF_ERROR(SnapshotAndClone(trial.round, mib, m));
    }
    return m;
  }

  std::vector<std::string> Notes() const override {
    std::vector<std::string> notes = {
        guest_.AcceleratorNote(),
        guest_.ImageNote(),
        "VMs: one of 256 MiB and one of 1 GiB, booted once to ready and left idle; each was "
        "snapshotted once right after ready, and all clones of its size come from that "
        "snapshot; every run also takes (and deletes) a new snapshot of each for the pause",
        "snapshot pause: pause_ms of `ferry snapshot create --json` (the guest is stopped while "
        "ferryd saves the device state and copies the RAM file's data pages)",
        "clone restore: the `ferry clone` CLI's wall time, and ferryd's timings.restore_total_ms "
        "(restore start, QEMU already up, to identity reset done); running_ms is restore start "
        "to the guest running; identity = restore_total_ms - running_ms",
        "first clone of a new snapshot: the run's pause snapshot is cloned once right after it "
        "is taken; ferryd checks a snapshot's whole RAM image the first time it clones it (and "
        "again while the file is too new for the check to be remembered), so this clone pays "
        "that check; the rows above clone a snapshot the warm-up already cloned",
        "every clone was checked to answer redis PING through its forward",
        "ratio = 1 GiB median / 256 MiB median, both from the same runs",
    };
    for (uint64_t mib : {kSmallMiB, kLargeMiB}) {
      auto it = ram_data_mib_.find(mib);
      if (it != ram_data_mib_.end()) {
        notes.push_back("RAM data in the " + std::to_string(mib) +
                        " MiB snapshot the clones come from: " + std::to_string(it->second) +
                        " MiB");
      }
    }
    return notes;
  }

  void TearDown() override {
    if (ferryd_) ferryd_->Stop();
    ferryd_.reset();
  }

 private:
  static std::string VmName(uint64_t mib) { return mib == kSmallMiB ? "m256" : "m1g"; }

  static std::string CloneSource(uint64_t mib) { return "s-" + VmName(mib); }

  Status SnapshotAndClone(int round, uint64_t mib, Measurements& m) {
    // The pause: a new snapshot of the running VM. It is cloned once (the first clone of a new
    // snapshot checks its whole RAM image), then the clone and the snapshot are deleted.
    const std::string snap = "p" + std::to_string(round) + "-" + VmName(mib);
    const std::string first = "f" + std::to_string(round) + "-" + VmName(mib);
    {
      FERRY_ASSIGN_OR_RETURN(json s, TakeSnapshot(*ferryd_, VmName(mib), snap));
      VmsToDelete first_clone(*ferryd_);
      // Deletes the clone, then the snapshot it maps, whatever failed.
      struct SnapshotGuard {
        BenchFerryd& ferryd;
        std::string name;
        VmsToDelete& clones;
        ~SnapshotGuard() {
          (void)clones.DeleteNow();
          (void)ferryd.Cli({"snapshot", "delete", name}, kVmCommandTimeout,
                           BenchFerryd::Wait::kEvenIfInterrupted);
        }
      } guard{*ferryd_, snap, first_clone};
      m[Key("pause_ms", mib)] = s.value("pause_ms", 0.0);
      m[Key("snap_device_state_ms", mib)] = s.value("device_state_ms", 0.0);
      m[Key("ram_copy_ms", mib)] = s.value("ram_copy_ms", 0.0);
      first_clone.Add(first);
      FERRY_ASSIGN_OR_RETURN(auto f, CloneSnapshot(*ferryd_, snap, {first}, guest_.guest_port));
      FERRY_RETURN_IF_ERROR(
          RedisPing(f.front().host_port, kPingTimeout).WithContext("clone " + first));
      m[Key("first_clone_cli_ms", mib)] = f.front().cli_ms;
      m[Key("first_outside_ms", mib)] = f.front().cli_ms - f.front().Timing("restore_total_ms");
      FERRY_RETURN_IF_ERROR(first_clone.DeleteNow());
    }

    // The restore: a clone of the set-up snapshot of this size.
    const std::string clone = "c" + std::to_string(round) + "-" + VmName(mib);
    VmsToDelete cleanup(*ferryd_);
    cleanup.Add(clone);
    FERRY_ASSIGN_OR_RETURN(auto clones,
                           CloneSnapshot(*ferryd_, CloneSource(mib), {clone}, guest_.guest_port));
    const CloneRun& c = clones.front();
    FERRY_RETURN_IF_ERROR(RedisPing(c.host_port, kPingTimeout).WithContext("clone " + clone));
    m[Key("clone_cli_ms", mib)] = c.cli_ms;
    m[Key("restore_total_ms", mib)] = c.Timing("restore_total_ms");
    m[Key("running_ms", mib)] = c.Timing("running_ms");
    m[Key("device_state_ms", mib)] = c.Timing("device_state_ms");
    m[Key("identity_ms", mib)] = c.AfterRunningMs();
    m[Key("outside_ms", mib)] = c.cli_ms - c.Timing("restore_total_ms");
    const json steps =
        c.vm.value("timings", json::object()).value("identity_steps_ms", json::object());
    double in_steps = 0;
    for (const auto& [step, ms] : steps.items()) {
      if (!ms.is_number()) continue;
      m[Key("step_" + step + "_ms", mib)] = ms.get<double>();
      in_steps += ms.get<double>();
    }
    m[Key("identity_rest_ms", mib)] = c.AfterRunningMs() - in_steps;
    return cleanup.DeleteNow();
  }

  GuestSetup guest_;
  std::unique_ptr<BenchFerryd> ferryd_;
  std::map<uint64_t, uint64_t> ram_data_mib_;
};

}  // namespace

FERRY_BENCH_ENTRY("clone_sizes", CloneSizes);

}  // namespace ferry::bench
