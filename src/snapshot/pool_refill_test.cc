#include "snapshot/pool_refill.h"

#include <gtest/gtest.h>

namespace ferry::snapshot {
namespace {

PoolLevel Level(int ready, int starting, int size, bool clone_running = false) {
  return PoolLevel{ready, starting, size, clone_running};
}

TEST(PoolRefillTest, APoolShortOfItsSizeGetsAQemuCountingThoseStarting) {
  EXPECT_EQ(PlanRefill({{"t1", Level(1, 0, 2)}}).start_for, "t1");
  EXPECT_EQ(PlanRefill({{"t1", Level(1, 1, 2)}}).start_for, "");
  EXPECT_EQ(PlanRefill({{"t1", Level(2, 0, 2)}}).start_for, "");
  EXPECT_EQ(PlanRefill({{"t1", Level(0, 0, 0)}}).start_for, "");
}

TEST(PoolRefillTest, OneQemuAtATimeForTheFirstShortPool) {
  RefillPlan plan =
      PlanRefill({{"t1", Level(2, 0, 2)}, {"t2", Level(0, 0, 1)}, {"t3", Level(0, 0, 3)}});
  EXPECT_EQ(plan.start_for, "t2");
  EXPECT_FALSE(plan.clone_running);
}

TEST(PoolRefillTest, APoolWaitsWhileItsCloneRunsButOthersDoNot) {
  RefillPlan waiting = PlanRefill({{"t1", Level(0, 0, 2, /*clone_running=*/true)}});
  EXPECT_EQ(waiting.start_for, "");
  EXPECT_TRUE(waiting.clone_running);
  RefillPlan other = PlanRefill({{"t1", Level(0, 0, 2, true)}, {"t2", Level(0, 0, 1)}});
  EXPECT_EQ(other.start_for, "t2");
  EXPECT_TRUE(other.clone_running);
}

TEST(PoolRefillTest, APoolWhoseSizeWasLoweredLosesWhatIsBeyondIt) {
  EXPECT_EQ(Surplus(Level(3, 0, 1)), 2);
  EXPECT_EQ(Surplus(Level(1, 0, 1)), 0);
  EXPECT_EQ(Surplus(Level(0, 1, 0)), 0);  // one starting is dropped once it is ready
}

TEST(SpareRefillTest, TheFirstShapeWithoutASpareGetsOneButNotWhileAClonesRuns) {
  const std::vector<std::pair<std::string, bool>> shapes = {
      {"a", true}, {"b", false}, {"c", false}};
  EXPECT_EQ(SpareToStart(shapes, 0), "b");
  EXPECT_EQ(SpareToStart(shapes, 1), std::nullopt);
  EXPECT_EQ(SpareToStart({{"a", true}}, 0), std::nullopt);
}

}  // namespace
}  // namespace ferry::snapshot
