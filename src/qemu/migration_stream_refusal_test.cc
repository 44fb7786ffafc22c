// The migration stream reader refusing what it cannot read exactly: fail-closed, at the byte.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "qemu/migration_stream.h"
#include "qemu/migration_stream_test_helpers.h"

namespace ferry::qemu {
namespace {

using namespace stream_test;  // NOLINT(google-build-using-namespace): the tests' shared helpers

TEST(MigrationStreamTest, RefusesABadHeaderOrConfiguration) {
  Bytes s = Synthetic();
  Bytes bad = s;
  bad[0] = 'X';
  ExpectRefused(bad, 0, "no \"QEVM\" magic");
  bad = s;
  bad[7] = 4;
  ExpectRefused(bad, 4, "stream version 4");
  bad = s;
  bad[8] = 0x01;
  ExpectRefused(bad, 8, "no configuration section");
  bad = s;
  bad[11] = 0x01;  // machine type of 0x10a bytes
  ExpectRefused(bad, 9, "machine type of 266 bytes");

  StreamBuilder sub;
  sub.Header().Config().U8(0x05).Str("configuration/whatever").Be32(1);
  ExpectRefused(sub.b, 25, "unknown configuration subsection");
  StreamBuilder cap;
  cap.Header().Config().U8(0x05).Str("configuration/capabilities").Be32(1).Be32(1).Str("zerocopy");
  ExpectRefused(cap.b, cap.size() - 8, "capability \"zerocopy\" is not supported");
  StreamBuilder bits;
  bits.Header().Config().U8(0x05).Str("configuration/target-page-bits").Be32(1).Be32(16);
  ExpectRefused(bits.b, bits.size() - 4, "target page bits 16");
}

TEST(MigrationStreamTest, RefusesSectionsItCannotFrame) {
  StreamBuilder cmd;
  cmd.Header().Config().U8(0x08).Be32(0);
  ExpectRefused(cmd.b, 23, "COMMAND section");
  StreamBuilder block;
  block.Header().Config().U8(0x01).Be32(1).Str("block").Be32(0).Be32(1);
  ExpectRefused(block.b, 23, "START section of \"block\"");
  StreamBuilder full;
  full.Header().Config().U8(0x04).Be32(1).Str("timer").Be32(0).Be32(2);
  ExpectRefused(full.b, 23, "a FULL section before RAM's END");
  StreamBuilder part = Start();
  part.Eos();
  uint64_t at = part.size();
  part.Part(9).Eos(9);
  ExpectRefused(part.b, at, "section id 9, which is not RAM's");
  StreamBuilder footer = Start();
  footer.Be64(0x10).U8(0x7e).Be32(3);
  ExpectRefused(footer.b, footer.size() - 5, "footer of section 2");
  StreamBuilder no_footer = Start();
  no_footer.Be64(0x10).End();
  ExpectRefused(no_footer.b, no_footer.size() - 5, "footer of section 2");
  StreamBuilder after_end = Start();
  after_end.Eos().End().Eos();
  at = after_end.size();
  after_end.Part().Eos().DeviceState();
  ExpectRefused(after_end.b, at, "after RAM's END that is neither FULL nor EOF");
}

TEST(MigrationStreamTest, RefusesFlagsItDoesNotUnderstand) {
  const std::vector<std::pair<uint64_t, std::string>> cases = {{0x100 | 0x20, "compressed page"},
                                                               {0x40, "XBZRLE"},
                                                               {0x80, "RDMA hook"},
                                                               {0x200, "multifd flush"},
                                                               {0x01, "obsolete FULL"},
                                                               {0x800, "unknown flags 0x800"},
                                                               {0x02 | 0x08, "unknown combination"},
                                                               {0x10 | 0x20, "unknown combination"},
                                                               {0x04 | 0x20, "unknown combination"},
                                                               {0, "unknown combination"}};
  for (const auto& [flags, what] : cases) {
    StreamBuilder s = Start();
    s.Page("pc.ram", 0, 1);
    uint64_t at = s.size();
    s.Be64(4096 | flags).Str("pc.ram").U8(0).Eos();
    ExpectRefused(s.b, at, what);
  }
}

TEST(MigrationStreamTest, RefusesPagesOutsideTheBlockList) {
  StreamBuilder outside = Start();
  uint64_t at = outside.size();
  outside.Page("pc.bios", 2 * 4096, 1);
  ExpectRefused(outside.b, at, "offset 0x2000 of RAM block \"pc.bios\", which has 8192 bytes");
  StreamBuilder far = Start();
  at = far.size();
  far.Zero("pc.ram", uint64_t{1} << 50);
  ExpectRefused(far.b, at, "of RAM block \"pc.ram\"");
  StreamBuilder unknown = Start();
  at = unknown.size();
  unknown.Page("pc.rom", 0, 1);
  ExpectRefused(unknown.b, at, "RAM block \"pc.rom\", which is not in the block list");
  StreamBuilder cont = Start();
  at = cont.size();
  cont.Zero("", 0);
  ExpectRefused(cont.b, at, "CONTINUE page record with no page record before it");
  StreamBuilder early;
  early.Header().Config().RamStart();
  at = early.size();
  early.Page("pc.ram", 0, 1);
  ExpectRefused(early.b, at, "a page before the RAM block list");
  StreamBuilder empty = Start();
  empty.Be64(0x08).U8(0);
  ExpectRefused(empty.b, empty.size() - 1, "empty block name");
}

TEST(MigrationStreamTest, RefusesABlockListThatChangesOrDoesNotAddUp) {
  StreamBuilder again = Start();
  uint64_t at = again.size();
  again.BlockList({{"pc.ram", 8 * 4096}, {"pc.bios", 2 * 4096}});
  ExpectRefused(again.b, at, "block list is sent again");
  StreamBuilder later = Start();
  later.Eos().Part();
  at = later.size();
  later.BlockList({{"pc.ram", 4 * 4096}});
  ExpectRefused(later.b, at, "block list is sent again");
  StreamBuilder dup;
  dup.Header().Config().RamStart().BlockList({{"pc.ram", 4096}, {"pc.ram", 4096}});
  ExpectRefused(dup.b, dup.size() - 8 - 6, "listed twice");
  StreamBuilder over;
  over.Header().Config().RamStart().Be64(8192 | 0x04).Str("pc.ram").Be64(3 * 4096);
  ExpectRefused(over.b, over.size() - 8, "within the 8192 bytes the list has left");
  StreamBuilder unaligned;
  unaligned.Header().Config().RamStart().Be64(8192 | 0x04).Str("pc.ram").Be64(100);
  ExpectRefused(unaligned.b, unaligned.size() - 8, "not a non-zero multiple of 4096");
  StreamBuilder absurd;
  absurd.Header().Config().RamStart().Be64((uint64_t{1} << 41) | 0x04);
  ExpectRefused(absurd.b, absurd.size() - 8, "RAM of 2199023255552 bytes in total");
  StreamBuilder many;
  many.Header().Config().RamStart().Be64(uint64_t{4096} * 300 | 0x04);
  for (int i = 0; i < 257; ++i) many.Str("b" + std::to_string(i)).Be64(4096);
  ExpectRefused(many.b, many.size() - 8 - 4, "more than 256 RAM blocks");
}

TEST(MigrationStreamTest, RefusesADeviceStateThatDoesNotEndWithAVmdesc) {
  StreamBuilder s = Start();
  s.Eos().End().Eos();
  Bytes base = s.b;
  StreamBuilder no_vmdesc = s;
  no_vmdesc.U8(0x04).Be32(3).Str("timer").Be32(0).Be32(2).U8(0x7e).Be32(3).U8(0x00);
  ExpectRefused(no_vmdesc.b, no_vmdesc.size(), "does not end with EOF and a vmdesc");
  StreamBuilder wrong_length = s;
  wrong_length.U8(0x00).U8(0x06).Be32(3).U8('{').U8('}');
  ExpectRefused(wrong_length.b, wrong_length.size(), "does not end with EOF and a vmdesc");
  StreamBuilder not_json = s;
  not_json.U8(0x00).U8(0x06).Be32(2).U8('a').U8('b');
  ExpectRefused(not_json.b, not_json.size(), "does not end with EOF and a vmdesc");
  StreamBuilder good = s;
  good.U8(0x00).U8(0x06).Be32(2).U8('{').U8('}');
  EXPECT_TRUE(ReadAll(good.b).ok());
}

TEST(MigrationStreamTest, RefusesADeviceStateOverItsLimit) {
  StreamBuilder s = Start();
  s.Eos().End().Eos().U8(0x04);
  MigrationStreamVisitor ignore;
  MigrationStreamReader reader(ignore);
  ASSERT_TRUE(reader.Feed(s.b).ok());
  const Bytes junk(1 << 20, 0x5a);
  Status st;
  uint64_t fed = 1;  // the FULL byte
  while (st.ok() && fed < kMaxDeviceStateBytes + junk.size()) {
    st = reader.Feed(junk);
    fed += junk.size();
  }
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("device state over 268435456 bytes"), std::string::npos)
      << st.message();
  EXPECT_EQ(reader.stats().device_state_bytes, kMaxDeviceStateBytes - junk.size() + 1);
}

}  // namespace
}  // namespace ferry::qemu
