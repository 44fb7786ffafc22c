// Tap networking, seen from outside: a VM on a host's bridge has its own address on the
// datacenter's L2 segment, a client elsewhere on the segment talks to its redis directly, the
// host's tap lives exactly as long as the VM's QEMU (and survives a ferryd crash with it), and a
// VM that cannot get a tap is refused without leaving anything behind.
//
// The "datacenter" is made of network namespaces (harness/netns_hosts.h): ferryd runs in host
// namespace h1, redis-cli in the client namespace. Needs root.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <set>
#include <thread>

#include "harness/background.h"
#include "harness/ferryd_fixture.h"
#include "harness/fleet.h"
#include "harness/netns_hosts.h"
#include "harness/test_files.h"

namespace ferry::testing {
namespace {

using nlohmann::json;
using ::testing::Contains;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr const char* kVmAddress = "10.77.0.10";
const std::string kTools = FERRY_TEST_TOOLS_DIR;

class TapNetworkTest : public NetnsFixture {
 protected:
  // Creates a redis VM on h1's ferrybr0 at 10.77.0.10/24, waiting until redis answers in it.
  void CreateTapVm(const std::string& name) {
    CommandResult r = Ferryd(1).Ferry({"vm", "create", name, "--net", "tap", "--bridge", "ferrybr0",
                                       "--ip", std::string(kVmAddress) + "/24", "--gateway",
                                       NetnsHosts::HostAddress(1), "--wait-ready"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }
  std::vector<std::string> TapsOnH1Bridge() {
    return NetnsHosts::Links(net_.Host(1), NetnsHosts::kVmBridge);
  }
  // Waits (up to 60 s) until `b` printed at least `n` lines; false if it did not or ended.
  static bool WaitForLines(const Background& b, size_t n) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (std::chrono::steady_clock::now() < deadline) {
      if (b.Lines() >= n) return true;
      if (!b.Running()) return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return false;
  }
  // A file in a directory of this test's own (left in /tmp for a failed test to be read).
  std::string ScratchFile(const std::string& name) {
    if (scratch_.empty()) scratch_ = MakeTempDir("/tmp", "ferry-tap-test-");
    return scratch_ + "/" + name;
  }
  std::string scratch_;
  bool TapExistsOnH1(const std::string& tap) {
    auto all = NetnsHosts::Links(net_.Host(1));
    return std::find(all.begin(), all.end(), tap) != all.end();
  }
};

TEST_F(TapNetworkTest, ClientOnTheSegmentReachesRedisAtTheVmsOwnAddress) {
  NamespacedFerryd& h1 = Ferryd(1);
  h1.Start();
  CreateTapVm("db-1");

  json vm = h1.FerryJson({"vm", "show", "db-1"});
  EXPECT_EQ(vm["state"], "running");
  EXPECT_EQ(vm["spec"]["network"]["mode"], "tap");
  EXPECT_EQ(vm["spec"]["network"]["ip"], "10.77.0.10/24");
  const std::string tap = vm["tap"];
  EXPECT_EQ(tap, "fy" + std::string(vm["id"]).substr(0, 8));
  // The guest reports the address ferry gave it.
  ASSERT_TRUE(vm.contains("guest")) << vm.dump();
  ASSERT_FALSE(vm["guest"]["macs"].empty()) << vm.dump();
  EXPECT_EQ(vm["guest"]["macs"][0]["mac"], vm["mac"]);
  EXPECT_THAT(vm["guest"]["macs"][0]["ipv4"].get<std::vector<std::string>>(),
              Contains("10.77.0.10/24"));
  // QEMU gets a queue of ferry's tap as a descriptor (it runs unprivileged and could not open
  // it by name); no user networking, no forwards.
  const std::vector<std::string> argv = vm["qemu_argv"];
  EXPECT_THAT(argv, Contains(::testing::MatchesRegex("tap,id=net0,fd=[0-9]+,vhost=off")));
  for (const std::string& arg : argv) EXPECT_THAT(arg, Not(HasSubstr("hostfwd"))) << arg;
  EXPECT_THAT(argv, Contains(HasSubstr("ferry.ip=10.77.0.10/24 ferry.gw=10.77.0.1")));

  CommandResult show = h1.Ferry({"vm", "show", "db-1"});
  EXPECT_THAT(show.out, HasSubstr("tap " + tap + " on bridge ferrybr0"));
  EXPECT_THAT(show.out, HasSubstr("10.77.0.10/24 via 10.77.0.1"));
  EXPECT_THAT(show.out, HasSubstr("guest eth0"));

  // A real client on another machine of the segment.
  CommandResult set = RedisFromClient(kVmAddress, {"set", "k", "over-the-bridge"});
  ASSERT_EQ(set.exit_code, 0) << set.err;
  EXPECT_EQ(set.out, "OK");
  EXPECT_EQ(RedisFromClient(kVmAddress, {"get", "k"}).out, "over-the-bridge");
  // The host itself is on the segment too (where its ferryd's peer port will listen).
  EXPECT_EQ(
      NetnsHosts::RunIn(net_.Host(1), {"timeout", "10", "redis-cli", "-h", kVmAddress, "get", "k"})
          .out,
      "over-the-bridge\n");

  // A second VM may not take the same address on the same bridge.
  CommandResult twin = h1.Ferry({"vm", "create", "db-2", "--net", "tap", "--ip", "10.77.0.10/24"});
  EXPECT_EQ(twin.exit_code, 1);
  EXPECT_THAT(twin.err, HasSubstr("vm db-2: address 10.77.0.10/24 on bridge ferrybr0 is used by "
                                  "vm db-1; choose another --ip"));

  // The host end: one tap, on h1's ferrybr0, up.
  EXPECT_THAT(TapsOnH1Bridge(), Contains(tap));
  EXPECT_THAT(NetnsHosts::RunIn(net_.Host(1), {"ip", "link", "show", tap}).out,
              HasSubstr("state UP"));

  // Stop removes the tap; start makes it again and the VM is back at its address.
  CommandResult stop = h1.Ferry({"vm", "stop", "db-1"});
  ASSERT_EQ(stop.exit_code, 0) << stop.err;
  EXPECT_FALSE(TapExistsOnH1(tap)) << "the tap outlived the VM's QEMU";
  CommandResult start = h1.Ferry({"vm", "start", "db-1", "--wait-ready"});
  ASSERT_EQ(start.exit_code, 0) << start.err;
  EXPECT_THAT(TapsOnH1Bridge(), Contains(tap));
  EXPECT_EQ(RedisFromClient(kVmAddress, {"ping"}).out, "PONG");

  // Delete (of a running VM) ends QEMU and removes the tap.
  const pid_t qemu = h1.FerryJson({"vm", "show", "db-1"})["pid"];
  ASSERT_EQ(h1.Ferry({"vm", "delete", "db-1", "--force"}).exit_code, 0);
  EXPECT_FALSE(ProcessAlive(qemu));
  EXPECT_FALSE(TapExistsOnH1(tap));
  EXPECT_THAT(TapsOnH1Bridge(), Not(Contains(tap)));
  EXPECT_NE(RedisFromClient(kVmAddress, {"ping"}).out, "PONG");
}

TEST_F(TapNetworkTest, MissingBridgeIsRefusedAndLeavesNothing) {
  NamespacedFerryd& h1 = Ferryd(1);
  h1.Start();
  const auto links_before = NetnsHosts::Links(net_.Host(1));

  CommandResult r = h1.Ferry({"vm", "create", "db-1", "--net", "tap", "--bridge", "nosuchbr",
                              "--ip", "10.77.0.10/24", "--wait-ready"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.err,
            "ferry: vm db-1: bridge nosuchbr does not exist on this host; create it (ip link add "
            "nosuchbr type bridge) or pass --bridge with one that does\n");
  EXPECT_TRUE(h1.VmNames().empty()) << "a refused VM was recorded";
  EXPECT_EQ(NetnsHosts::Links(net_.Host(1)), links_before) << "an interface was left behind";
  EXPECT_FALSE(std::filesystem::exists(h1.state_dir() + "/vms/db-1"));
  EXPECT_TRUE(std::filesystem::is_empty(h1.ram_dir()));
  // Nothing runs in h1 but ferryd: no QEMU was started.
  EXPECT_EQ(NetnsHosts::PidsIn(net_.Host(1)), std::vector<pid_t>{h1.pid()});

  // The other refusals a user meets, also before anything is made.
  CommandResult no_ip = h1.Ferry({"vm", "create", "db-1", "--net", "tap"});
  EXPECT_EQ(no_ip.exit_code, 1);
  EXPECT_THAT(no_ip.err, HasSubstr("vm db-1: network.ip is required for tap networking"));
  CommandResult forward = h1.Ferry(
      {"vm", "create", "db-1", "--net", "tap", "--ip", "10.77.0.10/24", "--forward", "0:6379"});
  EXPECT_EQ(forward.exit_code, 1);
  EXPECT_THAT(forward.err, HasSubstr("port forwards are for user networking"));
  CommandResult bad_ip =
      h1.Ferry({"vm", "create", "db-1", "--net", "tap", "--ip", "10.77.0.999/24"});
  EXPECT_THAT(bad_ip.err, HasSubstr("network.ip '10.77.0.999/24' is not an IPv4 address"));
  EXPECT_TRUE(h1.VmNames().empty());
  EXPECT_EQ(NetnsHosts::Links(net_.Host(1)), links_before);
}

TEST_F(TapNetworkTest, FerrydKilledAndRestartedReadoptsTheTapVm) {
  NamespacedFerryd& h1 = Ferryd(1);
  h1.Start();
  CreateTapVm("db-1");
  ASSERT_EQ(RedisFromClient(kVmAddress, {"set", "survivor", "yes"}).out, "OK");
  json before = h1.FerryJson({"vm", "show", "db-1"});
  const pid_t qemu = before["pid"];
  const std::string tap = before["tap"];

  h1.Kill();
  ASSERT_TRUE(ProcessAlive(qemu)) << "QEMU died with ferryd";
  EXPECT_THAT(TapsOnH1Bridge(), Contains(tap)) << "the tap went with ferryd";
  EXPECT_EQ(RedisFromClient(kVmAddress, {"get", "survivor"}).out, "yes")
      << "the guest stopped serving while ferryd was down";

  h1.Start();
  json vm = h1.FerryJson({"vm", "show", "db-1"});
  EXPECT_EQ(vm["state"], "running");
  EXPECT_EQ(vm["pid"].get<pid_t>(), qemu);
  EXPECT_EQ(vm["tap"], tap);
  EXPECT_THAT(TapsOnH1Bridge(), Contains(tap));
  EXPECT_EQ(RedisFromClient(kVmAddress, {"get", "survivor"}).out, "yes");

  // The new ferryd drives the old QEMU, and the tap still ends with it.
  CommandResult stop = h1.Ferry({"vm", "stop", "db-1"});
  ASSERT_EQ(stop.exit_code, 0) << stop.err;
  EXPECT_THAT(stop.out, HasSubstr("graceful"));
  EXPECT_FALSE(ProcessAlive(qemu));
  EXPECT_FALSE(TapExistsOnH1(tap));
}

TEST_F(TapNetworkTest, ATapThisFerrydLeftIsSweptAtStartUpAndOthersStay) {
  NamespacedFerryd& h1 = Ferryd(1);
  h1.Start();
  CreateTapVm("db-1");
  ASSERT_EQ(RedisFromClient(kVmAddress, {"set", "k", "kept"}).out, "OK");
  json vm = h1.FerryJson({"vm", "show", "db-1"});
  const std::string kept = vm["tap"];
  // A tap says which ferryd made it, and for which VM.
  const std::string ours = "ferryd " + h1.state_dir() + " vm ";
  EXPECT_THAT(NetnsHosts::RunIn(net_.Host(1), {"ip", "link", "show", kept}).out,
              HasSubstr("alias " + ours + vm["id"].get<std::string>()));

  h1.Kill();
  // While ferryd is down, taps of ferry's name appear on its bridge: one as this ferryd leaves
  // it when it dies between deleting a VM's record and removing its tap (that window is too
  // narrow to hit with a fault point: the QEMU's exit usually removes the tap first), one of
  // another ferryd on this host, and one made by hand.
  auto add_tap = [&](const std::string& name, const std::string& alias) {
    ASSERT_EQ(NetnsHosts::RunIn(net_.Host(1), {"ip", "tuntap", "add", "dev", name, "mode", "tap"})
                  .exit_code,
              0);
    std::vector<std::string> set = {"ip", "link", "set", name, "master", "ferrybr0", "up"};
    if (!alias.empty()) set.insert(set.end(), {"alias", alias});
    ASSERT_EQ(NetnsHosts::RunIn(net_.Host(1), set).exit_code, 0);
  };
  // The name ferry gives the tap of VM id ID: "fy" and its first 8 characters.
  auto tap_of = [](const std::string& id) { return "fy" + id.substr(0, 8); };
  const std::string leftover = tap_of("deadbeef00000000");
  ASSERT_NO_FATAL_FAILURE(add_tap(leftover, ours + "deadbeef00000000"));
  const std::string other_ferryds = tap_of("cafe012300000000");
  ASSERT_NO_FATAL_FAILURE(add_tap(other_ferryds, "ferryd /var/lib/ferry vm cafe012300000000"));
  const std::string by_hand = tap_of("0badcafe00000000");
  ASSERT_NO_FATAL_FAILURE(add_tap(by_hand, ""));

  h1.Start();
  EXPECT_FALSE(TapExistsOnH1(leftover)) << "the tap of a VM in no record outlived the restart";
  EXPECT_THAT(ReadFile(h1.state_dir() + "/ferryd.log"),
              HasSubstr("start-up sweep: removed tap " + leftover +
                        ": its VM (id deadbeef00000000) is in no record"));
  EXPECT_TRUE(TapExistsOnH1(other_ferryds)) << "another ferryd's tap was removed";
  EXPECT_TRUE(TapExistsOnH1(by_hand)) << "a tap made by hand was removed";
  EXPECT_THAT(TapsOnH1Bridge(), Contains(kept));
  EXPECT_EQ(h1.FerryJson({"vm", "show", "db-1"})["state"], "running");
  EXPECT_EQ(RedisFromClient(kVmAddress, {"get", "k"}).out, "kept");
}

// Three clones of a tap VM, each at its own address on the segment, while a client on another
// machine of the segment keeps one connection to the parent busy.
TEST_F(TapNetworkTest, ClonesOfATapVmServeAtTheirOwnAddressesAndTheParentKeepsItsConnection) {
  NamespacedFerryd& h1 = Ferryd(1);
  h1.Start();
  CreateTapVm("db-1");
  ASSERT_EQ(RedisFromClient(kVmAddress, {"set", "k", "from-the-parent"}).out, "OK");
  const json parent = h1.FerryJson({"vm", "show", "db-1"});

  // One TCP connection, INCR every 20 ms, across the snapshot and the cloning.
  Background session(NetnsHosts::InNamespace(net_.Client(), {"/usr/bin/python3",
                                                             kTools + "/redis_session.py",
                                                             kVmAddress, "counter", "0.02"}),
                     ScratchFile("session.out"));
  ASSERT_TRUE(WaitForLines(session, 5)) << session.Output();

  CommandResult snap = h1.Ferry({"snapshot", "create", "db-1", "--name", "s1"});
  ASSERT_EQ(snap.exit_code, 0) << snap.err;
  CommandResult cloned = h1.Ferry(
      {"clone", "s1", "--count", "3", "--net", "tap", "--ip", "10.77.0.21/24", "--json"});
  ASSERT_EQ(cloned.exit_code, 0) << cloned.err;
  const json clones = json::parse(cloned.out);
  ASSERT_EQ(clones.size(), 3u) << cloned.out;

  std::set<std::string> macs = {parent["mac"]};
  const std::vector<std::string> addresses = {"10.77.0.21", "10.77.0.22", "10.77.0.23"};
  for (size_t i = 0; i < 3; ++i) {
    const std::string name = clones[i]["name"];
    json vm = h1.FerryJson({"vm", "show", name});
    EXPECT_EQ(vm["state"], "running");
    EXPECT_EQ(vm["spec"]["network"]["ip"], addresses[i] + "/24") << name;
    EXPECT_TRUE(macs.insert(vm["mac"].get<std::string>()).second) << "a MAC twice: " << vm["mac"];
    // The guest reports its own address, and the parent's no more.
    ASSERT_FALSE(vm["guest"]["macs"].empty()) << vm.dump();
    EXPECT_EQ(vm["guest"]["macs"][0]["mac"], vm["mac"]);
    EXPECT_EQ(vm["guest"]["macs"][0]["ipv4"], json::array({addresses[i] + "/24"}));
    EXPECT_THAT(TapsOnH1Bridge(), Contains(vm["tap"].get<std::string>()));
    // Its address was announced before it was reported running.
    EXPECT_EQ(vm["timings"]["segment"]["announced"], json::array({addresses[i]})) << vm.dump();
    // redis answers there, with the parent's data as of the snapshot.
    EXPECT_EQ(RedisFromClient(addresses[i], {"get", "k"}).out, "from-the-parent") << name;
    ASSERT_EQ(RedisFromClient(addresses[i], {"set", "k", name}).out, "OK");
    // The client's ARP entry for the address is the clone's MAC.
    EXPECT_THAT(NetnsHosts::RunIn(net_.Client(), {"ip", "neigh", "show", addresses[i]}).out,
                HasSubstr(vm["mac"].get<std::string>()));
  }
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(RedisFromClient(addresses[i], {"get", "k"}).out, clones[i]["name"]);
  }

  // Duplicate address detection from the client: one owner per address, each clone its own,
  // and the parent still the only owner of its address.
  CommandResult probe = NetnsHosts::RunIn(
      net_.Client(), {"/usr/bin/python3", kTools + "/arp_owners.py", "eth0", kVmAddress,
                      addresses[0], addresses[1], addresses[2]});
  ASSERT_EQ(probe.exit_code, 0) << probe.err;
  std::string expected = std::string(kVmAddress) + " " + parent["mac"].get<std::string>() + "\n";
  for (size_t i = 0; i < 3; ++i) {
    expected += addresses[i] + " " +
                h1.FerryJson({"vm", "show", clones[i]["name"]})["mac"].get<std::string>() + "\n";
  }
  EXPECT_EQ(probe.out, expected);

  // The parent's connection: never interrupted, every reply the one after the last.
  const size_t seen = session.Lines();
  ASSERT_TRUE(WaitForLines(session, seen + 5)) << session.Output();
  ASSERT_TRUE(session.Running()) << session.Output();
  session.Stop();
  EXPECT_THAT(session.Output(), Not(HasSubstr("error"))) << session.Output();
  EXPECT_THAT(session.Output(), HasSubstr("stopped after"));
  EXPECT_EQ(RedisFromClient(kVmAddress, {"get", "k"}).out, "from-the-parent");
}

// A held tap VM runs nowhere (its tap is gone from the bridge) and comes back at its address with
// its data, its MAC and a new tap, announced on the segment before it is reported running.
TEST_F(TapNetworkTest, AHeldVmComesBackAtItsAddressAndAnnouncesItself) {
  Fleet fleet;  // a hold is signed with the host's key
  fleet.AddHost("h1");
  NamespacedFerryd& h1 = Ferryd(1);
  h1.Start({"--tls-dir", fleet.TlsDir("h1")});
  CreateTapVm("db-1");
  ASSERT_EQ(RedisFromClient(kVmAddress, {"set", "k", "kept-while-held"}).out, "OK");
  const json before = h1.FerryJson({"vm", "show", "db-1"});

  CommandResult held = h1.Ferry({"hold", "db-1"});
  ASSERT_EQ(held.exit_code, 0) << held.err;
  EXPECT_THAT(TapsOnH1Bridge(), Not(Contains(before["tap"].get<std::string>())));

  CommandResult restored = h1.Ferry({"hold", "restore", "db-1", "--wait-ready"});
  ASSERT_EQ(restored.exit_code, 0) << restored.err;
  const json vm = h1.FerryJson({"vm", "show", "db-1"});
  EXPECT_EQ(vm["state"], "running");
  EXPECT_EQ(vm["mac"], before["mac"]);
  EXPECT_EQ(vm["spec"]["network"]["ip"], "10.77.0.10/24");
  EXPECT_THAT(TapsOnH1Bridge(), Contains(vm["tap"].get<std::string>()));
  EXPECT_EQ(vm["timings"]["announced"], json::array({kVmAddress})) << vm.dump();
  // The bridge knows the VM's MAC on its new tap.
  EXPECT_THAT(NetnsHosts::RunIn(net_.Host(1), {"bridge", "fdb", "show", "br",
                                               NetnsHosts::kVmBridge, "dev",
                                               vm["tap"].get<std::string>()})
                  .out,
              HasSubstr(vm["mac"].get<std::string>()));
  EXPECT_EQ(RedisFromClient(kVmAddress, {"get", "k"}).out, "kept-while-held");
}

TEST_F(TapNetworkTest, AClonesAddressInUseOrOutsideTheSubnetIsRefusedAndNothingStarts) {
  NamespacedFerryd& h1 = Ferryd(1);
  h1.Start();
  CreateTapVm("db-1");
  CommandResult snap = h1.Ferry({"snapshot", "create", "db-1", "--name", "s1"});
  ASSERT_EQ(snap.exit_code, 0) << snap.err;
  const auto links_before = NetnsHosts::Links(net_.Host(1));
  const auto pids_before = NetnsHosts::PidsIn(net_.Host(1));
  auto nothing_started = [&] {
    EXPECT_EQ(h1.VmNames(), std::vector<std::string>{"db-1"});
    EXPECT_EQ(NetnsHosts::Links(net_.Host(1)), links_before);
    EXPECT_EQ(NetnsHosts::PidsIn(net_.Host(1)), pids_before);
  };

  // The parent's own address: ferry's admission knows it.
  CommandResult parents = h1.Ferry({"clone", "s1", "--net", "tap", "--ip", "10.77.0.10/24"});
  EXPECT_EQ(parents.exit_code, 1);
  EXPECT_EQ(parents.err,
            "ferry: vm db-1-c1: address 10.77.0.10/24 on bridge ferrybr0 is used by vm db-1; "
            "choose another --ip\n");
  nothing_started();
  // A foreign host's address (the client's), found by the duplicate address probe; the third of
  // three clones would take it, so none starts. The probe runs beside the first clone's start
  // (address_probe.h): the error is the operation's, after its progress lines.
  CommandResult foreign =
      h1.Ferry({"clone", "s1", "--count", "3", "--net", "tap", "--ip", "10.77.0.198/24"});
  EXPECT_EQ(foreign.exit_code, 1);
  const size_t last_line = foreign.err.rfind('\n', foreign.err.size() - 2);
  EXPECT_THAT(last_line == std::string::npos ? foreign.err : foreign.err.substr(last_line + 1),
              ::testing::MatchesRegex("ferry: vm db-1-c3: address 10.77.0.200/24 is in use on "
                                      "bridge ferrybr0 \\([0-9a-f:]{17} answered a duplicate "
                                      "address probe\\); nothing was started; choose another "
                                      "--ip\n"));
  nothing_started();
  // Outside the bridge's subnet.
  CommandResult outside = h1.Ferry({"clone", "s1", "--net", "tap", "--ip", "10.78.0.21/24"});
  EXPECT_EQ(outside.exit_code, 1);
  EXPECT_EQ(outside.err,
            "ferry: vm db-1-c1: address 10.78.0.21/24 is outside the subnet of bridge ferrybr0 "
            "(10.77.0.0/24); choose an --ip in it\n");
  nothing_started();
  // No address at all.
  CommandResult none = h1.Ferry({"clone", "s1"});
  EXPECT_EQ(none.exit_code, 1);
  EXPECT_THAT(none.err, HasSubstr("a clone needs an address of its own: give --ip A.B.C.D/P"));
  nothing_started();
  EXPECT_EQ(RedisFromClient(kVmAddress, {"ping"}).out, "PONG");
}

// vm create --template on a tap template with a warm pool: the pool QEMU was primed with
// everything but the address (its tap off the bridge), and the clone that takes it gets the
// address it is given; without a waiting QEMU, a cold clone gets its address the same way.
TEST_F(TapNetworkTest, AVmFromATapTemplatesWarmPoolGetsItsAddress) {
  NamespacedFerryd& h1 = Ferryd(1);
  h1.Start();
  CreateTapVm("db-1");
  ASSERT_EQ(h1.Ferry({"snapshot", "create", "db-1", "--name", "s1"}).exit_code, 0);
  CommandResult t = h1.Ferry({"template", "create", "redis", "--from-snapshot", "s1"});
  ASSERT_EQ(t.exit_code, 0) << t.err;
  ASSERT_EQ(h1.Ferry({"template", "pool", "redis", "--size", "1"}).exit_code, 0);
  json pool = json::object();
  for (int i = 0; i < 1200 && pool.value("pool_ready", 0) != 1; ++i) {
    pool = h1.FerryJson({"template", "show", "redis"});
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ASSERT_EQ(pool.value("pool_ready", 0), 1) << pool.dump();
  const pid_t waiting = pool["pool_pids"][0];
  // The pool QEMU's tap exists but is on no bridge: the primed guest still has db-1's address.
  const auto on_bridge = TapsOnH1Bridge();
  EXPECT_EQ(RedisFromClient(kVmAddress, {"ping"}).out, "PONG");

  CommandResult api = h1.Ferry(
      {"vm", "create", "api", "--template", "redis", "--net", "tap", "--ip", "10.77.0.30/24"});
  ASSERT_EQ(api.exit_code, 0) << api.err;
  json vm = h1.FerryJson({"vm", "show", "api"});
  EXPECT_EQ(vm["state"], "running");
  EXPECT_EQ(vm["pid"].get<pid_t>(), waiting) << "the clone did not take the pool's QEMU";
  EXPECT_TRUE(vm["origin"]["identity_primed"].get<bool>()) << vm.dump();
  EXPECT_THAT(on_bridge, Not(Contains(vm["tap"].get<std::string>())));
  EXPECT_THAT(TapsOnH1Bridge(), Contains(vm["tap"].get<std::string>()));
  EXPECT_EQ(vm["guest"]["hostname"], "api");
  EXPECT_EQ(vm["guest"]["macs"][0]["ipv4"], json::array({"10.77.0.30/24"}));
  EXPECT_EQ(RedisFromClient("10.77.0.30", {"ping"}).out, "PONG");
  EXPECT_EQ(RedisFromClient(kVmAddress, {"ping"}).out, "PONG");
  ASSERT_EQ(h1.Ferry({"template", "pool", "redis", "--size", "0"}).exit_code, 0);
  CommandResult cold = h1.Ferry(
      {"vm", "create", "api3", "--template", "redis", "--net", "tap", "--ip", "10.77.0.31/24"});
  ASSERT_EQ(cold.exit_code, 0) << cold.err;
  EXPECT_EQ(RedisFromClient("10.77.0.31", {"ping"}).out, "PONG");
  CommandResult no_ip = h1.Ferry({"vm", "create", "api2", "--template", "redis"});
  EXPECT_EQ(no_ip.exit_code, 1);
  EXPECT_THAT(no_ip.err, HasSubstr("a clone needs an address of its own"));
}

}  // namespace
}  // namespace ferry::testing
