#include "cli/table.h"

#include <gtest/gtest.h>

#include <sstream>

namespace ferry::cli {
namespace {

TEST(TableTest, ColumnsAlignToTheWidestCell) {
  Table t({"NAME", "STATE"});
  t.AddRow({"web-1", "running"});
  t.AddRow({"a", "stopped"});
  std::ostringstream out;
  t.Print(out);
  EXPECT_EQ(out.str(), "NAME   STATE\nweb-1  running\na      stopped\n");
}

TEST(TableTest, DurationsReadLikeAHuman) {
  EXPECT_EQ(FormatDuration(850), "850ms");
  EXPECT_EQ(FormatDuration(12300), "12.3s");
  EXPECT_EQ(FormatDuration(185000), "3m05s");
  EXPECT_EQ(FormatDuration(7500000), "2h05m");
  EXPECT_EQ(FormatDuration(-5), "0ms");
}

}  // namespace
}  // namespace ferry::cli
