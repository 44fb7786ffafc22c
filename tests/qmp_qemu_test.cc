// QmpClient against a real qemu-system-x86_64: a machine with no disk and no kernel, started
// paused (-S), is enough to exercise the monitor: status, run state events, errors, quit.

#include <gtest/gtest.h>
#include <signal.h>
#include <stdlib.h>

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/files.h"
#include "core/process.h"
#include "qemu/qemu_version.h"
#include "qemu/qmp_client.h"
#include "qemu/qmp_commands.h"

namespace ferry::qemu {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

// Under TCG on a busy machine QEMU can take a while to start; these bound a hang, not a speed.
constexpr auto kStartTimeout = 20s;
constexpr auto kQmpTimeout = 10s;

class QmpQemuTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char dir[] = "/tmp/ferry-qmpit-XXXXXX";
    ASSERT_NE(::mkdtemp(dir), nullptr);
    dir_ = dir;
    qmp_path_ = dir_ + "/qmp.sock";
    log_path_ = dir_ + "/qemu.log";
    auto process = Process::Spawn(
        {"qemu-system-x86_64", "-S", "-nodefaults", "-display", "none", "-machine", "q35,accel=tcg",
         "-m", "64", "-qmp", "unix:" + qmp_path_ + ",server=on,wait=off"},
        log_path_);
    ASSERT_TRUE(process.ok()) << process.status().message();
    qemu_.emplace(std::move(process).value());
    ASSERT_TRUE(WaitForSocket()) << "QEMU did not create " << qmp_path_ << "; its log:\n"
                                 << TailFile(log_path_, 4096);
    auto client = QmpClient::Connect(qmp_path_, kQmpTimeout);
    ASSERT_TRUE(client.ok()) << client.status().message();
    client_ = std::move(client).value();
  }

  void TearDown() override {
    client_.reset();
    if (qemu_ && qemu_->Running()) {
      qemu_->Signal(SIGKILL);
      qemu_->WaitExit(kQmpTimeout);
    }
    RemoveAll(dir_);
  }

  // Polls for the socket with a deadline, giving up early if QEMU exits.
  bool WaitForSocket() {
    const auto deadline = Clock::now() + kStartTimeout;
    while (!PathExists(qmp_path_)) {
      if (qemu_->WaitExit(10ms).has_value() || Clock::now() > deadline) return false;
    }
    return true;
  }

  std::string RunState() {
    auto status = client_->Execute("query-status");
    EXPECT_TRUE(status.ok()) << status.status().message();
    return status.ok() ? status.value().value("status", "") : "";
  }

  std::string dir_;
  std::string qmp_path_;
  std::string log_path_;
  std::optional<Process> qemu_;
  std::unique_ptr<QmpClient> client_;
};

TEST_F(QmpQemuTest, GreetsAndStartsInPrelaunch) {
  // The release it greets with is the one its --version names, and query-version says the same
  // (ferryd asks the first at start and a migration's source QEMU the second, machine_type.h).
  auto probed = ProbeQemuVersion("qemu-system-x86_64", dir_);
  ASSERT_TRUE(probed.ok()) << probed.status().message();
  const json& greeted = client_->greeting()["version"]["qemu"];
  EXPECT_EQ(greeted["major"], probed->major);
  EXPECT_EQ(greeted["minor"], probed->minor);
  auto reply = client_->Execute("query-version");
  ASSERT_TRUE(reply.ok()) << reply.status().message();
  auto queried = ParseQueryVersion(*reply);
  ASSERT_TRUE(queried.ok()) << queried.status().message();
  EXPECT_EQ(*queried, *probed);
  auto status = client_->Execute("query-status");
  ASSERT_TRUE(status.ok()) << status.status().message();
  EXPECT_EQ(status.value()["status"], "prelaunch");
  EXPECT_EQ(status.value()["running"], false);
}

TEST_F(QmpQemuTest, ContAndStopEmitResumeAndStop) {
  auto resumed = client_->WatchEvent("RESUME");
  auto cont = client_->Execute("cont");
  ASSERT_TRUE(cont.ok()) << cont.status().message();
  auto resume = resumed.Wait(kQmpTimeout);
  ASSERT_TRUE(resume.ok()) << resume.status().message();
  EXPECT_EQ(resume->name, "RESUME");
  EXPECT_GT(resume->timestamp_us, 0);
  EXPECT_EQ(RunState(), "running");

  auto stopped = client_->WatchEvent("STOP");
  auto stop = client_->Execute("stop");
  ASSERT_TRUE(stop.ok()) << stop.status().message();
  auto event = stopped.Wait(kQmpTimeout);
  ASSERT_TRUE(event.ok()) << event.status().message();
  EXPECT_GE(event->timestamp_us, resume->timestamp_us);
  EXPECT_EQ(RunState(), "paused");
}

TEST_F(QmpQemuTest, UnknownCommandIsAnErrorWithQemusClass) {
  auto result = client_->Execute("ferry-no-such-command");
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.status().code(), Status::Code::kNotFound);
  EXPECT_EQ(result.status().message().rfind("QMP ferry-no-such-command: CommandNotFound: ", 0), 0u)
      << result.status().message();

  auto bad_args = client_->Execute("stop", {{"no-such-argument", 1}});
  ASSERT_FALSE(bad_args.ok());
  EXPECT_EQ(bad_args.status().message().rfind("QMP stop: GenericError: ", 0), 0u)
      << bad_args.status().message();
  // The monitor is still usable after errors.
  EXPECT_EQ(RunState(), "prelaunch");
}

TEST_F(QmpQemuTest, QuitEmitsShutdownClosesTheSocketAndQemuExits) {
  std::promise<Status> closed;
  client_->SetCloseHandler([&closed](const Status& why) { closed.set_value(why); });
  auto shutdown = client_->WatchEvent("SHUTDOWN");

  auto quit = client_->Execute("quit");
  ASSERT_TRUE(quit.ok()) << quit.status().message();
  auto event = shutdown.Wait(kQmpTimeout);
  ASSERT_TRUE(event.ok()) << event.status().message();
  EXPECT_EQ(event->data["reason"], "host-qmp-quit");

  auto close_future = closed.get_future();
  ASSERT_EQ(close_future.wait_for(kQmpTimeout), std::future_status::ready);
  EXPECT_EQ(close_future.get().code(), Status::Code::kUnavailable);
  EXPECT_FALSE(client_->connected());
  EXPECT_EQ(client_->Execute("query-status").status().code(), Status::Code::kUnavailable);

  auto exit = qemu_->WaitExit(kQmpTimeout);
  ASSERT_TRUE(exit.has_value()) << "QEMU did not exit after quit";
  EXPECT_TRUE(exit->known);
  EXPECT_FALSE(exit->signaled) << exit->Describe();
  EXPECT_EQ(exit->code, 0) << exit->Describe() << "; log:\n" << TailFile(log_path_, 4096);
}

}  // namespace
}  // namespace ferry::qemu
