#include "snapshot/stream_ram_split.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include "core/unique_fd.h"
#include "qemu/migration_stream_for_test.h"

namespace ferry::snapshot {
namespace {

using qemu::Bytes;
using qemu::PatternPage;
using qemu::ReadTestStream;
using qemu::StreamBuilder;
using qemu::kMigrationPageBytes;
using qemu::MigrationRamBlock;
using qemu::MigrationRamPage;
using qemu::MigrationStreamReader;
using qemu::MigrationStreamVisitor;

constexpr uint64_t kPatternRamBytes = uint64_t{64} << 20;  // testdata's guest

// What a split wrote: the RAM image (a memfd) and the stream without guest RAM.
struct Split {
  UniqueFd ram{static_cast<int>(::memfd_create("ram-image", MFD_CLOEXEC))};
  Bytes device_state;
  Status status;
  StreamRamSplitStats stats;
  Result<RamImage> image = Status::FailedPrecondition("not digested");

  Split(const Bytes& stream, uint64_t ram_bytes, uint64_t max_device_state = 64 << 20,
        size_t piece = 1 << 16, bool digest = false) {
    StreamRamSplitLimits limits{ram_bytes, max_device_state};
    limits.digest = digest;
    StreamRamSplit split(ram.get(), "test.ram", limits, [&](std::span<const uint8_t> b) {
      device_state.insert(device_state.end(), b.begin(), b.end());
      return Status::Ok();
    });
    MigrationStreamReader reader(split);
    for (size_t pos = 0; pos < stream.size() && status.ok(); pos += piece) {
      status = reader.Feed(
          std::span<const uint8_t>(stream.data() + pos, std::min(piece, stream.size() - pos)));
    }
    if (status.ok()) status = reader.Finish();
    if (status.ok()) status = split.Finish();
    stats = split.stats();
    if (status.ok()) image = split.Image();
  }
  std::string Path() const { return "/proc/self/fd/" + std::to_string(ram.get()); }
  Bytes Page(uint64_t index) const {
    Bytes page(kMigrationPageBytes);
    EXPECT_EQ(::pread(ram.get(), page.data(), page.size(), off_t(index * kMigrationPageBytes)),
              ssize_t(page.size()));
    return page;
  }
  uint64_t Size() const {
    struct stat st {};
    ::fstat(ram.get(), &st);
    return uint64_t(st.st_size);
  }
  uint64_t AllocatedBytes() const {
    struct stat st {};
    ::fstat(ram.get(), &st);
    return uint64_t(st.st_blocks) * 512;
  }
};

// The guest RAM as a loading QEMU would have it: every ram0 page record applied in order.
struct Replay : MigrationStreamVisitor {
  Bytes ram = Bytes(kPatternRamBytes, 0);
  std::optional<size_t> ram_block;
  Status OnRamBlocks(const std::vector<MigrationRamBlock>& blocks) override {
    for (size_t i = 0; i < blocks.size(); ++i) {
      if (blocks[i].name == kGuestRamBlock) ram_block = i;
    }
    return Status::Ok();
  }
  Status OnRamPage(const MigrationRamPage& p) override {
    if (p.block != ram_block) return Status::Ok();
    if (p.zero())
      std::memset(ram.data() + p.offset, p.fill, kMigrationPageBytes);
    else
      std::memcpy(ram.data() + p.offset, p.data.data(), kMigrationPageBytes);
    return Status::Ok();
  }
};

// Reads `stream` as QEMU would load it, into `r`.
void ReplayInto(const Bytes& stream, Replay& r) {
  MigrationStreamReader reader(r);
  EXPECT_TRUE(reader.Feed(stream).ok());
  EXPECT_TRUE(reader.Finish().ok());
}

// The stream with the guest RAM block's pages dropped, as RamStrippedStream writes it.
Bytes Stripped(const Bytes& stream) {
  Bytes out;
  qemu::RamStrippedStream strip(
      [&](std::span<const uint8_t> b) {
        out.insert(out.end(), b.begin(), b.end());
        return Status::Ok();
      },
      [](const MigrationRamBlock& b) { return b.name == kGuestRamBlock; });
  MigrationStreamReader reader(strip);
  EXPECT_TRUE(reader.Feed(stream).ok());
  EXPECT_TRUE(reader.Finish().ok());
  return out;
}

TEST(StreamRamSplitTest, AShareOffStreamBecomesASparseImageOfTheGuestRamAndAStrippedStream) {
  // QEMU sent every page of this 64 MiB guest: 169 with the pattern, the rest as ZERO records.
  const Bytes stream = ReadTestStream("pattern_share_off.mig.gz");
  Split split(stream, kPatternRamBytes);
  ASSERT_TRUE(split.status.ok()) << split.status.message();
  EXPECT_EQ(split.Size(), kPatternRamBytes);
  const uint64_t pages = kPatternRamBytes / kMigrationPageBytes;
  const uint64_t pattern_pages = (pages + 96) / 97;
  EXPECT_EQ(split.stats.data_pages, pattern_pages);
  EXPECT_EQ(split.stats.zero_pages, pages - pattern_pages);
  EXPECT_EQ(split.stats.rewritten_pages, 0u);
  const Bytes zero(kMigrationPageBytes, 0);
  for (uint64_t i = 0; i < pages; ++i) {
    ASSERT_EQ(split.Page(i), i % 97 == 0 ? PatternPage(i) : zero) << "page " << i;
  }
  // Zero pages are holes: only the pattern pages take room.
  EXPECT_LE(split.AllocatedBytes(), pattern_pages * kMigrationPageBytes + (64 << 10));
  // The rest is the stream RamStrippedStream makes, which a QEMU mapping the image loads.
  EXPECT_EQ(split.device_state, Stripped(stream));
  EXPECT_EQ(split.stats.device_state_bytes, split.device_state.size());
  EXPECT_LT(split.device_state.size(), stream.size() / 2);
  // It still parses, and carries no page of the guest RAM block.
  Replay again;
  ReplayInto(split.device_state, again);
  EXPECT_EQ(again.ram, Bytes(kPatternRamBytes, 0));
}

TEST(StreamRamSplitTest, PagesSentAgainEndAsTheLastRecordSaysInAnyPieces) {
  // The guest ran while this stream was sent: pages came again after the guest wrote them.
  const Bytes stream = ReadTestStream("pattern_running.mig.gz");
  Replay want;
  ReplayInto(stream, want);
  for (size_t piece : {size_t{1} << 16, size_t{4097}, size_t{7}}) {
    Split split(stream, kPatternRamBytes, 64 << 20, piece);
    ASSERT_TRUE(split.status.ok()) << split.status.message();
    EXPECT_GT(split.stats.rewritten_pages, 0u);
    Bytes image(kPatternRamBytes);
    ASSERT_EQ(::pread(split.ram.get(), image.data(), image.size(), 0), ssize_t(image.size()));
    EXPECT_TRUE(image == want.ram) << "piece " << piece;
    EXPECT_EQ(split.device_state, Stripped(stream)) << "piece " << piece;
  }
}

// A pre-copied snapshot is checksummed as it is written (ram_digest.h): the table must be the
// one the written image yields, with pages sent again and zeroed again, or clones refuse it.
TEST(StreamRamSplitTest, TheTableKeptWhileSplittingIsTheWrittenImages) {
  const Bytes stream = ReadTestStream("pattern_running.mig.gz");
  Replay want;
  ReplayInto(stream, want);
  uint64_t data_pages = 0;
  const Bytes zero(kMigrationPageBytes, 0);
  for (uint64_t off = 0; off < kPatternRamBytes; off += kMigrationPageBytes) {
    data_pages += !std::equal(zero.begin(), zero.end(), want.ram.begin() + off);
  }
  Split split(stream, kPatternRamBytes, 64 << 20, 4097, /*digest=*/true);
  ASSERT_TRUE(split.status.ok()) << split.status.message();
  ASSERT_GT(split.stats.rewritten_pages, 0u);
  ASSERT_TRUE(split.image.ok()) << split.image.status().message();
  EXPECT_EQ(split.image->size_bytes, kPatternRamBytes);
  EXPECT_EQ(split.image->data_bytes, data_pages * kMigrationPageBytes);
  EXPECT_TRUE(VerifyRamFile(split.Path(), *split.image).ok());
  // Damage after the copy is refused at its chunk.
  const uint8_t flipped = 0xa5;
  ASSERT_EQ(::pwrite(split.ram.get(), &flipped, 1, off_t(5 << 20) + 123), 1);
  Status st = VerifyRamFile(split.Path(), *split.image);
  EXPECT_EQ(st.code(), Status::Code::kCorruption);
  EXPECT_NE(st.message().find("checksum mismatch at chunk 5"), std::string::npos) << st.message();
  // Without `digest` there is no table to give.
  Split plain(stream, kPatternRamBytes);
  EXPECT_EQ(plain.image.status().code(), Status::Code::kFailedPrecondition);
}

// Consecutive pages are written in runs: a run longer than one write, pages sent again inside
// and outside the run being gathered, and the pass's end must all leave the stream's last word.
TEST(StreamRamSplitTest, RunsOfPagesWrittenTogetherKeepTheStreamsOrder) {
  constexpr uint64_t kPages = 200;  // past one 256 KiB run
  StreamBuilder s;
  s.Start({{"ram0", kPages * kMigrationPageBytes}});
  for (uint64_t i = 0; i < kPages; ++i) s.Page("ram0", i * kMigrationPageBytes, uint8_t(i + 1));
  s.Page("ram0", 150 * kMigrationPageBytes, 0xee).Page("ram0", 151 * kMigrationPageBytes, 0xef);
  s.Page("ram0", 150 * kMigrationPageBytes, 0xf0);  // the same page twice in a row
  s.Zero("ram0", 10 * kMigrationPageBytes).Page("ram0", 9 * kMigrationPageBytes, 0x99);
  Split split(s.Finish().b, kPages * kMigrationPageBytes, 64 << 20, 4097, /*digest=*/true);
  ASSERT_TRUE(split.status.ok()) << split.status.message();
  for (uint64_t i = 0; i < kPages; ++i) {
    const uint8_t want = i == 150 ? 0xf0 : i == 151 ? 0xef : i == 10 ? 0 : i == 9 ? 0x99 : i + 1;
    ASSERT_EQ(split.Page(i), Bytes(kMigrationPageBytes, want)) << "page " << i;
  }
  ASSERT_TRUE(split.image.ok()) << split.image.status().message();
  EXPECT_TRUE(VerifyRamFile(split.Path(), *split.image).ok());
}

TEST(StreamRamSplitTest, AZeroOverDataWritesZerosAndAFilledZeroRecordIsData) {
  StreamBuilder s;
  s.Start({{"ram0", 4 * kMigrationPageBytes}, {"pc.bios", kMigrationPageBytes}});
  s.Page("ram0", 0, 0xab).Zero("ram0", 0);        // data, then zero: zero
  s.Zero("ram0", 4096).Page("ram0", 4096, 0xcd);  // zero, then data: data
  s.Page("ram0", 8192, 0x00);                     // an all-zero PAGE: a hole
  s.Zero("ram0", 12288, 0x5a);                    // a ZERO record filled with 0x5a
  s.Page("pc.bios", 0, 0xee);                     // a ROM page: kept in the stream
  const Bytes stream = s.Finish().b;
  Split split(stream, 4 * kMigrationPageBytes);
  ASSERT_TRUE(split.status.ok()) << split.status.message();
  Split digested(stream, 4 * kMigrationPageBytes, 64 << 20, 1 << 16, /*digest=*/true);
  ASSERT_TRUE(digested.image.ok()) << digested.image.status().message();
  EXPECT_EQ(digested.image->data_bytes, 2 * kMigrationPageBytes);
  EXPECT_TRUE(VerifyRamFile(digested.Path(), *digested.image).ok());
  EXPECT_EQ(split.Page(0), Bytes(kMigrationPageBytes, 0));
  EXPECT_EQ(split.Page(1), Bytes(kMigrationPageBytes, 0xcd));
  EXPECT_EQ(split.Page(2), Bytes(kMigrationPageBytes, 0));
  EXPECT_EQ(split.Page(3), Bytes(kMigrationPageBytes, 0x5a));
  EXPECT_EQ(split.Size(), 4 * kMigrationPageBytes);
  EXPECT_EQ(split.stats.data_pages, 3u);
  EXPECT_EQ(split.stats.zero_pages, 3u);
  EXPECT_EQ(split.stats.rewritten_pages, 1u);
  // The ROM page is in the stripped stream, the guest RAM's are not.
  const Bytes rom(kMigrationPageBytes, 0xee);
  EXPECT_NE(
      std::search(split.device_state.begin(), split.device_state.end(), rom.begin(), rom.end()),
      split.device_state.end());
  const Bytes ram_page(kMigrationPageBytes, 0xcd);
  EXPECT_EQ(std::search(split.device_state.begin(), split.device_state.end(), ram_page.begin(),
                        ram_page.end()),
            split.device_state.end());
}

TEST(StreamRamSplitTest, TheImageIsAsLargeAsTheVmsRamFileWhenQemuMapsLessOfIt) {
  // Under TCG QEMU gets 8 KiB less than the VM's memory: the block is shorter than the image.
  StreamBuilder s;
  s.Start({{"ram0", 2 * kMigrationPageBytes}}).Page("ram0", kMigrationPageBytes, 3);
  UniqueFd fd(::memfd_create("ram", MFD_CLOEXEC));
  StreamRamSplit split(fd.get(), "ram", {2 * kMigrationPageBytes, 1 << 20, 4 * kMigrationPageBytes},
                       [](std::span<const uint8_t>) { return Status::Ok(); });
  MigrationStreamReader reader(split);
  ASSERT_TRUE(reader.Feed(s.Finish().b).ok());
  ASSERT_TRUE(reader.Finish().ok());
  struct stat st {};
  ASSERT_EQ(::fstat(fd.get(), &st), 0);
  EXPECT_EQ(uint64_t(st.st_size), 4 * kMigrationPageBytes);
}

TEST(StreamRamSplitTest, AStreamWithoutTheGuestRamBlockIsRefused) {
  StreamBuilder s;
  s.Start({{"pc.ram", 4 * kMigrationPageBytes}}).Page("pc.ram", 0, 1);
  Split split(s.Finish().b, 4 * kMigrationPageBytes);
  EXPECT_EQ(split.status.code(), Status::Code::kCorruption);
  EXPECT_NE(split.status.message().find("no guest RAM block (ram0)"), std::string::npos)
      << split.status.message();
  EXPECT_EQ(split.Size(), 0u) << "nothing written for a refused stream";
}

TEST(StreamRamSplitTest, AGuestRamBlockOfAnotherSizeThanTheVmsIsRefused) {
  // A subverted QEMU claiming more RAM than the VM has must not make ferryd write it.
  for (uint64_t claimed : {8 * kMigrationPageBytes, 2 * kMigrationPageBytes}) {
    StreamBuilder s;
    s.Start({{"ram0", claimed}}).Page("ram0", 0, 1);
    Split split(s.Finish().b, 4 * kMigrationPageBytes);
    EXPECT_EQ(split.status.code(), Status::Code::kCorruption) << claimed;
    EXPECT_NE(split.status.message().find("not the VM's 16384"), std::string::npos)
        << split.status.message();
    EXPECT_EQ(split.Size(), 0u);
  }
}

TEST(StreamRamSplitTest, ADeviceStateOverItsLimitIsRefused) {
  // ROM pages count: a stream that pads them out is stopped at the limit.
  StreamBuilder s;
  s.Start({{"ram0", kMigrationPageBytes}, {"pc.bios", 64 * kMigrationPageBytes}});
  for (uint64_t i = 0; i < 64; ++i) s.Page("pc.bios", i * kMigrationPageBytes, 7);
  Split split(s.Finish().b, kMigrationPageBytes, /*max_device_state=*/16 * kMigrationPageBytes);
  EXPECT_EQ(split.status.code(), Status::Code::kCorruption);
  EXPECT_NE(split.status.message().find("without guest RAM passes"), std::string::npos)
      << split.status.message();
  EXPECT_LE(split.device_state.size(), 16 * kMigrationPageBytes);
}

TEST(StreamRamSplitTest, AWriteTheImageRefusesStopsTheReadNamingTheImage) {
  // A memfd sealed against writes once sized: the first page's write fails.
  StreamBuilder s;
  s.Start({{"ram0", 2 * kMigrationPageBytes}}).Page("ram0", kMigrationPageBytes, 9);
  UniqueFd fd(::memfd_create("full", MFD_CLOEXEC | MFD_ALLOW_SEALING));
  ASSERT_TRUE(fd.valid());
  ASSERT_EQ(::ftruncate(fd.get(), 2 * kMigrationPageBytes), 0);
  ASSERT_EQ(::fcntl(fd.get(), F_ADD_SEALS, F_SEAL_WRITE), 0);
  StreamRamSplit split(fd.get(), "/ram/hold-x.ram", {2 * kMigrationPageBytes, 1 << 20},
                       [](std::span<const uint8_t>) { return Status::Ok(); });
  MigrationStreamReader reader(split);
  Status st = reader.Feed(s.Finish().b);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("/ram/hold-x.ram"), std::string::npos) << st.message();
}

}  // namespace
}  // namespace ferry::snapshot
