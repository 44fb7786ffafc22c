#include "core/guarded_thread.h"

#include <gtest/gtest.h>

#include <future>
#include <stdexcept>

namespace ferry {
namespace {

TEST(RunGuardedTest, TurnsAnyThrowIntoInternal) {
  EXPECT_TRUE(RunGuarded("x", [] {}).ok());
  Status s = RunGuarded("vm web-1 guest watcher", [] { throw std::runtime_error("boom"); });
  EXPECT_EQ(s.code(), Status::Code::kInternal);
  EXPECT_EQ(s.message(), "vm web-1 guest watcher: boom");
  EXPECT_FALSE(RunGuarded("x", [] { throw 42; }).ok());
}

// Without the guard this test process would end in std::terminate.
TEST(StartGuardedThreadTest, AThrowingBodyIsReportedNotFatal) {
  std::promise<Status> reported;
  auto t = StartGuardedThread(
      "vm web-1 guest watcher", [] { throw std::out_of_range("nlohmann type_error"); },
      [&](const Status& s) { reported.set_value(s); });
  ASSERT_TRUE(t.ok());
  t->join();
  Status s = reported.get_future().get();
  EXPECT_EQ(s.message(), "vm web-1 guest watcher: nlohmann type_error");
}

}  // namespace
}  // namespace ferry
