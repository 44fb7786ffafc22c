#include "core/json_line_connection.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <optional>
#include <thread>
#include <vector>

#include "core/fake_line_server.h"
#include "testbed/recorder.h"

namespace ferry {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

// The server end of a UNIX socket in a fresh temporary directory, driven by the test.
class FakePeer : public FakeLineServer {
 public:
  FakePeer() : FakeLineServer("/tmp/ferry-jlc-XXXXXX", "peer.sock") {}
};

// What the handlers saw, recorded from the reader thread, awaited with a deadline by the test.
using Recorder = testbed::Recorder<json>;

JsonLineConnection::Options TestOptions(size_t max_line_bytes = 1024) {
  JsonLineConnection::Options options;
  options.description = "test peer";
  options.no_reply_hint = "the test peer is silent";
  options.max_line_bytes = max_line_bytes;
  return options;
}

json Event(const char* name) { return json{{"event", name}}; }

bool Contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

class JsonLineConnectionTest : public ::testing::Test {
 protected:
  void ConnectAndStart(size_t max_line_bytes = 1024) {
    auto connected = JsonLineConnection::Connect(peer_.path(), 1000ms, TestOptions(max_line_bytes));
    ASSERT_TRUE(connected.ok()) << connected.status().message();
    connection_ = std::move(connected).value();
    connection_->SetMessageHandler([this](const json& m) { messages_.Add(m); });
    connection_->SetCloseHandler([this](const Status& why) { closes_.Add(why.message()); });
    connection_->Start();
    ASSERT_TRUE(peer_.Accept());
  }

  FakePeer peer_;
  Recorder messages_;
  Recorder closes_;
  std::unique_ptr<JsonLineConnection> connection_;
};

TEST(JsonLineConnectionConnectTest, MissingSocketFailsAfterRetryingForTheTimeout) {
  const auto start = Clock::now();
  auto connected = JsonLineConnection::Connect("/nonexistent-ferry-dir/x.sock", 50ms, {});
  ASSERT_FALSE(connected.ok());
  EXPECT_GE(Clock::now() - start, 50ms);
  EXPECT_EQ(connected.status().code(), Status::Code::kUnavailable);
  EXPECT_TRUE(Contains(connected.status().message(), "socket /nonexistent-ferry-dir/x.sock"))
      << connected.status().message();
}

TEST(JsonLineConnectionConnectTest, OverlongPathIsInvalidArgument) {
  auto connected = JsonLineConnection::Connect("/tmp/" + std::string(200, 'x'), 10ms, {});
  ASSERT_FALSE(connected.ok());
  EXPECT_EQ(connected.status().code(), Status::Code::kInvalidArgument);
}

TEST_F(JsonLineConnectionTest, RepliesMatchRequestsInAnyOrderAndOtherMessagesGoToTheHandler) {
  ConnectAndStart();
  auto first = connection_->Request({{"op", "a"}}, "request a");
  auto second = connection_->Request({{"op", "b"}}, "request b");
  auto a = peer_.ReadJson();
  auto b = peer_.ReadJson();
  ASSERT_TRUE(a && b);
  EXPECT_EQ((*a)["op"], "a");
  EXPECT_EQ((*b)["op"], "b");
  EXPECT_NE((*a)["id"], (*b)["id"]);

  peer_.WriteJson({{"event", "one"}});
  peer_.WriteJson({{"id", (*b)["id"]}, {"answer", "B"}});
  peer_.WriteJson({{"event", "two"}});
  peer_.WriteJson({{"id", (*a)["id"]}, {"answer", "A"}});

  auto reply_a = connection_->Wait(std::move(first), 5000ms);
  auto reply_b = connection_->Wait(std::move(second), 5000ms);
  ASSERT_TRUE(reply_a.ok()) << reply_a.status().message();
  ASSERT_TRUE(reply_b.ok()) << reply_b.status().message();
  EXPECT_EQ(reply_a.value()["answer"], "A");
  EXPECT_EQ(reply_b.value()["answer"], "B");
  ASSERT_TRUE(messages_.WaitForCount(2));
  EXPECT_EQ(messages_.items(), (std::vector<json>{Event("one"), Event("two")}));
}

TEST_F(JsonLineConnectionTest, GarbageUnknownIdsAndLongLinesAreSkipped) {
  ConnectAndStart(/*max_line_bytes=*/64);
  auto request = connection_->Request({{"op", "x"}}, "request x");
  auto sent = peer_.ReadJson();
  ASSERT_TRUE(sent);
  peer_.Write("this is not json\n");
  peer_.Write("[1, 2, 3]\n");
  peer_.Write("\x00\xff\xfe\n");
  peer_.Write(std::string(10000, 'y') + "\n");
  peer_.WriteJson({{"id", 999}, {"answer", "stray"}});
  peer_.WriteJson({{"id", "1"}, {"answer", "string id"}});
  peer_.WriteJson({{"id", -1}, {"answer", "negative id"}});
  peer_.WriteJson({{"event", "still alive"}});
  peer_.WriteJson({{"id", (*sent)["id"]}, {"answer", "real"}});

  auto reply = connection_->Wait(std::move(request), 5000ms);
  ASSERT_TRUE(reply.ok()) << reply.status().message();
  EXPECT_EQ(reply.value()["answer"], "real");
  ASSERT_TRUE(messages_.WaitForCount(1));
  EXPECT_EQ(messages_.items(), std::vector<json>{Event("still alive")});
  EXPECT_TRUE(connection_->connected());
}

// A guest restored from a snapshot may still send replies it owed its parent's connection, whose
// ids counted up from wherever that connection started. They must not answer our requests.
TEST_F(JsonLineConnectionTest, RepliesOwedToAnEarlierConnectionDoNotAnswerNewRequests) {
  ConnectAndStart();
  auto first = connection_->Request({{"op", "a"}}, "request a");
  auto second = connection_->Request({{"op", "b"}}, "request b");
  for (uint64_t stale = 0; stale < 64; ++stale) {
    peer_.WriteJson({{"id", stale}, {"answer", "owed to the parent"}});
  }
  auto sent_a = peer_.ReadJson();
  auto sent_b = peer_.ReadJson();
  ASSERT_TRUE(sent_a && sent_b);
  EXPECT_GE((*sent_a)["id"].get<uint64_t>(), 64u);
  peer_.WriteJson({{"id", (*sent_b)["id"]}, {"answer", "b"}});
  peer_.WriteJson({{"id", (*sent_a)["id"]}, {"answer", "a"}});
  auto reply_a = connection_->Wait(std::move(first), 5000ms);
  auto reply_b = connection_->Wait(std::move(second), 5000ms);
  ASSERT_TRUE(reply_a.ok() && reply_b.ok());
  EXPECT_EQ(reply_a.value()["answer"], "a");
  EXPECT_EQ(reply_b.value()["answer"], "b");
}

TEST_F(JsonLineConnectionTest, TimeoutIsDeadlineExceededAndALateReplyIsDropped) {
  ConnectAndStart();
  const auto start = Clock::now();
  auto reply = connection_->Wait(connection_->Request({{"op", "slow"}}, "request slow"), 50ms);
  ASSERT_FALSE(reply.ok());
  EXPECT_GE(Clock::now() - start, 50ms);
  EXPECT_EQ(reply.status().code(), Status::Code::kDeadlineExceeded);
  EXPECT_EQ(reply.status().message(),
            "request slow: no reply within 50 ms from test peer; the test peer is silent");

  auto sent = peer_.ReadJson();
  ASSERT_TRUE(sent);
  peer_.WriteJson({{"id", (*sent)["id"]}, {"answer", "late"}});
  peer_.WriteJson({{"event", "after"}});
  // The late reply was read before the event and did not reach the handler.
  ASSERT_TRUE(messages_.WaitForCount(1));
  EXPECT_EQ(messages_.items(), std::vector<json>{Event("after")});
}

TEST_F(JsonLineConnectionTest, PeerCloseFailsPendingRequestsAndCallsTheCloseHandlerOnce) {
  ConnectAndStart();
  auto first = connection_->Request({{"op", "a"}}, "request a");
  auto second = connection_->Request({{"op", "b"}}, "request b");
  ASSERT_TRUE(peer_.ReadJson());
  peer_.Write("{\"id\": 1, \"partial");  // half a line, then the end
  peer_.CloseClient();

  auto reply = connection_->Wait(std::move(first), 5000ms);
  ASSERT_FALSE(reply.ok());
  EXPECT_EQ(reply.status().code(), Status::Code::kUnavailable);
  EXPECT_TRUE(Contains(reply.status().message(), "request a: test peer: closed by the peer"))
      << reply.status().message();
  EXPECT_EQ(connection_->Wait(std::move(second), 5000ms).status().code(),
            Status::Code::kUnavailable);
  ASSERT_TRUE(closes_.WaitForCount(1));
  EXPECT_FALSE(connection_->connected());

  // Requests and sends after the end fail at once, naming the peer.
  auto after = connection_->Wait(connection_->Request({{"op", "c"}}, "request c"), 5000ms);
  EXPECT_EQ(after.status().code(), Status::Code::kUnavailable);
  EXPECT_TRUE(Contains(after.status().message(), "request c: test peer"));
  EXPECT_EQ(connection_->Send({{"op", "d"}}).code(), Status::Code::kUnavailable);

  connection_.reset();  // joins the reader: nothing can be called after this
  EXPECT_EQ(closes_.items().size(), 1u);
  EXPECT_TRUE(messages_.items().empty());
}

TEST(JsonLineConnectionWriteTest, APeerThatStopsReadingBreaksTheConnection) {
  FakePeer peer;
  JsonLineConnection::Options options = TestOptions();
  options.write_timeout = 50ms;
  auto connected = JsonLineConnection::Connect(peer.path(), 1000ms, options);
  ASSERT_TRUE(connected.ok()) << connected.status().message();
  std::unique_ptr<JsonLineConnection> connection = std::move(connected).value();
  Recorder closes;
  connection->SetCloseHandler([&](const Status& why) { closes.Add(why.message()); });
  connection->Start();
  ASSERT_TRUE(peer.Accept());

  // Far more than the socket buffers hold, and the peer never reads.
  auto pending = connection->Request({{"blob", std::string(4 << 20, 'z')}}, "big request");
  auto reply = connection->Wait(std::move(pending), 5000ms);
  EXPECT_EQ(reply.status().code(), Status::Code::kUnavailable);
  EXPECT_TRUE(Contains(reply.status().message(), "big request: test peer: the peer has not read"))
      << reply.status().message();
  ASSERT_TRUE(closes.WaitForCount(1));
  EXPECT_FALSE(connection->connected());
  connection.reset();
  EXPECT_EQ(closes.items().size(), 1u);
}

TEST_F(JsonLineConnectionTest, DestroyingFailsPendingRequestsWithoutCallingTheCloseHandler) {
  ConnectAndStart();
  auto pending = connection_->Request({{"op", "never answered"}}, "request n");
  ASSERT_TRUE(peer_.ReadJson());
  connection_.reset();
  ASSERT_EQ(pending.future.wait_for(0s), std::future_status::ready);
  auto reply = pending.future.get();
  EXPECT_EQ(reply.status().code(), Status::Code::kUnavailable);
  EXPECT_TRUE(Contains(reply.status().message(), "closed by ferryd"));
  EXPECT_TRUE(closes_.items().empty());
}

TEST_F(JsonLineConnectionTest, WaitingInsideAHandlerIsRefusedInsteadOfDeadlocking) {
  ConnectAndStart();
  Recorder results;
  connection_->SetMessageHandler([&](const json&) {
    auto reply = connection_->Wait(connection_->Request({{"op", "inner"}}, "inner"), 5000ms);
    results.Add(reply.status().message());
  });
  peer_.WriteJson({{"event", "trigger"}});
  ASSERT_TRUE(results.WaitForCount(1));
  EXPECT_TRUE(Contains(results.items()[0].get<std::string>(), "inner: cannot wait"));
  connection_->SetMessageHandler(nullptr);
}

TEST_F(JsonLineConnectionTest, AReplacedHandlerIsNotCalledAgain) {
  ConnectAndStart();
  peer_.WriteJson({{"event", "1"}});
  ASSERT_TRUE(messages_.WaitForCount(1));
  Recorder second;
  connection_->SetMessageHandler([&](const json& m) { second.Add(m); });
  peer_.WriteJson({{"event", "2"}});
  ASSERT_TRUE(second.WaitForCount(1));
  connection_->SetMessageHandler(nullptr);
  peer_.WriteJson({{"event", "3"}});
  // A round trip after event 3 proves the reader has passed it.
  auto request = connection_->Request({{"op", "sync"}}, "sync");
  auto sent = peer_.ReadJson();
  ASSERT_TRUE(sent);
  peer_.WriteJson({{"id", (*sent)["id"]}});
  ASSERT_TRUE(connection_->Wait(std::move(request), 5000ms).ok());
  EXPECT_EQ(messages_.items().size(), 1u);
  EXPECT_EQ(second.items(), std::vector<json>{Event("2")});
}

TEST_F(JsonLineConnectionTest, InterpreterResultsAndExceptionsBecomeTheReply) {
  ConnectAndStart();
  auto doubled = connection_->Request({{"op", "double"}}, "double", [](const json& reply) {
    return Result<json>(reply.at("n").get<int>() * 2);
  });
  auto broken = connection_->Request({{"op", "broken"}}, "broken", [](const json& reply) {
    return Result<json>(reply.at("missing"));  // throws: the reply lacks it
  });
  auto first = peer_.ReadJson();
  auto second = peer_.ReadJson();
  ASSERT_TRUE(first && second);
  peer_.WriteJson({{"id", (*first)["id"]}, {"n", 21}});
  peer_.WriteJson({{"id", (*second)["id"]}});
  auto doubled_reply = connection_->Wait(std::move(doubled), 5000ms);
  ASSERT_TRUE(doubled_reply.ok());
  EXPECT_EQ(doubled_reply.value(), 42);
  auto broken_reply = connection_->Wait(std::move(broken), 5000ms);
  EXPECT_EQ(broken_reply.status().code(), Status::Code::kCorruption);
  EXPECT_TRUE(Contains(broken_reply.status().message(), "broken: unusable reply from test peer"));
}

TEST_F(JsonLineConnectionTest, APassedDescriptorArrivesWithItsLine) {
  // As QMP getfd needs it: the peer receives a working copy of our descriptor with the line.
  ConnectAndStart();
  int pipe_fds[2];
  ASSERT_EQ(::pipe2(pipe_fds, O_CLOEXEC), 0);
  ASSERT_TRUE(connection_->Send({{"execute", "getfd"}}, pipe_fds[1]).ok());
  ::close(pipe_fds[1]);  // ours; the peer has its own now
  std::string bytes;
  const int received = peer_.ReadWithPassedFd(bytes);
  ASSERT_GE(received, 0) << "no descriptor came with " << bytes;
  EXPECT_EQ(bytes, "{\"execute\":\"getfd\"}\n");
  ASSERT_EQ(::write(received, "hi", 2), 2);
  ::close(received);
  char got[3] = {};
  EXPECT_EQ(::read(pipe_fds[0], got, sizeof got), 2);
  EXPECT_STREQ(got, "hi");
  ::close(pipe_fds[0]);
}

TEST_F(JsonLineConnectionTest, ConcurrentRequestsGetTheirOwnReplies) {
  ConnectAndStart();
  constexpr int kThreads = 4;
  constexpr int kPerThread = 50;
  // The peer echoes every request back as its reply, in arrival order.
  std::thread echo([&] {
    for (int i = 0; i < kThreads * kPerThread; ++i) {
      auto request = peer_.ReadJson();
      if (!request) return;
      peer_.WriteJson({{"id", (*request)["id"]}, {"echo", (*request)["payload"]}});
    }
  });
  std::atomic<int> mismatches{0};
  std::vector<std::thread> clients;
  for (int t = 0; t < kThreads; ++t) {
    clients.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        std::string payload = std::to_string(t) + "/" + std::to_string(i);
        auto reply =
            connection_->Wait(connection_->Request({{"payload", payload}}, "echo"), 5000ms);
        if (!reply.ok() || reply.value()["echo"] != payload) ++mismatches;
      }
    });
  }
  for (auto& client : clients) client.join();
  echo.join();
  EXPECT_EQ(mismatches.load(), 0);
}

}  // namespace
}  // namespace ferry
