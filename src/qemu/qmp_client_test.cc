#include "qemu/qmp_client.h"

#include <gtest/gtest.h>

#include <condition_variable>
#include <optional>
#include <thread>
#include <vector>

#include "core/fake_line_server.h"
#include "testbed/recorder.h"

namespace ferry::qemu {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

// A scripted QEMU: the server end of a UNIX socket in a fresh temporary directory.
class FakeQemu : public FakeLineServer {
 public:
  FakeQemu() : FakeLineServer("/tmp/ferry-qmp-XXXXXX", "qmp.sock") {}

  // What QEMU 7.2 says on connect.
  static json Greeting() {
    return {{"QMP",
             {{"version",
               {{"qemu", {{"micro", 19}, {"minor", 2}, {"major", 7}}}, {"package", "Debian"}}},
              {"capabilities", {"oob"}}}}};
  }
  // Accepts, greets and answers qmp_capabilities; returns the negotiation request.
  std::optional<json> Handshake() {
    if (!Accept()) return std::nullopt;
    WriteJson(Greeting());
    auto negotiate = ReadJson();
    if (negotiate) WriteJson({{"return", json::object()}, {"id", (*negotiate)["id"]}});
    return negotiate;
  }
  // Reads the next command and checks its name; returns it (nullopt on mismatch or silence).
  std::optional<json> ExpectCommand(const std::string& name) {
    auto command = ReadJson();
    EXPECT_TRUE(command.has_value()) << "expected " << name;
    if (!command) return std::nullopt;
    EXPECT_EQ((*command)["execute"], name);
    return command;
  }
  // Reads the next command, checks its name and refuses it with QMP error `klass`: `desc`.
  void Refuse(const std::string& name, const std::string& klass, const std::string& desc) {
    auto command = ExpectCommand(name);
    if (command)
      WriteJson({{"error", {{"class", klass}, {"desc", desc}}}, {"id", (*command)["id"]}});
  }
};

json EventMessage(const std::string& name, json data = json::object()) {
  return {{"event", name},
          {"data", std::move(data)},
          {"timestamp", {{"seconds", 1700000000}, {"microseconds", 123456}}}};
}

bool Contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

// Calls from the reader thread, awaited with a deadline by the test.
using testbed::Recorder;

class QmpClientTest : public ::testing::Test {
 protected:
  void ConnectClient() {
    std::optional<json> negotiate;
    std::thread qemu([&] { negotiate = qemu_.Handshake(); });
    auto connected = QmpClient::Connect(qemu_.path(), 5000ms);
    qemu.join();
    ASSERT_TRUE(connected.ok()) << connected.status().message();
    ASSERT_TRUE(negotiate.has_value());
    negotiation_ = *negotiate;
    client_ = std::move(connected).value();
    client_->SetEventHandler([this](const QmpEvent& event) { events_.Add(event); });
    client_->SetCloseHandler([this](const Status& why) { closes_.Add(why); });
  }

  // Runs `script` as QEMU while the test's thread calls Execute.
  Result<json> ExecuteWith(std::function<void()> script, const std::string& command,
                           json args = json::object(), std::chrono::milliseconds timeout = 5000ms) {
    std::thread qemu(std::move(script));
    auto result = client_->Execute(command, std::move(args), timeout);
    qemu.join();
    return result;
  }

  FakeQemu qemu_;
  json negotiation_;
  Recorder<QmpEvent> events_;
  Recorder<Status> closes_;
  std::unique_ptr<QmpClient> client_;
};

TEST_F(QmpClientTest, ConnectReadsTheGreetingAndNegotiatesCapabilities) {
  ConnectClient();
  EXPECT_EQ(negotiation_["execute"], "qmp_capabilities");
  EXPECT_TRUE(negotiation_["id"].is_number_unsigned());
  EXPECT_FALSE(negotiation_.contains("arguments"));
  EXPECT_EQ(client_->greeting()["version"]["qemu"]["major"], 7);
  EXPECT_TRUE(client_->connected());
  EXPECT_EQ(client_->path(), qemu_.path());
}

TEST_F(QmpClientTest, ConnectWithoutGreetingTimesOut) {
  // A second client of a busy monitor is accepted but never greeted.
  const auto start = Clock::now();
  auto connected = QmpClient::Connect(qemu_.path(), 50ms);
  ASSERT_FALSE(connected.ok());
  EXPECT_GE(Clock::now() - start, 50ms);
  EXPECT_EQ(connected.status().code(), Status::Code::kDeadlineExceeded);
  EXPECT_TRUE(Contains(connected.status().message(),
                       "QMP socket " + qemu_.path() + ": no greeting from QEMU within 50 ms"))
      << connected.status().message();
}

TEST_F(QmpClientTest, ConnectFailsWhenTheSocketClosesBeforeTheGreeting) {
  std::thread qemu([&] {
    EXPECT_TRUE(qemu_.Accept());
    qemu_.CloseClient();
  });
  auto connected = QmpClient::Connect(qemu_.path(), 5000ms);
  qemu.join();
  ASSERT_FALSE(connected.ok());
  EXPECT_EQ(connected.status().code(), Status::Code::kUnavailable);
  EXPECT_TRUE(Contains(connected.status().message(), "QMP greeting: QMP socket " + qemu_.path()))
      << connected.status().message();
}

TEST_F(QmpClientTest, ConnectFailsWhenQemuRefusesCapabilities) {
  std::thread qemu([&] {
    ASSERT_TRUE(qemu_.Accept());
    qemu_.WriteJson(FakeQemu::Greeting());
    qemu_.Refuse("qmp_capabilities", "GenericError",
                 "Capabilities negotiation is already complete");
  });
  auto connected = QmpClient::Connect(qemu_.path(), 5000ms);
  qemu.join();
  ASSERT_FALSE(connected.ok());
  EXPECT_EQ(connected.status().message(),
            "QMP qmp_capabilities: GenericError: Capabilities negotiation is already complete");
}

TEST_F(QmpClientTest, ExecuteReturnsTheReturnValueWithEventsInterleaved) {
  ConnectClient();
  json sent;
  auto result = ExecuteWith(
      [&] {
        auto command = qemu_.ExpectCommand("migrate-set-capabilities");
        ASSERT_TRUE(command);
        sent = *command;
        qemu_.WriteJson(EventMessage("STOP"));
        qemu_.WriteJson(EventMessage("MIGRATION", {{"status", "setup"}}));
        qemu_.WriteJson({{"return", {{"done", true}}}, {"id", (*command)["id"]}});
      },
      "migrate-set-capabilities", {{"capabilities", json::array()}});
  ASSERT_TRUE(result.ok()) << result.status().message();
  EXPECT_EQ(result.value(), (json{{"done", true}}));
  EXPECT_EQ(sent["arguments"], (json{{"capabilities", json::array()}}));

  ASSERT_TRUE(events_.WaitForCount(2));
  auto events = events_.items();
  EXPECT_EQ(events[0].name, "STOP");
  EXPECT_EQ(events[0].data, json::object());
  EXPECT_EQ(events[0].timestamp_us, 1700000000LL * 1000000 + 123456);
  EXPECT_EQ(events[1].name, "MIGRATION");
  EXPECT_EQ(events[1].data["status"], "setup");
}

TEST_F(QmpClientTest, QmpErrorNamesTheCommandAndQemusClassAndDescription) {
  ConnectClient();
  auto refused = ExecuteWith([&] { qemu_.Refuse("stop", "GenericError", "it broke"); }, "stop");
  EXPECT_EQ(refused.status().code(), Status::Code::kFailedPrecondition);
  EXPECT_EQ(refused.status().message(), "QMP stop: GenericError: it broke");

  auto unknown = ExecuteWith(
      [&] {
        qemu_.Refuse("frobnicate", "CommandNotFound", "The command frobnicate has not been found");
      },
      "frobnicate");
  EXPECT_EQ(unknown.status().code(), Status::Code::kNotFound);
  EXPECT_EQ(unknown.status().message(),
            "QMP frobnicate: CommandNotFound: The command frobnicate has not been found");
}

TEST_F(QmpClientTest, ReplyWithNeitherReturnNorErrorIsCorruption) {
  ConnectClient();
  auto result = ExecuteWith(
      [&] {
        auto command = qemu_.ExpectCommand("query-status");
        ASSERT_TRUE(command);
        qemu_.WriteJson({{"id", (*command)["id"]}, {"what", 1}});
      },
      "query-status");
  EXPECT_EQ(result.status().code(), Status::Code::kCorruption);
  EXPECT_TRUE(Contains(result.status().message(), "QMP query-status: reply has neither"));
}

TEST_F(QmpClientTest, ExecuteTimesOutNamingTheCommand) {
  ConnectClient();
  const auto start = Clock::now();
  auto result = client_->Execute("query-status", json::object(), 50ms);
  EXPECT_GE(Clock::now() - start, 50ms);
  EXPECT_EQ(result.status().code(), Status::Code::kDeadlineExceeded);
  EXPECT_EQ(result.status().message(), "QMP query-status: no reply within 50 ms from QMP socket " +
                                           qemu_.path() +
                                           "; QEMU may be hung; check that its process is running");
  // A reply that comes after all is dropped, and the client still works.
  auto late = qemu_.ExpectCommand("query-status");
  ASSERT_TRUE(late);
  qemu_.WriteJson({{"return", {{"status", "late"}}}, {"id", (*late)["id"]}});
  auto next = ExecuteWith(
      [&] {
        auto command = qemu_.ExpectCommand("query-status");
        ASSERT_TRUE(command);
        qemu_.WriteJson({{"return", {{"status", "running"}}}, {"id", (*command)["id"]}});
      },
      "query-status");
  ASSERT_TRUE(next.ok()) << next.status().message();
  EXPECT_EQ(next.value()["status"], "running");
}

TEST_F(QmpClientTest, GarbageAndUnknownIdsAreIgnored) {
  ConnectClient();
  auto result = ExecuteWith(
      [&] {
        auto command = qemu_.ExpectCommand("query-status");
        ASSERT_TRUE(command);
        qemu_.Write("garbage\n{\"event\": 5}\n");
        qemu_.WriteJson({{"error", {{"class", "GenericError"}, {"desc", "JSON parse error"}}}});
        qemu_.WriteJson({{"return", {{"status", "wrong"}}}, {"id", 4242}});
        qemu_.WriteJson({{"return", {{"status", "paused"}}}, {"id", (*command)["id"]}});
      },
      "query-status");
  ASSERT_TRUE(result.ok()) << result.status().message();
  EXPECT_EQ(result.value()["status"], "paused");
  EXPECT_TRUE(events_.items().empty());
}

TEST_F(QmpClientTest, NonObjectArgumentsAreRefusedWithoutSending) {
  ConnectClient();
  auto result = client_->Execute("stop", json::array({1, 2}), 5000ms);
  EXPECT_EQ(result.status().code(), Status::Code::kInvalidArgument);
  EXPECT_FALSE(qemu_.ReadJson(20ms).has_value());
}

TEST_F(QmpClientTest, AWaiterTakenBeforeSendingCatchesTheEventTheCommandCauses) {
  ConnectClient();
  QmpClient::EventWaiter stopped = client_->WatchEvent("STOP");
  auto result = ExecuteWith(
      [&] {
        auto command = qemu_.ExpectCommand("stop");
        ASSERT_TRUE(command);
        // QEMU emits the event before it replies.
        qemu_.WriteJson(EventMessage("RESUME"));
        qemu_.WriteJson(EventMessage("STOP"));
        qemu_.WriteJson({{"return", json::object()}, {"id", (*command)["id"]}});
      },
      "stop");
  ASSERT_TRUE(result.ok()) << result.status().message();
  // Already collected: the event was read before the reply.
  auto stop = stopped.Wait(0ms);
  ASSERT_TRUE(stop.ok()) << stop.status().message();
  EXPECT_EQ(stop->name, "STOP");
  // RESUME was not for this waiter, and there was only one STOP.
  auto again = stopped.Wait(20ms);
  EXPECT_EQ(again.status().code(), Status::Code::kDeadlineExceeded);
  EXPECT_EQ(again.status().message(),
            "QMP event STOP: not received within 20 ms on QMP socket " + qemu_.path());
}

TEST_F(QmpClientTest, AWaiterCatchesAnEventThatFollowsTheReply) {
  ConnectClient();
  QmpClient::EventWaiter any = client_->WatchEvent("");
  QmpClient::EventWaiter shutdown = client_->WatchEvent("SHUTDOWN");
  auto result = ExecuteWith(
      [&] {
        auto command = qemu_.ExpectCommand("system_powerdown");
        ASSERT_TRUE(command);
        qemu_.WriteJson({{"return", json::object()}, {"id", (*command)["id"]}});
        qemu_.WriteJson(EventMessage("POWERDOWN"));
        qemu_.WriteJson(EventMessage("SHUTDOWN", {{"guest", true}, {"reason", "guest-shutdown"}}));
      },
      "system_powerdown");
  ASSERT_TRUE(result.ok());
  auto event = shutdown.Wait(5000ms);
  ASSERT_TRUE(event.ok()) << event.status().message();
  EXPECT_EQ(event->data["reason"], "guest-shutdown");
  auto first = any.Wait(5000ms);
  auto second = any.Wait(5000ms);
  ASSERT_TRUE(first.ok() && second.ok());
  EXPECT_EQ(first->name, "POWERDOWN");
  EXPECT_EQ(second->name, "SHUTDOWN");
}

TEST_F(QmpClientTest, WaitForEventSeesOnlyLaterEventsAndTimesOut) {
  ConnectClient();
  qemu_.WriteJson(EventMessage("STOP"));
  ASSERT_TRUE(events_.WaitForCount(1));
  // That STOP came before the call, so it is not returned.
  auto result = client_->WaitForEvent("STOP", 30ms);
  EXPECT_EQ(result.status().code(), Status::Code::kDeadlineExceeded);
}

TEST_F(QmpClientTest, QemuClosingMidRequestFailsItAndCallsTheCloseHandlerOnce) {
  ConnectClient();
  QmpClient::EventWaiter waiter = client_->WatchEvent("SHUTDOWN");
  auto pending = client_->Send("query-status");
  ASSERT_TRUE(qemu_.ExpectCommand("query-status"));
  qemu_.CloseClient();

  ASSERT_EQ(pending.wait_for(5s), std::future_status::ready);
  auto result = pending.get();
  EXPECT_EQ(result.status().code(), Status::Code::kUnavailable);
  EXPECT_TRUE(Contains(result.status().message(),
                       "QMP query-status: QMP socket " + qemu_.path() + ": closed by the peer"))
      << result.status().message();
  ASSERT_TRUE(closes_.WaitForCount(1));
  EXPECT_EQ(closes_.items()[0].code(), Status::Code::kUnavailable);
  EXPECT_FALSE(client_->connected());

  auto event = waiter.Wait(5000ms);
  EXPECT_EQ(event.status().code(), Status::Code::kUnavailable);
  EXPECT_TRUE(Contains(event.status().message(), "QMP event SHUTDOWN: QMP socket"));
  EXPECT_EQ(client_->WaitForEvent("STOP", 5000ms).status().code(), Status::Code::kUnavailable);
  EXPECT_EQ(client_->Execute("cont").status().code(), Status::Code::kUnavailable);

  client_.reset();
  EXPECT_EQ(closes_.items().size(), 1u);
}

TEST_F(QmpClientTest, DestroyingWithARequestPendingFailsItAndOutlivingWaitersEnd) {
  ConnectClient();
  auto pending = client_->Send("query-status");
  QmpClient::EventWaiter waiter = client_->WatchEvent("STOP");
  ASSERT_TRUE(qemu_.ExpectCommand("query-status"));
  client_.reset();
  ASSERT_EQ(pending.wait_for(0s), std::future_status::ready);
  EXPECT_EQ(pending.get().status().code(), Status::Code::kUnavailable);
  EXPECT_EQ(waiter.Wait(5000ms).status().code(), Status::Code::kUnavailable);
  EXPECT_TRUE(closes_.items().empty());
}

}  // namespace
}  // namespace ferry::qemu
