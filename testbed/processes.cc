#include "testbed/processes.h"

#include <dirent.h>
#include <signal.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <thread>

#include "core/files.h"
#include "core/process.h"

namespace ferry::testbed {

int KillProcessesUsing(const std::string& path) {
  if (path.empty()) return 0;
  DIR* proc = ::opendir("/proc");
  if (proc == nullptr) return 0;
  std::vector<std::pair<pid_t, uint64_t>> victims;
  while (dirent* e = ::readdir(proc)) {
    char* end = nullptr;
    long pid = std::strtol(e->d_name, &end, 10);
    if (*end != '\0' || pid <= 0 || pid == ::getpid()) continue;
    auto cmdline = ReadFile("/proc/" + std::string(e->d_name) + "/cmdline");
    if (!cmdline.ok()) continue;
    if (cmdline->find(path) == std::string::npos &&
        OpenFileUnder(static_cast<pid_t>(pid), path).empty()) {
      continue;
    }
    auto start = ProcessStartTime(static_cast<pid_t>(pid));
    if (start.ok()) victims.emplace_back(static_cast<pid_t>(pid), *start);
  }
  ::closedir(proc);
  int killed = 0;
  for (const auto& [pid, start] : victims) {
    // Adopt checks the start time, so a pid reused since the scan is left alone.
    auto p = Process::Adopt(pid, start);
    if (!p.ok()) continue;
    p->Signal(SIGKILL);
    p->WaitExit(std::chrono::seconds(5));
    ++killed;
  }
  return killed;
}

void SweepAndRemove(const std::vector<std::optional<ScratchDir>*>& dirs) {
  for (std::optional<ScratchDir>* dir : dirs) {
    if (*dir) KillProcessesUsing((*dir)->path());
  }
  for (std::optional<ScratchDir>* dir : dirs) dir->reset();
}

std::vector<pid_t> QemusHoldingFilesUnder(const std::string& dir) {
  std::vector<pid_t> found;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator("/proc", ec)) {
    const std::string name = entry.path().filename();
    if (name.empty() || name.find_first_not_of("0123456789") != std::string::npos) continue;
    auto read = ReadFile(entry.path().string() + "/cmdline");
    if (!read.ok()) continue;
    const std::string& cmdline = *read;
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

bool ProcessAlive(pid_t pid) {
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (pid <= 0 || !std::getline(stat, line)) return false;
  size_t close = line.rfind(')');
  return close != std::string::npos && close + 2 < line.size() && line[close + 2] != 'Z';
}

}  // namespace ferry::testbed
