#include "snapshot/waiting_qemu_dir.h"

#include <signal.h>

#include <chrono>
#include <filesystem>
#include <fstream>

#include "core/files.h"
#include "core/process.h"

namespace ferry::snapshot {

void RecordWaitingQemu(const std::string& dir, const vm::VmRuntime& qemu) {
  WriteFileAtomic(dir + "/pid",
                  std::to_string(qemu.pid()) + " " + std::to_string(qemu.start_time()) + "\n");
}

void KillStaleWaitingQemus(vm::VmService& vms, const std::string& prefix) {
  std::error_code ec;
  const std::string vms_dir = vms.config().state_dir + "/vms";
  for (const auto& entry : std::filesystem::directory_iterator(vms_dir, ec)) {
    const std::string name = entry.path().filename();
    if (name.rfind(prefix, 0) != 0) continue;
    if (vms.OwnsDir(entry.path().string())) continue;
    std::ifstream in(entry.path() / "pid");
    pid_t pid = 0;
    uint64_t start = 0;
    if (in >> pid >> start) {
      auto stale = Process::Adopt(pid, start);
      if (stale.ok()) {
        stale->Signal(SIGKILL);
        stale->WaitExit(std::chrono::milliseconds(5000));
      }
    }
    RemoveAll(entry.path());
  }
}

}  // namespace ferry::snapshot
