#include "harness/qemu_processes.h"

#include <filesystem>
#include <thread>

#include "core/process.h"
#include "harness/test_files.h"

namespace ferry::testing {

std::vector<pid_t> QemusHoldingFilesUnder(const std::string& dir) {
  std::vector<pid_t> found;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator("/proc", ec)) {
    const std::string name = entry.path().filename();
    if (name.empty() || name.find_first_not_of("0123456789") != std::string::npos) continue;
    const std::string cmdline = ReadFile(entry.path().string() + "/cmdline");
    // argv[0] ends at the first NUL: a wrapper script that merely passes QEMU's options on (or
    // names qemu-system in them) is not a QEMU; one that exec'd QEMU has QEMU's argv[0] now.
    const std::string program = cmdline.substr(0, cmdline.find('\0'));
    if (program.substr(program.rfind('/') + 1).rfind("qemu-system", 0) != 0) continue;
    const pid_t pid = std::stoi(name);
    // A zombie holds no files and is not running.
    if (!OpenFileUnder(pid, dir).empty()) found.push_back(pid);
  }
  return found;
}

std::vector<pid_t> WaitForQemusHoldingFilesUnder(const std::string& dir,
                                                 std::chrono::milliseconds deadline) {
  const auto until = std::chrono::steady_clock::now() + deadline;
  std::vector<pid_t> found = QemusHoldingFilesUnder(dir);
  while (found.empty() && std::chrono::steady_clock::now() < until) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    found = QemusHoldingFilesUnder(dir);
  }
  return found;
}

}  // namespace ferry::testing
