#include "harness/migration_fleet.h"

#include <gtest/gtest.h>

#include "harness/test_files.h"

namespace ferry::testing {

using Clock = std::chrono::steady_clock;

void MigrationFleetFixture::SetUp() {
  NetnsFixture::SetUp();
  if (IsSkipped() || HasFatalFailure()) return;
  fleet_.emplace();
  fleet_->AddHost("h1", {"zone=a"});
  fleet_->AddHost("h2", {"zone=b"});
  fleet_->AddOwner("alice.key");
  fleet_->AddOwner("mallory.key");
  BeforeStartingHosts();
  if (HasFatalFailure()) return;
  for (int i : {1, 2}) {
    StartHost(i);
    if (HasFatalFailure()) return;
  }
  for (int i : {1, 2}) {
    const int other = 3 - i;
    CommandResult peer = Ferryd(i).Ferry({"peer", "add", "h" + std::to_string(other),
                                          NetnsHosts::HostAddress(other) + ":" + kPeerPort});
    ASSERT_EQ(peer.exit_code, 0) << peer.err;
  }
}

void MigrationFleetFixture::StartHost(int i, const std::string& fault_point) {
  std::vector<std::string> args = {"--listen",       NetnsHosts::HostAddress(i) + ":" + kPeerPort,
                                   "--tls-dir",      fleet_->TlsDir("h" + std::to_string(i)),
                                   "--allow-bridge", "ferrybr0"};
  const std::vector<std::string> extra = ExtraFerrydArgs(i);
  args.insert(args.end(), extra.begin(), extra.end());
  Ferryd(i).Start(args, fault_point);
}

std::thread MigrationFleetFixture::RestartWhenDead(int i, std::atomic<bool>& restarted) {
  return std::thread([this, i, &restarted] {
    if (!Ferryd(i).WaitExit(std::chrono::seconds(240))) return;
    StartHost(i);
    restarted = true;
  });
}

bool MigrationFleetFixture::WaitForVms(int host, const std::vector<std::string>& names,
                                       std::chrono::seconds deadline) {
  const auto until = Clock::now() + deadline;
  while (Clock::now() < until) {
    if (Vms(host) == names) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  return Vms(host) == names;
}

void MigrationFleetFixture::ExpectNothingOn(int host) {
  const auto until = Clock::now() + std::chrono::seconds(30);
  while (Clock::now() < until &&
         (!Vms(host).empty() || WaitForQemuIn(host, std::chrono::seconds(0)) > 0)) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_TRUE(Vms(host).empty()) << "host h" << host << " must be clean";
  EXPECT_EQ(WaitForQemuIn(host, std::chrono::seconds(0)), -1)
      << "no QEMU may be left on h" << host;
}

pid_t MigrationFleetFixture::WaitForQemuIn(int host, std::chrono::seconds deadline) {
  const auto until = Clock::now() + deadline;
  while (Clock::now() < until) {
    for (pid_t pid : NetnsHosts::PidsIn(net_.Host(host))) {
      std::string comm = ReadFile("/proc/" + std::to_string(pid) + "/comm");
      if (comm.rfind("qemu-system", 0) == 0) return pid;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return -1;
}

void MigrationFleetFixture::CreateWeb(const std::vector<std::string>& rules) {
  CommandResult r =
      Ferryd(1).Ferry({"vm", "create", "web", "--net", "tap", "--bridge", "ferrybr0", "--ip",
                       std::string(kVmAddress) + "/24", "--policy",
                       fleet_->SignPolicy("alice.key", "web", rules), "--wait-ready"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::vector<std::string> mset = {"mset"};
  for (int i = 0; i < kWebKeys; ++i) {
    mset.push_back("key:" + std::to_string(i));
    mset.push_back(WebValue(i));
  }
  ASSERT_EQ(RedisFromClient(kVmAddress, mset).out, "OK");
}

void MigrationFleetFixture::ExpectWebKeysAt(const std::string& address) {
  std::vector<std::string> mget = {"mget"};
  std::string want;
  for (int i = 0; i < kWebKeys; ++i) {
    mget.push_back("key:" + std::to_string(i));
    want += (i ? "\n" : "") + WebValue(i);
  }
  EXPECT_EQ(RedisFromClient(address, mget).out, want) << "at " << address;
}

}  // namespace ferry::testing
