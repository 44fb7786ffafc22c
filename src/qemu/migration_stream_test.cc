#include "qemu/migration_stream.h"

#include <gtest/gtest.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "qemu/migration_stream_for_test.h"
#include "qemu/ram_stripped_stream.h"

namespace ferry::qemu {
namespace {

const Bytes& ShareOffStream() {
  static const Bytes s = ReadTestStream("pattern_share_off.mig.gz");
  return s;
}
const Bytes& IgnoreSharedStream() {
  static const Bytes s = ReadTestStream("pattern_ignore_shared.mig.gz");
  return s;
}

const Bytes& RunningStream() {
  static const Bytes s = ReadTestStream("pattern_running.mig.gz");
  return s;
}

uint32_t Crc(std::span<const uint8_t> b) { return crc32(0, b.data(), unsigned(b.size())); }

// Records every event, with where the reader stood.
struct Recorder : MigrationStreamVisitor {
  const MigrationStreamReader* reader = nullptr;
  std::vector<MigrationRamBlock> blocks;
  struct Page {
    size_t block;
    uint64_t offset;
    bool zero;
    uint8_t fill;
    uint32_t crc;
    bool operator==(const Page&) const = default;
  };
  std::vector<Page> pages;
  std::vector<RamSectionKind> sections;
  Bytes other;
  std::vector<uint64_t> boundaries;     // ends of the block list, page records and EOS records
  std::vector<uint64_t> record_starts;  // ends of the block list and page records: a record follows

  Status OnRamBlocks(const std::vector<MigrationRamBlock>& b) override {
    blocks = b;
    if (reader) boundaries.push_back(reader->bytes_read());
    if (reader) record_starts.push_back(reader->bytes_read());
    return Status::Ok();
  }
  Status OnRamPage(const MigrationRamPage& p) override {
    if (!p.zero()) {
      EXPECT_EQ(p.data.size(), kMigrationPageBytes);
    }
    pages.push_back({p.block, p.offset, p.zero(), p.fill, p.zero() ? 0 : Crc(p.data)});
    if (reader) boundaries.push_back(reader->bytes_read());
    if (reader) record_starts.push_back(reader->bytes_read());
    return Status::Ok();
  }
  Status OnRamSectionEnd(RamSectionKind kind) override {
    sections.push_back(kind);
    if (reader) boundaries.push_back(reader->bytes_read());
    return Status::Ok();
  }
  Status OnOtherBytes(std::span<const uint8_t> b) override {
    other.insert(other.end(), b.begin(), b.end());
    return Status::Ok();
  }
};

// Feeds `stream` in pieces of `piece` bytes (all at once by default), then finishes.
Status ReadAll(const Bytes& stream, MigrationStreamReader& reader, size_t piece = SIZE_MAX) {
  for (size_t pos = 0; pos < stream.size();) {
    size_t n = std::min(piece, stream.size() - pos);
    Status st = reader.Feed(std::span<const uint8_t>(stream.data() + pos, n));
    if (!st.ok()) return st;
    pos += n;
  }
  return reader.Finish();
}
Status ReadAll(const Bytes& stream, MigrationStreamVisitor& visitor) {
  MigrationStreamReader reader(visitor);
  return ReadAll(stream, reader);
}
Status ReadAll(const Bytes& stream) {
  MigrationStreamVisitor ignore;
  return ReadAll(stream, ignore);
}

Bytes Strip(const Bytes& stream, RamStrippedStream::BlockFilter filter, Status* status = nullptr) {
  Bytes out;
  RamStrippedStream strip(
      [&](std::span<const uint8_t> b) {
        out.insert(out.end(), b.begin(), b.end());
        return Status::Ok();
      },
      std::move(filter));
  Status st = ReadAll(stream, strip);
  EXPECT_TRUE(st.ok()) << st.message();
  if (status) *status = st;
  return out;
}

// header, configuration, START: block list, a page, a CONTINUE zero page; PART: a pc.bios page;
// END: a CONTINUE page; device state.
StreamBuilder Start() {
  StreamBuilder s;
  s.Header().Config().RamStart().BlockList({{"pc.ram", 8 * 4096}, {"pc.bios", 2 * 4096}});
  return s;
}
Bytes Synthetic() {
  StreamBuilder s = Start();
  s.Page("pc.ram", 0, 0xab).Zero("", 4096).Eos();
  s.Part().Page("pc.bios", 4096, 0xcd).Eos();
  s.End().Page("", 0, 0xef).Eos();
  return s.DeviceState().b;
}

// Expects `stream` to be refused with Corruption at byte `at`, its message containing `what`.
void ExpectRefused(const Bytes& stream, uint64_t at, const std::string& what) {
  Status st = ReadAll(stream);
  ASSERT_FALSE(st.ok()) << "accepted; expected: " << what;
  EXPECT_EQ(st.code(), Status::Code::kCorruption) << st.message();
  EXPECT_NE(st.message().find("at byte " + std::to_string(at) + ":"), std::string::npos)
      << st.message();
  EXPECT_NE(st.message().find(what), std::string::npos) << st.message();
}

TEST(MigrationStreamTest, ReadsEveryRecordOfASyntheticStream) {
  Recorder r;
  MigrationStreamReader reader(r);
  Bytes s = Synthetic();
  ASSERT_TRUE(ReadAll(s, reader).ok());
  EXPECT_EQ(reader.machine_type(), "pc-q35-7.2");
  EXPECT_FALSE(reader.ignore_shared());
  ASSERT_EQ(r.blocks.size(), 2u);
  EXPECT_EQ(r.blocks[0], (MigrationRamBlock{"pc.ram", 8 * 4096, std::nullopt}));
  EXPECT_EQ(r.blocks[1], (MigrationRamBlock{"pc.bios", 2 * 4096, std::nullopt}));
  Bytes ab(4096, 0xab), cd(4096, 0xcd), ef(4096, 0xef);
  std::vector<Recorder::Page> want = {{0, 0, false, 0, Crc(ab)},
                                      {0, 4096, true, 0, 0},
                                      {1, 4096, false, 0, Crc(cd)},
                                      {1, 0, false, 0, Crc(ef)}};
  EXPECT_EQ(r.pages, want);
  EXPECT_EQ(r.sections,
            (std::vector<RamSectionKind>{RamSectionKind::kSetup, RamSectionKind::kIteration,
                                         RamSectionKind::kComplete}));
  EXPECT_EQ(reader.stats().pages, 3u);
  EXPECT_EQ(reader.stats().zero_pages, 1u);
  EXPECT_EQ(reader.stats().ram_sections, 3u);
  EXPECT_EQ(reader.bytes_read(), s.size());
}

TEST(MigrationStreamTest, EveryPatternPageOfARealStreamComesOutAtItsOffset) {
  Recorder r;
  ASSERT_TRUE(ReadAll(ShareOffStream(), r).ok());
  ASSERT_FALSE(r.blocks.empty());
  ASSERT_EQ(r.blocks[0].name, "ram0");
  ASSERT_EQ(r.blocks[0].used_bytes, uint64_t{64} << 20);
  // The last record of each page decides its content, as in QEMU's loader.
  std::map<uint64_t, uint32_t> ram0;
  const uint32_t zero_crc = Crc(Bytes(kMigrationPageBytes, 0));
  for (const auto& p : r.pages) {
    if (p.block != 0) continue;
    ram0[p.offset] = p.zero ? (p.fill == 0 ? zero_crc : 1) : p.crc;
  }
  ASSERT_EQ(ram0.size(), (uint64_t{64} << 20) / kMigrationPageBytes);
  int pattern_pages = 0;
  for (const auto& [offset, crc] : ram0) {
    uint64_t i = offset / kMigrationPageBytes;
    if (i % 97 == 0) {
      EXPECT_EQ(crc, Crc(PatternPage(i))) << "page " << i;
      ++pattern_pages;
    } else {
      EXPECT_EQ(crc, zero_crc) << "page " << i;
    }
  }
  EXPECT_EQ(pattern_pages, 169);
}

TEST(MigrationStreamTest, ARunningGuestsStreamHasManyIterationsAndPagesSentAgain) {
  Recorder r;
  MigrationStreamReader reader(r);
  ASSERT_TRUE(ReadAll(RunningStream(), reader).ok());
  EXPECT_GT(std::count(r.sections.begin(), r.sections.end(), RamSectionKind::kIteration), 10);
  EXPECT_EQ(r.sections.back(), RamSectionKind::kComplete);
  std::map<std::pair<size_t, uint64_t>, uint32_t> last;
  size_t sent_again = 0;
  for (const auto& p : r.pages) {
    uint32_t crc = p.zero ? (p.fill == 0 ? Crc(Bytes(kMigrationPageBytes, 0)) : 1) : p.crc;
    if (!last.emplace(std::pair(p.block, p.offset), crc).second) ++sent_again;
    last[{p.block, p.offset}] = crc;
  }
  EXPECT_GT(sent_again, 0u);
  // SeaBIOS writes below 1 MiB and near the top of RAM; the pattern in between is untouched.
  for (uint64_t i = 0; i * kMigrationPageBytes < (uint64_t{32} << 20); i += 97) {
    if (i * kMigrationPageBytes < (uint64_t{1} << 20)) continue;
    EXPECT_EQ((last[{0, i * kMigrationPageBytes}]), Crc(PatternPage(i))) << "page " << i;
  }
}

TEST(MigrationStreamTest, IgnoreSharedStreamListsGuestAddressesAndSendsOnlyRomPages) {
  Recorder r;
  MigrationStreamReader reader(r);
  ASSERT_TRUE(ReadAll(IgnoreSharedStream(), reader).ok());
  EXPECT_TRUE(reader.ignore_shared());
  std::map<std::string, MigrationRamBlock> by_name;
  for (const auto& b : r.blocks) by_name[b.name] = b;
  ASSERT_TRUE(by_name.count("ram0") && by_name.count("pc.bios"));
  EXPECT_EQ(by_name["ram0"].guest_address, uint64_t{0});
  EXPECT_EQ(by_name["pc.bios"].guest_address, uint64_t{0xfffc0000});
  for (const auto& p : r.pages) EXPECT_NE(r.blocks[p.block].name, "ram0") << p.offset;
  EXPECT_GT(reader.stats().pages, 0u);  // the ROMs
}

TEST(MigrationStreamTest, StrippingNothingGivesTheSameBytes) {
  for (const Bytes* s : {&ShareOffStream(), &IgnoreSharedStream()}) {
    Bytes out = Strip(*s, [](const MigrationRamBlock&) { return false; });
    EXPECT_TRUE(out == *s);
  }
  Bytes synthetic = Synthetic();
  EXPECT_TRUE(Strip(synthetic, [](const MigrationRamBlock&) { return false; }) == synthetic);
}

TEST(MigrationStreamTest, StrippedStreamIsSmallerKeepsItsStructureAndHasNoPage) {
  Recorder before;
  ASSERT_TRUE(ReadAll(ShareOffStream(), before).ok());
  Bytes stripped = Strip(ShareOffStream(), [](const MigrationRamBlock&) { return true; });
  EXPECT_LT(stripped.size(), ShareOffStream().size() / 10);
  Recorder after;
  MigrationStreamReader reader(after);
  ASSERT_TRUE(ReadAll(stripped, reader).ok());
  EXPECT_TRUE(after.pages.empty());
  EXPECT_EQ(reader.stats().zero_pages, 0u);
  EXPECT_EQ(after.blocks, before.blocks);
  EXPECT_EQ(after.sections, before.sections);
  EXPECT_TRUE(after.other == before.other);  // everything but the pages, unchanged
  EXPECT_TRUE(after.other == stripped);
}

TEST(MigrationStreamTest, StrippingOneBlockKeepsTheOthersPages) {
  Recorder before;
  ASSERT_TRUE(ReadAll(ShareOffStream(), before).ok());
  Bytes stripped =
      Strip(ShareOffStream(), [](const MigrationRamBlock& b) { return b.name == "ram0"; });
  Recorder after;
  ASSERT_TRUE(ReadAll(stripped, after).ok());
  std::vector<Recorder::Page> roms;
  for (const auto& p : before.pages) {
    if (p.block != 0) roms.push_back(p);
  }
  EXPECT_FALSE(roms.empty());
  EXPECT_EQ(after.pages, roms);
}

TEST(MigrationStreamTest, KeptPagesAreRenamedWhereADroppedBlockBrokeTheirContinueChain) {
  // pc.ram 0, pc.bios 0, pc.bios 4096 (CONTINUE), pc.ram 4096 (named), pc.ram 8192 (CONTINUE).
  StreamBuilder s = Start();
  s.Page("pc.ram", 0, 1).Page("pc.bios", 0, 2).Page("", 4096, 3).Page("pc.ram", 4096, 4);
  s.Page("", 8192, 5).Eos().End().Zero("pc.bios", 0).Eos().DeviceState();
  for (std::string drop : {"pc.ram", "pc.bios"}) {
    Recorder before, after;
    ASSERT_TRUE(ReadAll(s.b, before).ok());
    Bytes stripped = Strip(s.b, [&](const MigrationRamBlock& b) { return b.name == drop; });
    ASSERT_TRUE(ReadAll(stripped, after).ok()) << drop;
    std::vector<Recorder::Page> kept;
    for (const auto& p : before.pages) {
      if (before.blocks[p.block].name != drop) kept.push_back(p);
    }
    EXPECT_EQ(after.pages, kept) << drop;
  }
  // With pc.bios dropped, pc.ram 4096 follows pc.ram 0 in the output: written as CONTINUE.
  Bytes stripped = Strip(s.b, [](const MigrationRamBlock& b) { return b.name == "pc.bios"; });
  EXPECT_EQ(stripped.size(),
            s.size() - (8 + 1 + 7 + 4096) - (8 + 4096) - (8 + 1 + 7 + 1) - (1 + 6));
}

TEST(MigrationStreamTest, AnySplitOfTheInputGivesTheSameEvents) {
  for (const Bytes* s : {&IgnoreSharedStream(), &ShareOffStream(), &RunningStream()}) {
    Recorder whole;
    ASSERT_TRUE(ReadAll(*s, whole).ok());
    std::mt19937 rng(14);
    for (size_t max_piece : {size_t{1}, size_t{7}, size_t{4103}, size_t{70000}}) {
      Recorder split;
      MigrationStreamReader reader(split);
      std::uniform_int_distribution<size_t> piece(1, max_piece);
      Status st;
      for (size_t pos = 0; pos < s->size() && st.ok();) {
        size_t n = std::min(piece(rng), s->size() - pos);
        st = reader.Feed(std::span<const uint8_t>(s->data() + pos, n));
        pos += n;
      }
      if (st.ok()) st = reader.Finish();
      ASSERT_TRUE(st.ok()) << st.message();
      EXPECT_EQ(split.blocks, whole.blocks);
      EXPECT_EQ(split.pages, whole.pages) << max_piece;
      EXPECT_EQ(split.sections, whole.sections);
      EXPECT_TRUE(split.other == whole.other) << max_piece;
    }
  }
}

TEST(MigrationStreamTest, TruncationAtEveryRecordBoundaryAndInsideRecordsFails) {
  for (const Bytes* s : {&IgnoreSharedStream(), &ShareOffStream()}) {
    Recorder r;
    MigrationStreamReader whole(r);
    r.reader = &whole;
    ASSERT_TRUE(ReadAll(*s, whole).ok());
    std::set<uint64_t> cuts;
    for (uint64_t i = 0; i < 600; ++i) cuts.insert(i);  // header, configuration, block list
    for (uint64_t b : r.boundaries) {
      for (uint64_t d : {0, 1, 5, 8, 9, 100}) cuts.insert(b + d);
    }
    const uint64_t device_state = s->size() - whole.stats().device_state_bytes;
    for (uint64_t c = device_state - 3; c < s->size(); c += 211) cuts.insert(c);
    for (uint64_t c = s->size() - 300; c < s->size(); ++c) cuts.insert(c);  // EOF and vmdesc

    Recorder ignore;
    MigrationStreamReader reader(ignore);
    uint64_t fed = 0;
    int checked = 0;
    for (uint64_t cut : cuts) {
      if (cut >= s->size()) break;
      ASSERT_TRUE(reader.Feed(std::span<const uint8_t>(s->data() + fed, cut - fed)).ok());
      fed = cut;
      MigrationStreamReader copy = reader;
      Status st = copy.Finish();
      ASSERT_FALSE(st.ok()) << "a stream cut at byte " << cut << " of " << s->size()
                            << " was accepted";
      EXPECT_EQ(st.code(), Status::Code::kCorruption);
      EXPECT_NE(st.message().find("truncated"), std::string::npos) << st.message();
      ++checked;
    }
    EXPECT_GT(checked, 1000);
  }
}

TEST(MigrationStreamTest, FlippedFlagBitsInRealRecordsFail) {
  const Bytes& s = ShareOffStream();
  Recorder r;
  MigrationStreamReader whole(r);
  r.reader = &whole;
  ASSERT_TRUE(ReadAll(s, whole).ok());
  // After the block list and after each page record, the next record (a page or an EOS) begins.
  // The first 150: a mix of ZERO, PAGE, CONTINUE and EOS records.
  std::vector<uint64_t> starts;
  for (uint64_t b : r.record_starts) {
    if (starts.size() == 150) break;
    if (b + 8 <= s.size()) starts.push_back(b);
  }
  int flips = 0;
  for (uint64_t start : starts) {
    for (int bit = 0; bit < 12; ++bit) {
      Bytes bad = s;
      bad[start + 7 - bit / 8] ^= uint8_t(1 << (bit % 8));
      Status st = ReadAll(bad);
      ASSERT_FALSE(st.ok()) << "flag bit " << bit << " flipped at " << start << " was accepted";
      EXPECT_EQ(st.code(), Status::Code::kCorruption);
      uint64_t flag = uint64_t{1} << bit;
      if (flag == 0x01 || flag >= 0x40) {  // never valid: refused at that record
        EXPECT_NE(st.message().find("at byte " + std::to_string(start) + ":"), std::string::npos)
            << st.message();
      }
      ++flips;
    }
  }
  EXPECT_EQ(flips, 150 * 12);
}

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

TEST(MigrationStreamTest, ReadsAStreamFromADescriptorAndNamesItInErrors) {
  for (bool truncated : {false, true}) {
    Bytes s = Synthetic();
    if (truncated) s.resize(s.size() - 3);
    int fds[2];
    ASSERT_EQ(pipe(fds), 0);
    std::thread writer([&] {
      for (size_t pos = 0; pos < s.size();) {
        ssize_t n = write(fds[1], s.data() + pos, std::min<size_t>(1000, s.size() - pos));
        if (n <= 0) break;
        pos += size_t(n);
      }
      close(fds[1]);
    });
    Recorder r;
    MigrationStreamReader reader(r);
    Status st = ReadMigrationStream(fds[0], reader, "snapshot web-1@3 device state");
    writer.join();
    close(fds[0]);
    if (!truncated) {
      EXPECT_TRUE(st.ok()) << st.message();
      EXPECT_EQ(r.pages.size(), 4u);
    } else {
      EXPECT_EQ(st.code(), Status::Code::kCorruption);
      EXPECT_EQ(
          st.message().rfind("snapshot web-1@3 device state: QEMU migration stream: at byte", 0),
          0u)
          << st.message();
    }
  }
}

TEST(MigrationStreamTest, FeedAfterFinishIsAnError) {
  MigrationStreamVisitor ignore;
  MigrationStreamReader reader(ignore);
  Bytes s = Synthetic();
  ASSERT_TRUE(ReadAll(s, reader).ok());
  EXPECT_EQ(reader.Feed(s).code(), Status::Code::kInternal);
}

TEST(MigrationStreamTest, AVisitorErrorStopsTheReadAndErrorsStick) {
  struct Failing : MigrationStreamVisitor {
    int pages = 0;
    Status OnRamPage(const MigrationRamPage&) override {
      return ++pages == 2 ? Status::ResourceExhausted("snapshot RAM image: no space")
                          : Status::Ok();
    }
  } failing;
  MigrationStreamReader reader(failing);
  Bytes s = Synthetic();
  Status st = reader.Feed(s);
  EXPECT_EQ(st.code(), Status::Code::kResourceExhausted);
  EXPECT_EQ(failing.pages, 2);
  EXPECT_EQ(reader.Feed(s).code(), Status::Code::kResourceExhausted);
  EXPECT_EQ(reader.Finish().code(), Status::Code::kResourceExhausted);
  EXPECT_EQ(failing.pages, 2);
}

}  // namespace
}  // namespace ferry::qemu
