#include "snapshot/spare_qemus.h"

#include <gtest/gtest.h>

namespace ferry::snapshot {
namespace {

vm::VmSpec Plain() {
  vm::VmSpec spec;
  spec.name = "web";
  spec.image = "default";
  spec.cpus = 1;
  spec.memory_mib = 256;
  return spec;
}

TEST(SpareShapeTest, AClonesShapeIsItsImageCpusAndMemoryNotItsName) {
  vm::VmSpec a = Plain();
  vm::VmSpec b = Plain();
  b.name = "other";
  ASSERT_TRUE(SpareShapeOf(a, false).has_value());
  EXPECT_EQ(SpareShapeOf(a, false), SpareShapeOf(b, false));
  vm::VmSpec bigger = Plain();
  bigger.memory_mib = 1024;
  EXPECT_NE(SpareShapeOf(a, false), SpareShapeOf(bigger, false));
  vm::VmSpec wider = Plain();
  wider.cpus = 2;
  EXPECT_NE(SpareShapeOf(a, false), SpareShapeOf(wider, false));
  vm::VmSpec other_image = Plain();
  other_image.image = "alpine";
  EXPECT_NE(SpareShapeOf(a, false), SpareShapeOf(other_image, false));
}

TEST(SpareShapeTest, ClonesWithADiskOrOnTapStartTheirOwnQemu) {
  EXPECT_FALSE(SpareShapeOf(Plain(), /*has_disk=*/true).has_value());
  vm::VmSpec disk = Plain();
  disk.disk_mib = 64;
  EXPECT_FALSE(SpareShapeOf(disk, false).has_value());
  vm::VmSpec tap = Plain();
  tap.network.mode = vm::NetworkMode::kTap;
  EXPECT_FALSE(SpareShapeOf(tap, false).has_value());
}

}  // namespace
}  // namespace ferry::snapshot
