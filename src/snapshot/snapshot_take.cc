// Taking a snapshot (SnapshotService::Create), as named steps:
//
//   CheckSnapshottable  the owner allows it, the VM owns its RAM file, the RAM directory has room
//   PrepareDirs         STATE/snapshots/NAME.partial and RAM_DIR/snapshots
//   CaptureLive         RAM copied while the guest runs, then at the instant QEMU stops it: frozen
//                       disk, last pages, device state; resume (ram_precopy.h). For a running VM.
//   CaptureWhilePaused  pause; device state, frozen disk, RAM image; resume. For a paused VM, or
//                       with --snapshot-copy paused.
//   WriteSnapshotDir    manifest with checksums and links; NAME.partial renamed to NAME
//   Register            the snapshot's row in the registry: from here it exists
//
// The order, how the RAM is copied and what a failure undoes are decided in
// snapshot_take_plan.h. A failure in any step leaves nothing behind (Discard); a frozen disk stays,
// since the VM already writes the new overlay on it. The VM is resumed whatever happens once it
// was paused.
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <optional>

#include "core/elapsed.h"
#include "core/fault_point.h"
#include "core/files.h"
#include "core/ids.h"
#include "crypto/openssl_util.h"
#include "qemu/accelerator.h"
#include "qemu/launch_spec.h"
#include "qemu/qmp_commands.h"
#include "snapshot/clone_state.h"
#include "snapshot/device_state.h"
#include "snapshot/disk_freeze.h"
#include "snapshot/ram_precopy.h"
#include "snapshot/snapshot_service.h"
#include "snapshot/snapshot_take_plan.h"
#include "vm/vm_disk.h"
#include "vm/vm_origin.h"
#include "vm/vm_policy.h"

namespace ferry::snapshot {
namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

// Whether the VM's data disk can be frozen in the middle of a live copy (snapshot_take_plan.h).
bool VmDiskAllowsLiveCopy(vm::VmRuntime& rt, const vm::VmRecord& rec) {
  if (rec.disk_path.empty()) return true;
  return DiskAllowsLiveCopy(true, qemu::QueryBlockNodeNames(rt),
                            qemu::FileNodeName(qemu::DiskNodeName(rec.disk_path)));
}

}  // namespace

// One snapshot being taken: where it is written and what it has captured so far.
struct SnapshotService::Taking {
  std::string vm_name;
  std::string name;
  std::string what;  // "snapshot VM@NAME", for errors and logs
  vm::VmLease lease;
  std::string id;
  Paths paths;
  std::string partial;               // paths.dir + ".partial" until the snapshot is complete
  SnapshotManifest manifest;         // filled as the steps go
  std::optional<FrozenDisk> frozen;  // set when the VM's data disk was frozen
  int64_t pause_ms = 0;
  int64_t pause_us = 0;  // by QEMU's STOP and RESUME events, for a live snapshot (else 0)
  int64_t device_ms = 0;
  // After the RAM copy, for `snapshot create --json`: where the time to a usable snapshot goes.
  int64_t seal_ms = 0;      // RAM image checksummed (or its table folded), synced, made 0400
  int64_t write_ms = 0;     // WriteSnapshotDir: device state digest, manifest, rename
  int64_t register_ms = 0;  // the registry row
  bool in_place = false;  // the directory was renamed to paths.dir
};

// The steps of TakeSnapshot as RunTake runs them (snapshot_take_plan.h), each timed for
// `snapshot create --json`.
struct SnapshotService::StepsOfTake : TakeSteps {
  StepsOfTake(SnapshotService& s, Taking& t, Operation& op) : service(s), t(t), op(op) {}
  Status Prepare() override { return service.PrepareDirs(t); }
  Status Capture() override {
    const SnapshotCopy copy = CopyFor(t.lease.record.state, service.copy_mode_,
                                      VmDiskAllowsLiveCopy(*t.lease.runtime, t.lease.record));
    return copy == SnapshotCopy::kLive ? service.CaptureLive(t, op)
                                       : service.CaptureWhilePaused(t, op);
  }
  Status WriteDir() override {
    const auto at = Clock::now();
    Status st = service.WriteSnapshotDir(t, op);
    t.write_ms = MsSince(at);
    return st;
  }
  Status Register() override {
    const auto at = Clock::now();
    Status st = service.Register(t);
    t.register_ms = MsSince(at);
    return st;
  }
  void Discard() override { service.Discard(t); }

  SnapshotService& service;
  Taking& t;
  Operation& op;
};

Status SnapshotService::CheckSnapshotAllowed(const vm::VmSpec& spec, const std::string& what) {
  // A snapshot serves only to clone (and to make templates, which are clones): of a VM whose
  // owner forbids clones none is taken, so no copy of its memory is left on the host.
  Status st = vm::CheckSpecCloneAllowed(spec, what);
  if (st.code() != Status::Code::kPermissionDenied) return st;
  return Status::PermissionDenied(st.message() +
                                  "; a snapshot serves only to clone, so none is taken");
}

Status SnapshotService::TakeSnapshot(const std::string& vm_name, const std::string& name,
                                     Operation& op) {
  const std::string what = "snapshot " + vm_name + "@" + name;
  FERRY_ASSIGN_OR_RETURN(vm::VmLease lease, vms_.Lease(vm_name, op.id()));
  if (Status st = CheckSnapshottable(lease.record, vm_name, what); !st.ok()) {
    lease.release(json::object());
    return st;
  }
  Taking t;
  t.vm_name = vm_name;
  t.name = name;
  t.what = what;
  t.lease = std::move(lease);
  t.id = NewId();
  t.paths = PathsFor(name, t.id);
  t.partial = t.paths.dir + ".partial";
  StepsOfTake steps{*this, t, op};
  if (Status st = RunTake(steps); !st.ok()) return st.WithContext(what);
  const SnapshotManifest& m = t.manifest;
  t.lease.release({{"last_snapshot",
                    {{"name", name},
                     {"pause_ms", t.pause_ms},
                     {"device_state_ms", t.device_ms},
                     {"ram_copy_ms", m.ram.copy_micros / 1000}}}});
  op.Succeed({{"name", name},
              {"vm", vm_name},
              {"pause_ms", t.pause_ms},
              {"pause_us", t.pause_us},
              {"device_state_ms", t.device_ms},
              {"device_state_bytes", m.device_state.size_bytes},
              {"ram_data_bytes", m.ram.data_bytes},
              {"ram_copy_ms", m.ram.copy_micros / 1000},
              {"ram_seal_ms", t.seal_ms},
              {"write_dir_ms", t.write_ms},
              {"register_ms", t.register_ms}});
  return Status::Ok();
}

Status SnapshotService::CheckSnapshottable(const vm::VmRecord& rec, const std::string& vm_name,
                                           const std::string& what) {
  // The policy may have been replaced since Create looked.
  FERRY_RETURN_IF_ERROR(CheckSnapshotAllowed(rec.spec, what));
  if (!rec.ram_owned) {
    // A clone's RAM is its snapshot's file plus private copy-on-write pages QEMU holds: there is
    // no agent-owned file to copy, and the device state would carry the whole RAM.
    const vm::VmOrigin origin = vm::OriginFromJson(rec.origin);
    const auto* clone = std::get_if<vm::CloneOrigin>(&origin);
    return Status::FailedPrecondition(
        what + ": vm " + vm_name + " is a clone of snapshot " + (clone ? clone->snapshot : "?") +
        "; snapshots of clones are not supported yet: snapshot a VM booted from an image");
  }
  // The RAM image takes up to what the VM's RAM file holds now; the running VMs' sparse RAM
  // files keep their right to grow (HeadroomIn), or a guest would die of SIGBUS later.
  struct stat ram;
  auto headroom = HeadroomIn(vms_.config().ram_dir);
  if (::stat(rec.ram_path.c_str(), &ram) == 0 && headroom.ok() &&
      static_cast<uint64_t>(ram.st_blocks) * 512 > *headroom) {
    return Status::ResourceExhausted(
        what + ": the RAM image needs up to " +
        std::to_string((static_cast<uint64_t>(ram.st_blocks) * 512) >> 20) + " MiB but " +
        vms_.config().ram_dir + " can spare " + std::to_string(*headroom >> 20) +
        " MiB beyond what running VMs' RAM may still take; delete snapshots or VMs, or "
        "enlarge that filesystem");
  }
  return Status::Ok();
}

Status SnapshotService::PrepareDirs(Taking& t) {
  RemoveAll(t.partial);
  FERRY_RETURN_IF_ERROR(MakeDirs(t.partial, 0700));
  return MakeDirs(vms_.config().ram_dir + "/snapshots", 0700);
}

Status SnapshotService::CaptureWhilePaused(Taking& t, Operation& op) {
  vm::VmRuntime& rt = *t.lease.runtime;
  op.SetPhase("pausing", 10);
  const auto paused_at = Clock::now();
  Status st = CopyWhilePaused(
      t.lease.record.state != vm::VmState::kPaused, [&] { return qemu::Stop(rt); },
      [&] { return Capture(t, op, paused_at); }, [&] { return qemu::Cont(rt); });
  t.pause_ms = MsSince(paused_at);
  FERRY_RETURN_IF_ERROR(st);
  spdlog::info("{}: VM paused {} ms (device state {} ms)", t.what, t.pause_ms, t.device_ms);
  return Status::Ok();
}

Status SnapshotService::CaptureLive(Taking& t, Operation& op) {
  const vm::VmRecord& rec = t.lease.record;
  PrecopyOptions options;
  options.what = "copying RAM";
  // QEMU's RAM block is what the launcher gave it; the image is as large as the VM's RAM file.
  options.limits.ram_bytes = vms_.GuestRamKib(rec) << 10;
  options.limits.image_bytes = rec.spec.memory_mib << 20;
  options.limits.max_device_state_bytes = kMaxCloneDeviceStateBytes;
  // Without a data disk nothing happens at the instant: QEMU need not wait there for us.
  std::function<Status()> at_instant;
  if (!rec.disk_path.empty()) at_instant = [&] { return FreezeVmDisk(t, op); };
  FERRY_ASSIGN_OR_RETURN(
      PrecopyResult copied,
      PrecopySnapshot(*t.lease.runtime, t.paths.ram, t.partial + "/" + t.manifest.device_state.file,
                      at_instant, op, options));
  t.pause_ms = copied.pause_ms;
  t.pause_us = copied.pause_us;
  t.manifest.device_state.guest_ram_stripped = true;
  // Checksummed as it was written: the chunk table came with the copy.
  t.manifest.ram = std::move(copied.ram);
  t.manifest.ram.copy_micros = copied.copy_ms * 1000;
  t.seal_ms = copied.seal_ms;
  spdlog::info(
      "{}: RAM copied live in {} ms over {} passes ({} data pages, {} sent again); VM "
      "paused {} ms",
      t.what, copied.copy_ms, copied.passes, copied.split.data_pages, copied.split.rewritten_pages,
      t.pause_ms);
  return Status::Ok();
}

Status SnapshotService::Capture(Taking& t, Operation& op, Clock::time_point paused_at) {
  vm::VmRuntime& rt = *t.lease.runtime;
  op.SetPhase("saving device state", 30);
  Status saved =
      SaveDeviceState(rt, t.partial + "/" + t.manifest.device_state.file, kDeviceStateTimeout);
  t.device_ms = MsSince(paused_at);
  FERRY_RETURN_IF_ERROR(saved);
  if (!t.lease.record.disk_path.empty()) FERRY_RETURN_IF_ERROR(FreezeVmDisk(t, op));
  op.SetPhase("copying RAM", 50);
  RamCopyOptions copy_options;
  copy_options.what = t.what;
  FERRY_ASSIGN_OR_RETURN(t.manifest.ram,
                         CopyRamFile(t.lease.record.ram_path, t.paths.ram, copy_options));
  return Status::Ok();
}

Status SnapshotService::FreezeVmDisk(Taking& t, Operation& op) {
  const vm::VmRecord& rec = t.lease.record;
  op.SetPhase("freezing disk", 40);
  const std::string disks = vms_.config().state_dir + "/disks";
  FERRY_RETURN_IF_ERROR(MakeDirs(disks, 0700));
  FERRY_ASSIGN_OR_RETURN(t.frozen, FreezeDisk(*t.lease.runtime, rec, disks + "/" + t.id + ".qcow2",
                                              rec.dir + "/disk-" + t.id + ".qcow2",
                                              vm::QemuImgFor(vms_.config().qemu_binary)));
  // QEMU writes the new overlay now; a ferryd that dies before the record says so is recovered
  // at start-up (disk_recovery.h).
  FaultPoint("snapshot.disk.before_record");
  // From here the VM writes the new overlay, whatever becomes of this snapshot.
  return vms_.SetDisk(t.vm_name, t.frozen->top, t.frozen->chain);
}

Status SnapshotService::WriteSnapshotDir(Taking& t, Operation& op) {
  op.SetPhase("writing manifest", 90);
  // Clones map the image copy-on-write; see VmService::ShareRamImage for who may open it.
  FERRY_RETURN_IF_ERROR(vms_.ShareRamImage(t.paths.ram));
  const vm::VmRecord& rec = t.lease.record;
  SnapshotManifest& m = t.manifest;
  m.name = t.name;
  m.id = t.id;
  m.vm_name = t.vm_name;
  m.vm_id = rec.id;
  m.vm_spec = {{"spec", rec.spec.ToJson()}, {"mac", rec.mac}};
  m.image = rec.spec.image;
  m.memory_mib = rec.spec.memory_mib;
  m.accelerator = qemu::AcceleratorName(rec.accelerator);
  m.machine = std::string("q35/") + qemu::CpuModelFor(rec.accelerator);
  m.created_at_ms = NowUnixMs();
  m.pause_ms = t.pause_ms;
  const std::string device_state = t.partial + "/" + m.device_state.file;
  FERRY_ASSIGN_OR_RETURN(std::string device_sha, Sha256File(device_state));
  if (t.frozen) FERRY_RETURN_IF_ERROR(LinkFrozenDisk(t, op));
  m.device_state.sha256 = device_sha;
  struct stat st_dev;
  ::stat(device_state.c_str(), &st_dev);
  m.device_state.size_bytes = static_cast<uint64_t>(st_dev.st_size);
  // The RAM image lives on tmpfs for cheap sharing; the snapshot directory points at it.
  if (::symlink(t.paths.ram.c_str(), (t.partial + "/" + m.ram_file).c_str()) != 0) {
    return Status::Internal("cannot link the RAM image into " + t.partial);
  }
  FERRY_RETURN_IF_ERROR(WriteManifest(t.partial, m));
  RemoveAll(t.paths.dir);
  if (::rename(t.partial.c_str(), t.paths.dir.c_str()) != 0) {
    return Status::Internal("cannot move " + t.partial + " into place");
  }
  t.in_place = true;
  return Status::Ok();
}

Status SnapshotService::LinkFrozenDisk(Taking& t, Operation& op) {
  op.SetPhase("checksumming disk", 92);
  DiskImageFile disk;
  FERRY_ASSIGN_OR_RETURN(disk.sha256, Sha256File(t.frozen->frozen));
  struct stat st_disk;
  ::stat(t.frozen->frozen.c_str(), &st_disk);
  disk.size_bytes = static_cast<uint64_t>(st_disk.st_size);
  disk.chain.assign(t.frozen->chain.begin() + 1, t.frozen->chain.end());
  if (::symlink(t.frozen->frozen.c_str(), (t.partial + "/" + disk.file).c_str()) != 0) {
    return Status::Internal("cannot link the frozen disk into " + t.partial);
  }
  t.manifest.disk = disk;
  return Status::Ok();
}

Status SnapshotService::Register(Taking& t) {
  FaultPoint("snapshot.before_register");
  // The policy's digest, kept where ferryd alone writes, so a snapshot whose policy was taken
  // out of its manifest (checksum recomputed) is not cloned as a snapshot without one.
  const std::string& policy = t.lease.record.spec.policy;
  SnapshotRow row;
  row.id = t.id;
  row.vm = t.vm_name;
  row.dir = t.paths.dir;
  row.ram = t.paths.ram;
  row.policy_sha256 = policy.empty() ? "" : crypto::Sha256Hex(policy);
  return rows_.Insert(t.name, row);
}

void SnapshotService::Discard(Taking& t) {
  if (t.in_place) RemoveAll(t.paths.dir);
  RemoveAll(t.partial);
  ::unlink(t.paths.ram.c_str());
  t.lease.release(json::object());
}

}  // namespace ferry::snapshot
