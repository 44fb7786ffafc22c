#include "snapshot/verified_files.h"

#include <sys/stat.h>
#include <time.h>

#include <algorithm>

namespace ferry::snapshot {

namespace {

int64_t Nanos(const struct timespec& ts) {
  return static_cast<int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

int64_t RealtimeNow() {
  struct timespec ts;
  ::clock_gettime(CLOCK_REALTIME, &ts);
  return Nanos(ts);
}

VerifiedFiles::Options WithDefaults(VerifiedFiles::Options o) {
  if (!o.verify) o.verify = VerifyRamFile;
  if (!o.now_ns) o.now_ns = RealtimeNow;
  return o;
}

}  // namespace

VerifiedFiles::VerifiedFiles(Options options) : options_(WithDefaults(std::move(options))) {}

bool VerifiedFiles::Stat(const std::string& path, Identity* out) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return false;
  *out = Identity{static_cast<uint64_t>(st.st_dev), static_cast<uint64_t>(st.st_ino),
                  static_cast<uint64_t>(st.st_size), Nanos(st.st_mtim), Nanos(st.st_ctim)};
  return true;
}

std::shared_ptr<VerifiedFiles::Entry> VerifiedFiles::EntryFor(const std::string& path) {
  std::lock_guard<std::mutex> lock(mu_);
  auto& entry = entries_[path];
  if (!entry) entry = std::make_shared<Entry>();
  return entry;
}

Status VerifiedFiles::Check(const std::string& path, const RamImage& expected) {
  return CheckEntry(path, expected, [&] { return options_.verify(path, expected); });
}

Status VerifiedFiles::CheckDigest(const std::string& path, const std::string& sha256,
                                  const std::function<Status()>& verify) {
  return CheckEntry(path, sha256, verify);
}

template <typename T>
Status VerifiedFiles::CheckEntry(const std::string& path, const T& expected,
                                 const std::function<Status()>& verify) {
  std::shared_ptr<Entry> entry = EntryFor(path);
  std::lock_guard<std::mutex> lock(entry->mu);
  Identity before;
  const int64_t started_ns = options_.now_ns();
  const bool have_before = Stat(path, &before);
  const T* matched = std::get_if<T>(&entry->expected);
  if (have_before && entry->verified && entry->identity == before && matched != nullptr &&
      *matched == expected) {
    return Status::Ok();
  }
  entry->verified = false;
  full_verifications_.fetch_add(1);
  FERRY_RETURN_IF_ERROR(verify());
  // Remember only what provably did not change while it was read, and is not racily recent.
  Identity after;
  const bool settled =
      std::max(before.mtime_ns, before.ctime_ns) + options_.racy_window_ns <= started_ns;
  if (have_before && Stat(path, &after) && after == before && settled) {
    entry->verified = true;
    entry->identity = before;
    entry->expected = expected;
  }
  return Status::Ok();
}

void VerifiedFiles::AcrossLinkChange(const std::string& path, const std::function<void()>& change) {
  std::shared_ptr<Entry> entry = EntryFor(path);
  std::lock_guard<std::mutex> lock(entry->mu);
  Identity before;
  const bool have_before = Stat(path, &before);
  change();
  Identity after;
  if (!have_before || !entry->verified || !(entry->identity == before) || !Stat(path, &after)) {
    return;
  }
  Identity ctime_moved = before;
  ctime_moved.ctime_ns = after.ctime_ns;
  if (after == ctime_moved) entry->identity = after;
}

void VerifiedFiles::Forget(const std::string& path) {
  std::lock_guard<std::mutex> lock(mu_);
  entries_.erase(path);
}

void VerifiedFiles::ForgetUnder(const std::string& dir) {
  const std::string prefix = dir + "/";
  std::lock_guard<std::mutex> lock(mu_);
  for (auto it = entries_.lower_bound(prefix);
       it != entries_.end() && it->first.compare(0, prefix.size(), prefix) == 0;) {
    it = entries_.erase(it);
  }
}

}  // namespace ferry::snapshot
