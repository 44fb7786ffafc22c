#include "qemu/qmp_disk_mirror.h"

#include <gtest/gtest.h>

namespace ferry::qemu {
namespace {

using nlohmann::json;

TEST(QmpDiskMirror, ABlockJobIsReadWithItsProgressAndItsTroubles) {
  json ret = json::parse(R"([
    {"device": "other", "status": "running", "ready": false, "offset": 1, "len": 2},
    {"device": "ferry-mirror", "status": "paused", "ready": false, "offset": 1048576,
     "len": 536870912, "io-status": "failed", "type": "mirror"}])");
  auto job = ParseBlockJob(ret, "ferry-mirror");
  ASSERT_TRUE(job.ok()) << job.status().message();
  ASSERT_TRUE(job->has_value());
  EXPECT_EQ((*job)->status, "paused");
  EXPECT_EQ((*job)->io_status, "failed");
  EXPECT_EQ((*job)->offset, 1048576u);
  EXPECT_EQ((*job)->length, 536870912u);
  EXPECT_FALSE((*job)->ready);
  // A job QEMU no longer lists ended: no value, no error.
  auto gone = ParseBlockJob(json::array(), "ferry-mirror");
  ASSERT_TRUE(gone.ok());
  EXPECT_FALSE(gone->has_value());
  // A reply of the wrong shape fails the read, naming the member.
  json bad = json::parse(R"([{"device": "ferry-mirror", "status": "ready", "ready": "yes",
                               "offset": 0, "len": 0}])");
  auto refused = ParseBlockJob(bad, "ferry-mirror");
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.status().message().find("ready"), std::string::npos);
  EXPECT_FALSE(ParseBlockJob(json::object(), "ferry-mirror").ok());
}

// Records the commands it is asked.
class RecordingQmp : public QmpExecutor {
 public:
  Result<json> Qmp(const std::string& command, const json& args,
                   std::chrono::milliseconds) override {
    calls.push_back({command, args});
    return json::object();
  }
  std::vector<std::pair<std::string, json>> calls;
};

TEST(QmpDiskMirror, BothEndsOfTheCopyRequireQemusTlsWithThePreSharedKey) {
  RecordingQmp qmp;
  ASSERT_TRUE(TlsCredsPskAdd(qmp, "tls", /*server=*/true, "/proc/self/fd/9", "ferry", "P").ok());
  ASSERT_TRUE(TlsCredsPskAdd(qmp, "tls", /*server=*/false, "/proc/self/fd/7", "ferry", "P").ok());
  ASSERT_TRUE(NbdServerStartOnFd(qmp, "listen", "tls").ok());
  ASSERT_TRUE(BlockdevAddNbdOnFd(qmp, "target", "conn", "disk", "tls").ok());
  ASSERT_EQ(qmp.calls.size(), 4u);
  EXPECT_EQ(qmp.calls[0].first, "object-add");
  EXPECT_EQ(qmp.calls[0].second, json({{"qom-type", "tls-creds-psk"},
                                       {"id", "tls"},
                                       {"endpoint", "server"},
                                       {"dir", "/proc/self/fd/9"},
                                       {"priority", "P"}}));
  EXPECT_EQ(qmp.calls[1].second, json({{"qom-type", "tls-creds-psk"},
                                       {"id", "tls"},
                                       {"endpoint", "client"},
                                       {"dir", "/proc/self/fd/7"},
                                       {"priority", "P"},
                                       {"username", "ferry"}}));
  // Without tls-creds QEMU's NBD server would take a client in plaintext.
  EXPECT_EQ(qmp.calls[2].first, "nbd-server-start");
  EXPECT_EQ(qmp.calls[2].second.value("tls-creds", ""), "tls");
  EXPECT_EQ(qmp.calls[3].first, "blockdev-add");
  EXPECT_EQ(qmp.calls[3].second.value("tls-creds", ""), "tls");
  EXPECT_EQ(qmp.calls[3].second["server"], json({{"type", "fd"}, {"str", "conn"}}));
}

}  // namespace
}  // namespace ferry::qemu
