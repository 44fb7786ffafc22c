// Fuzzes the split of a clone's migration stream (snapshot/stream_ram_split.h): the reader of
// QEMU's stream driving the visitor that writes the guest RAM block's pages into a RAM image and
// passes the rest on without them. The bytes come from a QEMU a guest may have subverted. Beyond
// "does not crash", it checks what the split promises for an accepted stream: the image holds
// exactly what a loader applying every ram0 record in order would (pages never sent are zero),
// it is never larger than the VM's RAM, the chunk table kept on the way is the one the written
// image yields (VerifyRamFile), and the rest is what RamStrippedStream writes.
#include "snapshot/stream_ram_split.h"

#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "core/unique_fd.h"
#include "qemu/migration_stream.h"
#include "qemu/ram_stripped_stream.h"
#include "snapshot/ram_image.h"

namespace {

using ferry::Status;
using ferry::UniqueFd;
using namespace ferry::qemu;
using ferry::snapshot::kGuestRamBlock;
using ferry::snapshot::StreamRamSplit;
using ferry::snapshot::VerifyRamFile;

// The VM's RAM: the size of ram0 in the seed corpus (fuzz/make_corpus.py).
constexpr uint64_t kRamBytes = 16 * kMigrationPageBytes;
constexpr uint64_t kMaxDeviceState = 1 << 20;

struct Replay : MigrationStreamVisitor {
  std::vector<uint8_t> ram = std::vector<uint8_t>(kRamBytes, 0);
  std::optional<size_t> block;
  Status OnRamBlocks(const std::vector<MigrationRamBlock>& blocks) override {
    for (size_t i = 0; i < blocks.size(); ++i) {
      if (blocks[i].name == kGuestRamBlock && blocks[i].used_bytes == kRamBytes) block = i;
    }
    return Status::Ok();
  }
  Status OnRamPage(const MigrationRamPage& p) override {
    if (p.block != block) return Status::Ok();
    if (p.zero())
      std::memset(ram.data() + p.offset, p.fill, kMigrationPageBytes);
    else
      std::memcpy(ram.data() + p.offset, p.data.data(), kMigrationPageBytes);
    return Status::Ok();
  }
};

void Fail(const char* what) {
  std::fprintf(stderr, "stream_ram_split: %s\n", what);
  std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::span<const uint8_t> input(data, size);
  UniqueFd ram(::memfd_create("ram", MFD_CLOEXEC));
  if (!ram.valid()) Fail("memfd_create failed");
  std::vector<uint8_t> rest;
  StreamRamSplit split(ram.get(), "ram", {kRamBytes, kMaxDeviceState, 0, /*digest=*/true},
                       [&](std::span<const uint8_t> b) {
                         rest.insert(rest.end(), b.begin(), b.end());
                         return Status::Ok();
                       });
  MigrationStreamReader reader(split);
  const size_t piece = 1 + size % 4099;
  Status st;
  for (size_t pos = 0; pos < size && st.ok(); pos += piece) {
    st = reader.Feed(input.subspan(pos, std::min(piece, size - pos)));
  }
  if (st.ok()) st = reader.Finish();
  if (st.ok()) st = split.Finish();
  struct stat info {};
  if (::fstat(ram.get(), &info) != 0) Fail("fstat failed");
  if (uint64_t(info.st_size) > kRamBytes) Fail("the image is larger than the VM's RAM");
  if (rest.size() > kMaxDeviceState) Fail("the rest passed its limit");
  if (!st.ok()) return 0;

  Replay want;
  MigrationStreamReader replay(want);
  if (!replay.Feed(input).ok() || !replay.Finish().ok()) Fail("the replay refused the stream");
  std::vector<uint8_t> image(kRamBytes);
  if (uint64_t(info.st_size) != kRamBytes) Fail("an accepted stream left the image unsized");
  if (::pread(ram.get(), image.data(), image.size(), 0) != ssize_t(kRamBytes)) Fail("pread");
  if (image != want.ram) Fail("the image is not what a loader would have");
  // The chunk table kept while writing is the one a clone's check finds in the file.
  auto table = split.Image(16 * 1024);
  if (!table.ok()) Fail("no chunk table for an accepted stream");
  const std::string path = "/proc/self/fd/" + std::to_string(ram.get());
  if (!VerifyRamFile(path, *table).ok()) Fail("the kept chunk table does not match the image");

  std::vector<uint8_t> stripped;
  RamStrippedStream strip(
      [&](std::span<const uint8_t> b) {
        stripped.insert(stripped.end(), b.begin(), b.end());
        return Status::Ok();
      },
      [](const MigrationRamBlock& b) { return b.name == kGuestRamBlock; });
  MigrationStreamReader again(strip);
  if (!again.Feed(input).ok() || !again.Finish().ok()) Fail("the stripper refused the stream");
  if (stripped != rest) Fail("the rest is not the stripped stream");
  return 0;
}
