#include "harness/qemu_processes.h"

#include <filesystem>
#include <fstream>
#include <iterator>

#include "core/process.h"

namespace ferry::testing {

std::vector<pid_t> QemusHoldingFilesUnder(const std::string& dir) {
  std::vector<pid_t> found;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator("/proc", ec)) {
    const std::string name = entry.path().filename();
    if (name.empty() || name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream in(entry.path() / "cmdline");
    std::string cmdline((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (cmdline.find("qemu-system") == std::string::npos) continue;
    const pid_t pid = std::stoi(name);
    // A zombie holds no files and is not running.
    if (!OpenFileUnder(pid, dir).empty()) found.push_back(pid);
  }
  return found;
}

}  // namespace ferry::testing
