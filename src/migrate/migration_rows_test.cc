#include "migrate/migration_rows.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace ferry::migrate {
namespace {

using ::testing::HasSubstr;

TEST(MigrationRowsTest, AJournalRowReadsWhatItWroteInEitherPhase) {
  for (JournalPhase phase : {JournalPhase::kPerform, JournalPhase::kFinish}) {
    auto back = JournalRow::FromJson("m1", JournalRow{"db", "h2", phase}.ToJson());
    ASSERT_TRUE(back.ok()) << back.status().message();
    EXPECT_EQ(back->vm, "db");
    EXPECT_EQ(back->to, "h2");
    EXPECT_EQ(back->phase, phase);
  }
}

TEST(MigrationRowsTest, AnUnknownPhaseOrAMissingMemberIsRefusedNamingTheMigration) {
  auto unknown = JournalRow::FromJson("m1", {{"vm", "db"}, {"to", "h2"}, {"phase", "confirm"}});
  ASSERT_FALSE(unknown.ok());
  EXPECT_THAT(unknown.status().message(), HasSubstr("migration m1"));
  EXPECT_THAT(unknown.status().message(), HasSubstr("confirm"));
  EXPECT_FALSE(JournalRow::FromJson("m1", {{"vm", "db"}, {"phase", "perform"}}).ok());
  EXPECT_FALSE(PeerRow::FromJson("h2", {{"address", 7}}).ok());
  auto peer = PeerRow::FromJson("h2", PeerRow{"10.0.0.2:7800"}.ToJson());
  ASSERT_TRUE(peer.ok());
  EXPECT_EQ(peer->address, "10.0.0.2:7800");
}

}  // namespace
}  // namespace ferry::migrate
