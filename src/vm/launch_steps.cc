#include "vm/launch_steps.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "core/files.h"
#include "vm/tap_device.h"
#include "vm/tap_sweep.h"
#include "vm/vm_disk.h"
#include "vm/vm_state_machine.h"

namespace ferry::vm {

Status HostLaunchSteps::MakeDir(const std::string& dir) { return MakeDirs(dir, 0700); }

Result<UniqueFd> HostLaunchSteps::CreateRamFile(const std::string& path, uint64_t bytes) {
  // No QEMU of this VM runs now: a file of that name is a leftover of an earlier run. The new
  // one is made afresh and never through a planted symlink.
  ::unlink(path.c_str());
  FERRY_ASSIGN_OR_RETURN(int fd, CreateExclusive(path, O_RDWR, 0600));
  UniqueFd ram(fd);
  if (::ftruncate(ram.get(), static_cast<off_t>(bytes)) != 0) {
    return Status::ResourceExhausted("cannot size RAM file " + path + ": " + std::strerror(errno));
  }
  return ram;
}

void HostLaunchSteps::RemoveRamFile(const std::string& path) { ::unlink(path.c_str()); }

Status HostLaunchSteps::EnsureDisk(const VmRecord& r, const std::vector<std::string>& chain) {
  if (r.disk_path.empty() || ::access(r.disk_path.c_str(), F_OK) == 0) return Status::Ok();
  // Only a VM's first launch makes its disk: later, a missing disk is lost data, and a new
  // empty disk in its place would hide that.
  if (r.state != VmState::kCreating) {
    return Status::NotFound("vm " + r.spec.name + ": its data disk " + r.disk_path +
                            " is missing; put the disk back, or delete the VM (ferry vm delete " +
                            r.spec.name + ")");
  }
  const std::string qemu_img = QemuImgFor(config_.qemu_binary);
  Status made = chain.empty() ? CreateBlankDisk(qemu_img, r.disk_path, r.spec.disk_mib)
                              : CreateOverlay(qemu_img, r.disk_path, chain.front());
  return made.WithContext("vm " + r.spec.name);
}

Status HostLaunchSteps::CreateTap(const VmRecord& r, bool on_bridge) {
  TapDevice tap = TapDevice::ForVm(r.id, r.spec.network.bridge);
  // No QEMU of this VM runs now: a tap of its name is a leftover of an earlier run.
  tap.Remove();
  return tap.Create(TapAlias(config_.tap_owner, r.id), on_bridge);
}

Status HostLaunchSteps::AttachTap(const VmRecord& r) {
  return TapDevice::ForVm(r.id, r.spec.network.bridge).AttachToBridge();
}

void HostLaunchSteps::RemoveTap(const VmRecord& r) { RemoveVmTap(r); }

Result<QemuStart> HostLaunchSteps::PrepareStart(QemuLaunch& launch, UniqueFd ram) {
  QemuStart start;
  if (config_.uids) {
    FERRY_ASSIGN_OR_RETURN(start.uid, config_.uids->Acquire());
    start.groups = config_.groups;
  }
  FERRY_RETURN_IF_ERROR(OpenQemuFiles(launch.files, std::move(ram), launch.spec, start));
  return start;
}

Result<SpawnedQemu> HostLaunchSteps::SpawnQemu(QemuLaunch& launch, UniqueFd ram,
                                               const VmPaths& paths, VmRuntime::Callbacks callbacks,
                                               const OnSpawned& on_spawned) {
  FERRY_ASSIGN_OR_RETURN(QemuStart start, PrepareStart(launch, std::move(ram)));
  SpawnedQemu q;
  q.argv = qemu::BuildCommandLine(launch.spec);  // after PrepareStart numbered the descriptors
  VmRuntime::SpawnedHandler spawned;
  if (on_spawned) {
    spawned = [&](pid_t pid, uint64_t start_time) { on_spawned(pid, start_time, q.argv); };
  }
  FERRY_ASSIGN_OR_RETURN(q.runtime,
                         VmRuntime::Launch(q.argv, std::move(start), paths, std::move(callbacks),
                                           config_.qemu_start_timeout, spawned));
  return q;
}

void HostLaunchSteps::RemoveDir(const std::string& dir) { RemoveAll(dir); }

}  // namespace ferry::vm
