// Clones of a snapshot: their plans, the checks before any QEMU starts (the rules in
// clone_admission.h), and the restore inside each fresh QEMU (device state, resume, a new
// identity).
#include <spdlog/spdlog.h>

#include <chrono>

#include "core/elapsed.h"
#include "core/fault_point.h"
#include "core/ids.h"
#include "crypto/openssl_util.h"
#include "snapshot/clone_admission.h"
#include "snapshot/clone_identity_reset.h"
#include "snapshot/device_state.h"
#include "snapshot/disk_recovery.h"
#include "snapshot/snapshot_manifest.h"
#include "snapshot/snapshot_service.h"
#include "snapshot/snapshot_transfer.h"
#include "snapshot/spare_qemus.h"
#include "vm/tap_address.h"
#include "vm/vm_origin.h"
#include "vm/vm_policy.h"

namespace ferry::snapshot {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

namespace {

// How the snapshot's device state leaves out the guest's RAM (device_state.h).
GuestRamInStream GuestRamOf(const SnapshotManifest& m) {
  return m.device_state.guest_ram_stripped ? GuestRamInStream::kStripped
                                           : GuestRamInStream::kSkipped;
}

std::string NewGuid() {
  std::string h = RandomHex(16);
  h[12] = '4';  // version 4 (random)
  return h.substr(0, 8) + "-" + h.substr(8, 4) + "-" + h.substr(12, 4) + "-" + h.substr(16, 4) +
         "-" + h.substr(20, 12);
}

int64_t MonotonicNs(Clock::time_point t = Clock::now()) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
}

// One clone to restore: from which snapshot, as whom, and when ferryd began it.
struct CloneRestore {
  std::string snapshot_dir;
  SnapshotManifest manifest;
  std::string clone_name;
  std::optional<PrimedIdentity> primed;  // a warm-pool QEMU primed while it waited
  std::string ipv4;                      // its own address on a tap network, or ""
  std::shared_ptr<const vm::AddressProbe> probe;  // to wait for before joining the bridge, or null
  Clock::time_point begun_at;            // when ferryd began this clone (its plan)
  // A spare QEMU (spare_qemus.h) still without RAM: its slot, the slot's descriptor in QEMU and
  // the RAM it maps; slot "" otherwise.
  std::string spare_slot_dir;
  int spare_slot_fd = -1;
  uint64_t spare_ram_kib = 0;
  std::string ram_image;              // as the snapshot's verification names it
  VerifiedFiles* verified = nullptr;  // the service's, which outlives every clone's restore
};

// Restores one clone inside its fresh QEMU: device state, resume, new identity.
Result<vm::RestoredGuest> RestoreClone(vm::VmRuntime& rt, Operation& op, const CloneRestore& c) {
  const auto t0 = Clock::now();
  const std::optional<PrimedIdentity>& primed = c.primed;
  json timings;
  timings["begun_at_monotonic_ns"] = MonotonicNs(c.begun_at);
  if (!c.spare_slot_dir.empty()) {
    // The link in the slot moves the image's ctime: the snapshot stays verified across it.
    Status given = Status::Ok();
    c.verified->AcrossLinkChange(c.ram_image, [&] {
      given = GiveSpareItsRam(rt, c.spare_slot_dir, c.spare_slot_fd, c.spare_ram_kib, c.ram_image);
    });
    FERRY_RETURN_IF_ERROR(given);
    timings["spare_qemu"] = true;
    timings["spare_bind_ms"] = MsSince(t0);
  }
  // A warm-pool QEMU has loaded the device state while it waited (SnapshotService::Preload):
  // its incoming migration says completed, and only `cont` is left. A primed one was resumed
  // after that load, so it is known to be loaded without asking.
  bool preloaded = primed.has_value();
  if (!preloaded) {
    auto incoming = qemu::QueryMigrate(rt);
    preloaded = incoming.ok() && incoming->state == qemu::MigrationState::kCompleted;
  }
  if (!preloaded) {
    FERRY_RETURN_IF_ERROR(LoadDeviceState(rt, c.snapshot_dir + "/" + c.manifest.device_state.file,
                                          kDeviceStateTimeout, GuestRamOf(c.manifest)));
  }
  timings["device_state_ms"] = MsSince(t0);
  timings["device_state_preloaded"] = preloaded;
  // A plain clone's reset_identity goes out before the resume (StartResetIdentity).
  std::optional<StartedIdentityReset> reset_sent;
  if (!primed) {
    FERRY_ASSIGN_OR_RETURN(reset_sent, StartResetIdentity(rt, c.clone_name, c.ipv4));
  }
  Status cont = qemu::Cont(rt);
  if (!cont.ok()) return cont.WithContext("resuming the restored guest");
  timings["running_ms"] = MsSince(t0);
  // steady_clock is CLOCK_MONOTONIC, one clock for every process of the host: a caller that
  // noted when it asked for the clone can tell how long it took to run (bench/clone_boot.cc).
  timings["running_at_monotonic_ns"] = MonotonicNs();
  // The guest runs with its parent's identity (or, primed, without its name) until the reset
  // below: a ferryd that dies here must not leave it to serve (VmService::Readopt drops it).
  FaultPoint("snapshot.clone.before_identity");

  op.SetPhase("resetting identity", 80);
  const auto t1 = Clock::now();
  auto reset = primed ? FinishIdentity(rt, *primed, c.clone_name, c.ipv4)
                      : AwaitResetIdentity(std::move(*reset_sent));
  if (!reset.ok()) return reset.status();
  const qemu::GuestIdentityChange& reply = reset->reply;
  timings["identity_ms"] = MsSince(t1);
  timings["identity_steps_ms"] = reply.StepsJson();
  // The guest's own time for the whole request: what identity_ms holds beyond it is the
  // channel (host to guest and back) and waiting for the guest to be scheduled.
  timings["identity_guest_ms"] = reply.total_ms;
  if (primed) {
    timings["identity_primed_in_pool"] = {
        {"ms", primed->ms}, {"guest_ms", primed->guest_ms}, {"steps_ms", primed->steps_ms}};
  }
  spdlog::info("vm {}: identity {} in {} ms (guest steps {})", c.clone_name,
               primed ? "finished" : "reset", timings["identity_ms"].get<int64_t>(),
               timings["identity_steps_ms"].dump(-1, ' ', true, json::error_handler_t::replace));
  if (c.probe) {
    // Started with the request and run beside all of the above: by now it has listened out.
    // Until here the clone's tap is off its bridge (VmLauncher::PrepareTap), so the address set
    // in the guest reached no one; the tap joins the bridge right after (JoinSegment), and only
    // if no one answered for the address.
    const auto probed = Clock::now();
    FERRY_RETURN_IF_ERROR(c.probe->WaitFor(c.clone_name));
    timings["address_probe_wait_ms"] = MsSince(probed);
  }
  timings["restore_total_ms"] = MsSince(t0);
  return vm::RestoredGuest{timings, reset->mac};
}

}  // namespace

Result<std::pair<vm::VmSpec, vm::LaunchPlan>> SnapshotService::ClonePlan(
    const std::string& snapshot, const std::string& name, std::optional<std::string> ip,
    WarmQemu warm, std::shared_ptr<const vm::AddressProbe> probe) {
  const auto begun_at = Clock::now();
  FERRY_ASSIGN_OR_RETURN(Paths paths, Find(snapshot));
  const std::string what = "snapshot " + snapshot;
  auto manifest = LoadManifest(paths.dir);
  if (!manifest.ok()) return manifest.status().WithContext(what);
  Status st = VerifySnapshot(paths.dir, *manifest, verified_);
  if (!st.ok()) return st.WithContext(what);
  const SnapshotManifest& m = *manifest;

  FERRY_RETURN_IF_ERROR(CheckClonable(paths, m, "clone " + name + " of " + what));
  auto spec = vm::VmSpec::FromJson(m.vm_spec.value("spec", json::object()));
  if (!spec.ok()) return spec.status().WithContext(what + ": its VM spec");
  FERRY_RETURN_IF_ERROR(ValidateName("vm", name));
  // The clone carries its parent's policy, bound to the parent (owner_policy.h, binding rule).
  if (spec->cloned_from.empty()) spec->cloned_from = spec->name;
  spec->name = name;
  spec->network.forwards.clear();
  if (ip) FERRY_RETURN_IF_ERROR(TakeCloneAddress(*spec, *ip, what));

  vm::CloneLaunch clone;
  clone.ram_image = paths.ram;
  clone.mac = m.vm_spec.value("mac", "");
  clone.vmgenid = NewGuid();
  clone.origin = vm::CloneOrigin{snapshot, m.id, m.vm_name};
  if (m.disk) {
    FERRY_ASSIGN_OR_RETURN(std::string frozen, FrozenDiskOf(paths.dir, m));
    clone.disk_chain.push_back(frozen);
    clone.disk_chain.insert(clone.disk_chain.end(), m.disk->chain.begin(), m.disk->chain.end());
  }
  const bool own_address = ip && spec->network.mode == vm::NetworkMode::kTap;
  CloneRestore restore{
      paths.dir,        m,       name, warm.primed, own_address ? spec->network.ip : "",
      std::move(probe), begun_at};
  // A clone (not a pool QEMU: no ip at all) without a pool QEMU takes a spare if one is ready.
  const CloneQemu qemu =
      CloneQemuFor(/*for_pool=*/!ip, warm.qemu.runtime != nullptr, spares_ != nullptr);
  if (qemu == CloneQemu::kSpareIfReady) {
    if (auto spare = spares_->Take(*spec, m.disk.has_value())) {
      restore.spare_slot_dir = spare->ram_slot_dir;
      restore.spare_slot_fd = spare->ram_slot_fd;
      restore.spare_ram_kib = spare->ram_kib;
      restore.ram_image = paths.dir + "/" + m.ram_file;
      restore.verified = &verified_;
      warm.qemu = std::move(*spare);
    }
  }
  clone.restore = [restore](vm::VmRuntime& rt, Operation& op) {
    return RestoreClone(rt, op, restore);
  };
  vm::LaunchPlan plan;
  if (warm.qemu.runtime && !restore.spare_slot_dir.empty()) {
    plan = vm::PooledCloneLaunch{std::move(clone), std::move(warm.qemu)};
  } else if (warm.qemu.runtime) {
    clone.origin.warm_pool = true;
    clone.origin.identity_primed = warm.primed.has_value();
    plan = vm::PooledCloneLaunch{std::move(clone), std::move(warm.qemu)};
  } else {
    plan = std::move(clone);
  }
  return std::make_pair(std::move(spec).value(), std::move(plan));
}

Status SnapshotService::CheckClonable(const std::string& snapshot, const std::string& what) {
  FERRY_ASSIGN_OR_RETURN(Paths paths, Find(snapshot));
  auto manifest = LoadManifest(paths.dir);
  if (!manifest.ok()) return manifest.status().WithContext("snapshot " + snapshot);
  return CheckClonable(paths, *manifest, what);
}

Status SnapshotService::CheckClonable(const Paths& paths, const SnapshotManifest& m,
                                      const std::string& what) {
  StoredSnapshot stored{m.name, paths.dir, paths.ram, paths.policy_sha256, m, {}};
  auto spec = vm::VmSpec::FromJson(m.vm_spec.value("spec", json::object()));
  if (!spec.ok()) return spec.status().WithContext("snapshot " + m.name + ": its VM spec");
  stored.spec = std::move(spec).value();
  FERRY_RETURN_IF_ERROR(CheckSnapshotClonable(vms_, stored, what));
  Status loads = CheckDeviceStateLoads(paths.dir + "/" + m.device_state.file, vms_.qemu_version());
  if (loads.code() == Status::Code::kFailedPrecondition) {
    return Status::FailedPrecondition(what + ": snapshot " + m.name + " cannot be restored here: " +
                                      loads.message() + ". Take the snapshot again on a host " +
                                      "running this QEMU, or give ferryd --qemu of its release");
  }
  if (!loads.ok()) return loads.WithContext(what);
  return Status::Ok();
}

Status SnapshotService::Preload(const std::string& snapshot, vm::VmRuntime& rt) {
  FERRY_ASSIGN_OR_RETURN(Paths paths, Find(snapshot));
  auto manifest = LoadManifest(paths.dir);
  if (!manifest.ok()) return manifest.status().WithContext("snapshot " + snapshot);
  // Verified (or found verified, by a stat) as ClonePlan does, right before the load.
  Status st = VerifySnapshot(paths.dir, *manifest, verified_);
  if (!st.ok()) return st.WithContext("snapshot " + snapshot);
  return LoadDeviceState(rt, paths.dir + "/" + manifest->device_state.file, kDeviceStateTimeout,
                         GuestRamOf(*manifest))
      .WithContext("snapshot " + snapshot + ": preloading a pool QEMU");
}

Result<std::shared_ptr<const vm::AddressProbe>> SnapshotService::CheckCloneAddresses(
    const std::string& snapshot, const std::vector<std::string>& names,
    const std::string& first_ip) {
  FERRY_ASSIGN_OR_RETURN(Paths paths, Find(snapshot));
  auto manifest = LoadManifest(paths.dir);
  if (!manifest.ok()) return manifest.status().WithContext("snapshot " + snapshot);
  auto parent = vm::VmSpec::FromJson(manifest->vm_spec.value("spec", json::object()));
  if (!parent.ok()) return parent.status().WithContext("snapshot " + snapshot + ": its VM spec");
  std::vector<vm::VmSpec> clones;
  for (size_t i = 0; i < names.size(); ++i) {
    vm::VmSpec spec = *parent;
    spec.name = names[i];
    std::string ip;
    if (!first_ip.empty()) {
      auto nth = vm::NthCloneAddress(first_ip, static_cast<int>(i));
      if (!nth.ok()) return nth.status().WithContext("vm " + names[i]);
      ip = *nth;
    }
    FERRY_RETURN_IF_ERROR(TakeCloneAddress(spec, ip, "snapshot " + snapshot));
    clones.push_back(std::move(spec));
  }
  return vms_.CheckCloneAddresses(clones);
}

Result<std::shared_ptr<Operation>> SnapshotService::CloneOne(
    const std::string& snapshot, const std::string& name, std::vector<vm::PortForwardSpec> forwards,
    const std::string& ip, std::shared_ptr<const vm::AddressProbe> probe, WarmQemu warm) {
  FERRY_ASSIGN_OR_RETURN(auto planned,
                         ClonePlan(snapshot, name, ip, std::move(warm), std::move(probe)));
  auto& [spec, plan] = planned;
  spec.network.forwards = std::move(forwards);
  // A spare this clone took and CreateFrom refused before any launch (admission) is ended here;
  // once launched, the launch's rollback ends it.
  std::optional<vm::PrelaunchedQemu> spare;
  if (const auto* p = std::get_if<vm::PooledCloneLaunch>(&plan);
      p && !p->qemu.ram_slot_dir.empty()) {
    spare = p->qemu;
  }
  auto op = vms_.CreateFrom(std::move(spec), std::move(plan), /*wait_ready=*/false);
  if (!op.ok() && spare) SpareQemus::Discard(*spare);
  return op;
}

Result<std::shared_ptr<Operation>> SnapshotService::Clone(const CloneRequest& req) {
  FERRY_ASSIGN_OR_RETURN(Paths paths, Find(req.snapshot));
  FERRY_RETURN_IF_ERROR(CheckCloneCount(req.count, req.names.size()));
  auto manifest = LoadManifest(paths.dir);
  if (!manifest.ok()) return manifest.status().WithContext("snapshot " + req.snapshot);
  FERRY_RETURN_IF_ERROR(CheckClonable(paths, *manifest, "clone of snapshot " + req.snapshot));
  FERRY_ASSIGN_OR_RETURN(const std::vector<std::string> names,
                         CloneNamesFor(manifest->vm_name, req.count, req.names,
                                       [this](const std::string& n) { return vms_.Exists(n); }));
  // Every clone's address, before any starts (tap networking); the probe runs on beside them.
  FERRY_ASSIGN_OR_RETURN(std::shared_ptr<const vm::AddressProbe> probe,
                         CheckCloneAddresses(req.snapshot, names, req.ip));
  auto op = vms_.operations().Start("clone", req.snapshot);
  vms_.InBackground(
      [this, req, names, op, probe] {
        json clones = json::array();
        for (size_t i = 0; i < names.size(); ++i) {
          std::vector<vm::PortForwardSpec> forwards = req.forwards;
          for (auto& f : forwards) {
            if (f.host_port != 0) f.host_port = static_cast<uint16_t>(f.host_port + i);
          }
          op->SetPhase("cloning " + names[i], static_cast<int>(100 * i / names.size()));
          std::string ip;
          if (!req.ip.empty()) {
            auto nth = vm::NthCloneAddress(req.ip, static_cast<int>(i));
            if (!nth.ok()) return op->Fail(nth.status());
            ip = *nth;
          }
          // No spare starts while this clone runs (it would take the clone's CPU).
          SpareQemus::CloneInFlight in_flight(spares_);
          auto child = CloneOne(req.snapshot, names[i], forwards, ip, probe);
          if (!child.ok()) return op->Fail(child.status());
          (*child)->WaitDone(600000);
          json result = (*child)->ToJson();
          if (result.value("state", "") != "succeeded") {
            // An address in use is the news, whichever clone was starting when the probe said
            // so (that one was rolled back, the later ones not begun).
            if (Status probed = probe->Wait(); !probed.ok()) return op->Fail(probed);
            return op->Fail(
                Status::FromCode(Status::CodeFromName(result["error"].value("code", "internal")),
                                 result["error"].value("message", "clone failed")));
          }
          clones.push_back(result["result"]);
        }
        op->Succeed({{"clones", clones}});
      },
      op);
  return op;
}

std::vector<pid_t> SnapshotService::SparePids() {
  return spares_ ? spares_->WaitingPids() : std::vector<pid_t>{};
}

}  // namespace ferry::snapshot
