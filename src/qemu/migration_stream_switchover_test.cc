// QEMU 10's SWITCHOVER_START command: read where QEMU sends it, for the machine types that send
// it, and refused anywhere else.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <string>
#include <vector>

#include "qemu/migration_stream.h"
#include "qemu/migration_stream_test_helpers.h"

namespace ferry::qemu {
namespace {

using namespace stream_test;  // NOLINT(google-build-using-namespace): the tests' shared helpers

constexpr char kQemu10Machine[] = "pc-q35-10.0";

// Synthetic() as QEMU 10 sends it: its machine type, SWITCHOVER_START before RAM's END.
StreamBuilder Start10() {
  StreamBuilder s;
  s.Header().Config(kQemu10Machine).RamStart().BlockList({{"pc.ram", 8 * 4096}});
  return s;
}
Bytes Synthetic10() {
  StreamBuilder s = Start10();
  s.Page("pc.ram", 0, 0xab).Eos();
  s.Part().Zero("pc.ram", 4096).Eos();
  s.Command();
  s.End().Page("", 8192, 0xef).Eos();
  return s.DeviceState().b;
}

TEST(MigrationStreamSwitchoverTest, MachineTypesFromQemu10SendIt) {
  EXPECT_TRUE(MachineSendsSwitchoverStart("pc-q35-10.0"));
  EXPECT_TRUE(MachineSendsSwitchoverStart("pc-q35-10.1"));
  EXPECT_TRUE(MachineSendsSwitchoverStart("pc-i440fx-11.0"));
  EXPECT_FALSE(MachineSendsSwitchoverStart("pc-q35-9.2"));
  EXPECT_FALSE(MachineSendsSwitchoverStart("pc-q35-7.2"));
  EXPECT_FALSE(MachineSendsSwitchoverStart("pc-q35-1.0"));
  EXPECT_FALSE(MachineSendsSwitchoverStart("pc-q35-10"));
  EXPECT_FALSE(MachineSendsSwitchoverStart("pc-q35-"));
  EXPECT_FALSE(MachineSendsSwitchoverStart("microvm"));
  EXPECT_FALSE(MachineSendsSwitchoverStart("q35-10.0"));
  EXPECT_FALSE(MachineSendsSwitchoverStart("pc-q35-1000.0"));
}

TEST(MigrationStreamSwitchoverTest, ReadsItBeforeRamsEndAndPassesItOn) {
  const Bytes stream = Synthetic10();
  Recorder rec;
  MigrationStreamReader reader(rec);
  rec.reader = &reader;
  Status st = ReadAll(stream, reader);
  ASSERT_TRUE(st.ok()) << st.message();
  EXPECT_EQ(reader.machine_type(), kQemu10Machine);
  ASSERT_EQ(rec.pages.size(), 3u);
  EXPECT_EQ(rec.pages[2].offset, 8192u);
  EXPECT_EQ(rec.sections,
            (std::vector<RamSectionKind>{RamSectionKind::kSetup, RamSectionKind::kIteration,
                                         RamSectionKind::kComplete}));
  // The command is among the other bytes, so a stripped stream still carries it to the loader.
  const Bytes command = {0x08, 0x00, 0x0b, 0x00, 0x00, 0x03};
  EXPECT_NE(std::search(rec.other.begin(), rec.other.end(), command.begin(), command.end()),
            rec.other.end());
  // Split anywhere, the same.
  for (size_t piece : {size_t{1}, size_t{3}, size_t{4097}}) {
    Recorder again;
    MigrationStreamReader r(again);
    ASSERT_TRUE(ReadAll(stream, r, piece).ok()) << piece;
    EXPECT_EQ(again.pages, rec.pages);
    EXPECT_EQ(again.other, rec.other);
  }
}

TEST(MigrationStreamSwitchoverTest, AStreamWithoutItIsReadToo) {
  // QEMU 10 with send-switchover-start off (-global migration.send-switchover-start=off).
  StreamBuilder s = Start10();
  s.Page("pc.ram", 0, 0xab).Eos().End().Eos();
  Status st = ReadAll(s.DeviceState().b);
  EXPECT_TRUE(st.ok()) << st.message();
}

TEST(MigrationStreamSwitchoverTest, RefusedForAMachineTypeThatDoesNotSendIt) {
  StreamBuilder s = Start();  // pc-q35-7.2
  s.Page("pc.ram", 0, 0xab).Eos();
  const uint64_t at = s.size();
  s.Command().End().Eos();
  ExpectRefused(s.DeviceState().b, at, "machine type \"pc-q35-7.2\" sends none");
}

TEST(MigrationStreamSwitchoverTest, RefusedAnywhereButBetweenRamsStartAndEnd) {
  StreamBuilder before;  // before RAM's START
  before.Header().Config(kQemu10Machine);
  const uint64_t at = before.size();
  before.Command();
  ExpectRefused(before.b, at, "outside RAM's START to END");

  StreamBuilder after = Start10();  // after RAM's END
  after.Page("pc.ram", 0, 0xab).Eos().End().Eos();
  const uint64_t at_after = after.size();
  after.Command().DeviceState();
  ExpectRefused(after.b, at_after, "outside RAM's START to END");

  StreamBuilder twice = Start10();
  twice.Eos().Command();
  const uint64_t at_twice = twice.size();
  twice.Command().End().Eos().DeviceState();
  ExpectRefused(twice.b, at_twice, "a second SWITCHOVER_START");

  StreamBuilder part_after = Start10();  // only RAM's END may follow it
  part_after.Eos().Command();
  const uint64_t at_part = part_after.size();
  part_after.Part().Eos().End().Eos().DeviceState();
  ExpectRefused(part_after.b, at_part, "after SWITCHOVER_START");

  StreamBuilder device_state = Start10();
  device_state.Eos().Command();
  const uint64_t at_full = device_state.size();
  device_state.DeviceState();
  ExpectRefused(device_state.b, at_full, "before RAM's END");
}

TEST(MigrationStreamSwitchoverTest, RefusesEveryOtherCommandAndAnyData) {
  // PING (2, 4 bytes), POSTCOPY_ADVISE (3), PACKAGED (7), RECV_BITMAP (10), one past the last.
  const std::vector<std::pair<uint16_t, uint16_t>> cases = {{2, 4},  {3, 16}, {7, 4},       {10, 1},
                                                            {12, 0}, {11, 1}, {11, 0xffff}, {0, 0}};
  for (const auto& [command, length] : cases) {
    StreamBuilder s = Start10();
    s.Eos();
    const uint64_t at = s.size();
    s.Command(command, length);
    s.b.insert(s.b.end(), length, 0);
    s.End().Eos().DeviceState();
    ExpectRefused(s.b, at,
                  "COMMAND " + std::to_string(command) + " with " + std::to_string(length) +
                      " bytes: only SWITCHOVER_START");
  }
}

TEST(MigrationStreamSwitchoverTest, TruncationInsideTheCommandFails) {
  const Bytes stream = Synthetic10();
  const Bytes command = {0x08, 0x00, 0x0b, 0x00, 0x00};
  auto it = std::search(stream.begin(), stream.end(), command.begin(), command.end());
  ASSERT_NE(it, stream.end());
  const size_t at = size_t(it - stream.begin());
  for (size_t cut = at + 1; cut < at + command.size(); ++cut) {
    Status st = ReadAll(Bytes(stream.begin(), stream.begin() + cut));
    ASSERT_FALSE(st.ok()) << cut;
    EXPECT_NE(st.message().find("ends in a COMMAND section"), std::string::npos) << st.message();
  }
}

// make_streams.sh's running case with qemu-system-x86_64 10.0.2 (Debian's bookworm-backports).
TEST(MigrationStreamSwitchoverTest, QemuTensRealStreamIsReadWhole) {
  const Bytes stream = ReadTestStream("qemu10_pattern_running.mig.gz");
  Recorder r;
  MigrationStreamReader reader(r);
  Status st = ReadAll(stream, reader);
  ASSERT_TRUE(st.ok()) << st.message();
  EXPECT_EQ(reader.machine_type(), kQemu10Machine);
  EXPECT_GT(std::count(r.sections.begin(), r.sections.end(), RamSectionKind::kIteration), 2);
  EXPECT_EQ(r.sections.back(), RamSectionKind::kComplete);
  ASSERT_FALSE(r.blocks.empty());
  EXPECT_EQ(r.blocks[0].name, "ram0");
  EXPECT_EQ(r.blocks[0].used_bytes, uint64_t{64} << 20);
  // QEMU sent SWITCHOVER_START once, right before RAM's END.
  const Bytes command = {0x08, 0x00, 0x0b, 0x00, 0x00, 0x03};
  auto at = std::search(stream.begin(), stream.end(), command.begin(), command.end());
  ASSERT_NE(at, stream.end());
  EXPECT_EQ(std::search(at + 1, stream.end(), command.begin(), command.end()), stream.end());
  // The last record of each page decides it; SeaBIOS writes below 1 MiB and near the top.
  std::map<uint64_t, uint32_t> last;
  for (const auto& p : r.pages) {
    if (p.block != 0) continue;
    last[p.offset] = p.zero ? (p.fill == 0 ? Crc(Bytes(kMigrationPageBytes, 0)) : 1) : p.crc;
  }
  EXPECT_EQ(last.size(), (uint64_t{64} << 20) / kMigrationPageBytes);
  for (uint64_t i = 0; i * kMigrationPageBytes < (uint64_t{32} << 20); i += 97) {
    if (i * kMigrationPageBytes < (uint64_t{1} << 20)) continue;
    EXPECT_EQ(last[i * kMigrationPageBytes], Crc(PatternPage(i))) << "page " << i;
  }
  // Without ram0's pages (what a snapshot keeps) it is still a stream the reader takes whole,
  // the command in it.
  Status strip_status;
  Bytes stripped = Strip(
      stream, [](const MigrationRamBlock& b) { return b.name == "ram0"; }, &strip_status);
  ASSERT_TRUE(strip_status.ok());
  EXPECT_LT(stripped.size(), stream.size() / 4);
  EXPECT_NE(std::search(stripped.begin(), stripped.end(), command.begin(), command.end()),
            stripped.end());
  Recorder again;
  st = ReadAll(stripped, again);
  ASSERT_TRUE(st.ok()) << st.message();
  for (const auto& p : again.pages) EXPECT_NE(again.blocks[p.block].name, "ram0");
}

}  // namespace
}  // namespace ferry::qemu
