#include "harness/qemu_processes.h"

#include <filesystem>
#include <thread>

#include "harness/ferryd_fixture.h"
#include "harness/test_files.h"

namespace ferry::testing {

std::vector<pid_t> QemusMentioning(const std::string& needle) {
  std::vector<pid_t> found;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator("/proc", ec)) {
    const std::string name = entry.path().filename();
    if (name.empty() || name.find_first_not_of("0123456789") != std::string::npos) continue;
    const std::string cmdline = ReadFile(entry.path().string() + "/cmdline");
    // argv[0] ends at the first NUL: a wrapper script that merely passes QEMU's options on (or
    // names qemu-system in them) is not a QEMU.
    const std::string program = cmdline.substr(0, cmdline.find('\0'));
    const std::string base = program.substr(program.rfind('/') + 1);
    if (base.rfind("qemu-system", 0) != 0) continue;
    if (cmdline.find(needle) == std::string::npos) continue;
    const pid_t pid = std::stoi(name);
    if (ProcessAlive(pid)) found.push_back(pid);
  }
  return found;
}

std::vector<pid_t> WaitForQemusMentioning(const std::string& needle,
                                          std::chrono::milliseconds deadline) {
  const auto until = std::chrono::steady_clock::now() + deadline;
  std::vector<pid_t> found = QemusMentioning(needle);
  while (found.empty() && std::chrono::steady_clock::now() < until) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    found = QemusMentioning(needle);
  }
  return found;
}

}  // namespace ferry::testing
