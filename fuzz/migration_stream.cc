// Fuzzes the reader of QEMU's migration stream (qemu/migration_stream.h): bytes a QEMU, which a
// guest may have subverted, writes when ferry saves a VM. Beyond "does not crash", it checks what
// the reader promises: a split of the input changes nothing; the non-page bytes and the pages
// are the whole input; an accepted stream stripped of its pages reads back accepted, with no
// page and the same non-page bytes.
#include "qemu/migration_stream.h"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <span>
#include <vector>

#include "qemu/ram_stripped_stream.h"

namespace {

using ferry::Status;
using namespace ferry::qemu;

struct Counter : MigrationStreamVisitor {
  uint64_t page_bytes = 0;
  uint64_t pages = 0;
  std::vector<uint8_t> other;
  Status OnRamPage(const MigrationRamPage& p) override {
    ++pages;
    if (!p.zero() && p.data.size() != kMigrationPageBytes) {
      std::fprintf(stderr, "migration_stream: a page of %zu bytes\n", p.data.size());
      std::abort();
    }
    return Status::Ok();
  }
  Status OnOtherBytes(std::span<const uint8_t> b) override {
    other.insert(other.end(), b.begin(), b.end());
    return Status::Ok();
  }
};

Status Read(std::span<const uint8_t> input, size_t piece, MigrationStreamVisitor& v) {
  MigrationStreamReader reader(v);
  Status st;
  for (size_t pos = 0; pos < input.size() && st.ok(); pos += piece) {
    st = reader.Feed(input.subspan(pos, std::min(piece, input.size() - pos)));
  }
  if (st.ok()) st = reader.Finish();
  return st;
}

void Fail(const char* what) {
  std::fprintf(stderr, "migration_stream: %s\n", what);
  std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::span<const uint8_t> input(data, size);
  Counter whole, split;
  Status a = Read(input, size ? size : 1, whole);
  Status b = Read(input, 1 + size % 13, split);
  if (a.ok() != b.ok() || a.message() != b.message())
    Fail("a split of the input changed the result");
  if (!a.ok()) return 0;  // what was reported before an error may differ: it is thrown away
  if (whole.pages != split.pages || whole.other != split.other) {
    Fail("a split of the input changed the events");
  }

  std::vector<uint8_t> stripped;
  RamStrippedStream strip(
      [&](std::span<const uint8_t> bytes) {
        stripped.insert(stripped.end(), bytes.begin(), bytes.end());
        return Status::Ok();
      },
      [](const MigrationRamBlock&) { return true; });
  if (!Read(input, size, strip).ok()) Fail("an accepted stream was refused by the stripper");
  if (stripped != whole.other) Fail("the stripped stream is not the non-page bytes");
  Counter again;
  if (!Read(stripped, stripped.size(), again).ok()) Fail("a stripped stream was refused");
  if (again.pages != 0 || again.other != stripped) Fail("a stripped stream still has pages");
  return 0;
}
