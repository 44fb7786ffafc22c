#include "vm/qemu_user.h"

#include <pwd.h>

#include <chrono>
#include <vector>

#include "core/process.h"

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

}  // namespace ferry::vm
