#include "migrate/nbd_turn.h"

#include <gtest/gtest.h>

#include <chrono>
#include <thread>

namespace ferry::migrate {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

milliseconds Since(Clock::time_point t) {
  return std::chrono::duration_cast<milliseconds>(Clock::now() - t);
}

TEST(NbdTurnTest, TheStreamGoesOnWhenNoRequestIsOwed) {
  NbdTurn turn;
  const auto start = Clock::now();
  turn.AwaitTurn(milliseconds(2000));
  turn.RequestIn();
  turn.AnswerOut();
  turn.AwaitTurn(milliseconds(2000));
  EXPECT_LT(Since(start), milliseconds(1000));
}

TEST(NbdTurnTest, TheStreamWaitsForTheAnswer) {
  NbdTurn turn;
  turn.RequestIn();
  const auto start = Clock::now();
  std::thread answer([&turn] {
    std::this_thread::sleep_for(milliseconds(100));
    turn.AnswerOut();
  });
  turn.AwaitTurn(milliseconds(5000));
  const milliseconds waited = Since(start);
  answer.join();
  EXPECT_GE(waited, milliseconds(90));
  EXPECT_LT(waited, milliseconds(4000));
}

TEST(NbdTurnTest, AnAnswerNeverOwedCostsTheStreamAtMostTheMaximum) {
  NbdTurn turn;
  turn.RequestIn();
  const auto start = Clock::now();
  turn.AwaitTurn(milliseconds(50));
  const milliseconds waited = Since(start);
  EXPECT_GE(waited, milliseconds(45));
  EXPECT_LT(waited, milliseconds(3000));
}

}  // namespace
}  // namespace ferry::migrate
