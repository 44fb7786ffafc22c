#include "harness/qemu_processes.h"

#include <signal.h>

#include <filesystem>
#include <fstream>
#include <iterator>

namespace ferry::testing {

std::vector<pid_t> QemusHoldingFilesUnder(const std::string& dir) {
  std::vector<pid_t> found;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator("/proc", ec)) {
    const std::string name = entry.path().filename();
    if (name.empty() || name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream in(entry.path() / "cmdline");
    std::string cmdline((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    // argv[0] ends at the first NUL: a wrapper that only names qemu-system in its arguments is
    // not a QEMU (one that exec'd QEMU is: it has QEMU's argv[0] now).
    const std::string program = cmdline.substr(0, cmdline.find('\0'));
    if (program.substr(program.rfind('/') + 1).rfind("qemu-system", 0) != 0) continue;
    const pid_t pid = std::stoi(name);
    // A zombie holds no files and is not running.
    for (const auto& fd : std::filesystem::directory_iterator(entry.path() / "fd", ec)) {
      const std::string target = std::filesystem::read_symlink(fd.path(), ec).string();
      if (!ec && target.rfind(dir, 0) == 0) {
        found.push_back(pid);
        break;
      }
    }
  }
  return found;
}

}  // namespace ferry::testing
