#include "hold/held_vm.h"

#include <gtest/gtest.h>

namespace ferry::hold {
namespace {

using nlohmann::json;

HeldVm Sample() {
  vm::VmSpec spec;
  spec.name = "web-1";
  spec.image = "default";
  spec.memory_mib = 256;
  HeldVm held{spec, *MacAddress::Parse("52:54:00:12:34:56")};
  held.vmgenid = Guid::Random();
  held.owner = std::string(64, 'a');
  held.vm_id = "0123456789abcdef";
  return held;
}

TEST(HeldVmTest, TheSameMachineReadsBack) {
  const HeldVm held = Sample();
  auto back = HeldVm::Parse(held.ToText(), "hold of vm web-1");
  ASSERT_TRUE(back.ok()) << back.status().message();
  EXPECT_EQ(back->spec.ToJson(), held.spec.ToJson());
  EXPECT_EQ(back->mac, held.mac);
  ASSERT_TRUE(back->vmgenid.has_value());
  EXPECT_EQ(back->vmgenid->ToString(), held.vmgenid->ToString());
  EXPECT_EQ(back->owner, held.owner);
  EXPECT_EQ(back->vm_id, held.vm_id);
}

TEST(HeldVmTest, ADiskChainOfFrozenImagesReadsBack) {
  HeldVm held = Sample();
  held.spec.disk_mib = 64;
  held.disk_chain = {"0123456789abcdef.qcow2", "fedcba9876543210.qcow2"};
  auto back = HeldVm::Parse(held.ToText(), "hold of vm web-1");
  ASSERT_TRUE(back.ok()) << back.status().message();
  EXPECT_EQ(back->disk_chain, held.disk_chain);
  EXPECT_EQ(DiskBlobName(-1), "disk");
  EXPECT_EQ(DiskBlobName(1), "disk-base-1");
  EXPECT_FALSE(IsFrozenImageName("x/y.qcow2"));
  EXPECT_FALSE(IsFrozenImageName(".qcow2"));
  EXPECT_TRUE(IsFrozenImageName("abc123.qcow2"));
}

TEST(HeldVmTest, WhatCannotBeTheSameMachineIsRefused) {
  json base = json::parse(Sample().ToText());
  auto with = [&](const char* key, json value) {
    json j = base;
    j[key] = std::move(value);
    return j.dump();
  };
  const std::string bad[] = {
      "[]",
      "{",
      with("mac", "52:54:00:12:34:56,romfile=/etc/shadow"),
      with("mac", 7),
      with("vmgenid", "not-a-guid"),
      with("owner", "ab"),
      with("spec", "web-1"),
      with("disk_chain", json::array({"../../etc/shadow"})),
      with("disk_chain", json::array({"abc.qcow2"})),  // the VM has no disk
      with("disk_chain", "abc.qcow2"),
      std::string(kMaxHeldVmBytes + 1, ' '),
      std::string(10000, '[') + std::string(10000, ']'),
  };
  for (const std::string& text : bad) {
    auto parsed = HeldVm::Parse(text, "hold of vm web-1");
    ASSERT_FALSE(parsed.ok()) << text.substr(0, 80);
    EXPECT_NE(parsed.status().message().find("hold of vm web-1"), std::string::npos)
        << parsed.status().message();
  }
}

}  // namespace
}  // namespace ferry::hold
