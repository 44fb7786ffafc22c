#include "testbed/netns_segment.h"

#include <dirent.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <regex>

#include "testbed/netns.h"

namespace ferry::testbed {

NetnsSegment::NetnsSegment(const std::string& tag)
    : prefix_(tag + std::to_string(::getpid())), switch_(prefix_ + "sw"), client_(prefix_ + "cl") {}

NetnsSegment::~NetnsSegment() { Teardown(); }

std::string NetnsSegment::Host(int i) const { return prefix_ + "h" + std::to_string(i); }

std::string NetnsSegment::HostAddress(int i) { return "10.77.0." + std::to_string(i); }

void NetnsSegment::SweepStale(const std::string& tag) {
  DIR* dir = ::opendir(NamespacePath("").c_str());
  if (dir == nullptr) return;
  const std::regex ours("^" + tag + "([0-9]+)(sw|cl|h[0-9]+)$");
  std::vector<std::string> stale;
  while (dirent* e = ::readdir(dir)) {
    std::cmatch m;
    if (!std::regex_match(e->d_name, m, ours)) continue;
    const pid_t owner = static_cast<pid_t>(std::strtol(m[1].str().c_str(), nullptr, 10));
    if (owner == ::getpid()) continue;
    if (::kill(owner, 0) == 0 || errno == EPERM) continue;  // its owner still runs
    stale.push_back(e->d_name);
  }
  ::closedir(dir);
  for (const std::string& ns : stale) DeleteNamespace(ns);
}

Status NetnsSegment::Build(int hosts) {
  if (hosts < 1 || hosts > kMaxHosts) {
    return Status::InvalidArgument("a segment has 1-" + std::to_string(kMaxHosts) + " hosts, not " +
                                   std::to_string(hosts));
  }
  Teardown();
  hosts_ = hosts;
  std::vector<std::string> all = {switch_, client_};
  for (int i = 1; i <= hosts; ++i) all.push_back(Host(i));
  // One of ours still there (an earlier Build in this process that failed to clean up).
  for (const auto& ns : all) DeleteNamespace(ns);

  auto fail = [&](const Status& st) {
    Teardown();
    return st.WithContext("building network namespaces " + prefix_ + "*");
  };
  for (const auto& ns : all) {
    Status st = RunIp({"netns", "add", ns});
    if (!st.ok()) return fail(st);
    created_.push_back(ns);
    st = RunIp({"-n", ns, "link", "set", "lo", "up"});
    if (!st.ok()) return fail(st);
  }
  const std::string prefix = "/" + std::to_string(kPrefix);
  // The switch: one bridge every host and the client plug into.
  std::vector<std::vector<std::string>> steps = {
      {"-n", switch_, "link", "add", "br0", "type", "bridge", "forward_delay", "0"},
      {"-n", switch_, "link", "set", "br0", "up"},
  };
  for (int i = 1; i <= hosts; ++i) {
    const std::string host = Host(i);
    const std::string port = "h" + std::to_string(i);
    steps.push_back({"-n", switch_, "link", "add", port, "type", "veth", "peer", "name", kUplink,
                     "netns", host});
    steps.push_back({"-n", switch_, "link", "set", port, "master", "br0", "up"});
    steps.push_back({"-n", host, "link", "add", kVmBridge, "type", "bridge", "forward_delay", "0"});
    steps.push_back({"-n", host, "link", "set", kUplink, "master", kVmBridge, "up"});
    steps.push_back({"-n", host, "addr", "add", HostAddress(i) + prefix, "dev", kVmBridge});
    steps.push_back({"-n", host, "link", "set", kVmBridge, "up"});
  }
  steps.push_back({"-n", switch_, "link", "add", "cl", "type", "veth", "peer", "name", "eth0",
                   "netns", client_});
  steps.push_back({"-n", switch_, "link", "set", "cl", "master", "br0", "up"});
  steps.push_back(
      {"-n", client_, "addr", "add", std::string(kClientAddress) + prefix, "dev", "eth0"});
  steps.push_back({"-n", client_, "link", "set", "eth0", "up"});
  for (const auto& step : steps) {
    Status st = RunIp(step);
    if (!st.ok()) return fail(st);
  }
  return Status::Ok();
}

void NetnsSegment::Teardown() {
  // Hosts first (their QEMUs and ferryds), then the client and the switch.
  for (auto it = created_.rbegin(); it != created_.rend(); ++it) DeleteNamespace(*it);
  created_.clear();
}

}  // namespace ferry::testbed
