#include "vm/vm_record.h"

#include <gtest/gtest.h>

namespace ferry::vm {
namespace {

using nlohmann::json;

json RecordJson(const json& accelerator) {
  VmRecord r;
  r.spec.name = "web";
  r.id = "0123456789abcdef";
  json j = r.ToJson();
  if (accelerator.is_null()) {
    j.erase("accelerator");
  } else {
    j["accelerator"] = accelerator;
  }
  return j;
}

TEST(VmRecordTest, TheAcceleratorIsStoredByTheNameRegistryRowsAlreadyHold) {
  VmRecord r;
  r.spec.name = "web";
  r.accelerator = qemu::Accelerator::kKvm;
  EXPECT_EQ(r.ToJson()["accelerator"], "kvm");
  auto kvm = VmRecord::FromJson(RecordJson("kvm"));
  ASSERT_TRUE(kvm.ok()) << kvm.status().message();
  EXPECT_EQ(kvm->accelerator, qemu::Accelerator::kKvm);
  auto tcg = VmRecord::FromJson(RecordJson("tcg"));
  ASSERT_TRUE(tcg.ok());
  EXPECT_EQ(tcg->accelerator, qemu::Accelerator::kTcg);
}

TEST(VmRecordTest, ARowWithoutAKnownAcceleratorReadsAsTcg) {
  for (const json& name : {json(nullptr), json(""), json("hvf")}) {
    auto r = VmRecord::FromJson(RecordJson(name));
    ASSERT_TRUE(r.ok()) << name.dump();
    EXPECT_EQ(r->accelerator, qemu::Accelerator::kTcg) << name.dump();
  }
}

}  // namespace
}  // namespace ferry::vm
