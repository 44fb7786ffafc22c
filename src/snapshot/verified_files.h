// Remembers which snapshot files have passed a full check, so that restoring a clone costs a
// stat(2) and not a read of the guest's whole RAM (clone latency must not grow with RAM size),
// nor a SHA-256 of its device state and frozen disk image on every clone.
//
// Why a stat is enough: a file is remembered as (device, inode, size, mtime, ctime) together with
// the chunk table it matched. The kernel moves mtime and ctime on every write(2), truncate and
// fallocate, moves ctime alone on chmod, utimes and link changes (and ctime cannot be set back by
// anyone), and a replaced file has a new inode. So any change to the bytes through the file
// system changes the identity, and the next Check verifies the whole file again.
//
// Limits, and why they are acceptable here:
//  - Timestamps come from a coarse clock (one tick, up to 10 ms, on kernels without multigrain
//    timestamps): a write in the same tick as the previous change leaves them unchanged. So, as
//    Git does for "racily clean" index entries, a verification is only remembered when the file's
//    last change is older than `racy_window_ns` before the verification started; a later write
//    then lands in a later tick and is seen.
//  - A process holding a writable MAP_SHARED mapping moves mtime only on its first write fault
//    per page. RAM images are mode 0400, owned by ferryd, and clones map them MAP_PRIVATE, whose
//    writes never reach the file; this cache is about damage, not about a root adversary.
//  - The system clock stepping backwards can make a fresh change look old. Rare, and the next
//    snapshot or a restart of ferryd (the cache lives in memory only) starts clean.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <variant>

#include "core/status.h"
#include "snapshot/ram_image.h"

namespace ferry::snapshot {

// Thread-safe. Checks of different files run in parallel; concurrent checks of one file wait for
// a single full verification rather than each reading the file (a burst of clones of a new
// snapshot reads its RAM once or twice, not once per clone).
class VerifiedFiles {
 public:
  using Verifier = std::function<Status(const std::string& path, const RamImage& expected)>;

  struct Options {
    Verifier verify;                  // the full check; VerifyRamFile when unset
    std::function<int64_t()> now_ns;  // CLOCK_REALTIME, the clock of file timestamps, when unset
    int64_t racy_window_ns = 50'000'000;  // above the coarsest timestamp tick (10 ms at HZ=100)
  };

  VerifiedFiles() : VerifiedFiles(Options{}) {}
  explicit VerifiedFiles(Options options);

  // OK if `path` holds what `expected` describes. A stat when the file is unchanged since it last
  // verified against the same table; otherwise a full verification, remembered if it passes.
  // Errors are those of the verifier (Corruption naming the file and chunk).
  Status Check(const std::string& path, const RamImage& expected);
  // The same for a file checked whole against a SHA-256 (a device state, a frozen disk image):
  // `verify` is the full check, run when the file changed since it last passed against `sha256`.
  Status CheckDigest(const std::string& path, const std::string& sha256,
                     const std::function<Status()>& verify);
  // Runs `change`, which only adds and removes links of `path`'s file (ferryd linking a snapshot's
  // RAM image into a spare QEMU's slot and unlinking it, spare_qemus.h), and keeps the file
  // verified across it if it was: the link count moves ctime, which would otherwise cost the
  // next clone a full verification. Kept only if ctime alone moved; a write moves mtime, which
  // no one but the file's owner (ferryd) can set back. No check of `path` runs meanwhile.
  void AcrossLinkChange(const std::string& path, const std::function<void()>& change);
  // Forgets `path` (its snapshot was deleted), so the memory does not grow with deleted snapshots.
  void Forget(const std::string& path);
  // Forgets every path in directory `dir` (a deleted snapshot's).
  void ForgetUnder(const std::string& dir);
  // How many full verifications ran; for tests and metrics.
  uint64_t full_verifications() const { return full_verifications_.load(); }

 private:
  struct Identity {
    uint64_t dev = 0;
    uint64_t ino = 0;
    uint64_t size = 0;
    int64_t mtime_ns = 0;
    int64_t ctime_ns = 0;
    bool operator==(const Identity&) const = default;
  };
  struct Entry {
    std::mutex mu;  // held across a full verification of this path
    bool verified = false;
    Identity identity;
    // What it matched: a RAM chunk table, or a file's SHA-256. Another means verify again.
    std::variant<RamImage, std::string> expected;
  };
  // Check and CheckDigest, for an expectation of type T (RamImage or the SHA-256 string).
  template <typename T>
  Status CheckEntry(const std::string& path, const T& expected,
                    const std::function<Status()>& verify);

  static bool Stat(const std::string& path, Identity* out);
  std::shared_ptr<Entry> EntryFor(const std::string& path);

  const Options options_;
  std::mutex mu_;  // guards entries_ (the map, not the entries)
  std::map<std::string, std::shared_ptr<Entry>> entries_;
  std::atomic<uint64_t> full_verifications_{0};
};

}  // namespace ferry::snapshot
