#include "vm/vm_spec.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace ferry::vm {
namespace {

using ::testing::HasSubstr;
using nlohmann::json;

TEST(ParseMemoryTest, AcceptsWholeMiBWithOrWithoutUnits) {
  EXPECT_EQ(*ParseMemoryMiB("256"), 256u);
  EXPECT_EQ(*ParseMemoryMiB("512M"), 512u);
  EXPECT_EQ(*ParseMemoryMiB("512MiB"), 512u);
  EXPECT_EQ(*ParseMemoryMiB("1G"), 1024u);
  EXPECT_EQ(*ParseMemoryMiB("2GiB"), 2048u);
}

TEST(ParseMemoryTest, RefusesWhatIsNotAWholeNumberOfMiB) {
  for (const char* bad : {"256.5", "1.5G", "", "-256", "256K", "12KB", "abc", "256 ", " 256", "0x100"}) {
    auto r = ParseMemoryMiB(bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.status().code(), Status::Code::kInvalidArgument);
    EXPECT_THAT(r.status().message(), HasSubstr("whole number of MiB")) << bad;
  }
}

TEST(ParseMemoryTest, RefusesZeroTinyAndAbsurd) {
  EXPECT_THAT(ParseMemoryMiB("0").status().message(), HasSubstr("is zero"));
  EXPECT_THAT(ParseMemoryMiB("32").status().message(), HasSubstr("below the minimum"));
  EXPECT_THAT(ParseMemoryMiB("99999999999999999999").status().message(),
              HasSubstr("not a whole number"));
  EXPECT_THAT(ParseMemoryMiB("2000000G").status().message(), HasSubstr("too large"));
}

TEST(ParseForwardTest, HostColonGuest) {
  auto f = ParseForward("16379:6379");
  ASSERT_TRUE(f.ok());
  EXPECT_EQ(f->host_port, 16379);
  EXPECT_EQ(f->guest_port, 6379);
  EXPECT_FALSE(ParseForward("16379").ok());
  EXPECT_FALSE(ParseForward("1:2:3").ok());
  EXPECT_EQ(ParseForward("0:6379")->host_port, 0) << "0 asks for any free host port";
  EXPECT_FALSE(ParseForward("6379:0").ok());
  EXPECT_FALSE(ParseForward("70000:6379").ok());
  EXPECT_FALSE(ParseForward("a:b").ok());
}

TEST(VmSpecTest, DefaultsAndRoundTrip) {
  auto spec = VmSpec::FromJson({{"name", "web-1"}});
  ASSERT_TRUE(spec.ok()) << spec.status().message();
  EXPECT_EQ(spec->image, "default");
  EXPECT_EQ(spec->memory_mib, 256u);
  EXPECT_EQ(spec->cpus, 1);
  EXPECT_EQ(spec->network.mode, "user");

  json full = {{"name", "web-1"},
               {"image", "default"},
               {"memory", "1G"},
               {"cpus", 2},
               {"network", {{"mode", "user"}, {"forwards", {"16379:6379", "8080:80"}}}}};
  auto parsed = VmSpec::FromJson(full);
  ASSERT_TRUE(parsed.ok()) << parsed.status().message();
  EXPECT_EQ(parsed->memory_mib, 1024u);
  ASSERT_EQ(parsed->network.forwards.size(), 2u);
  auto again = VmSpec::FromJson(parsed->ToJson());
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*again, *parsed);
}

TEST(VmSpecTest, RefusalsNameTheVmAndTheField) {
  struct Case {
    json spec;
    std::string expected;
  };
  const std::vector<Case> cases = {
      {json::array(), "JSON object"},
      {{{"image", "default"}}, "needs a \"name\""},
      {{{"name", "Bad Name"}}, "vm name 'Bad Name'"},
      {{{"name", "web-1"}, {"memory_mib", 256.5}}, "vm web-1: memory_mib 256.5 is not a whole number"},
      {{{"name", "web-1"}, {"memory_mib", -1}}, "not a whole number"},
      {{{"name", "web-1"}, {"memory", 256}}, "memory must be a string"},
      {{{"name", "web-1"}, {"memory", "1G"}, {"memory_mib", 1024}}, "either memory or memory_mib"},
      {{{"name", "web-1"}, {"cpus", 0}}, "cpus 0"},
      {{{"name", "web-1"}, {"cpus", 1000}}, "cpus 1000"},
      {{{"name", "web-1"}, {"colour", "blue"}}, "unknown field 'colour'"},
      {{{"name", "web-1"}, {"network", {{"mode", "tap"}}}}, "network mode 'tap' is not supported"},
      {{{"name", "web-1"}, {"network", {{"forwards", {"1:2", "1:3"}}}}}, "forwarded twice"},
      {{{"name", "web-1"}, {"network", {{"forwards", {42}}}}}, "HOST:GUEST"},
      {{{"name", "web-1"}, {"image", "../etc"}}, "image name"},
  };
  for (const auto& c : cases) {
    auto r = VmSpec::FromJson(c.spec);
    ASSERT_FALSE(r.ok()) << c.spec.dump();
    EXPECT_EQ(r.status().code(), Status::Code::kInvalidArgument) << c.spec.dump();
    EXPECT_THAT(r.status().message(), HasSubstr(c.expected)) << c.spec.dump();
  }
}

HostCapacity Roomy() {
  HostCapacity cap;
  cap.mem_available_bytes = uint64_t{8} << 30;
  cap.ram_dir_free_bytes = uint64_t{8} << 30;
  cap.tcp_port_free = [](uint16_t) { return true; };
  return cap;
}

TEST(CheckFitsHostTest, MemoryMustFitBothRamAndTheRamDirectory) {
  VmSpec spec = *VmSpec::FromJson({{"name", "big"}, {"memory", "4G"}});
  EXPECT_TRUE(CheckFitsHost(spec, Roomy()).ok());

  HostCapacity low_mem = Roomy();
  low_mem.mem_available_bytes = uint64_t{2} << 30;
  Status st = CheckFitsHost(spec, low_mem);
  EXPECT_EQ(st.code(), Status::Code::kResourceExhausted);
  EXPECT_THAT(st.message(), HasSubstr("vm big: 4096 MiB of memory requested"));
  EXPECT_THAT(st.message(), HasSubstr("at most 2048 MiB"));

  HostCapacity small_tmpfs = Roomy();
  small_tmpfs.ram_dir_free_bytes = uint64_t{1} << 30;
  EXPECT_THAT(CheckFitsHost(spec, small_tmpfs).message(), HasSubstr("at most 1024 MiB"));
}

TEST(CheckFitsHostTest, ForwardedPortsMustBeFree) {
  VmSpec spec = *VmSpec::FromJson({{"name", "web-1"}, {"network", {{"forwards", {"16379:6379"}}}}});
  HostCapacity busy = Roomy();
  busy.tcp_port_free = [](uint16_t port) { return port != 16379; };
  Status st = CheckFitsHost(spec, busy);
  EXPECT_EQ(st.code(), Status::Code::kResourceExhausted);
  EXPECT_THAT(st.message(), HasSubstr("host port 16379 is already in use"));
}

}  // namespace
}  // namespace ferry::vm
