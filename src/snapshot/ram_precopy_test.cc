#include "snapshot/ram_precopy.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <map>
#include <vector>

#include "crypto/temp_dir_for_test.h"
#include "qemu/migration_stream_for_test.h"
#include "snapshot/ram_image.h"

namespace ferry::snapshot {
namespace {

using Bytes = std::vector<uint8_t>;
using qemu::kMigrationPageBytes;
using qemu::StreamBuilder;

// What one stream wrote: the image's bytes and the device state stream the writer passed on.
struct Written {
  Status status;
  Bytes image;
  Bytes device_state;
  struct stat image_stat {};
  uint64_t passes = 0, pages = 0;
  bool complete = false;
};

Written Run(const Bytes& stream, const std::string& dir, size_t piece = 4000) {
  Written w;
  const std::string path = dir + "/ram";
  ::unlink(path.c_str());
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_EXCL, 0600);
  EXPECT_GE(fd, 0);
  PrecopyWriter writer(fd, [&](std::span<const uint8_t> b) {
    w.device_state.insert(w.device_state.end(), b.begin(), b.end());
    return Status::Ok();
  });
  qemu::MigrationStreamReader reader(writer);
  for (size_t at = 0; at < stream.size() && w.status.ok(); at += piece) {
    w.status = reader.Feed(std::span<const uint8_t>(stream).subspan(at, std::min(piece, stream.size() - at)));
  }
  if (w.status.ok()) w.status = reader.Finish();
  ::fstat(fd, &w.image_stat);
  w.image.resize(static_cast<size_t>(w.image_stat.st_size));
  EXPECT_EQ(::pread(fd, w.image.data(), w.image.size(), 0), ssize_t(w.image.size()));
  ::close(fd);
  w.passes = writer.passes();
  w.pages = writer.pages_written();
  w.complete = writer.complete();
  return w;
}

Bytes Page(uint8_t byte) { return Bytes(kMigrationPageBytes, byte); }
Bytes PageAt(const Bytes& image, uint64_t index) {
  auto begin = image.begin() + static_cast<ptrdiff_t>(index * kMigrationPageBytes);
  return Bytes(begin, begin + kMigrationPageBytes);
}

// Every page record of a stream, the last one per block and page winning, as QEMU's loader
// would leave the RAM.
struct LastWrite : qemu::MigrationStreamVisitor {
  std::vector<qemu::MigrationRamBlock> blocks;
  std::map<std::pair<size_t, uint64_t>, Bytes> pages;
  Status OnRamBlocks(const std::vector<qemu::MigrationRamBlock>& b) override {
    blocks = b;
    return Status::Ok();
  }
  Status OnRamPage(const qemu::MigrationRamPage& p) override {
    pages[{p.block, p.offset}] =
        p.zero() ? Bytes(kMigrationPageBytes, p.fill) : Bytes(p.data.begin(), p.data.end());
    return Status::Ok();
  }
};

TEST(PrecopyWriterTest, LaterPassesOverwriteAndAZeroedPageBecomesAHoleAgain) {
  TempDirForTest dir;
  StreamBuilder s;
  s.Header().Config().RamStart().BlockList({{"ram0", 8 * 4096}, {"pc.bios", 2 * 4096}});
  // Pass 1: pages 0, 1, 3 hold data, the rest is zero; the BIOS page goes to the device state.
  s.Page("ram0", 0, 0x11).Page("", 4096, 0x22).Zero("", 2 * 4096).Page("", 3 * 4096, 0x33);
  s.Page("pc.bios", 0, 0xb1).Eos();
  // Pass 2: the guest rewrote page 0 and zeroed page 1.
  s.Part().Page("ram0", 0, 0x44).Zero("", 4096).Eos();
  // The last pass: page 5 written at the instant.
  s.End().Page("ram0", 5 * 4096, 0x55).Eos();
  const Bytes stream = s.DeviceState().b;

  Written w = Run(stream, dir.path(), 7);
  ASSERT_TRUE(w.status.ok()) << w.status.message();
  EXPECT_TRUE(w.complete);
  EXPECT_EQ(w.passes, 3u);
  EXPECT_EQ(w.pages, 5u);
  ASSERT_EQ(w.image.size(), 8 * 4096u);  // sized to ram0, not to every block
  EXPECT_EQ(PageAt(w.image, 0), Page(0x44));
  EXPECT_EQ(PageAt(w.image, 1), Page(0));
  EXPECT_EQ(PageAt(w.image, 3), Page(0x33));
  EXPECT_EQ(PageAt(w.image, 5), Page(0x55));
  // Pages 0, 3 and 5 hold data; page 1 was punched out again (tmpfs and ext4 both punch).
  EXPECT_LE(static_cast<uint64_t>(w.image_stat.st_blocks) * 512, 3 * 4096u);

  // The device state: the same stream without ram0's pages, still a stream QEMU can read.
  LastWrite rest;
  qemu::MigrationStreamReader reader(rest);
  ASSERT_TRUE(reader.Feed(w.device_state).ok());
  ASSERT_TRUE(reader.Finish().ok());
  ASSERT_EQ(rest.blocks.size(), 2u);
  EXPECT_EQ(rest.pages.size(), 1u);
  EXPECT_EQ(rest.pages.begin()->second, Page(0xb1));
  EXPECT_LT(w.device_state.size(), stream.size() - 5 * 4096);
}

TEST(PrecopyWriterTest, AStreamWithoutTheGuestRamBlockIsRefused) {
  TempDirForTest dir;
  StreamBuilder s;
  s.Header().Config().RamStart().BlockList({{"pc.ram", 8 * 4096}});
  s.Page("pc.ram", 0, 0x11).Eos().End().Eos();
  Written w = Run(s.DeviceState().b, dir.path());
  ASSERT_FALSE(w.status.ok());
  EXPECT_NE(w.status.message().find("ram0"), std::string::npos) << w.status.message();
}

Bytes ReadTestStream(const std::string& name) {
  std::string path = std::string(FERRY_QEMU_TESTDATA) + "/" + name;
  gzFile f = gzopen(path.c_str(), "rb");
  EXPECT_NE(f, nullptr) << path;
  Bytes out;
  if (f == nullptr) return out;
  std::vector<uint8_t> buf(1 << 16);
  int n;
  while ((n = gzread(f, buf.data(), unsigned(buf.size()))) > 0) {
    out.insert(out.end(), buf.data(), buf.data() + n);
  }
  gzclose(f);
  return out;
}

// A real stream of a running QEMU 7.2 (SeaBIOS writing its RAM while pages are sent pass after
// pass): the image holds what QEMU's loader would have left in ram0, page for page, and the
// device state stream loads the rest.
TEST(PrecopyWriterTest, ARunningQemusStreamLeavesTheImageItsLoaderWouldHave) {
  TempDirForTest dir;
  const Bytes stream = ReadTestStream("pattern_running.mig.gz");
  ASSERT_FALSE(stream.empty());
  Written w = Run(stream, dir.path(), 65536);
  ASSERT_TRUE(w.status.ok()) << w.status.message();
  EXPECT_GT(w.passes, 2u);

  LastWrite expected;
  qemu::MigrationStreamReader reader(expected);
  ASSERT_TRUE(reader.Feed(stream).ok());
  ASSERT_TRUE(reader.Finish().ok());
  size_t ram0 = 0;
  for (size_t i = 0; i < expected.blocks.size(); ++i) {
    if (expected.blocks[i].name == "ram0") ram0 = i;
  }
  ASSERT_EQ(w.image.size(), expected.blocks[ram0].used_bytes);
  uint64_t checked = 0;
  for (const auto& [where, page] : expected.pages) {
    if (where.first != ram0) continue;
    ASSERT_EQ(PageAt(w.image, where.second / kMigrationPageBytes), page)
        << "page at " << where.second;
    ++checked;
  }
  EXPECT_EQ(checked, w.image.size() / kMigrationPageBytes);  // every page of ram0 was sent

  LastWrite rest;
  qemu::MigrationStreamReader again(rest);
  ASSERT_TRUE(again.Feed(w.device_state).ok());
  ASSERT_TRUE(again.Finish().ok());
  for (const auto& [where, page] : rest.pages) EXPECT_NE(where.first, ram0);
  EXPECT_FALSE(rest.pages.empty());  // the ROMs' pages stay

  // Digested like a copied image: the chunks that hold the pattern are not zero.
  auto sealed = SealRamImage(dir.path() + "/ram", 1 << 20);
  ASSERT_TRUE(sealed.ok()) << sealed.status().message();
  EXPECT_EQ(sealed->size_bytes, w.image.size());
  EXPECT_GT(sealed->data_bytes, 0u);
  EXPECT_TRUE(VerifyRamFile(dir.path() + "/ram", *sealed).ok());
}

}  // namespace
}  // namespace ferry::snapshot
