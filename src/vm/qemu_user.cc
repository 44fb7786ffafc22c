#include "vm/qemu_user.h"

#include <pwd.h>

#include <charconv>
#include <chrono>
#include <fstream>
#include <vector>

namespace ferry::vm {

Result<QemuUser> LookUpQemuUser(const std::string& name) {
  struct passwd pw;
  struct passwd* found = nullptr;
  std::vector<char> buf(16384);
  if (::getpwnam_r(name.c_str(), &pw, buf.data(), buf.size(), &found) != 0 || found == nullptr) {
    return Status::NotFound("QEMU user " + name + " does not exist");
  }
  if (pw.pw_uid == 0 || pw.pw_gid == 0) {
    return Status::FailedPrecondition("QEMU user " + name +
                                      " has uid or gid 0; QEMU must run unprivileged, choose "
                                      "another --qemu-user");
  }
  return QemuUser{pw.pw_uid, pw.pw_gid};
}

Status EnsureQemuUser(const std::string& name) {
  if (name.empty()) return Status::Ok();
  if (LookUpQemuUser(name).ok()) return Status::Ok();
  auto useradd = Process::Spawn(
      {"useradd", "--system", "--user-group", "--no-create-home", "--home-dir", "/nonexistent",
       "--shell", "/usr/sbin/nologin", "--comment", "ferry QEMU processes", name},
      "/dev/null");
  if (!useradd.ok()) return useradd.status().WithContext("cannot create QEMU user " + name);
  auto ex = useradd->WaitExit(std::chrono::seconds(30));
  if (!ex || ex->signaled || ex->code != 0) {
    return Status::Internal("cannot create QEMU user " + name + ": useradd " +
                            (ex ? ex->Describe() : "did not finish") +
                            "; create it with `useradd --system " + name + "`");
  }
  return LookUpQemuUser(name).status();
}

Result<QemuUidRange> QemuUidRange::Parse(const std::string& text) {
  const std::string usage = "--qemu-uids " + text + ": expected FIRST:COUNT, e.g. 1879048192:65536";
  const size_t colon = text.find(':');
  if (colon == std::string::npos) return Status::InvalidArgument(usage);
  uint64_t first = 0, count = 0;
  const char* end = text.data() + text.size();
  auto a = std::from_chars(text.data(), text.data() + colon, first);
  auto b = std::from_chars(text.data() + colon + 1, end, count);
  if (a.ec != std::errc() || a.ptr != text.data() + colon || b.ec != std::errc() || b.ptr != end) {
    return Status::InvalidArgument(usage);
  }
  // (uid_t)-1 means "unchanged" to the kernel; the range must stay below it.
  if (first == 0 || count == 0 || first + count > uint64_t{0xFFFFFFFF}) {
    return Status::InvalidArgument(usage + "; the range must exclude uid 0 and 4294967295");
  }
  return QemuUidRange{static_cast<uid_t>(first), static_cast<uint32_t>(count)};
}

std::string QemuUidRange::ToString() const {
  return std::to_string(first) + ":" + std::to_string(count);
}

Status CheckUidRangeUnused(const QemuUidRange& range) {
  // getpwent walks every source nsswitch names; a user in the range would share its uid with
  // a QEMU (and with the VM's files).
  ::setpwent();
  Status st = Status::Ok();
  while (struct passwd* pw = ::getpwent()) {
    if (pw->pw_uid >= range.first && pw->pw_uid - range.first < range.count) {
      st = Status::FailedPrecondition("--qemu-uids " + range.ToString() + " includes uid " +
                                      std::to_string(pw->pw_uid) + " of user " + pw->pw_name +
                                      "; choose a range no user has");
      break;
    }
  }
  ::endpwent();
  return st;
}

struct QemuUidLease::Pool {
  QemuUidRange range;
  gid_t group = 0;
  std::mutex mu;
  std::set<uid_t> used;
};

QemuUidLease::QemuUidLease(QemuUidLease&& other) noexcept
    : pool_(std::move(other.pool_)), uid_(other.uid_), gid_(other.gid_) {}

QemuUidLease& QemuUidLease::operator=(QemuUidLease&& other) noexcept {
  if (this != &other) {
    Release();
    pool_ = std::move(other.pool_);
    uid_ = other.uid_;
    gid_ = other.gid_;
  }
  return *this;
}

QemuUidLease::~QemuUidLease() { Release(); }

void QemuUidLease::Release() {
  if (!pool_) return;
  std::lock_guard<std::mutex> lock(pool_->mu);
  pool_->used.erase(uid_);
  pool_.reset();
}

QemuUids::QemuUids(QemuUidRange range, gid_t group)
    : pool_(std::make_shared<QemuUidLease::Pool>()) {
  pool_->range = range;
  pool_->group = group;
}

gid_t QemuUids::group() const { return pool_->group; }

Result<QemuUidLease> QemuUids::Acquire() {
  std::lock_guard<std::mutex> lock(pool_->mu);
  const QemuUidRange& r = pool_->range;
  // The lowest free one: `used` is ordered, so the first gap is found in one pass.
  uid_t candidate = r.first;
  for (uid_t u : pool_->used) {
    if (u < candidate) continue;
    if (u != candidate) break;
    ++candidate;
  }
  if (candidate - r.first >= r.count) {
    return Status::ResourceExhausted("all " + std::to_string(r.count) +
                                     " QEMU uids of --qemu-uids " + r.ToString() +
                                     " are in use; widen the range");
  }
  pool_->used.insert(candidate);
  return QemuUidLease(pool_, candidate, pool_->group);
}

QemuUidLease QemuUids::Adopt(uid_t uid) {
  std::lock_guard<std::mutex> lock(pool_->mu);
  pool_->used.insert(uid);
  return QemuUidLease(pool_, uid, pool_->group);
}

Result<uid_t> ProcessUid(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("Uid:", 0) == 0) {
      uint64_t uid = 0;
      const char* p = line.data() + 4;
      while (*p == '\t' || *p == ' ') ++p;
      auto r = std::from_chars(p, line.data() + line.size(), uid);
      if (r.ec == std::errc()) return static_cast<uid_t>(uid);
    }
  }
  return Status::NotFound("process " + std::to_string(pid) + " is gone");
}

}  // namespace ferry::vm
