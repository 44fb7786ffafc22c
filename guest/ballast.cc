#include "guest/ballast.h"

#include <sys/mman.h>

#include <cstring>

namespace ferry::guest {
namespace {

constexpr std::size_t kMiB = std::size_t{1} << 20;

uint64_t Next(uint64_t& state) {
  state ^= state >> 12;
  state ^= state << 25;
  state ^= state >> 27;
  return state * 0x2545F4914F6CDD1DULL;
}

}  // namespace

Ballast::~Ballast() {
  for (uint8_t* r : regions_) ::munmap(r, kMiB);
}

std::string Ballast::Resize(uint64_t mib, uint64_t available_mib, uint64_t seed) {
  if (mib > kMaxMiB) return "ballast: at most " + std::to_string(kMaxMiB) + " MiB";
  while (regions_.size() > mib) {
    ::munmap(regions_.back(), kMiB);
    regions_.pop_back();
  }
  const uint64_t grow = mib - regions_.size();
  if (grow > available_mib) {
    return "ballast: " + std::to_string(grow) + " MiB more asked, but the guest can spare only " +
           std::to_string(available_mib) + " MiB";
  }
  uint64_t state = seed | 1;  // xorshift must not start at 0
  while (regions_.size() < mib) {
    void* p = ::mmap(nullptr, kMiB, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
      return "ballast: cannot map more memory after " + std::to_string(regions_.size()) +
             " MiB: " + std::strerror(errno);
    }
    auto* words = static_cast<uint64_t*>(p);
    for (std::size_t i = 0; i < kMiB / sizeof(uint64_t); ++i) words[i] = Next(state);
    regions_.push_back(static_cast<uint8_t*>(p));
  }
  return "";
}

uint8_t Ballast::At(uint64_t index, std::size_t offset) const { return regions_.at(index)[offset]; }

uint64_t MemAvailableMiB(const std::string& meminfo) {
  const std::string key = "MemAvailable:";
  auto at = meminfo.find(key);
  if (at == std::string::npos) return 0;
  return std::strtoull(meminfo.c_str() + at + key.size(), nullptr, 10) / 1024;  // kB
}

}  // namespace ferry::guest
