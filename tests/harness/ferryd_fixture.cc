#include "harness/ferryd_fixture.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <thread>

#include "harness/test_files.h"
#include "testbed/ferryd_process.h"
#include "testbed/free_port.h"

#ifndef FERRY_BUILD_DIR
#error "FERRY_BUILD_DIR must point at the build tree"
#endif

namespace ferry::testing {

using nlohmann::json;

namespace {
const std::string kBuild = FERRY_BUILD_DIR;
}  // namespace

const std::string& BuildDir() { return kBuild; }

uint16_t FreePort() {
  auto port = testbed::FreeLoopbackPort();
  EXPECT_TRUE(port.ok()) << port.status().message();
  return port.ok() ? *port : 0;
}

CommandResult Redis(uint16_t port, const std::vector<std::string>& args) {
  std::vector<std::string> argv = {"redis-cli", "-p", std::to_string(port)};
  argv.insert(argv.end(), args.begin(), args.end());
  CommandResult r = RunCommand(argv);
  while (!r.out.empty() && r.out.back() == '\n') r.out.pop_back();
  return r;
}

void FerrydFixture::SetUp() {
  state_dir_ = MakeTempDir("/tmp", "ferry-it-");
  ram_dir_ = MakeTempDir("/dev/shm", "ferry-it-");
  ASSERT_FALSE(state_dir_.empty());
  ASSERT_FALSE(ram_dir_.empty());
  socket_ = state_dir_ + "/ferryd.sock";
  ASSERT_TRUE(std::filesystem::exists(kBuild + "/images/default/image.json"))
      << "the default guest image is not built; run the README's setup";
}

void FerrydFixture::TearDown() {
  // Leave nothing running: every VM's QEMU goes with the test.
  if (ferryd_pid_ > 0) {
    for (const auto& name : VmNames()) Ferry({"vm", "delete", name, "--force"});
    StopFerryd();
  }
  // A test that ended with ferryd dead (a fault point, a crash) left its QEMUs running: every
  // one of them holds files under this test's directories.
  for (const std::string& dir : {state_dir_, ram_dir_}) {
    for (pid_t pid : QemusHoldingFilesUnder(dir)) ::kill(pid, SIGKILL);
  }
  std::error_code ec;
  std::filesystem::remove_all(state_dir_, ec);
  std::filesystem::remove_all(ram_dir_, ec);
}

void FerrydFixture::StartFerryd(const std::vector<std::string>& extra_args,
                                const std::string& fault_point) {
  const std::string log = state_dir_ + "/ferryd.log";
  ferryd_pid_ = SpawnFerryd(TestFerrydCommandLine(state_dir_, ram_dir_, socket_, "", extra_args),
                            log, fault_point);
  ASSERT_GT(ferryd_pid_, 0) << "cannot fork ferryd";
  ASSERT_TRUE(WaitForFerrydApi(ferryd_pid_, socket_, "ferryd", log));
}

std::vector<std::string> TestFerrydCommandLine(const std::string& state_dir,
                                               const std::string& ram_dir,
                                               const std::string& socket, const std::string& netns,
                                               const std::vector<std::string>& extra_args) {
  testbed::FerrydLaunch launch{kBuild + "/ferryd",        state_dir, ram_dir, socket, netns,
                               {"--ready-timeout", "240"}};
  launch.extra_args.insert(launch.extra_args.end(), extra_args.begin(), extra_args.end());
  // FERRY_TEST_QEMU=PATH runs the tests on another QEMU build (a test's own --qemu wrapper
  // wins: it execs qemu-system-x86_64 from PATH).
  const char* qemu = std::getenv("FERRY_TEST_QEMU");
  if (qemu != nullptr && *qemu != '\0' &&
      std::find(extra_args.begin(), extra_args.end(), "--qemu") == extra_args.end()) {
    launch.extra_args.insert(launch.extra_args.end(), {"--qemu", qemu});
  }
  return testbed::FerrydCommandLine(launch);
}

pid_t SpawnFerryd(const std::vector<std::string>& argv, const std::string& log,
                  const std::string& fault_point) {
  auto ferryd = testbed::SpawnFerryd(argv, log, fault_point);
  if (!ferryd.ok()) {
    ADD_FAILURE() << ferryd.status().message();
    return -1;
  }
  return ferryd->pid();  // still our child, reaped by waitpid
}

::testing::AssertionResult WaitForFerrydApi(pid_t& pid, const std::string& socket,
                                            const std::string& who, const std::string& log) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (std::chrono::steady_clock::now() < deadline) {
    if (FerryAt(socket, {"host", "show", "--json"}).exit_code == 0) {
      return ::testing::AssertionSuccess();
    }
    int status;
    if (::waitpid(pid, &status, WNOHANG) == pid) {
      pid = -1;
      return ::testing::AssertionFailure() << who << " exited at start-up; see " << log;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return ::testing::AssertionFailure() << who << " did not answer within 20 s; see " << log;
}

void SignalAndReap(pid_t& pid, int sig) {
  if (pid <= 0) return;
  ::kill(pid, sig);
  ::waitpid(pid, nullptr, 0);
  pid = -1;
}

CommandResult FerryAt(const std::string& socket, const std::vector<std::string>& args) {
  std::vector<std::string> argv = {kBuild + "/ferry", "--socket", socket};
  argv.insert(argv.end(), args.begin(), args.end());
  return RunCommand(argv);
}

json FerryJsonAt(const std::string& socket, const std::vector<std::string>& args) {
  std::vector<std::string> with_json = args;
  with_json.push_back("--json");
  CommandResult r = FerryAt(socket, with_json);
  EXPECT_EQ(r.exit_code, 0) << "ferry failed: " << r.err;
  json j = json::parse(r.out, nullptr, false);
  EXPECT_FALSE(j.is_discarded()) << "not JSON: " << r.out;
  return j;
}

void FerrydFixture::KillFerryd() {
  ASSERT_GT(ferryd_pid_, 0);
  SignalAndReap(ferryd_pid_, SIGKILL);
}

void FerrydFixture::StopFerryd() { SignalAndReap(ferryd_pid_, SIGTERM); }

void FerrydFixture::ReapFerrydKilledAtItsFaultPoint() {
  ASSERT_GT(ferryd_pid_, 0);
  int status = 0;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (::waitpid(ferryd_pid_, &status, WNOHANG) != ferryd_pid_) {
    ASSERT_LT(std::chrono::steady_clock::now(), deadline) << "ferryd did not reach its fault point";
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ferryd_pid_ = -1;
  ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL)
      << "ferryd ended otherwise than at its fault point: status " << status;
}

CommandResult FerrydFixture::Ferry(const std::vector<std::string>& args) {
  return FerryAt(socket_, args);
}

json FerrydFixture::FerryJson(const std::vector<std::string>& args) {
  return FerryJsonAt(socket_, args);
}

uint16_t FerrydFixture::CreateRedisVm(const std::string& name, const std::string& memory) {
  uint16_t port = FreePort();
  CommandResult r = Ferry({"vm", "create", name, "--memory", memory, "--forward",
                           std::to_string(port) + ":6379", "--wait-ready"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  return port;
}

json FerrydFixture::WaitForState(const std::string& name, const std::string& state,
                                 std::chrono::seconds deadline) {
  const auto until = std::chrono::steady_clock::now() + deadline;
  json vm;
  while (std::chrono::steady_clock::now() < until) {
    CommandResult r = Ferry({"vm", "show", name, "--json"});
    if (r.exit_code == 0) {
      vm = json::parse(r.out, nullptr, false);
      if (vm.is_object() && vm.value("state", "") == state) return vm;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return vm;
}

std::vector<std::string> FerrydFixture::VmNames() { return VmNamesAt(socket_); }

std::vector<pid_t> FerrydFixture::QemusUnderExceptSpares(const std::string& dir) {
  std::vector<pid_t> spares;
  json host = FerryJson({"host", "show"});
  if (host.is_object() && host.contains("spare_qemu_pids") && host["spare_qemu_pids"].is_array()) {
    for (const auto& pid : host["spare_qemu_pids"]) spares.push_back(pid.get<pid_t>());
  }
  std::vector<pid_t> out;
  for (pid_t pid : QemusHoldingFilesUnder(dir)) {
    if (std::find(spares.begin(), spares.end(), pid) == spares.end()) out.push_back(pid);
  }
  return out;
}

std::vector<std::string> VmNamesAt(const std::string& socket) {
  std::vector<std::string> names;
  CommandResult r = FerryAt(socket, {"vm", "list", "--json"});
  json list = json::parse(r.out, nullptr, false);
  if (!list.is_array()) return names;
  for (const auto& v : list) names.push_back(v.value("name", ""));
  return names;
}

}  // namespace ferry::testing
