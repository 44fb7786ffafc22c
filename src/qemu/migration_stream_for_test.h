// Streams in QEMU 7.2's layout built byte by byte, for tests of the cases QEMU does not send.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "qemu/migration_stream.h"

namespace ferry::qemu {

// Builds streams in the 7.2 layout, for the cases QEMU does not send.
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
  StreamBuilder& Config() {
    U8(0x07).Be32(10);
    for (char c : std::string("pc-q35-7.2")) b.push_back(uint8_t(c));
    return *this;
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
  StreamBuilder& Zero(const std::string& block, uint64_t offset) {
    Be64(offset | 0x02 | (block.empty() ? 0x20 : 0));
    if (!block.empty()) Str(block);
    return U8(0);
  }
  StreamBuilder& Eos(uint32_t id = 2) { return Be64(0x10).U8(0x7e).Be32(id); }
  StreamBuilder& Part(uint32_t id = 2) { return U8(0x02).Be32(id); }
  StreamBuilder& End(uint32_t id = 2) { return U8(0x03).Be32(id); }
  StreamBuilder& DeviceState() {
    U8(0x04).Be32(3).Str("timer").Be32(0).Be32(2).Be64(0x1234).U8(0x7e).Be32(3);
    return U8(0x00).U8(0x06).Be32(2).U8('{').U8('}');
  }
  size_t size() const { return b.size(); }
};

}  // namespace ferry::qemu
