// Migration streams for tests: QEMU 7.2's real ones read from testdata, and ones built byte by
// byte in its layout for the cases QEMU does not send. Shared by the stream reader's tests and
// the snapshot code's tests over it.
#pragma once

#include <gtest/gtest.h>
#include <zlib.h>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "qemu/migration_stream.h"

namespace ferry::qemu {

using Bytes = std::vector<uint8_t>;

// Real streams of qemu-system-x86_64 7.2, made by testdata/make_streams.sh (gzipped there).
inline Bytes ReadTestStream(const std::string& name) {
  std::string path = std::string(FERRY_QEMU_TESTDATA) + "/" + name;
  gzFile f = gzopen(path.c_str(), "rb");
  EXPECT_NE(f, nullptr) << path;
  Bytes out;
  if (f == nullptr) return out;
  std::vector<uint8_t> buf(1 << 16);
  int n;
  while ((n = gzread(f, buf.data(), unsigned(buf.size()))) > 0)
    out.insert(out.end(), buf.data(), buf.data() + n);
  gzclose(f);
  return out;
}

// The page make_streams.sh writes at page index `i` (every 97th page).
inline Bytes PatternPage(uint64_t i) {
  Bytes page;
  for (int k = 0; k < 128; ++k) {
    uint64_t off = i * kMigrationPageBytes;
    for (int b = 0; b < 8; ++b) page.push_back(uint8_t(off >> (8 * b)));
    const char* text = "ferry-mstream-pattern!!!";
    page.insert(page.end(), text, text + 24);
  }
  return page;
}

// Builds streams in the 7.2 layout (QEMU 10's with Config("pc-q35-10.0") and Command()), for the
// cases QEMU does not send.
struct StreamBuilder {
  std::vector<uint8_t> b;
  StreamBuilder& U8(uint8_t v) {
    b.push_back(v);
    return *this;
  }
  StreamBuilder& Be32(uint32_t v) {
    for (int s = 24; s >= 0; s -= 8) b.push_back(uint8_t(v >> s));
    return *this;
  }
  StreamBuilder& Be64(uint64_t v) { return Be32(uint32_t(v >> 32)).Be32(uint32_t(v)); }
  StreamBuilder& Str(const std::string& s) {
    U8(uint8_t(s.size()));
    b.insert(b.end(), s.begin(), s.end());
    return *this;
  }
  StreamBuilder& Header() {
    b.insert(b.end(), {'Q', 'E', 'V', 'M'});
    return Be32(3);
  }
  StreamBuilder& Config(const std::string& machine = "pc-q35-7.2") {
    U8(0x07).Be32(uint32_t(machine.size()));
    for (char c : machine) b.push_back(uint8_t(c));
    return *this;
  }
  // QEMU 10's COMMAND SWITCHOVER_START (11, no data), or another command.
  StreamBuilder& Command(uint16_t command = 11, uint16_t length = 0) {
    return U8(0x08)
        .U8(uint8_t(command >> 8))
        .U8(uint8_t(command))
        .U8(uint8_t(length >> 8))
        .U8(uint8_t(length));
  }
  StreamBuilder& RamStart(uint32_t id = 2) { return U8(0x01).Be32(id).Str("ram").Be32(0).Be32(4); }
  StreamBuilder& BlockList(std::vector<std::pair<std::string, uint64_t>> blocks) {
    uint64_t total = 0;
    for (auto& [n, s] : blocks) total += s;
    Be64(total | 0x04);
    for (auto& [n, s] : blocks) Str(n).Be64(s);
    return *this;
  }
  StreamBuilder& Page(const std::string& block, uint64_t offset, uint8_t byte) {
    Be64(offset | 0x08 | (block.empty() ? 0x20 : 0));
    if (!block.empty()) Str(block);
    b.insert(b.end(), kMigrationPageBytes, byte);
    return *this;
  }
  // A ZERO record; `fill` is the byte QEMU says every byte of the page is.
  StreamBuilder& Zero(const std::string& block, uint64_t offset, uint8_t fill = 0) {
    Be64(offset | 0x02 | (block.empty() ? 0x20 : 0));
    if (!block.empty()) Str(block);
    return U8(fill);
  }
  StreamBuilder& Eos(uint32_t id = 2) { return Be64(0x10).U8(0x7e).Be32(id); }
  StreamBuilder& Part(uint32_t id = 2) { return U8(0x02).Be32(id); }
  StreamBuilder& End(uint32_t id = 2) { return U8(0x03).Be32(id); }
  StreamBuilder& DeviceState() {
    U8(0x04).Be32(3).Str("timer").Be32(0).Be32(2).Be64(0x1234).U8(0x7e).Be32(3);
    return U8(0x00).U8(0x06).Be32(2).U8('{').U8('}');
  }
  // Header, configuration, RAM START with the block list.
  StreamBuilder& Start(std::vector<std::pair<std::string, uint64_t>> blocks) {
    return Header().Config().RamStart().BlockList(std::move(blocks));
  }
  // EOS of START, an empty END, and a small device state.
  StreamBuilder& Finish() { return Eos().End().Eos().DeviceState(); }
  size_t size() const { return b.size(); }
};

}  // namespace ferry::qemu
