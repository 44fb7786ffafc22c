// Who QEMU runs as. Every QEMU is spawned directly as a uid of its own, taken from a range
// reserved for ferry (--qemu-uids), and the group of the system user ferry-qemu (--qemu-user):
// - its own uid: no QEMU may signal, trace or read the memory of another (processes of one uid
//   may open each other's /proc/PID/mem), and it owns only its VM's RAM file;
// - the shared group: the snapshot RAM images clones map copy-on-write, which QEMU 7.2 opens
//   read-write even for a private mapping (docs/security.md);
// - never root: it starts unprivileged, so its seccomp filter forbids every way back
//   (elevateprivileges=deny).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <mutex>
#include <set>
#include <string>

#include "core/process.h"
#include "core/status.h"

namespace ferry::vm {

struct QemuUser {
  uid_t uid = 0;
  gid_t gid = 0;
};

// Looks `name` up; creates it as a system user and group without home or shell (useradd
// --system) when it does not exist. "" is accepted and does nothing.
Status EnsureQemuUser(const std::string& name);
// The user `name`, which must exist and be neither uid 0 nor gid 0.
Result<QemuUser> LookUpQemuUser(const std::string& name);

// A range of uids for QEMUs: FIRST:COUNT ("1879048192:65536", just above the range systemd
// gives containers). Refused when it includes uid 0 or a uid /etc/passwd names.
struct QemuUidRange {
  uid_t first = 1879048192;
  uint32_t count = 65536;
  static Result<QemuUidRange> Parse(const std::string& text);
  std::string ToString() const;
};
Status CheckUidRangeUnused(const QemuUidRange& range);

class QemuUids;

// One uid held for one QEMU, given back when the lease goes. An empty lease (QemuUids not
// configured, unit tests) runs QEMU as ferryd's own user.
class QemuUidLease {
 public:
  QemuUidLease() = default;
  QemuUidLease(QemuUidLease&& other) noexcept;
  QemuUidLease& operator=(QemuUidLease&& other) noexcept;
  QemuUidLease(const QemuUidLease&) = delete;
  QemuUidLease& operator=(const QemuUidLease&) = delete;
  ~QemuUidLease();

  bool held() const { return pool_ != nullptr; }
  uid_t uid() const { return uid_; }
  gid_t gid() const { return gid_; }

 private:
  friend class QemuUids;
  struct Pool;
  QemuUidLease(std::shared_ptr<Pool> pool, uid_t uid, gid_t gid)
      : pool_(std::move(pool)), uid_(uid), gid_(gid) {}
  void Release();
  std::shared_ptr<Pool> pool_;
  uid_t uid_ = 0;
  gid_t gid_ = 0;
};

// The uids of one ferryd's QEMUs. Thread-safe.
class QemuUids {
 public:
  QemuUids(QemuUidRange range, gid_t group);
  // The lowest uid of the range no QEMU of this ferryd runs as. ResourceExhausted when all are.
  Result<QemuUidLease> Acquire();
  // The uid a re-adopted QEMU already runs as, held again.
  QemuUidLease Adopt(uid_t uid);
  gid_t group() const;

 private:
  std::shared_ptr<QemuUidLease::Pool> pool_;
};

// The real uid of a running process (/proc/PID/status).
Result<uid_t> ProcessUid(pid_t pid);

}  // namespace ferry::vm
