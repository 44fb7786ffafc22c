// Templates and their warm pools: QEMUs started ahead of need become clones, the pool refills,
// its size survives a ferryd restart, and a restarted ferryd leaves no orphan pool QEMU behind.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <thread>

#include "harness/ferryd_fixture.h"
#include "harness/guest_identity.h"

namespace ferry::testing {
namespace {

using ::testing::HasSubstr;
using nlohmann::json;

class TemplatePoolTest : public FerrydFixture {
 protected:
  // Polls `template show` until `ready` QEMUs wait in the pool.
  json WaitForPool(const std::string& name, int ready) {
    json t;
    for (int i = 0; i < 600; ++i) {
      t = FerryJson({"template", "show", name});
      if (t.value("pool_ready", -1) == ready) return t;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return t;
  }
  uint16_t HostPort(const std::string& vm) {
    return FerryJson({"vm", "show", vm})["spec"]["network"]["forwards"][0]["host_port"];
  }
};

TEST_F(TemplatePoolTest, ClonesComeFromThePoolWhichRefillsAndSurvivesARestart) {
  StartFerryd();
  uint16_t port = CreateRedisVm("web-1");
  ASSERT_EQ(Redis(port, {"set", "greeting", "hello"}).out, "OK");
  ASSERT_EQ(Ferry({"snapshot", "create", "web-1", "--name", "warm"}).exit_code, 0);
  CommandResult created = Ferry({"template", "create", "redis", "--from-snapshot", "warm"});
  ASSERT_EQ(created.exit_code, 0) << created.err;
  ASSERT_EQ(Ferry({"template", "pool", "redis", "--size", "2"}).exit_code, 0);
  json pool = WaitForPool("redis", 2);
  ASSERT_EQ(pool["pool_ready"], 2) << pool.dump();
  const pid_t waiting = pool["pool_pids"][0];

  CommandResult vm = Ferry({"vm", "create", "api-7", "--template", "redis", "--forward", "0:6379"});
  ASSERT_EQ(vm.exit_code, 0) << vm.err;
  EXPECT_THAT(vm.out, HasSubstr("from the warm pool"));
  json api = FerryJson({"vm", "show", "api-7"});
  EXPECT_EQ(api["pid"].get<pid_t>(), waiting) << "the clone did not take the waiting QEMU";
  EXPECT_TRUE(api["origin"]["warm_pool"].get<bool>());
  EXPECT_EQ(api["guest"]["hostname"], "api-7");
  EXPECT_EQ(Redis(HostPort("api-7"), {"get", "greeting"}).out, "hello");
  EXPECT_EQ(WaitForPool("redis", 2)["pool_ready"], 2) << "the pool did not refill";

  // The pool size persists; the QEMUs that waited under the old ferryd do not outlive it.
  std::vector<pid_t> old_pool = WaitForPool("redis", 2)["pool_pids"];
  KillFerryd();
  StartFerryd();
  for (pid_t p : old_pool) {
    for (int i = 0; i < 100 && ProcessAlive(p); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    EXPECT_FALSE(ProcessAlive(p)) << "orphan pool QEMU " << p;
  }
  json again = WaitForPool("redis", 2);
  EXPECT_EQ(again["pool_size"], 2);
  EXPECT_EQ(again["pool_ready"], 2);
  // The clone made before the restart still runs and serves.
  EXPECT_EQ(FerryJson({"vm", "show", "api-7"})["state"], "running");
  EXPECT_EQ(Redis(HostPort("api-7"), {"get", "greeting"}).out, "hello");

  // Without a pool, a template clone starts its own QEMU.
  ASSERT_EQ(Ferry({"template", "pool", "redis", "--size", "0"}).exit_code, 0);
  EXPECT_EQ(WaitForPool("redis", 0)["pool_ready"], 0);
  CommandResult cold = Ferry({"vm", "create", "api-8", "--template", "redis", "--forward", "0:6379"});
  ASSERT_EQ(cold.exit_code, 0) << cold.err;
  EXPECT_THAT(cold.out, ::testing::Not(HasSubstr("warm pool")));
  EXPECT_EQ(Redis(HostPort("api-8"), {"get", "greeting"}).out, "hello");

  // The template's snapshot is mapped by clones: it cannot go.
  CommandResult del = Ferry({"snapshot", "delete", "warm"});
  EXPECT_EQ(del.exit_code, 1);
  EXPECT_THAT(del.err, HasSubstr("api-7"));
}

// A pool QEMU makes its identity, all but the name, while it waits; the clone that takes it only
// finishes it. Pool clones must still be machines of their own: none shares a MAC, machine-id,
// SSH key or RNG output with another or with the parent, and each carries its own name.
TEST_F(TemplatePoolTest, PrimedPoolClonesAreEachTheirOwnMachine) {
  StartFerryd();
  uint16_t port = CreateRedisVm("web-1");
  ASSERT_EQ(Redis(port, {"set", "greeting", "hello"}).out, "OK");
  std::vector<GuestIdentity> machines = {ReadGuestIdentity(socket_, "web-1")};
  ASSERT_EQ(Ferry({"snapshot", "create", "web-1", "--name", "warm"}).exit_code, 0);
  ASSERT_EQ(Ferry({"template", "create", "redis", "--from-snapshot", "warm"}).exit_code, 0);
  ASSERT_EQ(Ferry({"template", "pool", "redis", "--size", "2"}).exit_code, 0);

  for (const std::string name : {"p-1", "p-2", "p-3"}) {
    ASSERT_EQ(WaitForPool("redis", 2)["pool_ready"], 2);
    CommandResult vm = Ferry({"vm", "create", name, "--template", "redis", "--forward", "0:6379"});
    ASSERT_EQ(vm.exit_code, 0) << vm.err;
    json show = FerryJson({"vm", "show", name});
    EXPECT_TRUE(show["origin"].value("warm_pool", false)) << show["origin"].dump();
    EXPECT_TRUE(show["origin"].value("identity_primed", false)) << show["origin"].dump();
    // Taken from the pool, the clone got only its name, a reseed and the clock; the rest was
    // made while it waited, and is shown as such.
    const json& timings = show["timings"];
    json steps = json::array();
    for (const auto& [step, ms] : timings["identity_steps_ms"].items()) steps.push_back(step);
    EXPECT_EQ(steps, json({"clock", "hostname", "rng"})) << timings.dump();
    EXPECT_TRUE(timings["identity_primed_in_pool"]["steps_ms"].contains("dhcp")) << timings.dump();
    machines.push_back(ReadGuestIdentity(socket_, name));
    EXPECT_EQ(machines.back().hostname, name);
    EXPECT_EQ(Redis(HostPort(name), {"get", "greeting"}).out, "hello");
  }
  ExpectPairwiseDistinct(machines);
}

TEST_F(TemplatePoolTest, TemplateFromAnImageIsSnapshottedAtTheReadyPoint) {
  StartFerryd();
  CommandResult created = Ferry({"template", "create", "cache", "--image", "default", "--memory", "256"});
  ASSERT_EQ(created.exit_code, 0) << created.err;
  EXPECT_TRUE(VmNames().empty()) << "the VM that built the template was left behind";
  CommandResult vm = Ferry({"vm", "create", "c-1", "--template", "cache", "--forward", "0:6379"});
  ASSERT_EQ(vm.exit_code, 0) << vm.err;
  EXPECT_EQ(Redis(HostPort("c-1"), {"ping"}).out, "PONG");
  ASSERT_EQ(Ferry({"vm", "delete", "c-1", "--force"}).exit_code, 0);
  CommandResult base = Ferry({"snapshot", "delete", "template-cache"});
  EXPECT_EQ(base.exit_code, 1) << "a template's base snapshot was deleted under it";
  EXPECT_THAT(base.err, HasSubstr("base of template cache"));
  ASSERT_EQ(Ferry({"template", "delete", "cache"}).exit_code, 0);
  CommandResult snaps = Ferry({"snapshot", "list", "--json"});
  EXPECT_EQ(json::parse(snaps.out).size(), 0u) << "the template's own snapshot was left behind";
}

TEST_F(TemplatePoolTest, BadTemplateRequestsAreRefusedClearly) {
  StartFerryd();
  CommandResult r = Ferry({"vm", "create", "x", "--template", "nope"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("template nope does not exist"));
  r = Ferry({"template", "create", "t", "--from-snapshot", "nope"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("snapshot nope does not exist"));
  r = Ferry({"template", "pool", "nope", "--size", "2"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("template nope does not exist"));
  EXPECT_TRUE(VmNames().empty());
}

}  // namespace
}  // namespace ferry::testing
