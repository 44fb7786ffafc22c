#include "snapshot/snapshot_take_plan.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace ferry::snapshot {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using vm::VmState;

TEST(SnapshotCopyTest, ARunningVmIsCopiedLiveUnlessToldOrItsDiskForbids) {
  EXPECT_EQ(CopyFor(VmState::kRunning, SnapshotCopy::kLive, true), SnapshotCopy::kLive);
  EXPECT_EQ(CopyFor(VmState::kRunning, SnapshotCopy::kPaused, true), SnapshotCopy::kPaused);
  EXPECT_EQ(CopyFor(VmState::kRunning, SnapshotCopy::kLive, false), SnapshotCopy::kPaused);
  // A paused guest writes nothing: copied as it is, whatever ferryd was told.
  EXPECT_EQ(CopyFor(VmState::kPaused, SnapshotCopy::kLive, true), SnapshotCopy::kPaused);
}

TEST(SnapshotCopyTest, ADiskIsFrozenLiveOnlyWhenItsFileIsANodeOfItsOwn) {
  const std::string file = "disk-file";
  EXPECT_TRUE(DiskAllowsLiveCopy(false, Status::Unavailable("no QMP"), file));
  EXPECT_TRUE(DiskAllowsLiveCopy(true, std::vector<std::string>{"disk", file}, file));
  // Frozen by an older ferryd: the file sits inside the qcow2 node.
  EXPECT_FALSE(DiskAllowsLiveCopy(true, std::vector<std::string>{"disk"}, file));
  EXPECT_FALSE(DiskAllowsLiveCopy(true, Status::Unavailable("no QMP"), file));
}

// A VM under a paused copy: each call journalled, `fail` the ones that fail.
struct PausedVm {
  std::vector<std::string> journal;
  std::string fail;
  std::function<Status()> Step(const std::string& name) {
    return [this, name] {
      journal.push_back(name);
      return fail == name ? Status::Internal(name + " failed") : Status::Ok();
    };
  }
  Status Copy(bool running) {
    return CopyWhilePaused(running, Step("stop"), Step("capture"), Step("resume"));
  }
};

TEST(CopyWhilePausedTest, ARunningVmIsResumedWhateverTheCaptureDid) {
  PausedVm ok;
  EXPECT_TRUE(ok.Copy(true).ok());
  EXPECT_THAT(ok.journal, ElementsAre("stop", "capture", "resume"));

  PausedVm capture_failed{{}, "capture"};
  Status st = capture_failed.Copy(true);
  EXPECT_THAT(st.message(), HasSubstr("capture failed"));
  EXPECT_THAT(capture_failed.journal, ElementsAre("stop", "capture", "resume"));
}

TEST(CopyWhilePausedTest, AVmThatDidNotStopIsNotCapturedNorResumed) {
  PausedVm vm{{}, "stop"};
  EXPECT_THAT(vm.Copy(true).message(), HasSubstr("stop failed"));
  EXPECT_THAT(vm.journal, ElementsAre("stop"));
}

TEST(CopyWhilePausedTest, AFailedResumeFailsTheTakeAndAPausedVmStaysPaused) {
  PausedVm not_resumed{{}, "resume"};
  Status st = not_resumed.Copy(true);
  EXPECT_EQ(st.code(), Status::Code::kUnavailable);
  EXPECT_THAT(st.message(), HasSubstr("did not resume"));

  PausedVm paused;
  EXPECT_TRUE(paused.Copy(false).ok());
  EXPECT_THAT(paused.journal, ElementsAre("capture"));
}

// The take's steps as a journal; `fail_at` fails that step.
class FakeTake : public TakeSteps {
 public:
  explicit FakeTake(std::string fail_at = "") : fail_at_(std::move(fail_at)) {}
  std::vector<std::string> journal;
  Status Prepare() override { return Step("prepare"); }
  Status Capture() override { return Step("capture"); }
  Status WriteDir() override { return Step("write"); }
  Status Register() override { return Step("register"); }
  void Discard() override { journal.push_back("discard"); }

 private:
  Status Step(const std::string& name) {
    journal.push_back(name);
    return name == fail_at_ ? Status::Internal(name + " failed") : Status::Ok();
  }
  std::string fail_at_;
};

TEST(RunTakeTest, EachFailingStepEndsTheTakeAndDiscardsWhatWasMade) {
  struct Case {
    std::string fail_at;
    std::vector<std::string> journal;
  };
  const std::vector<Case> cases = {
      {"prepare", {"prepare", "discard"}},
      {"capture", {"prepare", "capture", "discard"}},
      {"write", {"prepare", "capture", "write", "discard"}},
      {"register", {"prepare", "capture", "write", "register", "discard"}},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.fail_at);
    FakeTake take(c.fail_at);
    Status st = RunTake(take);
    EXPECT_THAT(st.message(), HasSubstr(c.fail_at + " failed"));
    EXPECT_EQ(take.journal, c.journal);
  }
}

TEST(RunTakeTest, ARegisteredSnapshotIsKept) {
  FakeTake take;
  EXPECT_TRUE(RunTake(take).ok());
  EXPECT_THAT(take.journal, ElementsAre("prepare", "capture", "write", "register"));
}

}  // namespace
}  // namespace ferry::snapshot
