#include <algorithm>
#include "guest/identity_reset.h"

#include <gtest/gtest.h>

#include "guest/fake_guest_system.h"

namespace ferry::guest {
namespace {

class IdentityResetTest : public ::testing::Test {
 protected:
  IdentityResetTest() {
    identity_.hostname = "web-2";
    identity_.mac = {0x52, 0x54, 0x00, 0xab, 0xcd, 0xef};
    identity_.mac_text = "52:54:00:ab:cd:ef";
    identity_.machine_id = "00112233445566778899aabbccddeeff";
    identity_.entropy = std::string(64, '\x11');
    identity_.time_unix_ns = 1'750'000'000'000'000'000;
  }

  FakeGuestSystem system_;
  DropbearHostKeys host_keys_{system_};
  IdentityReset reset_{system_, host_keys_};
  CloneIdentity identity_;
};

TEST_F(IdentityResetTest, StepsRunInOrder) {
  system_.files["/etc/dropbear/dropbear_rsa_host_key"] = "parent rsa key";
  IdentityResetResult result = reset_.Run(identity_);
  ASSERT_FALSE(result.failed_step) << result.error;
  std::vector<std::string> steps;
  for (const auto& [step, ms] : result.steps_ms) {
    steps.push_back(step);
    EXPECT_GE(ms, 0);
  }
  EXPECT_EQ(steps, (std::vector<std::string>{"rng", "clock", "machine_id", "hostname", "mac",
                                             "ssh_keys", "dhcp"}));
  // The quick steps in order, then ssh_keys and dhcp side by side: each in its own order.
  const std::vector<std::string> quick = {
      "AddEntropyAndReseed 64",
      "SetRealtimeNs 1750000000000000000",
      "WriteFileAtomically /etc/machine-id 292",  // 0444
      "SetHostname web-2",
      "WriteFileAtomically /etc/hostname 420",  // 0644
      "WriteFileAtomically /etc/hosts 420",
      "WriteFileInPlace /proc/sys/net/ipv4/conf/eth0/arp_notify",
      "SetMacAddress eth0",
  };
  const std::string dhcp =
      "RunProgram /bin/busybox udhcpc -i eth0 -f -q -n -t 3 -T 1 -s /etc/udhcpc.script "
      "-r 10.0.2.15";
  ASSERT_EQ(system_.log.size(), quick.size() + 4);
  EXPECT_EQ(std::vector<std::string>(system_.log.begin(), system_.log.begin() + quick.size()),
            quick);
  std::vector<std::string> keys(system_.log.begin() + quick.size(), system_.log.end());
  auto lease = std::find(keys.begin(), keys.end(), dhcp);
  ASSERT_NE(lease, keys.end());
  keys.erase(lease);
  EXPECT_EQ(keys, (std::vector<std::string>{
                      "RemoveFile /etc/dropbear/dropbear_ed25519_host_key",
                      "RemoveFile /etc/dropbear/dropbear_rsa_host_key",
                      "RunProgram /usr/bin/dropbearkey -t ed25519 -f "
                      "/etc/dropbear/dropbear_ed25519_host_key",
                  }));
  EXPECT_EQ(system_.files["/etc/machine-id"], "00112233445566778899aabbccddeeff\n");
  EXPECT_EQ(system_.files["/etc/hostname"], "web-2\n");
  EXPECT_EQ(system_.files["/etc/hosts"], "127.0.0.1 localhost\n127.0.1.1 web-2\n");
  EXPECT_EQ(system_.files["/sys/class/net/eth0/address"], "52:54:00:ab:cd:ef\n");
  EXPECT_EQ(system_.files.count("/etc/dropbear/dropbear_rsa_host_key"), 0u);
  EXPECT_EQ(system_.files["/etc/dropbear/dropbear_ed25519_host_key"], "new key 1");
  // The udhcpc script keeps the address the port forwards go to.
  auto udhcpc = std::find_if(system_.programs.begin(), system_.programs.end(),
                             [](const auto& argv) { return argv.at(1) == "udhcpc"; });
  ASSERT_NE(udhcpc, system_.programs.end());
  EXPECT_EQ(system_.program_envs.at(udhcpc - system_.programs.begin()),
            (std::vector<std::string>{"PATH=/sbin:/bin:/usr/sbin:/usr/bin",
                                      "FERRY_KEEP_ADDRESS=10.0.2.15"}));
}

TEST_F(IdentityResetTest, WithoutAnAddressDhcpStartsAfresh) {
  system_.ipv4.clear();
  system_.run_program = [this](const std::vector<std::string>& argv) {
    ProgramRun run;
    run.exit_code = 0;
    if (argv[1] == "udhcpc") {
      system_.ipv4["eth0"] = {"10.0.2.15/24"};
    } else {
      system_.files[argv[4]] = "key";
      run.output = FakeGuestSystem::kKeyLine;
    }
    return run;
  };
  IdentityResetResult result = reset_.Run(identity_);
  ASSERT_FALSE(result.failed_step) << result.error;
  auto udhcpc = std::find_if(system_.programs.begin(), system_.programs.end(),
                             [](const auto& argv) { return argv.at(1) == "udhcpc"; });
  ASSERT_NE(udhcpc, system_.programs.end());
  EXPECT_EQ(udhcpc->back(), "/etc/udhcpc.script");  // no -r
  EXPECT_EQ(system_.program_envs.at(udhcpc - system_.programs.begin()).size(), 1u);
}

TEST_F(IdentityResetTest, EachStepCanFailAndIsNamed) {
  const std::pair<const char*, const char*> failures[] = {
      {"AddEntropyAndReseed", "rng"},
      {"SetRealtimeNs", "clock"},
      {"WriteFileAtomically /etc/machine-id", "machine_id"},
      {"SetHostname", "hostname"},
      {"WriteFileAtomically /etc/hosts", "hostname"},
      {"SetMacAddress", "mac"},
      {"RemoveFile", "ssh_keys"},
      {"RunProgram /usr/bin/dropbearkey", "ssh_keys"},
      {"RunProgram /bin/busybox udhcpc", "dhcp"},
  };
  for (const auto& [call, step] : failures) {
    FakeGuestSystem system;
    system.fail[call] = "injected failure";
    DropbearHostKeys host_keys(system);
    IdentityResetResult result = IdentityReset(system, host_keys).Run(identity_);
    ASSERT_TRUE(result.failed_step) << call;
    EXPECT_EQ(*result.failed_step, step) << call;
    EXPECT_NE(result.error.find("injected failure"), std::string::npos) << result.error;
    EXPECT_NE(result.error.find("retry reset_identity or discard this clone"), std::string::npos);
  }
}

TEST_F(IdentityResetTest, ProgramsThatExitBadlyFailTheirStep) {
  system_.run_program = [](const std::vector<std::string>& argv) {
    ProgramRun run;
    run.exit_code = argv[1] == "udhcpc" ? 1 : 0;
    run.output = argv[1] == "udhcpc" ? "udhcpc: no lease, failing\n" : FakeGuestSystem::kKeyLine;
    return run;
  };
  IdentityResetResult result = reset_.Run(identity_);
  ASSERT_TRUE(result.failed_step);
  EXPECT_EQ(*result.failed_step, "dhcp");
  EXPECT_NE(result.error.find("no lease, failing"), std::string::npos) << result.error;

  system_.run_program = [](const std::vector<std::string>&) {
    ProgramRun run;
    run.exit_code = 0;
    run.output = "Public key portion is:\n";  // no key line
    return run;
  };
  result = reset_.Run(identity_);
  ASSERT_TRUE(result.failed_step);
  EXPECT_EQ(*result.failed_step, "ssh_keys");
}

TEST(IdentityResetMacTest, MacThatDoesNotStickFails) {
  // A NIC that accepts the ioctl but keeps its address.
  struct StubbornNic : FakeGuestSystem {
    SystemError SetMacAddress(const std::string&, const MacAddress&) override {
      return std::nullopt;
    }
  } system;
  DropbearHostKeys host_keys(system);
  CloneIdentity identity;
  identity.mac = {0x52, 0x54, 0x00, 0xab, 0xcd, 0xef};
  identity.mac_text = "52:54:00:ab:cd:ef";
  identity.hostname = "web-2";
  IdentityResetResult result = IdentityReset(system, host_keys).Run(identity);
  ASSERT_TRUE(result.failed_step);
  EXPECT_EQ(*result.failed_step, "mac");
  EXPECT_NE(result.error.find("reports MAC 52:54:00:12:34:56"), std::string::npos) << result.error;
}

TEST_F(IdentityResetTest, NoNicFailsTheMacStep) {
  for (auto it = system_.files.begin(); it != system_.files.end();) {
    it = it->first.rfind("/sys/class/net/eth0", 0) == 0 ? system_.files.erase(it) : ++it;
  }
  IdentityResetResult result = reset_.Run(identity_);
  ASSERT_TRUE(result.failed_step);
  EXPECT_EQ(*result.failed_step, "mac");
  EXPECT_NE(result.error.find("no Ethernet interface"), std::string::npos);
}

TEST(FindGuestNicTest, SkipsLoopbackAndTunnels) {
  FakeGuestSystem system;
  system.files["/sys/class/net/eth1/address"] = "52:54:00:00:00:02\n";
  system.files["/sys/class/net/eth1/type"] = "1\n";
  EXPECT_EQ(FindGuestNic(system), "eth0");
  system.files.erase("/sys/class/net/eth0/type");
  EXPECT_EQ(FindGuestNic(system), "eth1");
}

TEST(HostsWithHostnameTest, ReplacesOrAddsTheSelfLine) {
  EXPECT_EQ(HostsWithHostname("127.0.0.1 localhost\n127.0.1.1 ferry\n", "web-2"),
            "127.0.0.1 localhost\n127.0.1.1 web-2\n");
  EXPECT_EQ(HostsWithHostname("127.0.0.1 localhost", "web-2"),
            "127.0.0.1 localhost\n127.0.1.1 web-2\n");
  EXPECT_EQ(HostsWithHostname("127.0.1.1\told old.example\n127.0.1.1 dup\n::1 localhost\n", "n"),
            "127.0.1.1 n\n::1 localhost\n");
  EXPECT_EQ(HostsWithHostname("127.0.1.10 other\n", "n"), "127.0.1.10 other\n127.0.1.1 n\n");
}

TEST_F(IdentityResetTest, StaticAddressFromTheKernelCommandLineSkipsDhcpAndKeepsTheRoute) {
  system_.files["/proc/cmdline"] = "console=ttyS0 ferry.ip=10.77.0.10/24 ferry.gw=10.77.0.1\n";
  system_.ipv4["eth0"] = {"10.77.0.10/24"};
  IdentityResetResult result = reset_.Run(identity_);
  ASSERT_FALSE(result.failed_step) << result.error;
  for (const auto& argv : system_.programs) EXPECT_NE(argv.at(1), "udhcpc");
  auto route = std::find_if(system_.programs.begin(), system_.programs.end(),
                            [](const auto& argv) { return argv.at(1) == "ip"; });
  ASSERT_NE(route, system_.programs.end());
  EXPECT_EQ(*route, (std::vector<std::string>{"/bin/busybox", "ip", "route", "replace", "default",
                                              "via", "10.77.0.1", "dev", "eth0"}));
}

TEST_F(IdentityResetTest, StaticAddressWithoutGatewayRunsNothing) {
  system_.files["/proc/cmdline"] = "console=ttyS0 ferry.ip=10.77.0.10/24";
  system_.ipv4["eth0"] = {"10.77.0.10/24"};
  IdentityResetResult result = reset_.Run(identity_);
  ASSERT_FALSE(result.failed_step) << result.error;
  for (const auto& argv : system_.programs) {
    EXPECT_TRUE(argv.at(1) != "udhcpc" && argv.at(1) != "ip") << argv.at(1);
  }
}

TEST_F(IdentityResetTest, StaticAddressThatIsGoneOrABadGatewayFailsTheStep) {
  system_.files["/proc/cmdline"] = "ferry.ip=10.77.0.10/24";
  system_.ipv4["eth0"] = {};
  IdentityResetResult gone = reset_.Run(identity_);
  ASSERT_TRUE(gone.failed_step);
  EXPECT_EQ(*gone.failed_step, "dhcp");
  EXPECT_NE(gone.error.find("eth0 does not have its static address 10.77.0.10/24"),
            std::string::npos)
      << gone.error;

  system_.files["/proc/cmdline"] = "ferry.ip=10.77.0.10/24 ferry.gw=;reboot";
  system_.ipv4["eth0"] = {"10.77.0.10/24"};
  IdentityResetResult bad = reset_.Run(identity_);
  ASSERT_TRUE(bad.failed_step);
  EXPECT_NE(bad.error.find("ferry.gw=;reboot on the kernel command line is not an IPv4"),
            std::string::npos)
      << bad.error;
}

}  // namespace
}  // namespace ferry::guest
