#include "qemu/migration_stream.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "qemu/migration_stream_test_helpers.h"

namespace ferry::qemu {
namespace {

using namespace stream_test;  // NOLINT(google-build-using-namespace): the tests' shared helpers
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
