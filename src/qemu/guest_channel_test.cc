#include "qemu/guest_channel.h"

#include <gtest/gtest.h>

#include <condition_variable>
#include <optional>
#include <thread>
#include <vector>

#include "core/fake_line_server.h"
#include "qemu/guest_messages.h"
#include "testbed/recorder.h"

namespace ferry::qemu {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

// The VM's side of the chardev socket, scripted by the test as ferry-guest: the server end of a
// UNIX socket in a fresh temporary directory.
class FakeGuest : public FakeLineServer {
 public:
  FakeGuest() : FakeLineServer("/tmp/ferry-guest-XXXXXX", "guest.sock") {}
};

bool Contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

// Calls from the reader thread, awaited with a deadline by the test.
using testbed::Recorder;

class GuestChannelTest : public ::testing::Test {
 protected:
  void ConnectChannel() {
    auto connected = GuestChannel::Connect(guest_.path(), 1000ms);
    ASSERT_TRUE(connected.ok()) << connected.status().message();
    channel_ = std::move(connected).value();
    channel_->SetEventHandler([this](const GuestEvent& event) { events_.Add(event); });
    channel_->SetCloseHandler([this](const Status& why) { closes_.Add(why); });
    ASSERT_TRUE(guest_.Accept());
  }

  // Runs `script` as the guest while the test's thread calls `op`.
  Result<json> CallWith(std::function<void()> script, const std::string& op,
                        json args = json::object(), std::chrono::milliseconds timeout = 5000ms) {
    std::thread guest(std::move(script));
    auto result = channel_->Call(op, std::move(args), timeout);
    guest.join();
    return result;
  }

  // Reads the next request and checks its op.
  std::optional<json> ExpectOp(const std::string& op) {
    auto request = guest_.ReadJson();
    EXPECT_TRUE(request.has_value()) << "expected op " << op;
    if (!request) return std::nullopt;
    EXPECT_EQ((*request)["op"], op);
    return request;
  }

  FakeGuest guest_;
  Recorder<GuestEvent> events_;
  Recorder<Status> closes_;
  std::unique_ptr<GuestChannel> channel_;
};

TEST(GuestChannelConnectTest, MissingSocketIsUnavailableNamingTheChannel) {
  auto connected = GuestChannel::Connect("/nonexistent-ferry-dir/guest.sock", 20ms);
  ASSERT_FALSE(connected.ok());
  EXPECT_EQ(connected.status().code(), Status::Code::kUnavailable);
  EXPECT_TRUE(Contains(connected.status().message(),
                       "connect to guest channel /nonexistent-ferry-dir/guest.sock"))
      << connected.status().message();
}

TEST_F(GuestChannelTest, CallSendsTheOpWithItsArgumentsAndReturnsTheReply) {
  ConnectChannel();
  json sent;
  auto result = CallWith(
      [&] {
        auto request = ExpectOp("identity");
        ASSERT_TRUE(request);
        sent = *request;
        guest_.WriteJson({{"id", (*request)["id"]}, {"ok", true}, {"applied", {"hostname"}}});
      },
      "identity", {{"hostname", "web-2"}});
  ASSERT_TRUE(result.ok()) << result.status().message();
  EXPECT_EQ(result.value(), (json{{"applied", {"hostname"}}}));
  EXPECT_TRUE(sent["id"].is_number_unsigned());
  EXPECT_EQ(sent["hostname"], "web-2");
  EXPECT_EQ(sent.size(), 3u);  // id, op, hostname
}

TEST_F(GuestChannelTest, GuestFailureNamesTheOpAndCarriesTheGuestsText) {
  ConnectChannel();
  auto failed = CallWith(
      [&] {
        auto request = ExpectOp("identity");
        ASSERT_TRUE(request);
        guest_.WriteJson({{"id", (*request)["id"]},
                          {"ok", false},
                          {"error", "cannot write /etc/hostname: read-only file system"}});
      },
      "identity");
  EXPECT_EQ(failed.status().code(), Status::Code::kFailedPrecondition);
  EXPECT_EQ(failed.status().message(),
            "guest identity: cannot write /etc/hostname: read-only file system");

  auto silent_failure = CallWith(
      [&] {
        auto request = ExpectOp("shutdown");
        ASSERT_TRUE(request);
        guest_.WriteJson({{"id", (*request)["id"]}, {"ok", false}, {"error", 12}});
      },
      "shutdown");
  EXPECT_EQ(silent_failure.status().message(), "guest shutdown: failed without saying why");
}

TEST_F(GuestChannelTest, ReplyWithoutABooleanOkIsCorruption) {
  ConnectChannel();
  auto result = CallWith(
      [&] {
        auto request = ExpectOp("ping");
        ASSERT_TRUE(request);
        guest_.WriteJson({{"id", (*request)["id"]}, {"ok", "yes"}});
      },
      "ping");
  EXPECT_EQ(result.status().code(), Status::Code::kCorruption);
  EXPECT_TRUE(Contains(result.status().message(),
                       "guest ping: guest message: member \"ok\" must be a boolean, not string"))
      << result.status().message();
}

// A hostile guest: a line nested 100000 deep (which would overflow the stack when copied or
// dumped), a reply of the wrong type and a reply to an id it guessed each fail at most the call
// they answer; the channel stays up and the next call works.
TEST_F(GuestChannelTest, DeepLinesWrongTypesAndGuessedIdsFailOnlyTheirCall) {
  ConnectChannel();
  auto first = CallWith(
      [&] {
        auto request = ExpectOp("ping");
        ASSERT_TRUE(request);
        const std::string deep = std::string(100000, '[') + std::string(100000, ']');
        guest_.Write("{\"id\": " + (*request)["id"].dump() + ", \"ok\": true, \"x\": " + deep +
                     "}\n");
        guest_.Write("{\"event\": \"ready\", \"proto\": 3, \"x\": " + deep + "}\n");
        guest_.WriteJson({{"id", (*request)["id"].get<uint64_t>() + 1000}, {"ok", true}});
      },
      "ping", json::object(), 300ms);
  EXPECT_EQ(first.status().code(), Status::Code::kDeadlineExceeded) << first.status().message();

  auto second = CallWith(
      [&] {
        auto request = ExpectOp("ping");
        ASSERT_TRUE(request);
        guest_.WriteJson({{"id", (*request)["id"]}, {"ok", true}, {"ready", "x"}});
      },
      "ping");
  ASSERT_TRUE(second.ok()) << second.status().message();  // typed later, by ParsePingReply
  EXPECT_FALSE(ParsePingReply(*second).ok());

  auto third = CallWith(
      [&] {
        auto request = ExpectOp("ping");
        ASSERT_TRUE(request);
        guest_.WriteJson({{"id", (*request)["id"]}, {"ok", true}, {"proto", 3}, {"ready", true}});
      },
      "ping");
  ASSERT_TRUE(third.ok()) << third.status().message();
  EXPECT_TRUE(ParsePingReply(*third)->ready);
  EXPECT_TRUE(channel_->connected());
  EXPECT_TRUE(events_.items().empty());  // the deep ready event was dropped
}

TEST_F(GuestChannelTest, ASilentGuestTimesOutAndItsLateReplyIsDropped) {
  ConnectChannel();
  const auto start = Clock::now();
  auto result = channel_->Call("ping", json::object(), 50ms);
  EXPECT_GE(Clock::now() - start, 50ms);
  EXPECT_EQ(result.status().code(), Status::Code::kDeadlineExceeded);
  EXPECT_EQ(result.status().message(), "guest ping: no reply within 50 ms from guest channel " +
                                           guest_.path() +
                                           "; ferry-guest may not be running yet in the VM");

  // The guest comes up, answers the old ping, then the new one.
  auto old = ExpectOp("ping");
  ASSERT_TRUE(old);
  auto next = CallWith(
      [&] {
        guest_.WriteJson({{"id", (*old)["id"]}, {"ok", true}, {"which", "old"}});
        auto request = ExpectOp("ping");
        ASSERT_TRUE(request);
        guest_.WriteJson({{"id", (*request)["id"]}, {"ok", true}, {"which", "new"}});
      },
      "ping");
  ASSERT_TRUE(next.ok()) << next.status().message();
  EXPECT_EQ(next.value()["which"], "new");
}

TEST_F(GuestChannelTest, EventsReachTheHandlerInterleavedWithReplies) {
  ConnectChannel();
  auto result = CallWith(
      [&] {
        auto request = ExpectOp("ping");
        ASSERT_TRUE(request);
        guest_.WriteJson(
            {{"event", "ready"}, {"proto", 1}, {"services", {"redis"}}, {"boot_ms", 812}});
        guest_.WriteJson({{"id", (*request)["id"]}, {"ok", true}});
      },
      "ping");
  ASSERT_TRUE(result.ok()) << result.status().message();
  EXPECT_EQ(result.value(), json::object());
  ASSERT_TRUE(events_.WaitForCount(1));
  GuestEvent ready = events_.items()[0];
  EXPECT_EQ(ready.name, "ready");
  EXPECT_EQ(ready.message["boot_ms"], 812);
  EXPECT_EQ(ready.message["services"], json({"redis"}));
}

TEST_F(GuestChannelTest, GarbageLongLinesAndUnknownIdsAreIgnored) {
  ConnectChannel();
  auto result = CallWith(
      [&] {
        auto request = ExpectOp("ping");
        ASSERT_TRUE(request);
        guest_.Write("\x1b[2J login: \xff\xfe\n");
        guest_.Write(std::string(GuestChannel::kMaxLineBytes + 10, '{') + "\n");
        guest_.Write("{\"event\": [\"not\", \"a\", \"name\"]}\n");
        guest_.WriteJson({{"id", 77}, {"ok", true}, {"which", "unknown id"}});
        guest_.WriteJson({{"id", "1"}, {"ok", true}, {"which", "string id"}});
        guest_.WriteJson({{"event", "ready"}, {"proto", 1}});
        guest_.WriteJson({{"id", (*request)["id"]}, {"ok", true}, {"which", "right"}});
      },
      "ping");
  ASSERT_TRUE(result.ok()) << result.status().message();
  EXPECT_EQ(result.value()["which"], "right");
  ASSERT_TRUE(events_.WaitForCount(1));
  EXPECT_EQ(events_.items().size(), 1u);
  EXPECT_TRUE(channel_->connected());
}

TEST_F(GuestChannelTest, NonObjectArgumentsAreRefusedWithoutSending) {
  ConnectChannel();
  auto result = channel_->Call("ping", "hello", 5000ms);
  EXPECT_EQ(result.status().code(), Status::Code::kInvalidArgument);
  EXPECT_FALSE(guest_.ReadJson(20ms).has_value());
}

TEST_F(GuestChannelTest, TheGuestClosingMidCallFailsItAndCallsTheCloseHandlerOnce) {
  ConnectChannel();
  auto result = CallWith(
      [&] {
        ASSERT_TRUE(ExpectOp("shutdown"));
        guest_.CloseClient();
      },
      "shutdown");
  EXPECT_EQ(result.status().code(), Status::Code::kUnavailable);
  EXPECT_TRUE(Contains(result.status().message(),
                       "guest shutdown: guest channel " + guest_.path() + ": closed by the peer"))
      << result.status().message();
  ASSERT_TRUE(closes_.WaitForCount(1));
  EXPECT_FALSE(channel_->connected());
  EXPECT_EQ(channel_->Call("ping").status().code(), Status::Code::kUnavailable);
  channel_.reset();
  EXPECT_EQ(closes_.items().size(), 1u);
}

}  // namespace
}  // namespace ferry::qemu
