#include "qemu/accelerator.h"

#include <gtest/gtest.h>

namespace ferry::qemu {
namespace {

constexpr const char* kVmxCpu = "processor\t: 0\nflags\t\t: fpu vme de pse vmx sse2\n";
constexpr const char* kPlainCpu = "processor\t: 0\nflags\t\t: fpu vme de pse hypervisor sse2\n";

TEST(AcceleratorTest, KvmWhenHardwareVirtualisationAndUsableDevice) {
  auto c = ChooseAccelerator({kVmxCpu, true, false});
  EXPECT_EQ(c.accelerator, Accelerator::kKvm);
}

TEST(AcceleratorTest, TcgWithoutVmxOrSvm) {
  auto c = ChooseAccelerator({kPlainCpu, true, false});
  EXPECT_EQ(c.accelerator, Accelerator::kTcg);
  EXPECT_NE(c.reason.find("vmx/svm"), std::string::npos);
}

TEST(AcceleratorTest, TcgOnPvmNestedHostEvenWithVmx) {
  auto c = ChooseAccelerator({kVmxCpu, true, true});
  EXPECT_EQ(c.accelerator, Accelerator::kTcg);
  EXPECT_NE(c.reason.find("PVM"), std::string::npos);
}

TEST(AcceleratorTest, TcgWhenDeviceUnusable) {
  EXPECT_EQ(ChooseAccelerator({kVmxCpu, false, false}).accelerator, Accelerator::kTcg);
}

TEST(AcceleratorTest, SvmCountsAsHardwareVirtualisation) {
  auto c = ChooseAccelerator({"flags\t\t: fpu svm\n", true, false});
  EXPECT_EQ(c.accelerator, Accelerator::kKvm);
}

TEST(AcceleratorTest, FlagMustBeAWholeWord) {
  auto c = ChooseAccelerator({"flags\t\t: fpu vmxnot\n", true, false});
  EXPECT_EQ(c.accelerator, Accelerator::kTcg);
}

TEST(AcceleratorTest, NamesRoundTripAndOtherNamesAreRefused) {
  for (Accelerator a : {Accelerator::kKvm, Accelerator::kTcg}) {
    EXPECT_EQ(AcceleratorFromName(AcceleratorName(a)), a);
  }
  EXPECT_EQ(AcceleratorFromName("KVM"), std::nullopt);
  EXPECT_EQ(AcceleratorFromName(""), std::nullopt);
}

TEST(AcceleratorTest, CpuModelIsTheHostsUnderKvmAndMaxUnderTcg) {
  EXPECT_STREQ(CpuModelFor(Accelerator::kKvm), "host");
  EXPECT_STREQ(CpuModelFor(Accelerator::kTcg), "max");
}

}  // namespace
}  // namespace ferry::qemu
