// Live migration between two hosts, as an operator and a VM's owner check it: redis under a write
// load moves from h1 to h2 keeping its TCP connection and every acknowledged write; the owner's
// policy is enforced by both hosts before a byte of the VM leaves; whatever fails before the
// destination confirms, the VM runs on exactly one host -- the source -- with its data.
//
// Hosts are network namespaces on one L2 segment (harness/netns_hosts.h); each runs its own
// ferryd with its own fleet certificate; redis-cli runs in the client namespace. Needs root.
#include <arpa/inet.h>
#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "harness/background.h"
#include "harness/ferryd_fixture.h"
#include "harness/fleet.h"
#include "harness/migration_fleet.h"
#include "harness/netns_hosts.h"
#include "harness/test_files.h"

namespace ferry::testing {
namespace {

using nlohmann::json;
using ::testing::HasSubstr;
using Clock = std::chrono::steady_clock;

// A TCP relay inside a network namespace that, once `flip_at` bytes went from the client to the
// server, flips one bit of the stream (a wire that corrupts data in flight) or, with `cut`,
// drops both connections there (a wire that breaks).
class FlippingRelay {
 public:
  FlippingRelay(const std::string& ns, const std::string& listen_ip, uint16_t listen_port,
                const std::string& target_ip, uint16_t target_port, size_t flip_at,
                bool cut = false)
      : cut_(cut),
        thread_([=, this] { Run(ns, listen_ip, listen_port, target_ip, target_port, flip_at); }) {}
  ~FlippingRelay() {
    stop_ = true;
    thread_.join();
  }
  bool flipped() const { return flipped_; }

 private:
  static int Tcp(const std::string& ip, uint16_t port, bool listen) {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    ::inet_pton(AF_INET, ip.c_str(), &a.sin_addr);
    int one = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    int rc = listen ? ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a)
                    : ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
    if (rc != 0 || (listen && ::listen(fd, 4) != 0)) {
      ::close(fd);
      return -1;
    }
    return fd;
  }
  void Run(const std::string& ns, const std::string& listen_ip, uint16_t listen_port,
           const std::string& target_ip, uint16_t target_port, size_t flip_at) {
    // This thread only moves into the namespace; the test's other threads stay where they are.
    int nsfd = ::open(("/var/run/netns/" + ns).c_str(), O_RDONLY | O_CLOEXEC);
    if (nsfd < 0 || ::setns(nsfd, CLONE_NEWNET) != 0) return;
    ::close(nsfd);
    int lfd = Tcp(listen_ip, listen_port, true);
    if (lfd < 0) return;
    while (!stop_) {
      pollfd p{lfd, POLLIN, 0};
      if (::poll(&p, 1, 100) <= 0) continue;
      int client = ::accept4(lfd, nullptr, nullptr, SOCK_CLOEXEC);
      int server = Tcp(target_ip, target_port, false);
      size_t forwarded = 0;
      char buf[65536];
      while (!stop_ && client >= 0 && server >= 0) {
        pollfd fds[2] = {{client, POLLIN, 0}, {server, POLLIN, 0}};
        if (::poll(fds, 2, 100) <= 0) continue;
        if (fds[0].revents) {
          ssize_t n = ::read(client, buf, sizeof buf);
          if (n <= 0) break;
          if (!flipped_ && forwarded + static_cast<size_t>(n) > flip_at) {
            flipped_ = true;
            if (cut_) break;  // both connections close below, mid-stream
            buf[flip_at - forwarded] ^= 0x10;
          }
          forwarded += static_cast<size_t>(n);
          if (::send(server, buf, static_cast<size_t>(n), MSG_NOSIGNAL) != n) break;
        }
        if (fds[1].revents) {
          ssize_t n = ::read(server, buf, sizeof buf);
          // A peer that hung up must end this relay, not the test process (no SIGPIPE).
          if (n <= 0 || ::send(client, buf, static_cast<size_t>(n), MSG_NOSIGNAL) != n) break;
        }
      }
      if (client >= 0) ::close(client);
      if (server >= 0) ::close(server);
    }
    ::close(lfd);
  }

  const bool cut_;
  std::atomic<bool> stop_{false};
  std::atomic<bool> flipped_{false};  // the fault happened (flip or cut)
  std::thread thread_;
};

class MigrationTest : public MigrationFleetFixture {
 protected:
  // A policy for VM web signed with `key` (alice.key, mallory.key); returns its file.
  std::string SignPolicy(const std::string& key, const std::vector<std::string>& rules) {
    return fleet_->SignPolicy(key, "web", rules);
  }
  void CreateWeb(const std::vector<std::string>& extra = {}) {
    std::vector<std::string> args = {"vm",          "create", "web",
                                     "--net",       "tap",    "--bridge",
                                     "ferrybr0",    "--ip",   std::string(kVmAddress) + "/24",
                                     "--wait-ready"};
    args.insert(args.end(), extra.begin(), extra.end());
    CommandResult r = Ferryd(1).Ferry(args);
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }
  // Polls h1's `vm show` until the VM is in `state` (at most 120 s); returns the last state.
  std::string WaitForState1(const std::string& vm, const std::string& state) {
    std::string last;
    const auto until = Clock::now() + std::chrono::seconds(120);
    while (Clock::now() < until) {
      CommandResult r = Ferryd(1).Ferry({"vm", "show", vm, "--json"});
      json shown = json::parse(r.out, nullptr, false);
      last = shown.is_object() ? shown.value("state", "") : "";
      if (last == state) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
    return last;
  }
  std::string Get(const std::string& key) { return RedisFromClient(kVmAddress, {"get", key}).out; }
  // The migration must have failed, and the VM must run on h1 only, with its data.
  void ExpectStillOnSourceOnly(const CommandResult& migrate, const std::string& key,
                               const std::string& value) {
    EXPECT_NE(migrate.exit_code, 0) << migrate.out;
    EXPECT_EQ(Vms(1), std::vector<std::string>{"web"});
    EXPECT_EQ(Ferryd(1).FerryJson({"vm", "show", "web"})["state"], "running");
    EXPECT_EQ(Get(key), value);
    ExpectNothingOn(2);
  }
};

TEST_F(MigrationTest, RedisUnderAWriteLoadMovesWithItsConnectionAndEveryAcknowledgedWrite) {
  CreateWeb({"--policy", SignPolicy("alice.key", {"--allow-label", "zone=b"})});
  // One long-lived connection: redis-cli repeats INCR on it and prints every acknowledged value.
  Background writer(NetnsHosts::InNamespace(net_.Client(), {"redis-cli", "-h", kVmAddress, "-r",
                                                            "-1", "-i", "0.01", "incr", "counter"}),
                    fleet_->Path("writer.out"), SIGINT);
  const auto until = Clock::now() + std::chrono::seconds(30);
  while (Clock::now() < until && writer.Lines() < 20) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  CommandResult moved = Ferryd(1).Ferry({"migrate", "web", "--to", "h2", "--json"});
  ASSERT_EQ(moved.exit_code, 0) << moved.err;
  json result = json::parse(moved.out, nullptr, false);
  EXPECT_GT(result.value("ram_transferred_bytes", 0), 0) << moved.out;
  EXPECT_GE(result.value("wire_bytes_sent", uint64_t{0}),
            result.value("ram_transferred_bytes", uint64_t{0}));
  // Writes go on, on the same connection, against the guest now on h2.
  const size_t lines_at_move = writer.Lines();
  const auto more = Clock::now() + std::chrono::seconds(30);
  while (Clock::now() < more && writer.Lines() < lines_at_move + 20) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  writer.Stop();

  EXPECT_TRUE(Vms(1).empty()) << "the source copy is gone once h2 confirmed";
  EXPECT_EQ(Vms(2), std::vector<std::string>{"web"});
  EXPECT_EQ(WaitForQemuIn(1, std::chrono::seconds(0)), -1);
  // Every line the client printed is the next integer: no error, no reconnect, no lost write.
  std::istringstream lines(writer.Output());
  std::string line;
  long expected = 1, last = 0;
  while (std::getline(lines, line)) {
    if (line.empty()) continue;
    ASSERT_EQ(line, std::to_string(expected)) << "the write stream broke at line " << expected;
    last = expected++;
  }
  ASSERT_GT(last, static_cast<long>(lines_at_move));
  const long stored = std::stol(Get("counter"));
  EXPECT_GE(stored, last) << "an acknowledged write was lost";
  EXPECT_LE(stored, last + 1);
  json vm = Ferryd(2).FerryJson({"vm", "show", "web"});
  EXPECT_EQ(vm["state"], "running");
  EXPECT_EQ(vm["origin"]["migrated_from"], "h1");
  EXPECT_EQ(vm["spec"]["network"]["ip"], std::string(kVmAddress) + "/24");
}

TEST_F(MigrationTest, APolicyThatForbidsTheDestinationIsRefusedBeforeAnythingIsSent) {
  CreateWeb(
      {"--policy", SignPolicy("alice.key", {"--allow-host", "h3", "--allow-label", "zone=c"})});
  ASSERT_EQ(RedisFromClient(kVmAddress, {"set", "k", "v"}).out, "OK");
  CommandResult r = Ferryd(1).Ferry({"migrate", "web", "--to", "h2"});
  EXPECT_THAT(r.err, HasSubstr("host h2 (zone=b) is not an allowed destination"));
  ExpectStillOnSourceOnly(r, "k", "v");
  // Nothing reached h2: it never saw an incoming migration.
  json incoming = Ferryd(2).FerryJson({"migration", "list"});
  EXPECT_TRUE(incoming.empty()) << incoming.dump();

  CommandResult frozen = Ferryd(1).Ferry({"vm", "delete", "web", "--force"});
  ASSERT_EQ(frozen.exit_code, 0) << frozen.err;
  CreateWeb({"--policy", SignPolicy("alice.key", {"--no-migrate"})});
  r = Ferryd(1).Ferry({"migrate", "web", "--to", "h2"});
  EXPECT_THAT(r.err, HasSubstr("may not be migrated"));
  EXPECT_TRUE(Ferryd(2).FerryJson({"migration", "list"}).empty());
}

TEST_F(MigrationTest, TamperedOrForeignPoliciesAreRefused) {
  const std::string good = SignPolicy("alice.key", {"--allow-label", "zone=b"});
  // Edited after signing: allow any label.
  std::string text = ReadFile(good);
  json doc = json::parse(text);
  doc["policy"]["allow_labels"] = {{"zone", "c"}};
  std::ofstream(fleet_->Path("edited.policy")) << doc.dump();
  CommandResult edited =
      Ferryd(1).Ferry({"vm", "create", "web", "--policy", fleet_->Path("edited.policy")});
  EXPECT_NE(edited.exit_code, 0);
  EXPECT_THAT(edited.err, HasSubstr("signature"));
  // Alice's owner key, Mallory's signature.
  const std::string mallorys = SignPolicy("mallory.key", {"--allow-label", "zone=b"});
  json forged = json::parse(ReadFile(mallorys));
  forged["owner_key"] = json::parse(text)["owner_key"];
  std::ofstream(fleet_->Path("forged.policy")) << forged.dump();
  CommandResult foreign =
      Ferryd(1).Ferry({"vm", "create", "web", "--policy", fleet_->Path("forged.policy")});
  EXPECT_NE(foreign.exit_code, 0);
  EXPECT_THAT(foreign.err, HasSubstr("signature"));
  EXPECT_TRUE(Vms(1).empty());
}

TEST_F(MigrationTest, DestinationQemuKilledMidMigrationLeavesTheVmRunningOnTheSource) {
  CreateWeb();
  ASSERT_EQ(RedisFromClient(kVmAddress, {"set", "k", "before"}).out, "OK");
  std::thread killer([&] {
    pid_t qemu = WaitForQemuIn(2, std::chrono::seconds(60));
    if (qemu > 0) ::kill(qemu, SIGKILL);
  });
  CommandResult r = Ferryd(1).Ferry({"migrate", "web", "--to", "h2"});
  killer.join();
  ExpectStillOnSourceOnly(r, "k", "before");
  ASSERT_EQ(RedisFromClient(kVmAddress, {"set", "k", "after"}).out, "OK");
  EXPECT_EQ(Get("k"), "after");
}

TEST_F(MigrationTest, DestinationFerrydKilledMidMigrationLeavesTheVmRunningOnTheSource) {
  CreateWeb();
  ASSERT_EQ(RedisFromClient(kVmAddress, {"set", "k", "before"}).out, "OK");
  std::thread killer([&] {
    if (WaitForQemuIn(2, std::chrono::seconds(60)) > 0) Ferryd(2).Kill();
  });
  CommandResult r = Ferryd(1).Ferry({"migrate", "web", "--to", "h2"});
  killer.join();
  EXPECT_NE(r.exit_code, 0);
  // The destination comes back and cleans up what it was receiving.
  StartHost(2);
  ExpectStillOnSourceOnly(r, "k", "before");
}

TEST_F(MigrationTest, SourceFerrydKilledWhileSendingRollsBackOnRestart) {
  CreateWeb();
  ASSERT_EQ(RedisFromClient(kVmAddress, {"set", "k", "before"}).out, "OK");
  Ferryd(1).Stop();
  StartHost(1, "migrate.source.sending");
  CommandResult r = Ferryd(1).Ferry({"migrate", "web", "--to", "h2"});
  ASSERT_TRUE(Ferryd(1).WaitExit(std::chrono::seconds(30))) << "h1 did not reach its fault point";
  StartHost(1);
  ExpectStillOnSourceOnly(r, "k", "before");
  // The restarted ferryd found the migration in its journal and says what became of it.
  json migrations = Ferryd(1).FerryJson({"migration", "list"});
  ASSERT_EQ(migrations.size(), 1u) << migrations.dump();
  EXPECT_EQ(migrations[0]["state"], "failed");
  EXPECT_THAT(migrations[0].dump(), HasSubstr("ferryd restarted while sending"));
}

TEST_F(MigrationTest, DestinationFerrydKilledBeforeResumingLeavesTheVmOnTheSource) {
  CreateWeb();
  ASSERT_EQ(RedisFromClient(kVmAddress, {"set", "k", "before"}).out, "OK");
  Ferryd(2).Stop();
  StartHost(2, "migrate.destination.before_resume");
  std::atomic<bool> restarted{false};
  std::thread restarter = RestartWhenDead(2, restarted);
  // h2 had the whole guest and the source's "finish", and died before resuming it: h1 asks the
  // restarted h2, which dropped the copy it never ran, and resumes its own.
  CommandResult r = Ferryd(1).Ferry({"migrate", "web", "--to", "h2"});
  restarter.join();
  ASSERT_TRUE(restarted) << "h2 did not reach its fault point";
  // h1 settles it when it asks h2: at once if h2 is back by then, or, on a loaded machine where
  // h2's restart takes longer than the question, a little later, as ferryd keeps asking.
  if (r.err.find("keeps asking h2") == std::string::npos) {
    EXPECT_THAT(r.err, HasSubstr("did not resume the guest"));
  }
  const auto until = Clock::now() + std::chrono::seconds(90);
  while (Clock::now() < until &&
         Ferryd(1).FerryJson({"vm", "show", "web"}).value("state", "") != "running") {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  ExpectStillOnSourceOnly(r, "k", "before");
}

TEST_F(MigrationTest, TheSourceCopyIsHeldUntilTheMigrationIsSettled) {
  CreateWeb();
  ASSERT_EQ(RedisFromClient(kVmAddress, {"set", "k", "before"}).out, "OK");
  Ferryd(2).Stop();
  StartHost(2, "migrate.destination.before_resume");
  // h2 dies after "finish", before resuming: h1 cannot know whether the guest runs there, and
  // keeps asking h2 (down until restarted below) with its own copy paused.
  CommandResult r;
  std::thread migrate([&] { r = Ferryd(1).Ferry({"migrate", "web", "--to", "h2"}); });
  ASSERT_TRUE(Ferryd(2).WaitExit(std::chrono::seconds(240))) << "h2 did not reach its fault point";
  bool settling = false;
  const auto until = Clock::now() + std::chrono::seconds(120);
  while (!settling && Clock::now() < until) {
    for (const json& m : Ferryd(1).FerryJson({"migration", "list"})) {
      const std::string phase = m.value("phase", "");
      settling = settling || phase.find("asking h2") != std::string::npos ||
                 m.value("state", "") != "running";
    }
    if (!settling) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ASSERT_TRUE(settling) << "h1 never started to settle with h2";
  EXPECT_EQ(Ferryd(1).FerryJson({"vm", "show", "web"})["state"], "paused");

  // While unsettled, the paused copy is the migration's: no resume, snapshot or second migrate.
  CommandResult resume = Ferryd(1).Ferry({"vm", "resume", "web"});
  EXPECT_NE(resume.exit_code, 0);
  EXPECT_THAT(resume.err, HasSubstr("vm web is busy with operation"));
  EXPECT_THAT(resume.err, HasSubstr("cannot be resumed now"));
  CommandResult snapshot = Ferryd(1).Ferry({"snapshot", "create", "web", "--name", "stale"});
  EXPECT_NE(snapshot.exit_code, 0);
  EXPECT_THAT(snapshot.err, HasSubstr("vm web is busy with operation"));
  CommandResult again = Ferryd(1).Ferry({"migrate", "web", "--to", "h2"});
  EXPECT_NE(again.exit_code, 0);
  EXPECT_THAT(again.err, HasSubstr("vm web is busy with operation"));

  // h2 comes back without the copy it never ran: h1 resumes its own, and it is free again.
  StartHost(2);
  migrate.join();
  EXPECT_NE(r.exit_code, 0);
  EXPECT_EQ(WaitForState1("web", "running"), "running");
  EXPECT_EQ(Get("k"), "before");
  EXPECT_TRUE(Vms(2).empty());
  CommandResult pause = Ferryd(1).Ferry({"vm", "pause", "web"});
  EXPECT_EQ(pause.exit_code, 0) << pause.err;
}

TEST_F(MigrationTest, DestinationFerrydKilledAfterResumingKeepsTheVmOnTheDestinationOnly) {
  CreateWeb();
  ASSERT_EQ(RedisFromClient(kVmAddress, {"set", "k", "before"}).out, "OK");
  Ferryd(2).Stop();
  StartHost(2, "migrate.destination.after_resume");
  std::atomic<bool> restarted{false};
  std::thread restarter = RestartWhenDead(2, restarted);
  // h2 resumed the guest and died before telling h1: the guest runs on h2 and only there.
  CommandResult r = Ferryd(1).Ferry({"migrate", "web", "--to", "h2"});
  restarter.join();
  ASSERT_TRUE(restarted) << "h2 did not reach its fault point";
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(Vms(1).empty()) << "the source copy must be gone";
  ASSERT_EQ(Vms(2), std::vector<std::string>{"web"});
  EXPECT_EQ(Ferryd(2).FerryJson({"vm", "show", "web"})["state"], "running");
  EXPECT_EQ(Get("k"), "before");
  EXPECT_EQ(RedisFromClient(kVmAddress, {"set", "k", "after"}).out, "OK");
}

TEST_F(MigrationTest, SourceFerrydKilledAfterFinishSettlesWithTheDestinationOnRestart) {
  CreateWeb();
  ASSERT_EQ(RedisFromClient(kVmAddress, {"set", "k", "before"}).out, "OK");
  Ferryd(1).Stop();
  StartHost(1, "migrate.source.after_finish");
  CommandResult r = Ferryd(1).Ferry({"migrate", "web", "--to", "h2"});
  EXPECT_NE(r.exit_code, 0) << "the CLI lost its ferryd";
  ASSERT_TRUE(Ferryd(1).WaitExit(std::chrono::seconds(30))) << "h1 did not reach its fault point";
  // h2 got "finish" and resumed the guest; h1 comes back with its copy paused and must learn
  // from h2 that the guest runs there, then drop its own.
  StartHost(1);
  EXPECT_TRUE(WaitForVms(1, {}, std::chrono::seconds(60))) << "h1 kept its copy";
  ASSERT_EQ(Vms(2), std::vector<std::string>{"web"});
  EXPECT_EQ(Ferryd(2).FerryJson({"vm", "show", "web"})["state"], "running");
  EXPECT_EQ(Get("k"), "before");
  json migrations = Ferryd(1).FerryJson({"migration", "list"});
  ASSERT_EQ(migrations.size(), 1u) << migrations.dump();
  EXPECT_EQ(migrations[0]["state"], "succeeded") << migrations.dump();
}

TEST_F(MigrationTest, AJournalWriteThatFailsAbortsBeforeFinishAndTheVmStaysOnTheSource) {
  // h1's registry refuses the journal entry of the finish phase: h1 must not send "finish".
  Ferryd(1).Stop();
  StartHost(1, "migrate.source.journal_finish:fail");
  CreateWeb();
  ASSERT_EQ(RedisFromClient(kVmAddress, {"set", "k", "before"}).out, "OK");
  CommandResult r = Ferryd(1).Ferry({"migrate", "web", "--to", "h2"});
  EXPECT_THAT(r.err, HasSubstr("cannot journal the finish phase")) << r.err;
  ExpectStillOnSourceOnly(r, "k", "before");
}

TEST_F(MigrationTest, CancelWhileSendingRollsBackAndLeavesTheDestinationClean) {
  // h1 sends slowly (100 ms per MiB, a fault point's "slow"), so the cancel lands mid-Perform.
  Ferryd(1).Stop();
  StartHost(1, "migrate.source.pumping:slow");
  CreateWeb();
  ASSERT_EQ(RedisFromClient(kVmAddress, {"set", "k", "before"}).out, "OK");
  CommandResult r;
  std::thread migrate([&] { r = Ferryd(1).Ferry({"migrate", "web", "--to", "h2"}); });
  std::string id;
  const auto until = Clock::now() + std::chrono::seconds(60);
  while (id.empty() && Clock::now() < until) {
    for (const json& m : Ferryd(1).FerryJson({"migration", "list"})) {
      if (m["state"] == "running" && m["phase"].get<std::string>().rfind("perform", 0) == 0) {
        id = m["id"];
      }
    }
  }
  CommandResult cancel =
      id.empty() ? CommandResult{} : Ferryd(1).Ferry({"migration", "cancel", id});
  migrate.join();
  ASSERT_FALSE(id.empty()) << "the migration was never seen sending";
  EXPECT_EQ(cancel.exit_code, 0) << cancel.err;
  EXPECT_THAT(r.err, HasSubstr("cancelled"));
  ExpectStillOnSourceOnly(r, "k", "before");
}

TEST_F(MigrationTest, ADestinationWithoutRoomRefusesAndTheVmStaysOnTheSource) {
  CreateWeb();
  ASSERT_EQ(RedisFromClient(kVmAddress, {"set", "k", "before"}).out, "OK");
  // h2's RAM directory is a 64 MiB tmpfs: a 256 MiB guest does not fit there.
  Ferryd(2).Stop();
  const std::string ram_dir = Ferryd(2).ram_dir();
  ASSERT_EQ(
      RunCommand({"mount", "-t", "tmpfs", "-o", "size=64m,mode=0700", "tmpfs", ram_dir}).exit_code,
      0);
  struct Unmount {
    NamespacedFerryd& h2;
    std::string dir;
    ~Unmount() {
      h2.Stop();  // first: its files are on the tmpfs
      RunCommand({"umount", dir});
    }
  } unmount{Ferryd(2), ram_dir};
  StartHost(2);
  CommandResult r = Ferryd(1).Ferry({"migrate", "web", "--to", "h2"});
  EXPECT_THAT(r.err, HasSubstr("host h2"));
  EXPECT_THAT(r.err, HasSubstr("can give at most"));
  ExpectStillOnSourceOnly(r, "k", "before");
}

TEST_F(MigrationTest, BitsFlippedOnTheWireFailTheTlsRecordAndTheMigrationRollsBack) {
  CreateWeb();
  ASSERT_EQ(RedisFromClient(kVmAddress, {"set", "k", "before"}).out, "OK");
  // h1 reaches "h2" through a relay on its own address that corrupts the stream 4 MiB in, in
  // the middle of the guest's memory.
  FlippingRelay relay(net_.Host(1), NetnsHosts::HostAddress(1), 7500, NetnsHosts::HostAddress(2),
                      7400, 4u << 20);
  ASSERT_EQ(Ferryd(1).Ferry({"peer", "remove", "h2"}).exit_code, 0);
  ASSERT_EQ(Ferryd(1).Ferry({"peer", "add", "h2", NetnsHosts::HostAddress(1) + ":7500"}).exit_code,
            0);
  CommandResult r = Ferryd(1).Ferry({"migrate", "web", "--to", "h2"});
  EXPECT_TRUE(relay.flipped());
  ExpectStillOnSourceOnly(r, "k", "before");
  // The destination found the damaged record (its MAC failed) and gave up the incoming VM.
  json incoming = Ferryd(2).FerryJson({"migration", "list"});
  ASSERT_EQ(incoming.size(), 1u) << incoming.dump();
  EXPECT_EQ(incoming[0]["state"], "failed");
  EXPECT_THAT(incoming[0].dump(), HasSubstr("bad record mac"));
}

TEST_F(MigrationTest, AChannelCutMidStreamRollsBack) {
  CreateWeb();
  ASSERT_EQ(RedisFromClient(kVmAddress, {"set", "k", "before"}).out, "OK");
  // h1 reaches "h2" through a relay that drops both TCP connections 4 MiB into the guest's
  // memory, as a broken wire would.
  FlippingRelay relay(net_.Host(1), NetnsHosts::HostAddress(1), 7500, NetnsHosts::HostAddress(2),
                      7400, 4u << 20, /*cut=*/true);
  ASSERT_EQ(Ferryd(1).Ferry({"peer", "remove", "h2"}).exit_code, 0);
  ASSERT_EQ(Ferryd(1).Ferry({"peer", "add", "h2", NetnsHosts::HostAddress(1) + ":7500"}).exit_code,
            0);
  CommandResult r = Ferryd(1).Ferry({"migrate", "web", "--to", "h2"});
  EXPECT_TRUE(relay.flipped()) << "the relay never cut the stream";
  ExpectStillOnSourceOnly(r, "k", "before");
}

TEST_F(MigrationTest, PeersWithoutAFleetCertificateAreRefusedAndGetNothing) {
  CreateWeb();
  const std::string target = NetnsHosts::HostAddress(1) + ":" + kPeerPort;
  // The real openssl client, with no certificate.
  // stdin stays open a moment so s_client reads what the server answers after its handshake.
  auto s_client = [&](const std::string& args) {
    return NetnsHosts::RunIn(
        net_.Client(), {"timeout", "10", "bash", "-c",
                        "sleep 2 | openssl s_client -connect " + target + " -tls1_3 " + args});
  };
  CommandResult none = s_client("-CAfile " + fleet_->CaDir() + "/ca.crt");
  EXPECT_THAT(none.out + none.err, HasSubstr("alert certificate required"));
  EXPECT_THAT(none.out, ::testing::Not(HasSubstr("FRYM")));
  // A certificate from another CA, with a host id ferry would accept.
  Fleet other;
  other.AddHost("h2");
  CommandResult foreign =
      s_client("-cert " + other.TlsDir("h2") + "/host.crt -key " + other.TlsDir("h2") +
               "/host.key -CAfile " + fleet_->CaDir() + "/ca.crt");
  EXPECT_THAT(foreign.out + foreign.err, HasSubstr("alert unknown ca"));
  EXPECT_THAT(foreign.out, ::testing::Not(HasSubstr("FRYM")));
  // Plain TCP: bytes that are not TLS; the port answers with nothing ferry speaks.
  CommandResult plain = NetnsHosts::RunIn(
      net_.Client(), {"timeout", "10", "bash", "-c",
                      "exec 3<>/dev/tcp/" + NetnsHosts::HostAddress(1) + "/" + kPeerPort +
                          "; printf 'GET / HTTP/1.0\\r\\n\\r\\n' >&3; cat <&3"});
  EXPECT_THAT(plain.out, ::testing::Not(HasSubstr("FRYM")));
  EXPECT_THAT(plain.out, ::testing::Not(HasSubstr("HTTP")));
  // None of them became a migration, and the VM never moved.
  EXPECT_TRUE(Ferryd(1).FerryJson({"migration", "list"}).empty());
  EXPECT_EQ(Vms(1), std::vector<std::string>{"web"});
}

}  // namespace
}  // namespace ferry::testing
