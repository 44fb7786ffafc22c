#include "hold/hold_journal.h"

#include <gtest/gtest.h>

namespace ferry::hold {
namespace {

using nlohmann::json;

TEST(HoldJournalTest, ARowReadsBackAsWritten) {
  HoldRow row;
  row.vm = "web-1";
  row.hold_id = "0123456789abcdef";
  row.step = HoldStep::kRestoring;
  row.held_at = 1700000000;
  row.expires_at = 1700003600;
  row.vm_was_running = true;
  auto back = HoldRow::FromJson("web-1", row.ToJson());
  ASSERT_TRUE(back.ok()) << back.status().message();
  EXPECT_EQ(back->hold_id, row.hold_id);
  EXPECT_EQ(back->step, HoldStep::kRestoring);
  EXPECT_EQ(back->held_at, row.held_at);
  EXPECT_EQ(back->expires_at, row.expires_at);
  EXPECT_TRUE(back->vm_was_running);
  for (HoldStep s : {HoldStep::kSealing, HoldStep::kDurable, HoldStep::kRestoring,
                     HoldStep::kExpired, HoldStep::kSending, HoldStep::kSent,
                     HoldStep::kReceiving}) {
    EXPECT_EQ(HoldStepFromName(HoldStepName(s)), s);
  }
  EXPECT_FALSE(back->transfer.size());
  EXPECT_FALSE(row.ToJson().contains("transfer"));
}

TEST(HoldJournalTest, ASendStepKeepsItsTransferAndPeer) {
  for (HoldStep step : {HoldStep::kSending, HoldStep::kSent, HoldStep::kReceiving}) {
    HoldRow row;
    row.vm = "web-1";
    row.hold_id = "0123456789abcdef";
    row.step = step;
    row.held_at = 1700000000;
    row.transfer = "op-7";
    row.peer = "h2";
    auto back = HoldRow::FromJson("web-1", row.ToJson());
    ASSERT_TRUE(back.ok()) << back.status().message();
    EXPECT_EQ(back->step, step);
    EXPECT_EQ(back->transfer, "op-7");
    EXPECT_EQ(back->peer, "h2");
    // A send step without them could not be settled: refused, naming the row.
    json j = row.ToJson();
    j.erase("peer");
    auto bad = HoldRow::FromJson("web-1", j);
    ASSERT_FALSE(bad.ok());
    EXPECT_NE(bad.status().message().find("web-1"), std::string::npos);
  }
}

// A sender asks the receiver whether it kept a hold; once the receiver may have pruned its record
// of the transfer, its "absent" no longer answers that.
TEST(HoldJournalTest, ASendOlderThanTheReceiversRecordsIsNoLongerSettledByAsking) {
  HoldRow row;
  row.vm = "web-1";
  row.hold_id = "0123456789abcdef";
  row.step = HoldStep::kSent;
  row.transfer = "op-7";
  row.peer = "h2";
  row.sent_at = 1700000000;
  auto back = HoldRow::FromJson("web-1", row.ToJson());
  ASSERT_TRUE(back.ok()) << back.status().message();
  EXPECT_EQ(back->sent_at, 1700000000);
  EXPECT_FALSE(TransferRecordMayBeGone(*back, row.sent_at + 3600));
  EXPECT_FALSE(TransferRecordMayBeGone(*back, row.sent_at + kTransferRecordKeepSeconds - 2 * 86400));
  EXPECT_TRUE(TransferRecordMayBeGone(*back, row.sent_at + kTransferRecordKeepSeconds));
  // A row of an older ferryd has no time: asking settles it, as before.
  row.sent_at = 0;
  EXPECT_FALSE(row.ToJson().contains("sent_at"));
  EXPECT_FALSE(TransferRecordMayBeGone(row, int64_t{1} << 40));
}

TEST(HoldJournalTest, ARowOfTheWrongShapeIsCorruptionNamingTheVm) {
  const json bad[] = {json::array(),
                      {{"hold_id", "x"}, {"step", "flying"}, {"held_at", 1}, {"expires_at", 0}},
                      {{"hold_id", 5}, {"step", "durable"}, {"held_at", 1}, {"expires_at", 0}},
                      {{"hold_id", "x"}, {"step", "durable"}, {"held_at", "1"}, {"expires_at", 0}}};
  for (const json& j : bad) {
    auto row = HoldRow::FromJson("web-1", j);
    ASSERT_FALSE(row.ok()) << j.dump();
    EXPECT_NE(row.status().message().find("web-1"), std::string::npos) << row.status().message();
  }
}

TEST(TransferRecordTest, ReadsWhatItWroteAndAnUndatedRecordOfAnOlderFerryd) {
  auto back = TransferRecord::FromJson("op-1", TransferRecord{"web", "h1", 1700000000}.ToJson());
  ASSERT_TRUE(back.ok()) << back.status().message();
  EXPECT_EQ(back->vm, "web");
  EXPECT_EQ(back->from, "h1");
  EXPECT_EQ(back->at, 1700000000);
  auto old = TransferRecord::FromJson("op-1", {{"vm", "web"}, {"from", "h1"}});
  ASSERT_TRUE(old.ok());
  EXPECT_EQ(old->at, 0);  // never pruned
  EXPECT_FALSE(TransferRecord::FromJson("op-1", {{"at", "yesterday"}}).ok());
}

}  // namespace
}  // namespace ferry::hold
