#include "core/thread_priority.h"

#include <gtest/gtest.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <thread>

namespace ferry {
namespace {

int NiceOfThisThread() {
  return ::getpriority(PRIO_PROCESS, static_cast<id_t>(::syscall(SYS_gettid)));
}

TEST(ThreadPriorityBoostTest, RaisesOnlyTheCallingThreadAndPutsItBack) {
  std::thread([] {
    const int before = NiceOfThisThread();
    int other_during = 0;
    {
      ThreadPriorityBoost boost(before - 5);
      if (!boost.raised()) GTEST_SKIP() << "no CAP_SYS_NICE here";
      EXPECT_EQ(NiceOfThisThread(), before - 5);
      std::thread([&] { other_during = NiceOfThisThread(); }).join();
    }
    EXPECT_EQ(NiceOfThisThread(), before);
    // A thread started meanwhile inherits the raised value: the boost is for the data path's
    // own thread, which starts no others while boosted.
    EXPECT_EQ(other_during, before - 5);
  }).join();
}

TEST(ThreadPriorityBoostTest, ALowerPriorityIsNeverTakenAsABoost) {
  std::thread([] {
    const int before = NiceOfThisThread();
    {
      ThreadPriorityBoost lower(before + 1);
      EXPECT_FALSE(lower.raised());
      EXPECT_EQ(NiceOfThisThread(), before);
    }
    EXPECT_EQ(NiceOfThisThread(), before);
  }).join();
}

}  // namespace
}  // namespace ferry
