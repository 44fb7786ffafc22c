// Live snapshots and the clones made from them, as a user checks them: every clone is its own
// machine (hostname, MAC, machine-id, SSH host key, RNG), serves the parent's data, keeps its
// writes to itself, and never writes the snapshot it maps. Real ferryd, real QEMU, real redis.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <thread>

#include "harness/background.h"
#include "harness/ferryd_fixture.h"
#include "harness/guest_identity.h"

namespace ferry::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;
using nlohmann::json;
using Clock = std::chrono::steady_clock;

// Fills the data set in one atomic step: key:1..N, each value a function of its index.
constexpr const char* kPopulate =
    "for i = 1, tonumber(ARGV[1]) do "
    "  redis.call('set', 'key:' .. i, string.rep(redis.sha1hex(tostring(i)), 4)) "
    "end "
    "return redis.call('dbsize')";

// A checksum of the whole data set, taken atomically: SHA-1 over every key and value, in key
// order. Equal data sets give equal digests. (The guest's redis refuses DEBUG DIGEST to clients
// that are not local, and the host reaches it through QEMU's NAT.)
constexpr const char* kDigest =
    "local keys = redis.call('keys', '*') "
    "table.sort(keys) "
    "local parts = {} "
    "for _, k in ipairs(keys) do "
    "  local v = redis.call('get', k) "
    "  parts[#parts + 1] = #k .. ':' .. k .. '=' .. #v .. ':' .. v "
    "end "
    "return redis.sha1hex(table.concat(parts, ';'))";

// One step of the deterministic writer: the counter and the key it names change together.
constexpr const char* kWriteStep =
    "local n = redis.call('incr', 'counter') "
    "redis.call('set', 'key:' .. n, n) "
    "return n";

// Reads, atomically, {counter, dbsize, how many of key:1..counter are missing or wrong}.
constexpr const char* kCheckPrefix =
    "local c = tonumber(redis.call('get', 'counter') or '0') "
    "local bad = 0 "
    "for i = 1, c do "
    "  if redis.call('get', 'key:' .. i) ~= tostring(i) then bad = bad + 1 end "
    "end "
    "return {c, redis.call('dbsize'), bad}";

std::vector<std::string> Lines(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream in(s);
  std::string line;
  while (std::getline(in, line)) out.push_back(line);
  return out;
}

std::string Sha256(const std::string& path) {
  CommandResult r = RunCommand({"sha256sum", path});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  return r.out.substr(0, 64);
}

struct FileStamp {
  int64_t size = 0;
  int64_t mtime_ns = 0;
  int64_t ctime_ns = 0;
  ino_t ino = 0;
  mode_t mode = 0;
  bool operator==(const FileStamp&) const = default;
};

FileStamp Stamp(const std::string& path) {
  struct stat st {};
  EXPECT_EQ(::stat(path.c_str(), &st), 0) << path;
  return {st.st_size, st.st_mtim.tv_sec * 1'000'000'000LL + st.st_mtim.tv_nsec,
          st.st_ctim.tv_sec * 1'000'000'000LL + st.st_ctim.tv_nsec, st.st_ino, st.st_mode & 07777};
}

// The permissions of PID's mappings of PATH ("rw-p", ...), one per mapping.
std::vector<std::string> MappingPerms(pid_t pid, const std::string& path) {
  std::vector<std::string> perms;
  std::ifstream maps("/proc/" + std::to_string(pid) + "/maps");
  std::string line;
  while (std::getline(maps, line)) {
    if (line.size() > path.size() && line.compare(line.size() - path.size(), path.size(), path) == 0) {
      std::stringstream fields(line);
      std::string range, p;
      fields >> range >> p;
      perms.push_back(p);
    }
  }
  return perms;
}

class SnapshotCloneTest : public FerrydFixture {
 protected:
  json Show(const std::string& vm) { return FerryJson({"vm", "show", vm}); }

  uint16_t HostPort(const std::string& vm) {
    json j = Show(vm);
    const json& fwds = j["spec"]["network"]["forwards"];
    EXPECT_EQ(fwds.size(), 1u) << j.dump();
    if (fwds.empty()) return 0;
    uint16_t port = fwds[0].value("host_port", 0);
    EXPECT_NE(port, 0) << "no host port was picked for " << vm;
    return port;
  }

  // `ferry clone SNAP --name N... --forward 0:6379`; fails the test unless every clone is made.
  std::vector<std::string> Clone(const std::string& snapshot, const std::vector<std::string>& names) {
    std::vector<std::string> args = {"clone", snapshot, "--forward", "0:6379", "--json"};
    for (const auto& n : names) {
      args.push_back("--name");
      args.push_back(n);
    }
    CommandResult r = Ferry(args);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    json clones = json::parse(r.out, nullptr, false);
    EXPECT_TRUE(clones.is_array()) << r.out;
    std::vector<std::string> made;
    if (clones.is_array()) {
      for (const auto& c : clones) made.push_back(c.value("name", ""));
    }
    EXPECT_EQ(made, names) << r.out;
    return made;
  }

  json Snapshot(const std::string& vm, const std::string& name) {
    return FerryJson({"snapshot", "create", vm, "--name", name});
  }

  std::string Eval(uint16_t port, const char* script, const std::vector<std::string>& args = {}) {
    std::vector<std::string> argv = {"eval", script, "0"};
    argv.insert(argv.end(), args.begin(), args.end());
    CommandResult r = Redis(port, argv);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return r.out;
  }

  std::string Digest(uint16_t port) { return Eval(port, kDigest); }
};

TEST_F(SnapshotCloneTest, ClonesOfOneSnapshotAreEachTheirOwnMachine) {
  StartFerryd();
  CreateRedisVm("web-1");
  std::vector<GuestIdentity> machines;
  auto identity_of = [&](const std::string& vm) { return ReadGuestIdentity(socket_, vm); };
  machines.push_back(identity_of("web-1"));

  Snapshot("web-1", "warm");
  CommandResult r = Ferry({"clone", "warm", "--count", "3", "--forward", "0:6379", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  json clones = json::parse(r.out, nullptr, false);
  ASSERT_TRUE(clones.is_array()) << r.out;
  ASSERT_EQ(clones.size(), 3u) << r.out;
  for (int i = 1; i <= 3; ++i) {
    const std::string name = "web-1-c" + std::to_string(i);
    EXPECT_EQ(clones[i - 1].value("name", ""), name) << "default names are SOURCE-cN";
    machines.push_back(identity_of(name));
    EXPECT_EQ(machines.back().hostname, name) << "a clone is named after its VM";
    // The image has IPv6, and the reset derives the address anew: a clone without one lost it.
    EXPECT_FALSE(machines.back().link_locals.empty()) << name;
  }

  ExpectPairwiseDistinct(machines);
  // And each clone answers on its own forward.
  for (int i = 1; i <= 3; ++i) {
    EXPECT_EQ(Redis(HostPort("web-1-c" + std::to_string(i)), {"ping"}).out, "PONG");
  }
}

TEST_F(SnapshotCloneTest, EveryCloneServesTheParentsDataAndKeepsItsWritesToItself) {
  StartFerryd();
  const uint16_t parent = CreateRedisVm("web-1");
  ASSERT_EQ(Eval(parent, kPopulate, {"5000"}), "5000");
  const std::string data = Digest(parent);
  ASSERT_EQ(data.size(), 40u) << data;

  Snapshot("web-1", "warm");
  // The parent goes on after the snapshot; its later writes are not in the snapshot.
  ASSERT_EQ(Redis(parent, {"set", "after-snapshot", "parent"}).out, "OK");

  Clone("warm", {"a", "b"});
  const uint16_t a = HostPort("a");
  const uint16_t b = HostPort("b");
  for (uint16_t port : {a, b}) {
    EXPECT_EQ(Redis(port, {"dbsize"}).out, "5000");
    EXPECT_EQ(Digest(port), data) << "a clone does not hold the parent's data as snapshotted";
    EXPECT_EQ(Redis(port, {"exists", "after-snapshot"}).out, "0");
  }

  // Writes in clone a: a new key, an overwrite and a delete.
  ASSERT_EQ(Redis(a, {"set", "only-in-a", "1"}).out, "OK");
  ASSERT_EQ(Redis(a, {"set", "key:1", "changed-in-a"}).out, "OK");
  ASSERT_EQ(Redis(a, {"del", "key:2"}).out, "1");
  EXPECT_EQ(Redis(a, {"get", "only-in-a"}).out, "1");
  EXPECT_NE(Digest(a), data);

  // Nobody else sees them: not its sibling, not the parent, not a clone made afterwards.
  Clone("warm", {"c"});
  const uint16_t c = HostPort("c");
  for (const auto& [name, port] : std::map<std::string, uint16_t>{{"b", b}, {"parent", parent}, {"c", c}}) {
    SCOPED_TRACE(name);
    EXPECT_EQ(Redis(port, {"exists", "only-in-a"}).out, "0");
    EXPECT_NE(Redis(port, {"get", "key:1"}).out, "changed-in-a");
    EXPECT_EQ(Redis(port, {"exists", "key:2"}).out, "1");
  }
  EXPECT_EQ(Digest(b), data);
  EXPECT_EQ(Digest(c), data);
  EXPECT_EQ(Redis(c, {"dbsize"}).out, "5000");
  EXPECT_EQ(Redis(parent, {"get", "after-snapshot"}).out, "parent");
}

TEST_F(SnapshotCloneTest, SnapshotUnderAWritingWorkloadRestoresAConsistentState) {
  StartFerryd();
  const uint16_t parent = CreateRedisVm("web-1");
  // The writer: one connection, each step an atomic INCR of the counter plus SET key:N.
  Background writer({"redis-cli", "-p", std::to_string(parent), "-r", "-1", "eval", kWriteStep, "0"});
  auto counter = [&] {
    std::string v = Redis(parent, {"get", "counter"}).out;
    return v.empty() ? 0L : std::stol(v);
  };
  const auto deadline = Clock::now() + std::chrono::seconds(60);
  while (counter() < 300 && Clock::now() < deadline && writer.Running()) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  const long before = counter();
  ASSERT_GE(before, 300) << "the writer did not get going";

  json snap = Snapshot("web-1", "busy");
  EXPECT_GT(snap.value("pause_ms", 0), 0);
  // Timed by QEMU's STOP and RESUME events, and pause_ms is that rounded up.
  const int64_t pause_us = snap.value("pause_us", int64_t{0});
  EXPECT_GT(pause_us, 0) << snap.dump();
  EXPECT_EQ(snap.value("pause_ms", int64_t{0}), (pause_us + 999) / 1000) << snap.dump();
  const long after = counter();
  ASSERT_TRUE(writer.Running());
  writer.Stop();
  // The writer ran on across the snapshot, so it was taken mid-stream.
  ASSERT_GT(after, before) << "the writer stalled: the snapshot was not taken under load";

  Clone("busy", {"x", "y"});
  std::vector<std::vector<std::string>> states;
  for (const std::string vm : {"x", "y"}) {
    SCOPED_TRACE(vm);
    std::vector<std::string> s = Lines(Eval(HostPort(vm), kCheckPrefix));
    ASSERT_EQ(s.size(), 3u);
    const long c = std::stol(s[0]);
    // A consistent prefix of the writer's steps: counter N, exactly key:1..N, nothing torn.
    EXPECT_GE(c, before);
    EXPECT_LE(c, counter());
    EXPECT_EQ(std::stol(s[1]), c + 1) << "DBSIZE is not the counter plus the counter key";
    EXPECT_EQ(s[2], "0") << "keys below the counter are missing or wrong";
    s.push_back(Digest(HostPort(vm)));
    states.push_back(s);
  }
  // Both clones restored the same instant.
  EXPECT_EQ(states[0], states[1]);
}

TEST_F(SnapshotCloneTest, SnapshotWhoseRamImageCannotBeWrittenFailsAndTheVmRunsOnWithItsData) {
  // The RAM directory fills up mid-copy (fault point: every write of the image fails as with
  // ENOSPC): one clear error, the guest, which never stopped, keeps its data and takes writes,
  // and no snapshot nor any part of its copy is left.
  StartFerryd({}, "snapshot.ram_image.write:fail");
  const uint16_t port = CreateRedisVm("web-1");
  ASSERT_EQ(Eval(port, kPopulate, {"2000"}), "2000");
  const std::string digest = Digest(port);
  CommandResult snap = Ferry({"snapshot", "create", "web-1", "--name", "s"});
  EXPECT_EQ(snap.exit_code, 1);
  EXPECT_THAT(snap.err, HasSubstr("snapshot web-1@s"));
  EXPECT_THAT(snap.err, HasSubstr("no space left for the RAM image"));
  EXPECT_EQ(ErrorLines(snap), 1) << snap.err;
  EXPECT_EQ(Ferry({"snapshot", "show", "s"}).exit_code, 1);
  EXPECT_EQ(FerryJson({"snapshot", "list"}), json::array());
  EXPECT_TRUE(std::filesystem::is_empty(ram_dir_ + "/snapshots")) << "a part of the copy is left";
  EXPECT_EQ(Show("web-1")["state"], "running");
  EXPECT_EQ(Digest(port), digest);
  EXPECT_EQ(Redis(port, {"set", "after", "yes"}).out, "OK");
}

TEST_F(SnapshotCloneTest, ClonesNeverWriteTheSnapshotTheyMap) {
  StartFerryd();
  const uint16_t parent = CreateRedisVm("web-1");
  ASSERT_EQ(Eval(parent, kPopulate, {"5000"}), "5000");
  const std::string data = Digest(parent);
  Snapshot("web-1", "warm");
  json snap = FerryJson({"snapshot", "show", "warm"});
  const std::string ram = snap["ram_path"];
  const std::string dir = snap["dir"];
  ASSERT_EQ(std::filesystem::read_symlink(dir + "/ram"), ram);
  const FileStamp stamp = Stamp(ram);
  // ferryd never writes it again (u=r); the clones' QEMUs, one uid each, open it through their
  // shared group, read-write because QEMU 7.2 opens a private mapping's file so (g=rw).
  EXPECT_EQ(stamp.mode, 0460);
  const std::string sha = Sha256(ram);
  const std::string manifest_sha = Sha256(dir + "/manifest.json");
  const std::string device_sha = Sha256(dir + "/device.state");

  Clone("warm", {"a", "b"});
  for (const std::string vm : {"a", "b"}) {
    SCOPED_TRACE(vm);
    json show = Show(vm);
    EXPECT_EQ(show["paths"]["ram_file"], ram);
    // QEMU maps the snapshot's RAM privately: the guest's writes stay in its own pages.
    std::vector<std::string> perms = MappingPerms(show["pid"].get<pid_t>(), ram);
    ASSERT_FALSE(perms.empty()) << "QEMU does not map the snapshot's RAM file";
    for (const auto& p : perms) EXPECT_EQ(p.back(), 'p') << "a shared mapping: " << p;
    // Write all over guest memory: new data, overwritten data, then everything gone.
    const uint16_t port = HostPort(vm);
    ASSERT_EQ(Eval(port, kPopulate, {"30000"}), "30000");
    ASSERT_EQ(Redis(port, {"flushall"}).out, "OK");
    ASSERT_EQ(Redis(port, {"set", "k", vm}).out, "OK");
  }
  // One clone stops, the other is deleted; neither takes the snapshot's RAM with it.
  CommandResult stop = Ferry({"vm", "stop", "a"});
  ASSERT_EQ(stop.exit_code, 0) << stop.err;
  ASSERT_EQ(Ferry({"vm", "delete", "b", "--force"}).exit_code, 0);

  EXPECT_EQ(Stamp(ram), stamp) << "the snapshot's RAM file was changed";
  EXPECT_EQ(Sha256(ram), sha) << "the snapshot's RAM file was written";
  EXPECT_EQ(Sha256(dir + "/manifest.json"), manifest_sha);
  EXPECT_EQ(Sha256(dir + "/device.state"), device_sha);

  // The snapshot still verifies: a later clone starts and holds the data as snapshotted.
  Clone("warm", {"c"});
  EXPECT_EQ(Digest(HostPort("c")), data);
  EXPECT_EQ(Redis(parent, {"dbsize"}).out, "5000");
}

TEST_F(SnapshotCloneTest, SnapshotThatClonesMapCannotBeDeletedUntilTheyAreGone) {
  StartFerryd();
  const uint16_t parent = CreateRedisVm("web-1");
  ASSERT_EQ(Redis(parent, {"set", "k", "v"}).out, "OK");
  Snapshot("web-1", "warm");
  json snap = FerryJson({"snapshot", "show", "warm"});
  const std::string ram = snap["ram_path"];
  const std::string dir = snap["dir"];
  Clone("warm", {"a", "b"});
  EXPECT_EQ(FerryJson({"snapshot", "show", "warm"})["clones"], json({"a", "b"}));

  CommandResult refused = Ferry({"snapshot", "delete", "warm"});
  EXPECT_EQ(refused.exit_code, 1) << refused.out;
  EXPECT_THAT(ErrorText(refused), StartsWith("ferry: "));
  EXPECT_THAT(refused.err, HasSubstr("snapshot warm"));
  EXPECT_THAT(refused.err, HasSubstr("(a, b)"));
  EXPECT_EQ(ErrorLines(refused), 1) << refused.err;
  // Nothing changed: the snapshot is whole and the clones serve.
  EXPECT_TRUE(std::filesystem::exists(ram));
  EXPECT_TRUE(std::filesystem::exists(dir + "/manifest.json"));
  EXPECT_EQ(FerryJson({"snapshot", "list"}).size(), 1u);
  EXPECT_EQ(Redis(HostPort("a"), {"get", "k"}).out, "v");
  EXPECT_EQ(Redis(HostPort("b"), {"get", "k"}).out, "v");

  // One clone gone: still refused, now naming only the other.
  ASSERT_EQ(Ferry({"vm", "delete", "a", "--force"}).exit_code, 0);
  refused = Ferry({"snapshot", "delete", "warm"});
  EXPECT_EQ(refused.exit_code, 1);
  EXPECT_THAT(refused.err, HasSubstr("(b)"));
  EXPECT_THAT(refused.err, Not(HasSubstr("a,")));

  ASSERT_EQ(Ferry({"vm", "delete", "b", "--force"}).exit_code, 0);
  CommandResult deleted = Ferry({"snapshot", "delete", "warm"});
  EXPECT_EQ(deleted.exit_code, 0) << deleted.err;
  EXPECT_FALSE(std::filesystem::exists(ram));
  EXPECT_FALSE(std::filesystem::exists(dir));
  EXPECT_TRUE(FerryJson({"snapshot", "list"}).empty());
  CommandResult gone = Ferry({"snapshot", "show", "warm"});
  EXPECT_EQ(gone.exit_code, 1);
  EXPECT_THAT(gone.err, HasSubstr("snapshot warm does not exist"));
  // The parent never noticed.
  EXPECT_EQ(Redis(parent, {"get", "k"}).out, "v");
}

TEST_F(SnapshotCloneTest, CloneShowsItsOriginTimingsAndNewIdentity) {
  StartFerryd();
  CreateRedisVm("web-1");
  const json parent = Show("web-1");
  Snapshot("web-1", "warm");
  const std::string ram = FerryJson({"snapshot", "show", "warm"})["ram_path"];
  Clone("warm", {"web-2"});

  json vm = Show("web-2");
  EXPECT_EQ(vm["state"], "running");
  EXPECT_TRUE(vm["guest_ready"].get<bool>());
  EXPECT_FALSE(vm["ram_owned"].get<bool>());
  EXPECT_EQ(vm["paths"]["ram_file"], ram);
  EXPECT_EQ(vm["origin"]["snapshot"], "warm");
  EXPECT_EQ(vm["origin"]["source_vm"], "web-1");
  EXPECT_NE(vm["id"], parent["id"]);
  EXPECT_NE(vm["mac"], parent["mac"]);

  const json& t = vm["timings"];
  for (const char* key : {"device_state_ms", "running_ms", "identity_ms", "restore_total_ms"}) {
    EXPECT_TRUE(t.contains(key) && t[key].is_number()) << key << " missing: " << t.dump();
  }
  EXPECT_GT(t.value("restore_total_ms", 0), 0);
  EXPECT_GE(t.value("restore_total_ms", 0), t.value("identity_ms", 0));
  for (const char* step : {"rng", "clock", "machine_id", "hostname", "mac", "ssh_keys", "dhcp"}) {
    EXPECT_TRUE(t["identity_steps_ms"].contains(step)) << step << ": " << t.dump();
  }

  const json& g = vm["guest"];
  EXPECT_EQ(g["hostname"], "web-2");
  EXPECT_NE(g["machine_id"], parent["guest"]["machine_id"]);
  EXPECT_NE(g["ssh_host_keys"], parent["guest"]["ssh_host_keys"]);
  // The clock was set from the host on restore.
  const int64_t now_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                             std::chrono::system_clock::now().time_since_epoch())
                             .count();
  EXPECT_LT(std::llabs(now_ns - g.value("clock_unix_ns", int64_t{0})), 30'000'000'000LL)
      << g.dump();
  // The human-readable line says what was restored.
  CommandResult line = Ferry({"clone", "warm", "--name", "web-3"});
  EXPECT_EQ(line.exit_code, 0) << line.err;
  EXPECT_THAT(line.out, HasSubstr("vm web-3 running"));
  EXPECT_THAT(line.out, HasSubstr("restored in"));

  // Stopping a clone leaves the snapshot's RAM file in place, and the snapshot usable.
  const pid_t pid = vm["pid"];
  CommandResult stop = Ferry({"vm", "stop", "web-2"});
  ASSERT_EQ(stop.exit_code, 0) << stop.err;
  EXPECT_EQ(Show("web-2")["state"], "stopped");
  EXPECT_FALSE(ProcessAlive(pid));
  EXPECT_TRUE(std::filesystem::exists(ram)) << "stopping a clone removed its snapshot's RAM";
  Clone("warm", {"web-4"});
  EXPECT_EQ(Redis(HostPort("web-4"), {"ping"}).out, "PONG");
}

}  // namespace
}  // namespace ferry::testing
