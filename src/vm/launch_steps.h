// What launching a VM's QEMU does to the host, one call per step and one per undo
// (vm_launcher.h runs them). HostLaunchSteps does it: files, qemu-img, taps, uids, QEMU; unit
// tests put a fake in its place and fail any step.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/status.h"
#include "core/unique_fd.h"
#include "qemu/launch_spec.h"
#include "vm/qemu_files.h"
#include "vm/qemu_user.h"
#include "vm/vm_paths.h"
#include "vm/vm_record.h"
#include "vm/vm_runtime.h"

namespace ferry::vm {

// QEMU's command line (without its files yet) and the files it needs.
struct QemuLaunch {
  qemu::LaunchSpec spec;
  QemuFilePaths files;
};

// A spawned QEMU and its command line (with the descriptor numbers it inherited).
struct SpawnedQemu {
  std::unique_ptr<VmRuntime> runtime;
  std::vector<std::string> argv;
};
using OnSpawned =
    std::function<void(pid_t pid, uint64_t start_time, const std::vector<std::string>& argv)>;

// What launching does to the host, one call per step and one per undo.
class LaunchSteps {
 public:
  virtual ~LaunchSteps() = default;
  virtual Status MakeDir(const std::string& dir) = 0;
  // A new sparse file of `bytes`, replacing a leftover of that name (no QEMU of the VM runs).
  virtual Result<UniqueFd> CreateRamFile(const std::string& path, uint64_t bytes) = 0;
  virtual void RemoveRamFile(const std::string& path) = 0;
  // Creates the VM's disk if it has one and it does not exist yet (only on its first launch).
  virtual Status EnsureDisk(const VmRecord& r, const std::vector<std::string>& chain) = 0;
  // Creates the VM's tap, replacing a leftover of its name; on its bridge, or (a clone, which
  // still has its parent's identity) off it until AttachTap.
  virtual Status CreateTap(const VmRecord& r, bool on_bridge) = 0;
  // Attaches the VM's tap, made off its bridge, to the bridge.
  virtual Status AttachTap(const VmRecord& r) = 0;
  virtual void RemoveTap(const VmRecord& r) = 0;
  // Leases a uid, opens QEMU's files and spawns it; `on_spawned` (may be null) runs before QMP
  // connects. A QEMU that does not answer QMP is killed before this returns.
  virtual Result<SpawnedQemu> SpawnQemu(QemuLaunch& launch, UniqueFd ram, const VmPaths& paths,
                                        VmRuntime::Callbacks callbacks,
                                        const OnSpawned& on_spawned) = 0;
  // Removes a directory and everything in it.
  virtual void RemoveDir(const std::string& dir) = 0;
};

// The real host: files, qemu-img, taps, uids, QEMU.
class HostLaunchSteps : public LaunchSteps {
 public:
  struct Config {
    std::string qemu_binary;
    std::chrono::milliseconds qemu_start_timeout{15000};
    std::string tap_owner;      // the canonical state directory, as tap aliases name it
    QemuUids* uids = nullptr;   // null: QEMU runs as ferryd's user
    std::vector<gid_t> groups;  // supplementary groups of every QEMU (kvm's, under KVM)
  };
  explicit HostLaunchSteps(Config config) : config_(std::move(config)) {}
  Status MakeDir(const std::string& dir) override;
  Result<UniqueFd> CreateRamFile(const std::string& path, uint64_t bytes) override;
  void RemoveRamFile(const std::string& path) override;
  Status EnsureDisk(const VmRecord& r, const std::vector<std::string>& chain) override;
  Status CreateTap(const VmRecord& r, bool on_bridge) override;
  Status AttachTap(const VmRecord& r) override;
  void RemoveTap(const VmRecord& r) override;
  Result<SpawnedQemu> SpawnQemu(QemuLaunch& launch, UniqueFd ram, const VmPaths& paths,
                                VmRuntime::Callbacks callbacks,
                                const OnSpawned& on_spawned) override;
  void RemoveDir(const std::string& dir) override;
  // A uid for a new QEMU and its descriptors, opened; `ram` is the VM's own RAM file, if any.
  Result<QemuStart> PrepareStart(QemuLaunch& launch, UniqueFd ram);

 private:
  Config config_;
};

}  // namespace ferry::vm
