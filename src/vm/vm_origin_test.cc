#include "vm/vm_origin.h"

#include <gtest/gtest.h>

namespace ferry::vm {
namespace {

using nlohmann::json;

TEST(VmOriginTest, EachKindWritesTheRecordsShapeAndReadsBack) {
  const std::pair<VmOrigin, json> cases[] = {
      {BootedOrigin{}, json::object()},
      {CloneOrigin{"warm", "id1", "web-1"},
       {{"snapshot", "warm"}, {"snapshot_id", "id1"}, {"source_vm", "web-1"}}},
      {CloneOrigin{"warm", "id1", "web-1", true, false},
       {{"snapshot", "warm"},
        {"snapshot_id", "id1"},
        {"source_vm", "web-1"},
        {"warm_pool", true},
        {"identity_primed", false}}},
      {MigrationOrigin{"h1", "op-7"}, {{"migrated_from", "h1"}, {"migration", "op-7"}}},
      {HoldOrigin{"9f3a", 1700000000, "h1"},
       {{"hold", "9f3a"}, {"held_at", 1700000000}, {"held_on", "h1"}}},
  };
  for (const auto& [origin, shape] : cases) {
    EXPECT_EQ(OriginToJson(origin), shape);
    EXPECT_EQ(OriginFromJson(shape), origin) << shape.dump();
  }
}

TEST(VmOriginTest, MembersOfTheWrongTypeReadAsEmpty) {
  VmOrigin origin = OriginFromJson({{"snapshot", 3}, {"warm_pool", "yes"}});
  ASSERT_TRUE(std::holds_alternative<CloneOrigin>(origin));
  EXPECT_EQ(std::get<CloneOrigin>(origin), CloneOrigin{});
  EXPECT_TRUE(std::holds_alternative<BootedOrigin>(OriginFromJson(json())));
  EXPECT_TRUE(std::holds_alternative<BootedOrigin>(OriginFromJson(json::array())));
}

TEST(VmOriginTest, AMigrationMemberMakesAMigration) {
  // As the VM service tells them apart: an incoming migration before a clone.
  VmOrigin origin = OriginFromJson({{"migration", "op-7"}, {"snapshot", "warm"}});
  EXPECT_EQ(origin, VmOrigin(MigrationOrigin{"", "op-7"}));
}

}  // namespace
}  // namespace ferry::vm
