// What the migration stream's unit tests share: QEMU's recorded streams, a visitor that records
// every event, and ways to feed, strip and expect a refusal.
#pragma once

#include <gtest/gtest.h>
#include <zlib.h>

#include <algorithm>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "qemu/migration_stream.h"
#include "qemu/migration_stream_for_test.h"
#include "qemu/ram_stripped_stream.h"

namespace ferry::qemu::stream_test {

inline const Bytes& ShareOffStream() {
  static const Bytes s = ReadTestStream("pattern_share_off.mig.gz");
  return s;
}
inline const Bytes& IgnoreSharedStream() {
  static const Bytes s = ReadTestStream("pattern_ignore_shared.mig.gz");
  return s;
}

inline const Bytes& RunningStream() {
  static const Bytes s = ReadTestStream("pattern_running.mig.gz");
  return s;
}

inline uint32_t Crc(std::span<const uint8_t> b) { return crc32(0, b.data(), unsigned(b.size())); }

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
inline Status ReadAll(const Bytes& stream, MigrationStreamReader& reader, size_t piece = SIZE_MAX) {
  for (size_t pos = 0; pos < stream.size();) {
    size_t n = std::min(piece, stream.size() - pos);
    Status st = reader.Feed(std::span<const uint8_t>(stream.data() + pos, n));
    if (!st.ok()) return st;
    pos += n;
  }
  return reader.Finish();
}
inline Status ReadAll(const Bytes& stream, MigrationStreamVisitor& visitor) {
  MigrationStreamReader reader(visitor);
  return ReadAll(stream, reader);
}
inline Status ReadAll(const Bytes& stream) {
  MigrationStreamVisitor ignore;
  return ReadAll(stream, ignore);
}

inline Bytes Strip(const Bytes& stream, RamStrippedStream::BlockFilter filter,
                   Status* status = nullptr) {
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
inline StreamBuilder Start() {
  StreamBuilder s;
  s.Header().Config().RamStart().BlockList({{"pc.ram", 8 * 4096}, {"pc.bios", 2 * 4096}});
  return s;
}
inline Bytes Synthetic() {
  StreamBuilder s = Start();
  s.Page("pc.ram", 0, 0xab).Zero("", 4096).Eos();
  s.Part().Page("pc.bios", 4096, 0xcd).Eos();
  s.End().Page("", 0, 0xef).Eos();
  return s.DeviceState().b;
}

// Expects `stream` to be refused with Corruption at byte `at`, its message containing `what`.
inline void ExpectRefused(const Bytes& stream, uint64_t at, const std::string& what) {
  Status st = ReadAll(stream);
  ASSERT_FALSE(st.ok()) << "accepted; expected: " << what;
  EXPECT_EQ(st.code(), Status::Code::kCorruption) << st.message();
  EXPECT_NE(st.message().find("at byte " + std::to_string(at) + ":"), std::string::npos)
      << st.message();
  EXPECT_NE(st.message().find(what), std::string::npos) << st.message();
}

}  // namespace ferry::qemu::stream_test
