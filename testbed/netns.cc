#include "testbed/netns.h"

#include <dirent.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <thread>

#include "core/files.h"
#include "core/process.h"
#include "core/unique_fd.h"

namespace ferry::testbed {

namespace {

using std::chrono::milliseconds;

constexpr const char* kNetnsDir = "/run/netns";
constexpr milliseconds kIpTimeout(30000);
constexpr milliseconds kExitTimeout(10000);

std::string Trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) s.pop_back();
  return s;
}

}  // namespace

std::string NamespacePath(const std::string& ns) { return std::string(kNetnsDir) + "/" + ns; }

bool NamespaceExists(const std::string& ns) {
  struct stat st {};
  return ::stat(NamespacePath(ns).c_str(), &st) == 0;
}

std::vector<std::string> InNamespace(const std::string& ns, const std::vector<std::string>& argv) {
  std::vector<std::string> out = {"ip", "netns", "exec", ns};
  out.insert(out.end(), argv.begin(), argv.end());
  return out;
}

Status InNetworkNamespace(const std::string& ns, const std::function<Status()>& work) {
  const std::string ns_path = testbed::NamespacePath(ns);
  Status result;
  std::thread worker([&] {
    UniqueFd fd(::open(ns_path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd.valid()) {
      result = Status::NotFound("cannot open " + ns_path + ": " + std::strerror(errno));
      return;
    }
    if (::setns(fd.get(), CLONE_NEWNET) != 0) {
      result = Status::Internal("setns " + ns_path + ": " + std::strerror(errno));
      return;
    }
    result = work();
  });
  worker.join();
  return result;
}

Status RunIp(const std::vector<std::string>& args) {
  std::vector<std::string> argv = {"ip"};
  argv.insert(argv.end(), args.begin(), args.end());
  std::string line;
  for (const std::string& a : argv) line += (line.empty() ? "" : " ") + a;

  char path[] = "/tmp/ferry-testbed-ip-XXXXXX";
  int fd = ::mkstemp(path);
  if (fd < 0) {
    return Status::Internal("cannot create an output file in /tmp for `" + line +
                            "`: " + std::strerror(errno));
  }
  ::close(fd);
  auto p = Process::Spawn(argv, path);
  if (!p.ok()) {
    ::unlink(path);
    return p.status().WithContext(line);
  }
  auto ex = p->WaitExit(kIpTimeout);
  if (!ex) {
    p->Signal(SIGKILL);
    p->WaitExit(kExitTimeout);
  }
  auto output = ReadFile(path);
  ::unlink(path);
  if (!ex) {
    return Status::DeadlineExceeded(line + ": did not finish within " +
                                    std::to_string(kIpTimeout.count() / 1000) + " s");
  }
  if (!ex->known || ex->signaled || ex->code != 0) {
    const std::string said = output.ok() ? Trim(*output) : "";
    return Status::Unavailable(line + ": " + ex->Describe() + (said.empty() ? "" : ": " + said));
  }
  return Status::Ok();
}

std::vector<pid_t> PidsIn(const std::string& ns) {
  std::vector<pid_t> pids;
  struct stat want {};
  if (::stat(NamespacePath(ns).c_str(), &want) != 0) return pids;
  DIR* proc = ::opendir("/proc");
  if (proc == nullptr) return pids;
  while (dirent* e = ::readdir(proc)) {
    char* end = nullptr;
    long pid = std::strtol(e->d_name, &end, 10);
    if (pid <= 0 || *end != '\0' || pid == ::getpid()) continue;
    struct stat st {};
    const std::string path = std::string("/proc/") + e->d_name + "/ns/net";
    if (::stat(path.c_str(), &st) == 0 && st.st_ino == want.st_ino && st.st_dev == want.st_dev) {
      pids.push_back(static_cast<pid_t>(pid));
    }
  }
  ::closedir(proc);
  return pids;
}

void DeleteNamespace(const std::string& ns) {
  if (!NamespaceExists(ns)) return;
  // End what runs inside first, so the namespace and its links really go. Signal all, then wait
  // for each: a pidfd taken with the start time leaves a reused pid alone.
  std::vector<Process> inside;
  for (pid_t pid : PidsIn(ns)) {
    auto start = ProcessStartTime(pid);
    if (!start.ok()) continue;
    auto p = Process::Adopt(pid, *start);
    if (!p.ok()) continue;
    p->Signal(SIGKILL);
    inside.push_back(std::move(*p));
  }
  for (Process& p : inside) p.WaitExit(kExitTimeout);
  (void)RunIp({"netns", "delete", ns});
}

}  // namespace ferry::testbed
