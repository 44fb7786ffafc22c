#include "bench/namespace_hosts.h"

#include <dirent.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <regex>
#include <sstream>
#include <thread>

#include "bench/tool_run.h"
#include "core/files.h"
#include "core/process.h"

namespace ferry::bench {

namespace {

using std::chrono::milliseconds;

constexpr const char* kNetnsDir = "/run/netns";
constexpr milliseconds kIpTimeout(10000);
constexpr int kPrefix = 24;

bool NamespaceExists(const std::string& ns) {
  struct stat st {};
  return ::stat((std::string(kNetnsDir) + "/" + ns).c_str(), &st) == 0;
}

// Pids whose network namespace is `ns`.
std::vector<pid_t> PidsIn(const std::string& ns) {
  std::vector<pid_t> pids;
  struct stat want {};
  if (::stat((std::string(kNetnsDir) + "/" + ns).c_str(), &want) != 0) return pids;
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

// "Key: value" tables of /proc/net/netstat: a header line and a value line per group.
Result<uint64_t> NetstatValue(const std::string& text, const std::string& group,
                              const std::string& key) {
  std::istringstream in(text);
  std::string header, values;
  while (std::getline(in, header) && std::getline(in, values)) {
    if (header.rfind(group + ":", 0) != 0) continue;
    std::istringstream h(header), v(values);
    std::string name, value;
    while (h >> name && v >> value) {
      if (name == key) return std::strtoull(value.c_str(), nullptr, 10);
    }
  }
  return Status::NotFound(group + " " + key + " is not in /proc/net/netstat");
}

// The tx_bytes column of interface `ifname` in /proc/net/dev.
Result<uint64_t> DevTxBytes(const std::string& text, const std::string& ifname) {
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    size_t colon = line.find(':');
    if (colon == std::string::npos) continue;
    std::string name = line.substr(0, colon);
    name.erase(0, name.find_first_not_of(' '));
    if (name != ifname) continue;
    std::istringstream fields(line.substr(colon + 1));
    uint64_t v = 0;
    // receive: bytes packets errs drop fifo frame compressed multicast; then transmit bytes
    for (int i = 0; i < 9 && fields >> v; ++i) {
    }
    if (!fields) break;
    return v;
  }
  return Status::NotFound("interface " + ifname + " is not in /proc/net/dev");
}

}  // namespace

NamespaceHosts::NamespaceHosts() : prefix_("fb" + std::to_string(::getpid())) {
  switch_ = prefix_ + "sw";
  client_ = prefix_ + "cl";
}

NamespaceHosts::~NamespaceHosts() { Teardown(); }

std::string NamespaceHosts::Host(int i) const { return prefix_ + "h" + std::to_string(i); }

std::string NamespaceHosts::HostAddress(int i) { return "10.77.0." + std::to_string(i); }

Status NamespaceHosts::Ip(const std::vector<std::string>& args) {
  std::vector<std::string> argv = {"ip"};
  argv.insert(argv.end(), args.begin(), args.end());
  return RunTool(argv, kIpTimeout, /*even_if_interrupted=*/true).status();
}

void NamespaceHosts::Delete(const std::string& ns) {
  if (!NamespaceExists(ns)) return;
  // Only what the benchmark started runs in its namespaces (ferryd, QEMU, redis-benchmark).
  for (pid_t pid : PidsIn(ns)) {
    auto start = ProcessStartTime(pid);
    if (!start.ok()) continue;
    auto p = Process::Adopt(pid, *start);  // checks the start time: a reused pid is left alone
    if (!p.ok()) continue;
    p->Signal(SIGKILL);
    p->WaitExit(milliseconds(5000));
  }
  (void)RunTool({"ip", "netns", "delete", ns}, kIpTimeout, /*even_if_interrupted=*/true);
}

void NamespaceHosts::SweepStale() {
  DIR* dir = ::opendir(kNetnsDir);
  if (dir == nullptr) return;
  static const std::regex kOurs("^fb([0-9]+)(sw|cl|h[0-9])$");
  std::vector<std::string> stale;
  while (dirent* e = ::readdir(dir)) {
    std::cmatch m;
    if (!std::regex_match(e->d_name, m, kOurs)) continue;
    const pid_t owner = static_cast<pid_t>(std::strtol(m[1].str().c_str(), nullptr, 10));
    if (owner == ::getpid()) continue;
    if (::kill(owner, 0) == 0 || errno == EPERM) continue;  // that benchmark still runs
    stale.push_back(e->d_name);
  }
  ::closedir(dir);
  for (const std::string& ns : stale) Delete(ns);
}

Status NamespaceHosts::Build() {
  Teardown();
  std::vector<std::string> all = {switch_, client_, Host(1), Host(2)};
  for (const auto& ns : all) Delete(ns);
  auto fail = [&](const Status& st) {
    Teardown();
    return st.WithContext("building the benchmark's network namespaces");
  };
  for (const auto& ns : all) {
    Status st = Ip({"netns", "add", ns});
    if (!st.ok()) return fail(st);
    created_.push_back(ns);
    st = Ip({"-n", ns, "link", "set", "lo", "up"});
    if (!st.ok()) return fail(st);
  }
  const std::string prefix = "/" + std::to_string(kPrefix);
  std::vector<std::vector<std::string>> steps = {
      {"-n", switch_, "link", "add", "br0", "type", "bridge", "forward_delay", "0"},
      {"-n", switch_, "link", "set", "br0", "up"},
  };
  for (int i = 1; i <= 2; ++i) {
    const std::string host = Host(i);
    const std::string port = "h" + std::to_string(i);
    steps.push_back({"-n", switch_, "link", "add", port, "type", "veth", "peer", "name", kUplink,
                     "netns", host});
    steps.push_back({"-n", switch_, "link", "set", port, "master", "br0", "up"});
    steps.push_back({"-n", host, "link", "add", kBridge, "type", "bridge", "forward_delay", "0"});
    steps.push_back({"-n", host, "link", "set", kUplink, "master", kBridge, "up"});
    steps.push_back({"-n", host, "addr", "add", HostAddress(i) + prefix, "dev", kBridge});
    steps.push_back({"-n", host, "link", "set", kBridge, "up"});
  }
  steps.push_back({"-n", switch_, "link", "add", "cl", "type", "veth", "peer", "name", "eth0",
                   "netns", client_});
  steps.push_back({"-n", switch_, "link", "set", "cl", "master", "br0", "up"});
  steps.push_back(
      {"-n", client_, "addr", "add", std::string(kClientAddress) + prefix, "dev", "eth0"});
  steps.push_back({"-n", client_, "link", "set", "eth0", "up"});
  for (const auto& step : steps) {
    Status st = Ip(step);
    if (!st.ok()) return fail(st);
  }
  return Status::Ok();
}

void NamespaceHosts::Teardown() {
  // Hosts first (their QEMUs and ferryds), then the client and the switch.
  for (auto it = created_.rbegin(); it != created_.rend(); ++it) Delete(*it);
  created_.clear();
}

Status NamespaceHosts::AddTap(int host, const std::string& name) {
  const std::string ns = Host(host);
  RemoveTap(host, name);  // a leftover of an earlier run that failed
  Status st = Ip({"-n", ns, "tuntap", "add", "dev", name, "mode", "tap", "vnet_hdr"});
  // A port MAC starting with 0xfe, as ferryd gives its taps (tap_device.cc): the bridge keeps
  // its own MAC, so h1's ARP entry for this host stays right when the tap comes and goes.
  char mac[18];
  std::snprintf(mac, sizeof mac, "fe:00:00:%02x:%02x:%02x", host & 0xff, next_tap_mac_ & 0xff,
                (next_tap_mac_ >> 8) & 0xff);
  ++next_tap_mac_;
  if (st.ok()) st = Ip({"-n", ns, "link", "set", name, "address", mac});
  if (st.ok()) st = Ip({"-n", ns, "link", "set", name, "master", kBridge, "up"});
  if (!st.ok()) {
    RemoveTap(host, name);
    return st.WithContext("tap " + name + " in " + ns);
  }
  return Status::Ok();
}

void NamespaceHosts::RemoveTap(int host, const std::string& name) {
  const std::string ns = Host(host);
  if (!NamespaceExists(ns)) return;
  (void)RunTool({"ip", "-n", ns, "link", "del", name}, kIpTimeout, /*even_if_interrupted=*/true);
}

Result<HostTraffic> NamespaceHosts::Traffic(int host) const {
  const std::string ns_path = std::string(kNetnsDir) + "/" + Host(host);
  Result<HostTraffic> result = Status::Internal("not read");
  // setns() moves only the calling thread: a thread of its own reads the namespace's /proc.
  std::thread reader([&] {
    int fd = ::open(ns_path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      result = Status::NotFound("cannot open " + ns_path + ": " + std::strerror(errno));
      return;
    }
    int rc = ::setns(fd, CLONE_NEWNET);
    int err = errno;
    ::close(fd);
    if (rc != 0) {
      result = Status::Internal("setns " + ns_path + ": " + std::strerror(err));
      return;
    }
    auto dev = ReadFile("/proc/thread-self/net/dev");
    auto netstat = ReadFile("/proc/thread-self/net/netstat");
    if (!dev.ok() || !netstat.ok()) {
      result = (!dev.ok() ? dev.status() : netstat.status()).WithContext(Host(host));
      return;
    }
    auto tx = DevTxBytes(*dev, kUplink);
    auto out = NetstatValue(*netstat, "IpExt", "OutOctets");
    if (!tx.ok() || !out.ok()) {
      result = (!tx.ok() ? tx.status() : out.status()).WithContext(Host(host));
      return;
    }
    result = HostTraffic{*tx, *out};
  });
  reader.join();
  return result;
}

}  // namespace ferry::bench
