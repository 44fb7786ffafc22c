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

}  // namespace
}  // namespace ferry::qemu
