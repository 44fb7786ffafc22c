#include "harness/netns_hosts.h"

#include <dirent.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <regex>
#include <thread>

#include "harness/ferryd_fixture.h"

#ifndef FERRY_BUILD_DIR
#error "FERRY_BUILD_DIR must point at the build tree"
#endif

namespace ferry::testing {

using nlohmann::json;

namespace {

const std::string kBuild = FERRY_BUILD_DIR;
constexpr const char* kNetnsDir = "/run/netns";

std::string MakeTempDir(const std::string& parent, const std::string& prefix) {
  std::string tmpl = parent + "/" + prefix + "XXXXXX";
  char* dir = ::mkdtemp(tmpl.data());
  return dir ? std::string(dir) : std::string();
}

std::string Trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

bool NamespaceExists(const std::string& ns) {
  struct stat st;
  return ::stat((std::string(kNetnsDir) + "/" + ns).c_str(), &st) == 0;
}

// Polls until every pid is gone (or a zombie) or the deadline passes.
void WaitGone(const std::vector<pid_t>& pids, std::chrono::seconds deadline) {
  const auto until = std::chrono::steady_clock::now() + deadline;
  for (pid_t pid : pids) {
    while (ProcessAlive(pid) && std::chrono::steady_clock::now() < until) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }
}

}  // namespace

NetnsHosts::NetnsHosts() : prefix_("fy" + std::to_string(::getpid())) {
  switch_ = prefix_ + "sw";
  client_ = prefix_ + "cl";
}

NetnsHosts::~NetnsHosts() { Teardown(); }

std::string NetnsHosts::Host(int i) const { return prefix_ + "h" + std::to_string(i); }

std::string NetnsHosts::HostAddress(int i) { return "10.77.0." + std::to_string(i); }

std::vector<std::string> NetnsHosts::InNamespace(const std::string& ns,
                                                 const std::vector<std::string>& argv) {
  std::vector<std::string> out = {"ip", "netns", "exec", ns};
  out.insert(out.end(), argv.begin(), argv.end());
  return out;
}

CommandResult NetnsHosts::RunIn(const std::string& ns, const std::vector<std::string>& argv) {
  return RunCommand(InNamespace(ns, argv));
}

std::vector<std::string> NetnsHosts::Links(const std::string& ns, const std::string& bridge) {
  std::vector<std::string> argv = {"ip", "-n", ns, "-j", "link", "show"};
  if (!bridge.empty()) argv.insert(argv.end(), {"master", bridge});
  CommandResult r = RunCommand(argv);
  std::vector<std::string> names;
  json links = json::parse(r.out, nullptr, false);
  if (r.exit_code != 0 || !links.is_array()) return names;
  for (const auto& l : links) {
    if (l.contains("ifname") && l["ifname"].is_string()) names.push_back(l["ifname"]);
  }
  return names;
}

std::vector<pid_t> NetnsHosts::PidsIn(const std::string& ns) {
  std::vector<pid_t> pids;
  struct stat want;
  if (::stat((std::string(kNetnsDir) + "/" + ns).c_str(), &want) != 0) return pids;
  DIR* proc = ::opendir("/proc");
  if (proc == nullptr) return pids;
  while (dirent* e = ::readdir(proc)) {
    char* end = nullptr;
    long pid = std::strtol(e->d_name, &end, 10);
    if (pid <= 0 || *end != '\0') continue;
    struct stat st;
    const std::string path = std::string("/proc/") + e->d_name + "/ns/net";
    if (::stat(path.c_str(), &st) == 0 && st.st_ino == want.st_ino && st.st_dev == want.st_dev) {
      pids.push_back(static_cast<pid_t>(pid));
    }
  }
  ::closedir(proc);
  return pids;
}

void NetnsHosts::Delete(const std::string& ns) {
  if (!NamespaceExists(ns)) return;
  // Only processes this harness started can be in these namespaces (ferryd, its QEMUs, tools
  // run through RunIn): end them, so the namespace and its links really go.
  std::vector<pid_t> pids = PidsIn(ns);
  for (pid_t pid : pids) ::kill(pid, SIGKILL);
  WaitGone(pids, std::chrono::seconds(10));
  RunCommand({"ip", "netns", "delete", ns});
}

void NetnsHosts::SweepStale() {
  DIR* dir = ::opendir(kNetnsDir);
  if (dir == nullptr) return;
  std::vector<std::string> stale;
  static const std::regex kOurs("^fy([0-9]+)(sw|cl|h[0-9]+)$");
  while (dirent* e = ::readdir(dir)) {
    std::cmatch m;
    if (!std::regex_match(e->d_name, m, kOurs)) continue;
    const pid_t owner = static_cast<pid_t>(std::strtol(m[1].str().c_str(), nullptr, 10));
    if (owner == ::getpid()) continue;
    if (::kill(owner, 0) == 0 || errno == EPERM) continue;  // its test still runs
    stale.push_back(e->d_name);
  }
  ::closedir(dir);
  for (const std::string& ns : stale) Delete(ns);

  // The state and RAM directories of those tests' ferryds (NamespacedFerryd names them
  // "ferry-it-<namespace>-XXXXXX"): a RAM file left there holds tmpfs memory.
  static const std::regex kOurDir("^ferry-it-fy([0-9]+)h[0-9]+-[A-Za-z0-9]{6}$");
  for (const char* parent : {"/tmp", "/dev/shm"}) {
    std::error_code ec;
    for (const auto& entry : std::filesystem::directory_iterator(parent, ec)) {
      const std::string name = entry.path().filename();
      std::smatch m;
      if (!std::regex_match(name, m, kOurDir)) continue;
      const pid_t owner = static_cast<pid_t>(std::strtol(m[1].str().c_str(), nullptr, 10));
      if (owner == ::getpid() || ::kill(owner, 0) == 0 || errno == EPERM) continue;
      std::filesystem::remove_all(entry.path(), ec);
    }
  }
}

bool NetnsHosts::Ip(const std::vector<std::string>& args, std::string& error) {
  std::vector<std::string> argv = {"ip"};
  argv.insert(argv.end(), args.begin(), args.end());
  CommandResult r = RunCommand(argv);
  if (r.exit_code == 0) return true;
  std::string line;
  for (const auto& a : argv) line += (line.empty() ? "" : " ") + a;
  error += line + ": " + Trim(r.err) + "\n";
  return false;
}

std::string NetnsHosts::Build(int hosts) {
  if (hosts < 1 || hosts > kMaxHosts) return "hosts must be 1-" + std::to_string(kMaxHosts);
  Teardown();
  hosts_ = hosts;
  std::vector<std::string> all = {switch_, client_};
  for (int i = 1; i <= hosts; ++i) all.push_back(Host(i));
  // A namespace of ours still there (an earlier test in this process that failed to clean up).
  for (const auto& ns : all) Delete(ns);

  std::string error;
  auto fail = [&] {
    Teardown();
    return error;
  };
  for (const auto& ns : all) {
    if (!Ip({"netns", "add", ns}, error)) return fail();
    created_.push_back(ns);
    if (!Ip({"-n", ns, "link", "set", "lo", "up"}, error)) return fail();
  }
  // The switch: one bridge every host and the client plug into.
  if (!Ip({"-n", switch_, "link", "add", "br0", "type", "bridge", "forward_delay", "0"}, error) ||
      !Ip({"-n", switch_, "link", "set", "br0", "up"}, error)) {
    return fail();
  }
  for (int i = 1; i <= hosts; ++i) {
    const std::string host = Host(i);
    const std::string port = "h" + std::to_string(i);
    bool ok =
        Ip({"-n", switch_, "link", "add", port, "type", "veth", "peer", "name", "uplink", "netns",
            host},
           error) &&
        Ip({"-n", switch_, "link", "set", port, "master", "br0", "up"}, error) &&
        Ip({"-n", host, "link", "add", kVmBridge, "type", "bridge", "forward_delay", "0"}, error) &&
        Ip({"-n", host, "link", "set", "uplink", "master", kVmBridge, "up"}, error) &&
        Ip({"-n", host, "addr", "add", HostAddress(i) + "/" + std::to_string(kPrefix), "dev",
            kVmBridge},
           error) &&
        Ip({"-n", host, "link", "set", kVmBridge, "up"}, error);
    if (!ok) return fail();
  }
  bool ok = Ip({"-n", switch_, "link", "add", "cl", "type", "veth", "peer", "name", "eth0", "netns",
                client_},
               error) &&
            Ip({"-n", switch_, "link", "set", "cl", "master", "br0", "up"}, error) &&
            Ip({"-n", client_, "addr", "add",
                std::string(kClientAddress) + "/" + std::to_string(kPrefix), "dev", "eth0"},
               error) &&
            Ip({"-n", client_, "link", "set", "eth0", "up"}, error);
  if (!ok) return fail();
  return "";
}

void NetnsHosts::Teardown() {
  // Hosts first (their QEMUs and ferryds), then the switch and the client.
  for (auto it = created_.rbegin(); it != created_.rend(); ++it) Delete(*it);
  created_.clear();
}

// ------------------------------------------------------------------------------------------

NamespacedFerryd::NamespacedFerryd(std::string ns) : ns_(std::move(ns)) {
  state_dir_ = MakeTempDir("/tmp", "ferry-it-" + ns_ + "-");
  ram_dir_ = MakeTempDir("/dev/shm", "ferry-it-" + ns_ + "-");
  socket_ = state_dir_ + "/ferryd.sock";
}

NamespacedFerryd::~NamespacedFerryd() {
  if (pid_ > 0) {
    for (const auto& name : VmNames()) Ferry({"vm", "delete", name, "--force"});
    Stop();
  }
  std::error_code ec;
  if (!state_dir_.empty()) std::filesystem::remove_all(state_dir_, ec);
  if (!ram_dir_.empty()) std::filesystem::remove_all(ram_dir_, ec);
}

void NamespacedFerryd::Start(const std::vector<std::string>& extra_args,
                             const std::string& fault_point) {
  ASSERT_FALSE(state_dir_.empty());
  ASSERT_FALSE(ram_dir_.empty());
  ASSERT_TRUE(std::filesystem::exists(kBuild + "/images/default/image.json"))
      << "the default guest image is not built; run the README's setup";
  std::vector<std::string> args = {
      kBuild + "/ferryd", "--state-dir", state_dir_,        "--ram-dir", ram_dir_,
      "--socket",         socket_,       "--ready-timeout", "240"};
  args.insert(args.end(), extra_args.begin(), extra_args.end());
  args = NetnsHosts::InNamespace(ns_, args);
  const std::string log = state_dir_ + "/ferryd.log";
  pid_t pid = ::fork();
  if (pid == 0) {
    FILE* f = std::freopen(log.c_str(), "a", stderr);
    (void)f;
    if (!fault_point.empty()) ::setenv("FERRY_FAULT_POINT", fault_point.c_str(), 1);
    ::dup2(2, 1);
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    ::execvp(argv[0], argv.data());
    ::_exit(127);
  }
  ASSERT_GT(pid, 0);
  pid_ = pid;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (std::chrono::steady_clock::now() < deadline) {
    if (Ferry({"host", "show", "--json"}).exit_code == 0) return;
    int status;
    if (::waitpid(pid, &status, WNOHANG) == pid) {
      pid_ = -1;
      FAIL() << "ferryd in " << ns_ << " exited at start-up; see " << log;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  FAIL() << "ferryd in " << ns_ << " did not answer within 20 s; see " << log;
}

void NamespacedFerryd::Kill() {
  ASSERT_GT(pid_, 0);
  SignalAndReap(pid_, SIGKILL);
}

bool NamespacedFerryd::WaitExit(std::chrono::seconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (pid_ > 0 && std::chrono::steady_clock::now() < deadline) {
    int status;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      return true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return pid_ <= 0;
}

void NamespacedFerryd::Stop() { SignalAndReap(pid_, SIGTERM); }

CommandResult NamespacedFerryd::Ferry(const std::vector<std::string>& args) {
  return FerryAt(socket_, args);
}

json NamespacedFerryd::FerryJson(const std::vector<std::string>& args) {
  return FerryJsonAt(socket_, args);
}

std::vector<std::string> NamespacedFerryd::VmNames() {
  std::vector<std::string> names;
  CommandResult r = Ferry({"vm", "list", "--json"});
  json list = json::parse(r.out, nullptr, false);
  if (!list.is_array()) return names;
  for (const auto& v : list) names.push_back(v.value("name", ""));
  return names;
}

// ------------------------------------------------------------------------------------------

void NetnsFixture::SetUp() {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root: network namespaces, bridges and taps";
  NetnsHosts::SweepStale();
  std::string error = net_.Build(HostCount());
  ASSERT_TRUE(error.empty()) << "cannot build the test datacenter:\n" << error;
}

void NetnsFixture::TearDown() {
  ferryds_.clear();  // each deletes its VMs and stops its ferryd, inside the namespaces
  net_.Teardown();
}

NamespacedFerryd& NetnsFixture::Ferryd(int i) {
  if (ferryds_.size() < static_cast<size_t>(i)) ferryds_.resize(i);
  auto& slot = ferryds_[i - 1];
  if (!slot) slot = std::make_unique<NamespacedFerryd>(net_.Host(i));
  return *slot;
}

CommandResult NetnsFixture::RedisFromClient(const std::string& address,
                                            const std::vector<std::string>& args) {
  // timeout: a guest that does not answer fails the call instead of hanging the test.
  std::vector<std::string> argv = {"timeout", "10", "redis-cli", "-h", address};
  argv.insert(argv.end(), args.begin(), args.end());
  CommandResult r = NetnsHosts::RunIn(net_.Client(), argv);
  while (!r.out.empty() && r.out.back() == '\n') r.out.pop_back();
  return r;
}

}  // namespace ferry::testing
