#include "snapshot/device_state.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <thread>

#include "core/fault_point.h"
#include "qemu/machine_type.h"

namespace ferry::snapshot {

using nlohmann::json;
using std::chrono::milliseconds;

namespace {

constexpr const char* kFdName = "ferry-device-state";

Status IgnoreSharedRam(vm::VmRuntime& vm, bool on) {
  return qemu::SetMigrationCapability(vm, "x-ignore-shared", on);
}

}  // namespace

Status AwaitMigration(vm::VmRuntime& vm, const std::string& what, milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    auto info = qemu::QueryMigrate(vm);
    if (!info.ok()) return info.status().WithContext(what);
    if (info->state == qemu::MigrationState::kCompleted) return Status::Ok();
    if (info->state == qemu::MigrationState::kFailed ||
        info->state == qemu::MigrationState::kCancelled) {
      return Status::Unavailable(
          what + " failed in QEMU: " +
          (info->error_desc.empty() ? std::string("no reason given") : info->error_desc));
    }
    std::this_thread::sleep_for(milliseconds(1));
  }
  return Status::DeadlineExceeded(what + " did not finish within " +
                                  std::to_string(timeout.count()) + " ms");
}

// The stream goes through a descriptor ferryd opened and handed to QEMU (getfd, then an "fd:"
// URI), not through `exec:cat`: no shell and no cat are started, which is most of the cost of
// a device state of a few hundred KiB.
Status SaveDeviceState(vm::VmRuntime& vm, const std::string& path, milliseconds timeout) {
  FERRY_RETURN_IF_ERROR(IgnoreSharedRam(vm, true));
  Status st = Status::Ok();
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0) {
    st = Status::Unavailable("device state file " + path +
                             ": cannot create it: " + std::strerror(errno));
  } else {
    st = vm.QmpPassFd(kFdName, fd);
    ::close(fd);  // QEMU holds its own copy now
    if (st.ok()) st = qemu::Migrate(vm, std::string("fd:") + kFdName);
    if (st.ok()) st = AwaitMigration(vm, "saving device state", timeout);
  }
  // Later migrations of this VM (to another host) must send its RAM.
  Status reset = IgnoreSharedRam(vm, false);
  FERRY_RETURN_IF_ERROR(st);
  return reset;
}

Status CheckDeviceStateLoads(const std::string& path, const qemu::QemuVersion& host) {
  auto machine = qemu::FileMachineType(path);
  if (!machine.ok()) return machine.status().WithContext("reading its device state's machine type");
  return qemu::CheckMachineTypeLoads(*machine, host);
}

Status LoadDeviceState(vm::VmRuntime& vm, const std::string& path, milliseconds timeout,
                       GuestRamInStream guest_ram) {
  FERRY_RETURN_IF_ERROR(IgnoreSharedRam(vm, guest_ram == GuestRamInStream::kSkipped));
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    return Status::NotFound("device state file " + path +
                            ": cannot open it: " + std::strerror(errno));
  }
  Status passed = vm.QmpPassFd(kFdName, fd);
  ::close(fd);
  if (!passed.ok()) return passed.WithContext("restoring device state");
  // QEMU holds the file open from here until its restore ends: a test that kills QEMU mid-restore
  // slows this point down (":slow") so that its watcher sees the file open however loaded the host.
  FaultPoint("snapshot.restore.device_state_passed");
  Status started = qemu::MigrateIncoming(vm, std::string("fd:") + kFdName);
  if (!started.ok()) return started.WithContext("restoring device state");
  return AwaitMigration(vm, "restoring device state", timeout);
}

}  // namespace ferry::snapshot
