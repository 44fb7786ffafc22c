#include "guest/identity_reset.h"

#include <gtest/gtest.h>

#include <algorithm>

#include "guest/encoding.h"
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
  // Every step in order, one after another (none runs beside another: see Run), and the lease
  // asked for with the new MAC and the kept address, and applied without a program.
  const std::vector<std::string> expected = {
      "AddEntropyAndReseed 64",
      "SetRealtimeNs 1750000000000000000",
      "WriteFileAtomically /etc/machine-id 292",  // 0444
      "SetHostname web-2",
      "WriteFileAtomically /etc/hostname 420",  // 0644
      "WriteFileAtomically /etc/hosts 420",
      "WriteFileInPlace /proc/sys/net/ipv4/conf/eth0/arp_notify",
      "SetMacAddress eth0",
      "RemoveFile /etc/dropbear/dropbear_ed25519_host_key",
      "RemoveFile /etc/dropbear/dropbear_rsa_host_key",
      "RunProgram /usr/bin/dropbearkey -t ed25519 -f /etc/dropbear/dropbear_ed25519_host_key",
      "DhcpExchange eth0 52:54:00:ab:cd:ef requesting 10.0.2.15",
      "AddIpv4Address eth0 10.0.2.16/24",
      "ReplaceDefaultRoute via 10.0.2.2 dev eth0",
      "WriteFileAtomically /etc/resolv.conf 420",
  };
  EXPECT_EQ(system_.log, expected);
  EXPECT_EQ(system_.files["/etc/machine-id"], "00112233445566778899aabbccddeeff\n");
  EXPECT_EQ(system_.files["/etc/hostname"], "web-2\n");
  EXPECT_EQ(system_.files["/etc/hosts"], "127.0.0.1 localhost\n127.0.1.1 web-2\n");
  EXPECT_EQ(system_.files["/sys/class/net/eth0/address"], "52:54:00:ab:cd:ef\n");
  EXPECT_EQ(system_.files.count("/etc/dropbear/dropbear_rsa_host_key"), 0u);
  EXPECT_EQ(system_.files["/etc/dropbear/dropbear_ed25519_host_key"], "new key 1");
  // The address the port forwards go to stays primary; the leased one is added beside it.
  EXPECT_EQ(system_.ipv4["eth0"], (std::vector<std::string>{"10.0.2.15/24", "10.0.2.16/24"}));
  EXPECT_EQ(system_.default_route, "via 10.0.2.2 dev eth0");
  EXPECT_EQ(system_.files["/etc/resolv.conf"], "nameserver 10.0.2.3\n");
  ASSERT_EQ(system_.dhcp_queries.size(), 1u);
  EXPECT_EQ(system_.dhcp_queries[0].hostname, "web-2");
  EXPECT_EQ(system_.dhcp_queries[0].timeout, std::chrono::milliseconds(3000));
  // DHCP starts no program: dropbearkey is the only one.
  EXPECT_EQ(system_.programs.size(), 1u);
}

// A key pair dropbearkey 2022.83 made, its key file and the fingerprint it printed for it.
constexpr const char* kDropbearKeyPair =
    "9baa25a3b6704696042170a850ed7617b3870a904ebc75f8ec24bb9a70cd2541"
    "d561d9c404d5b5869486cc05eefea13f1646ad849289a37d7d947208004837d4";
constexpr const char* kDropbearKeyFile =
    "0000000b7373682d6564323535313900000040"
    "9baa25a3b6704696042170a850ed7617b3870a904ebc75f8ec24bb9a70cd2541"
    "d561d9c404d5b5869486cc05eefea13f1646ad849289a37d7d947208004837d4";
constexpr const char* kDropbearFingerprint = "SHA256:eG6JCD9GG/fwjplgadjZVfWUU2oMOoW9I2nOBzfN6Ok";

TEST_F(IdentityResetTest, AKeyFromTheHostIsWrittenAsDropbearWouldWithoutRunningIt) {
  system_.files["/etc/dropbear/dropbear_rsa_host_key"] = "parent rsa key";
  identity_.ssh_host_key = HexDecode(kDropbearKeyPair);
  IdentityResetResult result = reset_.Run(identity_);
  ASSERT_FALSE(result.failed_step) << result.error;
  for (const auto& argv : system_.programs) EXPECT_NE(argv.at(0), kDropbearKeyProgram);
  EXPECT_EQ(system_.files.count("/etc/dropbear/dropbear_rsa_host_key"), 0u);
  EXPECT_EQ(system_.files[kHostKeyFile], *HexDecode(kDropbearKeyFile));
  EXPECT_NE(std::find(system_.log.begin(), system_.log.end(),
                      std::string("WriteFileAtomically ") + kHostKeyFile + " 384"),  // 0600
            system_.log.end());
  std::vector<SshHostKey> keys = host_keys_.List();
  ASSERT_EQ(keys.size(), 1u);
  EXPECT_EQ(keys[0].type, "ssh-ed25519");
  EXPECT_EQ(keys[0].fingerprint, kDropbearFingerprint);
}

TEST_F(IdentityResetTest, WithoutAnAddressTheLeasedOneBecomesTheAddress) {
  system_.ipv4.clear();
  IdentityResetResult result = reset_.Run(identity_);
  ASSERT_FALSE(result.failed_step) << result.error;
  ASSERT_EQ(system_.dhcp_queries.size(), 1u);
  EXPECT_EQ(system_.dhcp_queries[0].requested_ip, std::nullopt);
  EXPECT_NE(
      std::find(system_.log.begin(), system_.log.end(), "DhcpExchange eth0 52:54:00:ab:cd:ef"),
      system_.log.end());
  EXPECT_EQ(system_.ipv4["eth0"], std::vector<std::string>{"10.0.2.16/24"});
  EXPECT_EQ(system_.default_route, "via 10.0.2.2 dev eth0");
}

TEST_F(IdentityResetTest, TheKeptAddressLeasedAgainIsNotAddedTwice) {
  DhcpLease lease = FakeGuestSystem::QemuUserNetworkingLease();
  lease.address = 0x0a00020f;  // 10.0.2.15, the address eth0 has
  system_.dhcp_reply = lease;
  IdentityResetResult result = reset_.Run(identity_);
  ASSERT_FALSE(result.failed_step) << result.error;
  for (const std::string& line : system_.log)
    EXPECT_NE(line.rfind("AddIpv4Address", 0), 0u) << line;
  EXPECT_EQ(system_.ipv4["eth0"], std::vector<std::string>{"10.0.2.15/24"});
  EXPECT_EQ(system_.default_route, "via 10.0.2.2 dev eth0");
}

TEST_F(IdentityResetTest, ALeaseWithoutRouterKeepsTheRouteAndWritesItsDomain) {
  DhcpLease lease = FakeGuestSystem::QemuUserNetworkingLease();
  lease.router.reset();
  lease.domain = "corp.example";
  lease.dns_servers = {0x0a000203, 0x08080808};
  system_.dhcp_reply = lease;
  IdentityResetResult result = reset_.Run(identity_);
  ASSERT_FALSE(result.failed_step) << result.error;
  EXPECT_EQ(system_.default_route, "");
  EXPECT_EQ(system_.files["/etc/resolv.conf"],
            "search corp.example\nnameserver 10.0.2.3\nnameserver 8.8.8.8\n");
}

TEST_F(IdentityResetTest, NoLeaseFailsTheDhcpStepWithTheClientsReason) {
  system_.dhcp_reply = std::string("no DHCP offer on eth0 within 3000 ms");
  IdentityResetResult result = reset_.Run(identity_);
  ASSERT_TRUE(result.failed_step);
  EXPECT_EQ(*result.failed_step, "dhcp");
  EXPECT_NE(result.error.find("at step 'dhcp': no DHCP offer on eth0 within 3000 ms. "),
            std::string::npos)
      << result.error;
  // Nothing applied from a lease there is not.
  EXPECT_EQ(system_.ipv4["eth0"], std::vector<std::string>{"10.0.2.15/24"});
  EXPECT_EQ(system_.default_route, "");
  EXPECT_EQ(system_.files.count("/etc/resolv.conf"), 0u);
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
      {"DhcpExchange", "dhcp"},
      {"AddIpv4Address", "dhcp"},
      {"ReplaceDefaultRoute", "dhcp"},
      {"WriteFileAtomically /etc/resolv.conf", "dhcp"},
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

TEST_F(IdentityResetTest, DropbearkeyWithoutAKeyFailsItsStep) {
  system_.run_program = [](const std::vector<std::string>&) {
    ProgramRun run;
    run.exit_code = 0;
    run.output = "Public key portion is:\n";  // no key line
    return run;
  };
  IdentityResetResult result = reset_.Run(identity_);
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

TEST(ResolvConfForLeaseTest, SearchThenNameservers) {
  DhcpLease lease;
  EXPECT_EQ(ResolvConfForLease(lease), "");
  lease.dns_servers = {0x0a000203};
  EXPECT_EQ(ResolvConfForLease(lease), "nameserver 10.0.2.3\n");
  lease.domain = "example.internal";
  EXPECT_EQ(ResolvConfForLease(lease), "search example.internal\nnameserver 10.0.2.3\n");
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
  EXPECT_TRUE(system_.dhcp_queries.empty());
  EXPECT_EQ(system_.default_route, "via 10.77.0.1 dev eth0");
  EXPECT_EQ(system_.programs.size(), 1u);  // dropbearkey only
  EXPECT_EQ(system_.files.count("/etc/resolv.conf"), 0u);
}

TEST_F(IdentityResetTest, ACloneOnTapNetworkingTradesItsParentsAddressForItsOwn) {
  // The parent's kernel command line and address, as the clone resumed with them.
  system_.files["/proc/cmdline"] = "console=ttyS0 ferry.ip=10.77.0.10/24 ferry.gw=10.77.0.1\n";
  system_.ipv4["eth0"] = {"10.77.0.10/24"};
  identity_.ipv4 = ParseStaticIpv4("10.77.0.22/24");
  IdentityResetResult result = reset_.Run(identity_);
  ASSERT_FALSE(result.failed_step) << result.error;
  EXPECT_TRUE(system_.dhcp_queries.empty());
  EXPECT_EQ(system_.ipv4["eth0"], std::vector<std::string>{"10.77.0.22/24"});
  EXPECT_EQ(system_.default_route, "via 10.77.0.1 dev eth0");
  // The old address goes before the new one comes: deleting a primary would take a secondary
  // of its subnet with it.
  auto at = [&](const std::string& call) {
    return std::find(system_.log.begin(), system_.log.end(), call) - system_.log.begin();
  };
  EXPECT_LT(at("RemoveIpv4Address eth0 10.77.0.10/24"), at("AddIpv4Address eth0 10.77.0.22/24"));
  EXPECT_LT(at("AddIpv4Address eth0 10.77.0.22/24"),
            static_cast<long>(system_.log.size()));
}

TEST_F(IdentityResetTest, ANewAddressThatCannotBeSetFailsTheStep) {
  system_.ipv4["eth0"] = {"10.77.0.10/24"};
  identity_.ipv4 = ParseStaticIpv4("10.77.0.22/24");
  system_.fail["AddIpv4Address"] = "adding 10.77.0.22/24 to eth0: File exists";
  IdentityResetResult result = reset_.Run(identity_);
  ASSERT_TRUE(result.failed_step);
  EXPECT_EQ(*result.failed_step, "dhcp");
}

TEST_F(IdentityResetTest, AnnouncementsNameEveryAddressWithTheNicsMac) {
  system_.ipv4["eth0"] = {"10.77.0.22/24"};
  auto announced = AnnounceAddresses(system_, 2);
  ASSERT_TRUE(std::holds_alternative<std::vector<std::string>>(announced));
  EXPECT_EQ(std::get<std::vector<std::string>>(announced), std::vector<std::string>{"10.77.0.22"});
  EXPECT_EQ(std::count(system_.log.begin(), system_.log.end(),
                       "AnnounceIpv4 eth0 52:54:00:12:34:56 10.77.0.22"),
            2);
  system_.ipv4["eth0"] = {};
  EXPECT_TRUE(std::holds_alternative<std::string>(AnnounceAddresses(system_, 2)));
  system_.ipv4["eth0"] = {"10.77.0.22/24"};
  system_.fail["AnnounceIpv4"] = "ARP announcement of 10.77.0.22 on eth0: sendto: No buffer";
  auto failed = AnnounceAddresses(system_, 2);
  ASSERT_TRUE(std::holds_alternative<std::string>(failed));
  EXPECT_NE(std::get<std::string>(failed).find("No buffer"), std::string::npos);
}

TEST_F(IdentityResetTest, StaticAddressWithoutGatewaySetsNoRoute) {
  system_.files["/proc/cmdline"] = "console=ttyS0 ferry.ip=10.77.0.10/24";
  system_.ipv4["eth0"] = {"10.77.0.10/24"};
  IdentityResetResult result = reset_.Run(identity_);
  ASSERT_FALSE(result.failed_step) << result.error;
  EXPECT_TRUE(system_.dhcp_queries.empty());
  EXPECT_EQ(system_.default_route, "");
}

TEST_F(IdentityResetTest, StaticRouteThatFailsFailsTheStep) {
  system_.files["/proc/cmdline"] = "ferry.ip=10.77.0.10/24 ferry.gw=10.77.0.1";
  system_.ipv4["eth0"] = {"10.77.0.10/24"};
  system_.fail["ReplaceDefaultRoute"] =
      "default route via 10.77.0.1 dev eth0: Network is unreachable";
  IdentityResetResult result = reset_.Run(identity_);
  ASSERT_TRUE(result.failed_step);
  EXPECT_EQ(*result.failed_step, "dhcp");
  EXPECT_NE(result.error.find("Network is unreachable"), std::string::npos) << result.error;
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

CloneIdentityFinish Finish() {
  CloneIdentityFinish finish;
  finish.hostname = "web-3";
  finish.entropy = std::string(48, '\x22');
  finish.time_unix_ns = 1'760'000'000'000'000'000;
  return finish;
}

TEST_F(IdentityResetTest, FinishRunsRngClockHostnameInOrderAndNothingElse) {
  const auto files_before = system_.files;
  IdentityResetResult result = reset_.Finish(Finish());
  ASSERT_FALSE(result.failed_step) << result.error;
  std::vector<std::string> steps;
  for (const auto& [step, ms] : result.steps_ms) {
    steps.push_back(step);
    EXPECT_GE(ms, 0);
  }
  EXPECT_EQ(steps, (std::vector<std::string>{"rng", "clock", "hostname"}));
  // Every change the fake saw: no machine-id, MAC, key, DHCP, address or route call among them.
  EXPECT_EQ(system_.log, (std::vector<std::string>{
                             "AddEntropyAndReseed 48",
                             "SetRealtimeNs 1760000000000000000",
                             "SetHostname web-3",
                             "WriteFileAtomically /etc/hostname 420",
                             "WriteFileAtomically /etc/hosts 420",
                         }));
  EXPECT_EQ(system_.hostname, "web-3");
  EXPECT_EQ(system_.clock_ns, 1'760'000'000'000'000'000);
  EXPECT_EQ(system_.files["/etc/hosts"], "127.0.0.1 localhost\n127.0.1.1 web-3\n");
  // Every other file as it was: machine-id, the MAC, the host key.
  auto files_after = system_.files;
  files_after.erase("/etc/hostname");
  files_after.erase("/etc/hosts");
  auto expected = files_before;
  expected.erase("/etc/hosts");
  EXPECT_EQ(files_after, expected);
  EXPECT_TRUE(system_.dhcp_queries.empty());
  EXPECT_TRUE(system_.programs.empty());
  EXPECT_EQ(system_.ipv4["eth0"], std::vector<std::string>{"10.0.2.15/24"});
  EXPECT_EQ(system_.default_route, "");
}

TEST_F(IdentityResetTest, FinishOfAPoolGuestOnTapSetsItsAddressLast) {
  system_.files["/proc/cmdline"] = "ferry.ip=10.77.0.10/24 ferry.gw=10.77.0.1";
  system_.ipv4["eth0"] = {"10.77.0.10/24"};
  CloneIdentityFinish finish = Finish();
  finish.ipv4 = ParseStaticIpv4("10.77.0.30/24");
  IdentityResetResult result = reset_.Finish(finish);
  ASSERT_FALSE(result.failed_step) << result.error;
  ASSERT_EQ(result.steps_ms.size(), 4u);
  EXPECT_EQ(result.steps_ms[3].first, "address");
  EXPECT_EQ(system_.ipv4["eth0"], std::vector<std::string>{"10.77.0.30/24"});
  EXPECT_EQ(system_.default_route, "via 10.77.0.1 dev eth0");
}

TEST_F(IdentityResetTest, FinishStepsCanFailAndAreNamed) {
  struct Failure {
    const char* call;
    const char* step;
    const char* done;  // what the message says stays done
    const char* not_attempted;
  };
  const Failure failures[] = {
      {"AddEntropyAndReseed", "rng", "No step was done before it",
       "not attempted: clock, hostname"},
      {"SetRealtimeNs", "clock", "Done, and still in effect: rng", "not attempted: hostname"},
      {"SetHostname", "hostname", "Done, and still in effect: rng, clock", ""},
      {"WriteFileAtomically /etc/hosts", "hostname", "Done, and still in effect: rng, clock", ""},
  };
  for (const Failure& f : failures) {
    FakeGuestSystem system;
    system.fail[f.call] = "injected failure";
    DropbearHostKeys host_keys(system);
    IdentityResetResult result = IdentityReset(system, host_keys).Finish(Finish());
    ASSERT_TRUE(result.failed_step) << f.call;
    EXPECT_EQ(*result.failed_step, f.step) << f.call;
    EXPECT_EQ(
        result.error.rfind(
            "finish_identity failed at step '" + std::string(f.step) + "': injected failure. ", 0),
        0u)
        << result.error;
    EXPECT_NE(result.error.find(f.done), std::string::npos) << result.error;
    if (*f.not_attempted == '\0') {
      EXPECT_EQ(result.error.find("not attempted"), std::string::npos) << result.error;
    } else {
      EXPECT_NE(result.error.find(f.not_attempted), std::string::npos) << result.error;
    }
    EXPECT_NE(result.error.find("retry finish_identity or discard this clone"), std::string::npos)
        << result.error;
    EXPECT_EQ(result.error.find("machine_id"), std::string::npos) << result.error;
  }
}

}  // namespace
}  // namespace ferry::guest
