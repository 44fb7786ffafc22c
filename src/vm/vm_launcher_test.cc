#include "vm/vm_launcher.h"

#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <thread>

#include "core/files.h"
#include "core/operation.h"
#include "vm/qemu_files.h"

namespace ferry::vm {
namespace {

using nlohmann::json;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using namespace std::chrono_literals;

// Serves QMP on `path` for the stand-in QEMU: greets, and answers every command with {}.
class FakeQmpServer {
 public:
  explicit FakeQmpServer(const std::string& path) {
    auto listening = ListenUnix(path);
    EXPECT_TRUE(listening.ok()) << listening.status().message();
    if (listening.ok()) listen_ = std::move(listening).value();
    thread_ = std::thread([this] { Serve(); });
  }
  ~FakeQmpServer() {
    stop_ = true;
    thread_.join();
  }

 private:
  void Serve() {
    int client = -1;
    std::string pending;
    while (!stop_) {
      pollfd pfd{client >= 0 ? client : listen_.get(), POLLIN, 0};
      if (::poll(&pfd, 1, 20) != 1) continue;
      if (client < 0) {
        client = ::accept4(listen_.get(), nullptr, nullptr, SOCK_CLOEXEC);
        Send(client,
             {{"QMP",
               {{"version",
                 {{"qemu", {{"micro", 19}, {"minor", 2}, {"major", 7}}}, {"package", "Debian"}}},
                {"capabilities", {"oob"}}}}});
        continue;
      }
      char buffer[4096];
      const ssize_t n = ::read(client, buffer, sizeof buffer);
      if (n <= 0) {
        ::close(client);
        client = -1;
        continue;
      }
      pending.append(buffer, static_cast<size_t>(n));
      for (size_t end; (end = pending.find('\n')) != std::string::npos;) {
        json command = json::parse(pending.substr(0, end), nullptr, false);
        pending.erase(0, end + 1);
        if (command.is_object() && command.contains("id")) {
          Send(client, {{"return", json::object()}, {"id", command["id"]}});
        }
      }
    }
    if (client >= 0) ::close(client);
  }
  static void Send(int fd, const json& message) {
    const std::string line = message.dump() + "\n";
    (void)!::send(fd, line.data(), line.size(), MSG_NOSIGNAL);
  }

  UniqueFd listen_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

// The host as a journal: every step and undo is written down; `fail_at` fails that step. QEMU is
// `sleep` with a fake QMP server, so a launch that gets that far has a real process to kill.
class FakeLaunchSteps : public LaunchSteps {
 public:
  std::vector<std::string> journal;
  std::string fail_at;  // "dir", "ram", "disk", "tap", "spawn", "qmp"
  pid_t spawned_pid = 0;

  Status MakeDir(const std::string& dir) override {
    if (fail_at == "dir") return Fail("dir");
    journal.push_back("made dir");
    return MakeDirs(dir, 0700);
  }
  Result<UniqueFd> CreateRamFile(const std::string& path, uint64_t bytes) override {
    if (fail_at == "ram") return Fail("ram");
    journal.push_back("made RAM file");
    std::ofstream(path) << "ram";
    return UniqueFd(::open(path.c_str(), O_RDWR | O_CLOEXEC));
  }
  void RemoveRamFile(const std::string& path) override {
    journal.push_back("removed RAM file");
    ::unlink(path.c_str());
  }
  Status EnsureDisk(const VmRecord& r, const std::vector<std::string>& chain) override {
    if (fail_at == "disk") return Fail("disk");
    journal.push_back("disk");
    return Status::Ok();
  }
  Status CreateTap(const VmRecord& r, bool on_bridge) override {
    if (fail_at == "tap") return Fail("tap");
    journal.push_back(on_bridge ? "made tap" : "made tap off the bridge");
    return Status::Ok();
  }
  Status AttachTap(const VmRecord& r) override {
    if (fail_at == "attach") return Fail("attach");
    journal.push_back("attached tap");
    return Status::Ok();
  }
  void RemoveTap(const VmRecord& r) override { journal.push_back("removed tap"); }
  Result<SpawnedQemu> SpawnQemu(QemuLaunch& launch, UniqueFd ram, const VmPaths& paths,
                                VmRuntime::Callbacks callbacks,
                                const OnSpawned& on_spawned) override {
    if (fail_at == "spawn") return Fail("spawn");
    SpawnedQemu q;
    q.argv = {"/bin/sleep", "600"};
    if (fail_at == "qmp") {
      // As VmRuntime::Launch does when QMP never answers: recorded, then killed.
      if (on_spawned) on_spawned(4242, 1, q.argv);
      return Fail("qmp");
    }
    qmp_ = std::make_unique<FakeQmpServer>(paths.qmp_socket);
    VmRuntime::SpawnedHandler spawned = [&](pid_t pid, uint64_t start) {
      spawned_pid = pid;
      journal.push_back("spawned");
      if (on_spawned) on_spawned(pid, start, q.argv);
    };
    FERRY_ASSIGN_OR_RETURN(q.runtime, VmRuntime::Launch(q.argv, QemuStart{}, paths,
                                                        std::move(callbacks), 5s, spawned));
    return q;
  }
  void RemoveDir(const std::string& dir) override {
    journal.push_back("removed dir");
    RemoveAll(dir);
  }

 private:
  std::unique_ptr<FakeQmpServer> qmp_;  // the stand-in QEMU's QMP, served as long as the test

  Status Fail(const std::string& step) {
    journal.push_back(step + " failed");
    return Status::Internal("step " + step + " failed");
  }
};

class VmLauncherTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/ferry-launcher-XXXXXX";
    root_ = ::mkdtemp(tmpl);
    const std::string image = root_ + "/images/default";
    std::filesystem::create_directories(image);
    std::ofstream(image + "/vmlinuz") << "kernel";
    std::ofstream(image + "/initramfs.cpio.gz") << "initrd";
    std::ofstream(image + "/image.json")
        << R"({"format": "ferry-image", "version": 1, "name": "default", "kernel": "vmlinuz",
              "initrd": "initramfs.cpio.gz", "cmdline": "console=ttyS0",
              "ready_marker": "ferry-guest: ready", "services": []})";
    images_ = std::make_unique<ImageCatalog>(std::vector<std::string>{root_ + "/images"});
    hooks_.persist = [this](Vm& vm) {
      persisted_pids_.push_back(vm.rec.pid);
      vm.cv.notify_all();
    };
    hooks_.callbacks_for = [](const std::shared_ptr<Vm>& vm) {
      std::weak_ptr<Vm> weak = vm;
      VmRuntime::Callbacks cb;
      cb.on_exit = [weak](const ProcessExit& exit) {
        auto held = weak.lock();
        if (!held) return;
        MutexLock lock(held->mu);
        if (QemuExited(*held, exit)) ApplyExit(*held);
      };
      return cb;
    };
    // As the service does: the runtime goes on the launch's thread, which joins its watchers.
    hooks_.unregister = [this](const std::shared_ptr<Vm>& vm) {
      steps_.journal.push_back("unregistered");
      DropRuntime(*vm);
    };
    hooks_.shutting_down = &shutting_down_;
    launcher_ = std::make_unique<VmLauncher>(VmLauncher::Config{"qemu-system-x86_64"}, *images_,
                                             steps_, hooks_);
  }
  void TearDown() override { std::filesystem::remove_all(root_); }

  // Ends the VM's stand-in QEMU, if it runs, and drops its runtime on this thread (whose
  // watchers must not hold the last reference to it).
  static void DropRuntime(Vm& vm) {
    std::shared_ptr<VmRuntime> rt;
    {
      MutexLock lock(vm.mu);
      rt.swap(vm.rt);
    }
    if (!rt) return;
    rt->Kill();
    rt->WaitExit(5s);
  }

  // A VM as CreateFrom registers it: `creating`, with a RAM file of its own to make.
  std::shared_ptr<Vm> NewVm(NetworkMode mode = NetworkMode::kUser) {
    auto vm = std::make_shared<Vm>();
    vm->paths = VmPaths::ForDir(root_ + "/vms/web");
    VmRecord& r = vm->rec;
    r.spec.name = "web";
    r.spec.memory_mib = 64;
    r.spec.network.mode = mode;
    if (mode == NetworkMode::kTap) {
      r.spec.network.bridge = "ferrybr0";
      r.spec.network.ip = "10.77.0.10/24";
    }
    r.id = "0123456789abcdef";
    r.mac = "52:54:00:12:34:56";
    r.ram_path = root_ + "/web.ram";
    r.dir = vm->paths.dir;
    return vm;
  }

  Status Launch(const std::shared_ptr<Vm>& vm, const LaunchPlan& plan, bool new_vm) {
    auto op = operations_.Start("create", vm->rec.spec.name);
    LaunchRollback rollback(vm, steps_, launcher_->hooks());
    if (new_vm) rollback.VmRegistered();
    Status st = launcher_->Launch(vm, *op, plan, /*wait_ready=*/false, rollback);
    if (!st.ok()) rollback.Undo();
    return st;
  }

  static IncomingMigrationLaunch FailingRestore() {
    IncomingMigrationLaunch plan;
    plan.mac = "52:54:00:12:34:56";
    plan.origin = MigrationOrigin{"host-a", "op-1"};
    plan.restore = [](VmRuntime&, Operation&) -> Result<RestoredGuest> {
      return Status::Unavailable("the stream broke off");
    };
    return plan;
  }

  std::string root_;
  std::unique_ptr<ImageCatalog> images_;
  FakeLaunchSteps steps_;
  LaunchHooks hooks_;
  std::atomic<bool> shutting_down_{false};
  std::unique_ptr<VmLauncher> launcher_;
  OperationLog operations_;
  std::vector<pid_t> persisted_pids_;
};

TEST_F(VmLauncherTest, EachFailingStepOfANewVmUndoesExactlyTheStepsBeforeIt) {
  struct Case {
    std::string fail_at;
    std::vector<std::string> journal;
  };
  const std::vector<Case> cases = {
      {"dir", {"dir failed", "removed dir", "unregistered"}},
      {"ram", {"made dir", "ram failed", "removed RAM file", "removed dir", "unregistered"}},
      {"disk",
       {"made dir", "made RAM file", "disk failed", "removed RAM file", "removed dir",
        "unregistered"}},
      {"tap",
       {"made dir", "made RAM file", "disk", "tap failed", "removed tap", "removed RAM file",
        "removed dir", "unregistered"}},
      {"spawn",
       {"made dir", "made RAM file", "disk", "made tap", "spawn failed", "removed tap",
        "removed RAM file", "removed dir", "unregistered"}},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.fail_at);
    steps_.journal.clear();
    steps_.fail_at = c.fail_at;
    auto vm = NewVm(NetworkMode::kTap);
    Status st = Launch(vm, BootLaunch{}, /*new_vm=*/true);
    ASSERT_FALSE(st.ok());
    EXPECT_THAT(st.message(), HasSubstr("step " + c.fail_at + " failed"));
    EXPECT_EQ(steps_.journal, c.journal);
    EXPECT_EQ(vm->exit_handling, ExitHandling::kFails);
    EXPECT_EQ(vm->rec.state, VmState::kCreating);
    EXPECT_FALSE(PathExists(vm->rec.ram_path));
    EXPECT_FALSE(PathExists(vm->paths.dir));
  }
}

TEST_F(VmLauncherTest, AQemuRecordedThenLostIsTakenOffTheRecordAgain) {
  steps_.fail_at = "qmp";
  auto vm = NewVm();
  ASSERT_FALSE(Launch(vm, BootLaunch{}, /*new_vm=*/true).ok());
  EXPECT_THAT(steps_.journal, ElementsAre("made dir", "made RAM file", "disk", "qmp failed",
                                          "removed RAM file", "removed dir", "unregistered"));
  // On record before QMP (a ferryd that died then would find it), cleared once it was lost.
  EXPECT_THAT(persisted_pids_, ElementsAre(4242, 0));
  EXPECT_EQ(vm->rec.pid, 0);
}

TEST_F(VmLauncherTest, AFailedStartKeepsTheVmItsDirectoryAndItsState) {
  steps_.fail_at = "tap";
  auto vm = NewVm(NetworkMode::kTap);
  vm->rec.state = VmState::kStopped;
  ASSERT_FALSE(Launch(vm, BootLaunch{}, /*new_vm=*/false).ok());
  EXPECT_THAT(steps_.journal, ElementsAre("made dir", "made RAM file", "disk", "tap failed",
                                          "removed tap", "removed RAM file"));
  EXPECT_EQ(vm->rec.state, VmState::kStopped);
  EXPECT_TRUE(PathExists(vm->paths.dir));
  EXPECT_EQ(vm->exit_handling, ExitHandling::kFails);
}

TEST_F(VmLauncherTest, AFailedRestoreKillsItsQemuAndUndoesEverythingBeforeIt) {
  auto vm = NewVm();
  Status st = Launch(vm, FailingRestore(), /*new_vm=*/true);
  ASSERT_FALSE(st.ok());
  EXPECT_THAT(st.message(), HasSubstr("the stream broke off"));
  EXPECT_THAT(steps_.journal, ElementsAre("made dir", "made RAM file", "disk", "spawned",
                                          "removed RAM file", "removed dir", "unregistered"));
  ASSERT_NE(steps_.spawned_pid, 0);
  EXPECT_NE(::kill(steps_.spawned_pid, 0), 0) << "the stand-in QEMU still runs";
  EXPECT_EQ(vm->rec.pid, 0);
  // Its end was expected: an exit seen once the launch stopped deferring it means stopped,
  // never failed (the VM is unregistered either way).
  EXPECT_THAT(vm->rec.state, ::testing::AnyOf(VmState::kCreating, VmState::kStopped));
  EXPECT_EQ(vm->exit_handling, ExitHandling::kStops);
  EXPECT_FALSE(PathExists(vm->rec.ram_path));
}

TEST_F(VmLauncherTest, APooledClonesQemuIsKilledWhenItsRestoreFails) {
  auto vm = NewVm();
  ASSERT_TRUE(MakeDirs(vm->paths.dir, 0700).ok());
  QemuLaunch pool_launch;
  auto spawned = steps_.SpawnQemu(pool_launch, UniqueFd(), vm->paths, {}, nullptr);
  ASSERT_TRUE(spawned.ok()) << spawned.status().message();
  steps_.journal.clear();
  PooledCloneLaunch pooled;
  pooled.clone.ram_image = root_ + "/snapshot.ram";
  pooled.clone.restore = [](VmRuntime&, Operation&) -> Result<RestoredGuest> {
    return Status::Corruption("device state damaged");
  };
  const pid_t pid = spawned->runtime->pid();
  pooled.qemu.runtime = std::move(spawned->runtime);
  pooled.qemu.paths = vm->paths;
  pooled.qemu.argv = spawned->argv;
  vm->rec.ram_owned = false;
  vm->rec.ram_path = pooled.clone.ram_image;
  Status st = Launch(vm, pooled, /*new_vm=*/true);
  EXPECT_THAT(st.message(), HasSubstr("device state damaged"));
  // This launch made nothing on the host; it held the pool's QEMU and the new VM.
  EXPECT_THAT(steps_.journal, ElementsAre("removed dir", "unregistered"));
  EXPECT_NE(::kill(pid, 0), 0) << "the pool's QEMU still runs";
}

TEST_F(VmLauncherTest, ABootIsCommittedOnceQemuRuns) {
  auto vm = NewVm();
  ASSERT_TRUE(Launch(vm, BootLaunch{}, /*new_vm=*/true).ok());
  EXPECT_THAT(steps_.journal, ElementsAre("made dir", "made RAM file", "disk", "spawned"));
  EXPECT_EQ(vm->rec.state, VmState::kBooting);
  EXPECT_EQ(vm->rec.pid, steps_.spawned_pid);
  EXPECT_EQ(vm->exit_handling, ExitHandling::kFails);
  EXPECT_TRUE(PathExists(vm->rec.ram_path));
  DropRuntime(*vm);
}

TEST_F(VmLauncherTest, ARestoredVmRunsWithWhatItsRestoreSaid) {
  auto vm = NewVm();
  IncomingMigrationLaunch plan = FailingRestore();
  plan.restore = [](VmRuntime&, Operation&) -> Result<RestoredGuest> {
    return RestoredGuest{{{"migration_receive_ms", 7}}, ""};
  };
  ASSERT_TRUE(Launch(vm, plan, /*new_vm=*/true).ok());
  EXPECT_EQ(vm->rec.state, VmState::kRunning);
  EXPECT_TRUE(vm->rec.guest_ready);
  EXPECT_EQ(vm->rec.timings["migration_receive_ms"], 7);
  EXPECT_EQ(vm->rec.mac, "52:54:00:12:34:56");  // an incoming guest keeps its MAC
  DropRuntime(*vm);
}

// A clone on tap networking still has its parent's identity while it restores: its tap is made
// off the bridge and joins it only after the restore; a clone that cannot join is undone.
TEST_F(VmLauncherTest, ATapClonesTapJoinsTheBridgeOnlyAfterItsRestore) {
  auto vm = NewVm(NetworkMode::kTap);
  CloneLaunch clone;
  clone.ram_image = root_ + "/snapshot.ram";
  clone.restore = [this](VmRuntime&, Operation&) -> Result<RestoredGuest> {
    steps_.journal.push_back("restored");
    return RestoredGuest{};
  };
  vm->rec.ram_owned = false;
  vm->rec.ram_path = clone.ram_image;
  steps_.fail_at = "attach";
  Status st = Launch(vm, clone, /*new_vm=*/true);
  EXPECT_THAT(st.message(), HasSubstr("attach failed"));
  EXPECT_THAT(steps_.journal,
              ElementsAre("made dir", "disk", "made tap off the bridge", "spawned", "restored",
                          "attach failed", "removed tap", "removed dir", "unregistered"));
}

TEST(LaunchShapeTest, EachKindSaysWhatItsLaunchDoes) {
  const LaunchShape boot = ShapeOf(BootLaunch{});
  EXPECT_STREQ(boot.operation, "create");
  EXPECT_EQ(boot.ram, RamSource::kNewOwnFile);
  EXPECT_EQ(boot.restore, nullptr);
  EXPECT_FALSE(boot.new_identity);

  CloneLaunch clone;
  clone.ram_image = "/ram/snapshots/s.ram";
  clone.origin = CloneOrigin{"s", "id", "web"};
  const LaunchPlan clone_plan = clone;
  const LaunchShape c = ShapeOf(clone_plan);
  EXPECT_STREQ(c.operation, "clone");
  EXPECT_EQ(c.ram, RamSource::kSnapshotImage);
  EXPECT_EQ(c.ram_image, "/ram/snapshots/s.ram");
  EXPECT_TRUE(c.new_identity);
  EXPECT_NE(c.restore, nullptr);
  EXPECT_EQ(c.prelaunched, nullptr);
  EXPECT_EQ(OriginToJson(c.origin)["snapshot"], "s");

  const LaunchPlan pooled = PooledCloneLaunch{clone, PrelaunchedQemu{}};
  const LaunchShape p = ShapeOf(pooled);
  EXPECT_STREQ(p.operation, "clone");
  EXPECT_NE(p.prelaunched, nullptr);

  const LaunchPlan incoming = IncomingMigrationLaunch{"52:54:00:00:00:01", "", {"a", "m"}, {}};
  const LaunchShape m = ShapeOf(incoming);
  EXPECT_STREQ(m.operation, "migrate-in");
  EXPECT_EQ(m.ram, RamSource::kNewOwnFile);
  EXPECT_FALSE(m.new_identity);
  EXPECT_NE(m.restore, nullptr);
  EXPECT_STREQ(m.restore_cause, "the migration");
}

}  // namespace
}  // namespace ferry::vm
