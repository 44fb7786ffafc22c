#include "harness/netns_hosts.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <regex>
#include <thread>

#include "harness/ferryd_fixture.h"
#include "harness/test_files.h"

namespace ferry::testing {

using nlohmann::json;

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

void NetnsHosts::SweepStale() {
  NetnsSegment::SweepStale(kTag);

  // The state and RAM directories of those tests' ferryds (NamespacedFerryd names them
  // "ferry-it-<namespace>-XXXXXX"): a RAM file left there holds tmpfs memory.
  static const std::regex kOurDir("^ferry-it-" + std::string(kTag) +
                                  "([0-9]+)h[0-9]+-[A-Za-z0-9]{6}$");
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
  ASSERT_TRUE(std::filesystem::exists(BuildDir() + "/images/default/image.json"))
      << "the default guest image is not built; run the README's setup";
  const std::string log = state_dir_ + "/ferryd.log";
  pid_ = SpawnFerryd(TestFerrydCommandLine(state_dir_, ram_dir_, socket_, ns_, extra_args), log,
                     fault_point);
  ASSERT_GT(pid_, 0) << "cannot fork ferryd in " << ns_;
  ASSERT_TRUE(WaitForFerrydApi(pid_, socket_, "ferryd in " + ns_, log));
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

std::vector<std::string> NamespacedFerryd::VmNames() { return VmNamesAt(socket_); }

// ------------------------------------------------------------------------------------------

void NetnsFixture::SetUp() {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root: network namespaces, bridges and taps";
  NetnsHosts::SweepStale();
  Status built = net_.Build(HostCount());
  ASSERT_TRUE(built.ok()) << "cannot build the test datacenter: " << built.message();
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
