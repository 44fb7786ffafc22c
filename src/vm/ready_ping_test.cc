#include "vm/ready_ping.h"

#include <gtest/gtest.h>

namespace ferry::vm {
namespace {

using std::chrono::milliseconds;

TEST(ReadyPing, NoPingWhileTheGuestDoesNotRun) {
  int asked = 0;
  auto paused = [&] {
    ++asked;
    return false;
  };
  EXPECT_EQ(NextReadyPing(false, milliseconds(0), paused), ReadyPingStep::kWait);
  EXPECT_EQ(NextReadyPing(true, kUnansweredPingResend * 100, paused), ReadyPingStep::kWait);
  EXPECT_EQ(asked, 2);
}

TEST(ReadyPing, OnePingOnTheWireAtATime) {
  int asked = 0;
  auto runs = [&] {
    ++asked;
    return true;
  };
  EXPECT_EQ(NextReadyPing(false, milliseconds(0), runs), ReadyPingStep::kSend);
  // Unanswered: no second one, however often the watcher looks, and no QMP round trip for it.
  for (milliseconds waited(0); waited < kUnansweredPingResend; waited += milliseconds(500)) {
    EXPECT_EQ(NextReadyPing(true, waited, runs), ReadyPingStep::kWait) << waited.count();
  }
  EXPECT_EQ(asked, 1);
}

TEST(ReadyPing, ReplacesAPingUnansweredLongWhileTheGuestRuns) {
  auto runs = [] { return true; };
  EXPECT_EQ(NextReadyPing(true, kUnansweredPingResend, runs), ReadyPingStep::kSend);
}

}  // namespace
}  // namespace ferry::vm
