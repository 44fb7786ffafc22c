#include "testbed/ferryd_process.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>

#include "testbed/netns.h"

namespace ferry::testbed {

std::vector<std::string> FerrydCommandLine(const FerrydLaunch& launch) {
  std::vector<std::string> argv = {launch.binary,  "--state-dir", launch.state_dir, "--ram-dir",
                                   launch.ram_dir, "--socket",    launch.socket};
  argv.insert(argv.end(), launch.extra_args.begin(), launch.extra_args.end());
  return launch.netns.empty() ? argv : InNamespace(launch.netns, argv);
}

Result<Process> SpawnFerryd(const std::vector<std::string>& argv, const std::string& log,
                            const std::string& fault_point) {
  std::vector<std::string> env;
  if (!fault_point.empty()) env.push_back("FERRY_FAULT_POINT=" + fault_point);
  auto p = Process::Spawn(argv, log, env);
  if (!p.ok()) return p.status().WithContext("starting ferryd");
  return p;
}

bool SocketAnswers(const std::string& path) {
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
  bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  ::close(fd);
  return ok;
}

}  // namespace ferry::testbed
