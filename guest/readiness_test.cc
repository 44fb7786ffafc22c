#include "guest/readiness.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <map>
#include <string>
#include <thread>

namespace ferry::guest {
namespace {

TEST(ParseServicesTest, NoParameterMeansNoServices) {
  ServiceList list = ParseServices("console=ttyS0 quiet panic=-1\n");
  EXPECT_TRUE(list.services.empty());
  EXPECT_TRUE(list.errors.empty());
}

TEST(ParseServicesTest, ParsesNamePortList) {
  ServiceList list = ParseServices("console=ttyS0 ferry.services=redis:6379,web:80 quiet\n");
  ASSERT_EQ(list.services.size(), 2u);
  EXPECT_EQ(list.services[0].name, "redis");
  EXPECT_EQ(list.services[0].port, 6379);
  EXPECT_EQ(list.services[1].name, "web");
  EXPECT_EQ(list.services[1].port, 80);
  EXPECT_TRUE(list.errors.empty());
}

TEST(ParseServicesTest, LastOccurrenceWins) {
  ServiceList list = ParseServices("ferry.services=a:1 ferry.services=b:2");
  ASSERT_EQ(list.services.size(), 1u);
  EXPECT_EQ(list.services[0].name, "b");
}

TEST(ParseServicesTest, BadEntriesAreReportedAndSkipped) {
  ServiceList list = ParseServices("ferry.services=redis,web:0,db:70000,x:12ab,Bad:1,:5,ok:7,,y:");
  ASSERT_EQ(list.services.size(), 1u);
  EXPECT_EQ(list.services[0].name, "ok");
  EXPECT_EQ(list.errors.size(), 7u);
  EXPECT_NE(list.errors[0].find("'redis'"), std::string::npos);
}

TEST(ParseServicesTest, EmptyValueMeansNoServices) {
  ServiceList list = ParseServices("ferry.services= quiet");
  EXPECT_TRUE(list.services.empty());
  EXPECT_TRUE(list.errors.empty());
}

TEST(ReadinessTest, ReadyOnceEveryServiceHasAnswered) {
  std::map<std::string, bool> up = {{"a", false}, {"b", false}};
  int probes_of_a = 0;
  Readiness readiness({{"a", 1}, {"b", 2}}, [&](const ServiceSpec& s) {
    if (s.name == "a") ++probes_of_a;
    return up[s.name];
  });
  EXPECT_FALSE(readiness.Poll());
  up["a"] = true;
  EXPECT_FALSE(readiness.Poll());
  EXPECT_FALSE(readiness.ready());
  up["a"] = false;  // once answered, a service is not probed again
  up["b"] = true;
  EXPECT_TRUE(readiness.Poll());
  EXPECT_TRUE(readiness.ready());
  EXPECT_EQ(probes_of_a, 2);
  EXPECT_FALSE(readiness.Poll());  // reported once
  EXPECT_TRUE(readiness.ready());
}

TEST(ReadinessTest, NoServicesIsReadyAtOnce) {
  Readiness readiness({}, [](const ServiceSpec&) { return false; });
  EXPECT_TRUE(readiness.Poll());
}

// A one-connection TCP server on 127.0.0.1, port chosen by the kernel, that answers whatever it
// first receives with `reply` (empty: accept and say nothing).
class OneShotServer {
 public:
  explicit OneShotServer(std::string reply) {
    listen_fd_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
    listen(listen_fd_, 1);
    socklen_t len = sizeof(addr);
    getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    thread_ = std::thread([this, reply] {
      int fd = accept(listen_fd_, nullptr, nullptr);
      if (fd < 0) return;
      char buf[64];
      if (!reply.empty() && read(fd, buf, sizeof(buf)) > 0) {
        ssize_t ignored = write(fd, reply.data(), reply.size());
        (void)ignored;
      }
      char drain;
      while (read(fd, &drain, 1) > 0) {
      }
      close(fd);
    });
  }
  ~OneShotServer() {
    shutdown(listen_fd_, SHUT_RDWR);
    thread_.join();
    close(listen_fd_);
  }
  uint16_t port() const { return port_; }

 private:
  int listen_fd_ = -1;
  uint16_t port_ = 0;
  std::thread thread_;
};

TEST(ServiceAnswersTest, RedisIsUpWhenItAnswersPong) {
  OneShotServer server("+PONG\r\n");
  EXPECT_TRUE(ServiceAnswers(ServiceSpec{"redis", server.port()}));
}

TEST(ServiceAnswersTest, RedisStillLoadingIsNotUp) {
  OneShotServer server("-LOADING Redis is loading the dataset in memory\r\n");
  EXPECT_FALSE(ServiceAnswers(ServiceSpec{"redis", server.port()}));
}

TEST(ServiceAnswersTest, OtherServicesAreUpWhenTheyAcceptConnections) {
  OneShotServer server("");
  EXPECT_TRUE(ServiceAnswers(ServiceSpec{"web", server.port()}));
}

TEST(ServiceAnswersTest, NothingListeningIsNotUp) {
  // Port 1 on loopback: nothing listens there on a test machine, and connect is refused at once.
  EXPECT_FALSE(ServiceAnswers(ServiceSpec{"redis", 1}));
  EXPECT_FALSE(ServiceAnswers(ServiceSpec{"web", 1}));
}

}  // namespace
}  // namespace ferry::guest
