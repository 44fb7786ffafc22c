#include "cli/terminal_text.h"

#include <gtest/gtest.h>

#include <sstream>

#include "cli/table.h"

namespace ferry::cli {
namespace {

TEST(EscapeForTerminalTest, PlainTextAndUtf8PassUnchanged) {
  EXPECT_EQ(EscapeForTerminal("web-1 10.0.2.15/24"), "web-1 10.0.2.15/24");
  EXPECT_EQ(EscapeForTerminal("h\xc3\xa9te \xe2\x9c\x93 \xf0\x9f\x9a\xa2"),
            "h\xc3\xa9te \xe2\x9c\x93 \xf0\x9f\x9a\xa2");
}

// A hostname a hostile guest might report: it would clear the screen, set the window title and
// overwrite the line. Every control byte must come out as visible text.
TEST(EscapeForTerminalTest, ControlsEscapesAndBadUtf8BecomeVisible) {
  EXPECT_EQ(EscapeForTerminal("evil\x1b[2J\x1b]0;owned\x07\rok\n"),
            "evil\\x1b[2J\\x1b]0;owned\\x07\\x0dok\\x0a");
  EXPECT_EQ(EscapeForTerminal(std::string("a\0b", 3)), "a\\x00b");
  EXPECT_EQ(EscapeForTerminal("\x7f"), "\\x7f");
  EXPECT_EQ(EscapeForTerminal("\xc2\x9b"
                              "31m"),
            "\\xc2\\x9b31m");  // C1 CSI in UTF-8
  EXPECT_EQ(EscapeForTerminal("\x9b"
                              "31m"),
            "\\x9b31m");  // C1 CSI as a raw byte
  EXPECT_EQ(EscapeForTerminal("\xff\xc3"), "\\xff\\xc3");
  EXPECT_EQ(EscapeForTerminal("\xc0\xaf"), "\\xc0\\xaf");  // overlong '/'
  EXPECT_EQ(EscapeForTerminal("a\\x1b"), "a\\\\x1b");      // a literal backslash stays distinct
}

TEST(EscapeForTerminalTest, TableCellsAreEscaped) {
  Table t({"NAME", "HOSTNAME"});
  t.AddRow({"web-1", "x\x1b[2Jy"});
  std::ostringstream out;
  t.Print(out);
  EXPECT_EQ(out.str().find('\x1b'), std::string::npos) << out.str();
  EXPECT_NE(out.str().find("x\\x1b[2Jy"), std::string::npos) << out.str();
}

TEST(FilterConsoleForTerminalTest, RemovesEscapeSequencesKeepsLines) {
  EXPECT_EQ(FilterConsoleForTerminal("[    0.1] Linux\r\nredis ready\n"),
            "[    0.1] Linux\nredis ready\n");
  EXPECT_EQ(FilterConsoleForTerminal("\x1b[1;31mred\x1b[0m\tx\n"), "red\tx\n");
  EXPECT_EQ(FilterConsoleForTerminal("a\x1b]0;title\x07"
                                     "b\x1b]2;t\x1b\\c"),
            "abc");
  EXPECT_EQ(FilterConsoleForTerminal("a\x1b"
                                     "cb\x1b(Bc"),
            "abc");  // reset; charset
  EXPECT_EQ(FilterConsoleForTerminal("secret\rpublic"), "secretpublic");
  EXPECT_EQ(FilterConsoleForTerminal("bell\x07 nul\x01 \xff \xc3\xa9"),
            "bell\\x07 nul\\x01 \\xff \xc3\xa9");
  EXPECT_EQ(FilterConsoleForTerminal("cut\x1b["), "cut");
  EXPECT_EQ(FilterConsoleForTerminal("odd\x1b[1\nnext"), "odd\nnext");
}

}  // namespace
}  // namespace ferry::cli
