// Every refused request gets one clear line naming the object and what to do, a non-zero exit
// code, and changes nothing: the VM that ran still runs, nothing new is registered.
#include <arpa/inet.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>

#include "harness/ferryd_fixture.h"

namespace ferry::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;
using nlohmann::json;

class BadInputTest : public FerrydFixture {
 protected:
  // Runs a ferry command that must be refused with one line containing `expected`.
  void ExpectRefused(const std::vector<std::string>& args, const std::string& expected) {
    SCOPED_TRACE(::testing::PrintToString(args));
    CommandResult r = Ferry(args);
    EXPECT_EQ(r.exit_code, 1) << r.out;
    EXPECT_THAT(ErrorText(r), StartsWith("ferry: "));
    EXPECT_THAT(r.err, HasSubstr(expected));
    EXPECT_EQ(ErrorLines(r), 1) << "not one line: " << r.err;
  }
};

// Holds a loopback port busy, as a foreign program would.
class Listener {
 public:
  Listener() {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
    ::listen(fd_, 1);
    socklen_t len = sizeof addr;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
  }
  ~Listener() { ::close(fd_); }
  uint16_t port() const { return port_; }

 private:
  int fd_;
  uint16_t port_;
};

TEST_F(BadInputTest, RefusedRequestsChangeNothing) {
  StartFerryd();
  const uint16_t port = CreateRedisVm("web-1");
  ASSERT_EQ(Redis(port, {"set", "k", "v"}).out, "OK");
  const json before = FerryJson({"vm", "show", "web-1"});
  const std::string fwd = std::to_string(FreePort()) + ":6379";

  ExpectRefused({"vm", "create", "web-1", "--forward", fwd}, "vm web-1 already exists");
  ExpectRefused({"vm", "create", "web-2", "--memory", "256.5"}, "not a whole number of MiB");
  ExpectRefused({"vm", "create", "web-2", "--memory", "0"}, "is zero");
  ExpectRefused({"vm", "create", "web-2", "--memory", "12KB"}, "not a whole number of MiB");
  ExpectRefused({"vm", "create", "web-2", "--memory", "4000G"}, "this host can give at most");
  ExpectRefused({"vm", "create", "web-2", "--image", "no-such-image"},
                "image 'no-such-image' is unknown");
  ExpectRefused({"vm", "create", "Web 2!"}, "vm name 'Web 2!'");
  ExpectRefused({"vm", "create", "web-2", "--forward", "6379"}, "HOST_PORT:GUEST_PORT");
  ExpectRefused({"vm", "create", "web-2", "--forward", "99999:6379"}, "not a port number");
  ExpectRefused({"vm", "create", "web-2", "--forward", std::to_string(port) + ":6379"},
                "is used by vm web-1");
  {
    Listener busy;
    ExpectRefused({"vm", "create", "web-2", "--forward", std::to_string(busy.port()) + ":6379"},
                  "host port " + std::to_string(busy.port()) + " is already in use");
  }
  ExpectRefused({"vm", "pause", "nope"}, "vm nope does not exist");
  ExpectRefused({"vm", "resume", "web-1"}, "only a paused VM can be resumed");
  ExpectRefused({"vm", "delete", "web-1"}, "stop it first");
  ExpectRefused({"vm", "show", "nope"}, "vm nope does not exist");

  // Nothing changed: one VM, the same QEMU, the same data, one RAM file.
  EXPECT_EQ(VmNames(), std::vector<std::string>{"web-1"});
  const json after = FerryJson({"vm", "show", "web-1"});
  EXPECT_EQ(after["state"], "running");
  EXPECT_EQ(after["pid"], before["pid"]);
  EXPECT_EQ(Redis(port, {"get", "k"}).out, "v");
  size_t ram_files = 0;
  for (const auto& e : std::filesystem::directory_iterator(ram_dir_)) ram_files += e.is_regular_file();
  EXPECT_EQ(ram_files, 1u);
}

TEST_F(BadInputTest, CliWithoutAnAgentSaysWhereItLooked) {
  // No ferryd started: the CLI must say so in one line, not hang.
  CommandResult r = Ferry({"vm", "list"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("cannot reach ferryd: cannot connect to " + socket_));
  EXPECT_EQ(ErrorLines(r), 1) << r.err;
}

TEST_F(BadInputTest, SecondFerrydOnTheSameStateDirectoryIsRefused) {
  StartFerryd();
  CommandResult r = RunCommand({std::string(FERRY_BUILD_DIR) + "/ferryd", "--state-dir",
                                state_dir_, "--ram-dir", ram_dir_, "--socket",
                                state_dir_ + "/other.sock"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("another ferryd already uses state directory"));
  // The first one still answers.
  EXPECT_EQ(Ferry({"vm", "list"}).exit_code, 0);
}

TEST_F(BadInputTest, ApiSocketIsOwnerOnly) {
  StartFerryd();
  struct stat st;
  ASSERT_EQ(::stat(socket_.c_str(), &st), 0);
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  EXPECT_EQ(st.st_mode & 0777, 0600);
  ASSERT_EQ(::stat(state_dir_.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0077, 0) << "state directory readable by others";
}

}  // namespace
}  // namespace ferry::testing
