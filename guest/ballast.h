// Ballast: guest memory filled with random bytes and held, on the host's request (the "ballast"
// op, protocol.h). A test and benchmark aid: holds, snapshots and migrations are measured on
// guests whose RAM is full of data that neither compresses nor deduplicates, which a guest that
// only booted is not. Pseudo-random (xorshift64*, seeded from /dev/urandom) is enough: the
// point is bytes no chunk store or compressor can shrink, not secrecy, and the guest fills a
// GiB in seconds under TCG.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace ferry::guest {

class Ballast {
 public:
  static constexpr uint64_t kMaxMiB = 1 << 20;  // 1 TiB: a bound on the request, not a promise
  ~Ballast();

  // Holds exactly `mib` MiB (growing with fresh random bytes, or freeing the newest MiBs).
  // `available_mib` is what the guest can spare (MemAvailable minus a reserve): growth beyond
  // it is refused, since the OOM killer would pick the guest's PID 1. Returns "" or the error.
  std::string Resize(uint64_t mib, uint64_t available_mib, uint64_t seed);
  uint64_t mib() const { return regions_.size(); }
  // One byte of MiB `index` at `offset` (for tests).
  uint8_t At(uint64_t index, std::size_t offset) const;

 private:
  std::vector<uint8_t*> regions_;  // one mmap'd MiB each
};

// MemAvailable from /proc/meminfo's text, in MiB; 0 when it is missing.
uint64_t MemAvailableMiB(const std::string& meminfo);

}  // namespace ferry::guest
