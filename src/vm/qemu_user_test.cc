#include "vm/qemu_user.h"

#include <gtest/gtest.h>
#include <unistd.h>

namespace ferry::vm {
namespace {

TEST(QemuUidRangeTest, ParsesFirstAndCountAndRefusesRoot) {
  auto r = QemuUidRange::Parse("1879048192:65536");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->first, 1879048192u);
  EXPECT_EQ(r->count, 65536u);
  for (const char* bad : {"", "1879048192", "0:10", "5:0", "x:1", "1:2:3", "4294967295:1",
                          "4294967200:100", "10:-1"}) {
    EXPECT_FALSE(QemuUidRange::Parse(bad).ok()) << bad;
  }
}

TEST(QemuUidRangeTest, ARangeHoldingAUsersUidIsRefused) {
  EXPECT_FALSE(CheckUidRangeUnused({1, 1000}).ok());  // daemon, bin, ... live there
  EXPECT_TRUE(CheckUidRangeUnused(QemuUidRange{}).ok());
}

TEST(QemuUidsTest, EachQemuGetsAUidOfItsOwnUntilItsLeaseGoes) {
  QemuUids uids({1000000, 3}, 77);
  auto a = uids.Acquire();
  auto b = uids.Acquire();
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(a->uid(), 1000000u);
  EXPECT_EQ(b->uid(), 1000001u);
  EXPECT_EQ(a->gid(), 77u);
  {
    QemuUidLease adopted = uids.Adopt(1000002);
    EXPECT_FALSE(uids.Acquire().ok()) << "all three are in use";
  }
  *a = QemuUidLease();  // the first QEMU ended
  auto c = uids.Acquire();
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->uid(), 1000000u);
  auto d = uids.Acquire();
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->uid(), 1000002u);
}

TEST(QemuUidsTest, ProcessUidReadsTheRealUid) {
  auto uid = ProcessUid(::getpid());
  ASSERT_TRUE(uid.ok());
  EXPECT_EQ(*uid, ::getuid());
}

}  // namespace
}  // namespace ferry::vm
