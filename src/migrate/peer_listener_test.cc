#include "migrate/peer_listener.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>

#include <atomic>
#include <future>
#include <system_error>
#include <thread>
#include <vector>

#include "migrate/peer_connect.h"
#include "migrate/peer_test_fleet.h"

namespace ferry::migrate {
namespace {

using Clock = std::chrono::steady_clock;

struct ProcessOutput {
  bool finished = false;  // exited before the timeout
  int exit_code = -1;
  std::string output;  // stdout and stderr
};

// Runs `openssl <args>` with stdin on /dev/null and waits for it to exit, at most `timeout`
// (then it is killed and `finished` is false).
ProcessOutput RunOpenSsl(const std::vector<std::string>& args, std::chrono::milliseconds timeout) {
  std::vector<std::string> all = {"openssl"};
  all.insert(all.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (std::string& a : all) argv.push_back(a.data());
  argv.push_back(nullptr);

  ProcessOutput result;
  int out[2];
  if (::pipe2(out, O_CLOEXEC) != 0) return result;
  pid_t pid = ::fork();
  if (pid == 0) {
    int null_fd = ::open("/dev/null", O_RDONLY);
    ::dup2(null_fd, 0);
    ::dup2(out[1], 1);
    ::dup2(out[1], 2);
    ::execvp("openssl", argv.data());
    ::_exit(127);
  }
  ::close(out[1]);
  result.finished = ReadsToEnd(out[0], timeout, &result.output);
  ::close(out[0]);
  if (!result.finished) ::kill(pid, SIGKILL);
  int status = 0;
  ::waitpid(pid, &status, 0);
  if (WIFEXITED(status)) result.exit_code = WEXITSTATUS(status);
  return result;
}

class PeerListenerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    creds_a_ = fleet_.Enroll("host-a", {{"zone", "a"}});
    creds_b_ = fleet_.Enroll("host-b");
  }

  void StartListener(PeerListener::Options options = {},
                     std::function<void(std::shared_ptr<PeerLink>)> serve = {}) {
    auto listener = PeerListener::Start("127.0.0.1:0", TestFleet::Context(creds_b_),
                                        recorder_.Handler(std::move(serve)), options,
                                        recorder_.RejectHandler());
    ASSERT_TRUE(listener.ok()) << listener.status().message();
    listener_ = std::move(listener).value();
  }

  std::string address() const { return "127.0.0.1:" + std::to_string(listener_->port()); }

  TestFleet fleet_;
  crypto::HostCredentials creds_a_, creds_b_;
  ListenerRecorder recorder_;
  std::unique_ptr<PeerListener> listener_;
};

TEST_F(PeerListenerTest, BindsAnEphemeralPortAndReportsIt) {
  StartListener();
  EXPECT_NE(listener_->port(), 0);
  EXPECT_EQ(listener_->address(), address());
  // The port is really taken: a second listener cannot bind it.
  auto second = PeerListener::Start(address(), TestFleet::Context(creds_b_), recorder_.Handler());
  EXPECT_FALSE(second.ok());
  auto bad = PeerListener::Start("127.0.0.1", TestFleet::Context(creds_b_), recorder_.Handler());
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), Status::Code::kInvalidArgument);
}

TEST_F(PeerListenerTest, ClientWithACertificateFromAnotherCaIsRefused) {
  StartListener();
  // host-x trusts our fleet's CA (so it would accept host-b), but its own certificate comes
  // from another CA: the server must refuse it.
  crypto::HostCredentials foreign = fleet_.Enroll("host-x", {}, "other");
  foreign.ca_file = creds_a_.ca_file;
  auto link = ConnectToPeer(address(), *TestFleet::Context(foreign), "host-b", 10s);
  ASSERT_FALSE(link.ok());
  EXPECT_EQ(link.status().code(), Status::Code::kUnavailable);
  EXPECT_TRUE(Contains(link.status().message(), "did not accept this host"))
      << link.status().message();
  EXPECT_TRUE(Contains(link.status().message(), "unknown ca")) << link.status().message();

  auto why = recorder_.WaitForReject();
  ASSERT_TRUE(why.has_value());
  EXPECT_TRUE(Contains(why->message(), "certificate verify failed")) << why->message();
  EXPECT_TRUE(Contains(why->message(), "unable to get local issuer certificate")) << why->message();
  listener_->Stop();  // joins every connection thread: nothing more can reach the handler
  EXPECT_EQ(recorder_.link_count(), 0u);
}

TEST_F(PeerListenerTest, ClientRefusesAServerFromAnotherCa) {
  StartListener();
  crypto::HostCredentials stranger = fleet_.Enroll("host-y", {}, "other");
  auto link = ConnectToPeer(address(), stranger, "", 10s);
  ASSERT_FALSE(link.ok());
  EXPECT_TRUE(Contains(link.status().message(), "certificate verify failed"))
      << link.status().message();
  ASSERT_TRUE(recorder_.WaitForReject().has_value());  // the server saw the client's alert
  listener_->Stop();
  EXPECT_EQ(recorder_.link_count(), 0u);
}

TEST_F(PeerListenerTest, OpensslClientWithoutACertificateIsRefused) {
  StartListener();
  ProcessOutput run = RunOpenSsl(
      {"s_client", "-connect", address(), "-tls1_3", "-CAfile", creds_a_.ca_file, "-ign_eof"}, 30s);
  ASSERT_TRUE(run.finished) << "s_client still connected after 30 s:\n" << run.output;
  auto why = recorder_.WaitForReject();
  ASSERT_TRUE(why.has_value()) << run.output;
  EXPECT_TRUE(Contains(why->message(), "peer did not return a certificate")) << why->message();
  EXPECT_TRUE(Contains(run.output, "alert certificate required")) << run.output;
  listener_->Stop();
  EXPECT_EQ(recorder_.link_count(), 0u);
}

TEST_F(PeerListenerTest, OpensslClientWithAFleetCertificateIsAcceptedAndSeesOurFrames) {
  // The handler greets the client and ends the link, so s_client exits.
  StartListener({}, [](std::shared_ptr<PeerLink> link) {
    (void)link->SendMessage({{"hello", "s_client"}});
    link->Close();
  });
  ProcessOutput run =
      RunOpenSsl({"s_client", "-connect", address(), "-tls1_3", "-CAfile", creds_a_.ca_file,
                  "-cert", creds_a_.cert_file, "-key", creds_a_.key_file, "-ign_eof"},
                 30s);
  ASSERT_TRUE(run.finished) << run.output;
  auto link = recorder_.WaitForLink();
  ASSERT_NE(link, nullptr) << run.output;
  EXPECT_EQ(link->peer().host_id, "host-a");
  EXPECT_EQ(link->peer().labels.at("zone"), "a");
  EXPECT_TRUE(Contains(run.output, "TLSv1.3")) << run.output;
  EXPECT_TRUE(Contains(run.output, "Verify return code: 0 (ok)")) << run.output;
  EXPECT_TRUE(Contains(run.output, "X25519")) << run.output;  // the ECDHE group
  EXPECT_TRUE(Contains(run.output, "FRYM")) << run.output;    // our accept frame
  EXPECT_TRUE(Contains(run.output, R"({"hello":"s_client"})")) << run.output;
  EXPECT_EQ(recorder_.reject_count(), 0u);
}

TEST_F(PeerListenerTest, OpensslClientOfferingOnlyTls12OrFiniteFieldDhIsRefused) {
  StartListener();
  ProcessOutput tls12 =
      RunOpenSsl({"s_client", "-connect", address(), "-tls1_2", "-CAfile", creds_a_.ca_file,
                  "-cert", creds_a_.cert_file, "-key", creds_a_.key_file, "-ign_eof"},
                 30s);
  ASSERT_TRUE(tls12.finished) << tls12.output;
  auto why = recorder_.WaitForReject(0);
  ASSERT_TRUE(why.has_value()) << tls12.output;
  EXPECT_TRUE(Contains(why->message(), "protocol")) << why->message();

  ProcessOutput ffdhe = RunOpenSsl(
      {"s_client", "-connect", address(), "-tls1_3", "-groups", "ffdhe2048", "-CAfile",
       creds_a_.ca_file, "-cert", creds_a_.cert_file, "-key", creds_a_.key_file, "-ign_eof"},
      30s);
  ASSERT_TRUE(ffdhe.finished) << ffdhe.output;
  why = recorder_.WaitForReject(1);
  ASSERT_TRUE(why.has_value()) << ffdhe.output;
  EXPECT_TRUE(Contains(why->message(), "no suitable key share")) << why->message();
  listener_->Stop();
  EXPECT_EQ(recorder_.link_count(), 0u);
}

TEST_F(PeerListenerTest, PlainTcpClientSendingGarbageIsDroppedAtOnce) {
  StartListener();  // default handshake deadline: 10 s
  int fd = ConnectPlainTcp(listener_->port());
  ASSERT_GE(fd, 0);
  std::string garbage = "GET / HTTP/1.1\r\nHost: ferry\r\n\r\n";
  ASSERT_EQ(::write(fd, garbage.data(), garbage.size()), static_cast<ssize_t>(garbage.size()));
  auto start = Clock::now();
  EXPECT_TRUE(ReadsToEnd(fd, 30s)) << "the server kept the connection open";
  ::close(fd);
  // Dropped at the first bad bytes, not at the handshake deadline.
  EXPECT_LT(Clock::now() - start, 5s);
  auto why = recorder_.WaitForReject();
  ASSERT_TRUE(why.has_value());
  EXPECT_EQ(why->code(), Status::Code::kUnavailable);
  EXPECT_TRUE(Contains(why->message(), "TLS handshake failed")) << why->message();
  listener_->Stop();
  EXPECT_EQ(recorder_.link_count(), 0u);
}

TEST_F(PeerListenerTest, SilentClientIsDroppedAtTheHandshakeDeadline) {
  PeerListener::Options options;
  options.handshake_timeout = 200ms;
  StartListener(options);
  int fd = ConnectPlainTcp(listener_->port());
  ASSERT_GE(fd, 0);
  EXPECT_TRUE(ReadsToEnd(fd, 30s)) << "the server kept a silent connection open";
  ::close(fd);
  auto why = recorder_.WaitForReject();
  ASSERT_TRUE(why.has_value());
  EXPECT_EQ(why->code(), Status::Code::kDeadlineExceeded) << why->message();
}

TEST_F(PeerListenerTest, SilentClientsDoNotHoldUpOtherClientsOrStop) {
  PeerListener::Options options;
  options.handshake_timeout = 120s;  // far longer than this test may take
  options.first_byte_timeout = 120s;
  StartListener(options);
  std::vector<int> silent;
  for (int i = 0; i < 3; ++i) {
    silent.push_back(ConnectPlainTcp(listener_->port()));
    ASSERT_GE(silent.back(), 0);
  }
  auto link = ConnectToPeer(address(), creds_a_, "host-b", 10s);
  ASSERT_TRUE(link.ok()) << link.status().message();
  ASSERT_NE(recorder_.WaitForLink(), nullptr);

  // Stop aborts the pending handshakes instead of waiting out their deadline.
  auto stopping = std::async(std::launch::async, [&] { listener_->Stop(); });
  ASSERT_EQ(stopping.wait_for(30s), std::future_status::ready) << "Stop() waited on handshakes";
  for (int fd : silent) {
    EXPECT_TRUE(ReadsToEnd(fd, 10s));
    ::close(fd);
  }
  EXPECT_EQ(recorder_.link_count(), 1u);
}

TEST_F(PeerListenerTest, ConnectionsBeyondTheHandshakeLimitAreDropped) {
  PeerListener::Options options;
  options.handshake_timeout = 120s;
  options.first_byte_timeout = 120s;
  options.max_handshakes = 1;
  StartListener(options);
  int first = ConnectPlainTcp(listener_->port());  // occupies the only handshake slot
  ASSERT_GE(first, 0);
  int second = ConnectPlainTcp(listener_->port());
  ASSERT_GE(second, 0);
  EXPECT_TRUE(ReadsToEnd(second, 10s)) << "the connection over the limit was kept";
  auto why = recorder_.WaitForReject();
  ASSERT_TRUE(why.has_value());
  EXPECT_EQ(why->code(), Status::Code::kResourceExhausted) << why->message();
  ::close(first);
  ::close(second);
}

// A plain TCP connection to 127.0.0.1:port from the local address `from` (any of 127/8), set
// non-blocking for PeerLink::Establish; -1 on failure.
int ConnectFrom(const char* from, uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in local{};
  local.sin_family = AF_INET;
  ::inet_pton(AF_INET, from, &local.sin_addr);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&local), sizeof local) != 0 ||
      ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    return -1;
  }
  ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
  return fd;
}

TEST_F(PeerListenerTest, AFloodFromOneAddressIsCappedWhileAnotherAddressGetsThrough) {
  PeerListener::Options options;
  options.handshake_timeout = 120s;
  options.first_byte_timeout = 120s;
  options.max_handshakes_per_address = 3;
  StartListener(options);
  std::vector<int> flood;
  for (int i = 0; i < 3; ++i) {  // silent: each holds a handshake slot of 127.0.0.1
    flood.push_back(ConnectFrom("127.0.0.1", listener_->port()));
    ASSERT_GE(flood.back(), 0);
  }
  int over = ConnectFrom("127.0.0.1", listener_->port());
  ASSERT_GE(over, 0);
  EXPECT_TRUE(ReadsToEnd(over, 10s)) << "a fourth connection from one address was kept";
  ::close(over);
  auto why = recorder_.WaitForReject();
  ASSERT_TRUE(why.has_value());
  EXPECT_EQ(why->code(), Status::Code::kResourceExhausted) << why->message();
  EXPECT_TRUE(Contains(why->message(), "3 handshakes from 127.0.0.1")) << why->message();

  // Another address is not locked out by the flood: it authenticates and gets its link.
  int other = ConnectFrom("127.0.0.2", listener_->port());
  ASSERT_GE(other, 0);
  auto link = PeerLink::Establish(other, *TestFleet::Context(creds_a_), PeerRole::kClient, "host-b",
                                  Clock::now() + 30s, "127.0.0.1");
  ASSERT_TRUE(link.ok()) << link.status().message();
  auto served = recorder_.WaitForLink();
  ASSERT_NE(served, nullptr);
  EXPECT_EQ(served->peer().host_id, "host-a");
  EXPECT_EQ(recorder_.reject_count(), 1u);  // only the connection over the limit
  for (int fd : flood) ::close(fd);
}

TEST_F(PeerListenerTest, SilentClientIsDroppedAtTheFirstByteTimeout) {
  PeerListener::Options options;
  options.handshake_timeout = 120s;  // far longer than this test may take
  options.first_byte_timeout = 200ms;
  StartListener(options);
  int fd = ConnectPlainTcp(listener_->port());
  ASSERT_GE(fd, 0);
  EXPECT_TRUE(ReadsToEnd(fd, 60s)) << "the server kept a silent connection open";
  ::close(fd);
  auto why = recorder_.WaitForReject();
  ASSERT_TRUE(why.has_value());
  EXPECT_EQ(why->code(), Status::Code::kDeadlineExceeded) << why->message();
  EXPECT_TRUE(Contains(why->message(), "sent nothing in 200 ms")) << why->message();
}

TEST_F(PeerListenerTest, ClientTricklingOneBytePerSecondIsDroppedAtTheHandshakeDeadline) {
  PeerListener::Options options;
  options.handshake_timeout = 3s;
  StartListener(options);
  int fd = ConnectPlainTcp(listener_->port());
  ASSERT_GE(fd, 0);
  // The start of a TLS handshake record announcing 16 KiB, then one byte a second: each byte
  // keeps the handshake waiting for the next, so only the absolute deadline ends it.
  const std::string hello = std::string("\x16\x03\x01\x40\x00\x01", 6) + std::string(54, '\0');
  bool dropped = false;
  for (size_t i = 0; i < hello.size() && !dropped; ++i) {
    if (::send(fd, &hello[i], 1, MSG_NOSIGNAL) != 1) {
      dropped = true;
      break;
    }
    pollfd pfd{fd, POLLIN, 0};
    if (::poll(&pfd, 1, 1000) == 1) {
      char byte;
      dropped = ::read(fd, &byte, 1) <= 0;
    }
  }
  ::close(fd);
  EXPECT_TRUE(dropped) << "the server kept a connection that trickled " << hello.size()
                       << " bytes over " << hello.size() << " s";
  auto why = recorder_.WaitForReject();
  ASSERT_TRUE(why.has_value());
  EXPECT_EQ(why->code(), Status::Code::kDeadlineExceeded) << why->message();
}

TEST_F(PeerListenerTest, LinksBeyondTheCapAreRefusedWithAReason) {
  PeerListener::Options options;
  options.max_links = 1;
  StartListener(options);
  auto first = ConnectToPeer(address(), creds_a_, "host-b", 10s);
  ASSERT_TRUE(first.ok()) << first.status().message();
  auto served = recorder_.WaitForLink();
  ASSERT_NE(served, nullptr);  // the recorder keeps it: the one link stays open

  auto second = ConnectToPeer(address(), creds_a_, "host-b", 10s);
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), Status::Code::kUnavailable) << second.status().message();
  EXPECT_TRUE(Contains(second.status().message(),
                       "the server refused this link: host host-b "
                       "has 1 peer links open, its limit"))
      << second.status().message();
  auto why = recorder_.WaitForReject();
  ASSERT_TRUE(why.has_value());
  EXPECT_EQ(why->code(), Status::Code::kResourceExhausted) << why->message();
  EXPECT_EQ(recorder_.link_count(), 1u);

  // Once the open link has ended, the next one is accepted: the listener is still up.
  served->Close();
  auto third = ConnectToPeer(address(), creds_a_, "host-b", 10s);
  ASSERT_TRUE(third.ok()) << third.status().message();
  EXPECT_NE(recorder_.WaitForLink(1), nullptr);
}

TEST_F(PeerListenerTest, AThreadThatCannotStartRefusesOnlyThatConnection) {
  PeerListener::Options options;
  auto failures = std::make_shared<std::atomic<int>>(1);
  options.start_thread = [failures](std::function<void()> body) {
    if (failures->fetch_sub(1) > 0) {
      throw std::system_error(EAGAIN, std::generic_category(), "thread creation (test)");
    }
    return std::thread(std::move(body));
  };
  StartListener(options);
  int fd = ConnectPlainTcp(listener_->port());
  ASSERT_GE(fd, 0);
  EXPECT_TRUE(ReadsToEnd(fd, 10s)) << "a connection without a thread was kept";
  ::close(fd);
  auto why = recorder_.WaitForReject();
  ASSERT_TRUE(why.has_value());
  EXPECT_EQ(why->code(), Status::Code::kResourceExhausted) << why->message();
  EXPECT_TRUE(Contains(why->message(), "cannot start a thread")) << why->message();

  auto link = ConnectToPeer(address(), creds_a_, "host-b", 10s);
  ASSERT_TRUE(link.ok()) << link.status().message();
  EXPECT_NE(recorder_.WaitForLink(), nullptr);
}

TEST_F(PeerListenerTest, StopClosesHandedOutLinksSoHandlersReturn) {
  std::promise<Status> handler_saw;
  StartListener({}, [&](std::shared_ptr<PeerLink> link) {
    handler_saw.set_value(link->Receive(120s).status());
  });
  auto link = ConnectToPeer(address(), creds_a_, "host-b", 10s);
  ASSERT_TRUE(link.ok()) << link.status().message();
  ASSERT_NE(recorder_.WaitForLink(), nullptr);
  auto stopping = std::async(std::launch::async, [&] { listener_->Stop(); });
  ASSERT_EQ(stopping.wait_for(30s), std::future_status::ready) << "Stop() waited on a handler";
  auto saw = handler_saw.get_future();
  ASSERT_EQ(saw.wait_for(0s), std::future_status::ready);
  Status status = saw.get();
  EXPECT_EQ(status.code(), Status::Code::kUnavailable) << status.message();
  // The client sees the server go away.
  auto at_client = (*link)->Receive(10s);
  EXPECT_EQ(at_client.status().code(), Status::Code::kUnavailable) << at_client.status().message();
}

}  // namespace
}  // namespace ferry::migrate
