#include "core/operation.h"

#include <gtest/gtest.h>

#include <thread>

namespace ferry {
namespace {

TEST(OperationTest, ReportsPhaseProgressAndOutcome) {
  OperationLog log;
  auto op = log.Start("create", "web-1");
  op->SetPhase("booting", 60);
  auto j = op->ToJson();
  EXPECT_EQ(j["state"], "running");
  EXPECT_EQ(j["phase"], "booting");
  EXPECT_EQ(j["progress"], 60);
  EXPECT_FALSE(j.contains("error"));

  op->Fail(Status::Unavailable("vm web-1: QEMU did not start"));
  j = op->ToJson();
  EXPECT_EQ(j["state"], "failed");
  EXPECT_EQ(j["error"]["code"], "unavailable");
  EXPECT_EQ(j["error"]["message"], "vm web-1: QEMU did not start");
  EXPECT_TRUE(j.contains("duration_ms"));
  EXPECT_EQ((*log.Get(op->id()))->id(), op->id());
  EXPECT_EQ(log.Get("op-nope").status().code(), Status::Code::kNotFound);
}

TEST(OperationTest, WaitDoneWakesWhenTheWorkerFinishes) {
  OperationLog log;
  auto op = log.Start("stop", "web-1");
  EXPECT_FALSE(op->WaitDone(1));
  std::thread worker([op] { op->Succeed({{"state", "stopped"}}); });
  EXPECT_TRUE(op->WaitDone(10000));
  worker.join();
  EXPECT_EQ(op->ToJson()["result"]["state"], "stopped");
}

TEST(OperationTest, OldFinishedOperationsAreDroppedRunningOnesKept) {
  OperationLog log;
  auto running = log.Start("create", "long");
  for (size_t i = 0; i < OperationLog::kKeepFinished + 10; ++i) log.Start("x", "y")->Succeed();
  log.Start("x", "y");
  EXPECT_TRUE(log.Get(running->id()).ok());
  EXPECT_LE(log.List().size(), OperationLog::kKeepFinished + 2);
}

}  // namespace
}  // namespace ferry
