#include "vm/vm_disk.h"

#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/files.h"
#include "core/process.h"

namespace ferry::vm {
namespace {

constexpr std::chrono::milliseconds kQemuImgTimeout{60000};

Status RunQemuImg(const std::vector<std::string>& argv, const std::string& path) {
  struct stat st;
  if (::lstat(path.c_str(), &st) == 0) {
    return Status::AlreadyExists("disk image " + path + " exists already; refusing to replace it");
  }
  const std::string log = path + ".qemu-img.log";
  auto process = Process::Spawn(argv, log);
  if (!process.ok()) return process.status().WithContext("creating disk image " + path);
  auto exit = process->WaitExit(kQemuImgTimeout);
  std::string output = TailFile(log, 400);
  ::unlink(log.c_str());
  if (!exit) {
    process->Signal(SIGKILL);
    process->WaitExit(kQemuImgTimeout);
    ::unlink(path.c_str());
    return Status::DeadlineExceeded("qemu-img did not create " + path + " within 60 s");
  }
  if (!exit->known || exit->signaled || exit->code != 0) {
    ::unlink(path.c_str());
    return Status::Internal("qemu-img could not create " + path + " (" + exit->Describe() +
                            "): " + output);
  }
  ::chmod(path.c_str(), 0600);
  return Status::Ok();
}

}  // namespace

std::string QemuImgFor(const std::string& qemu_binary) {
  auto slash = qemu_binary.rfind('/');
  if (slash == std::string::npos) return "qemu-img";
  std::string beside = qemu_binary.substr(0, slash + 1) + "qemu-img";
  return ::access(beside.c_str(), X_OK) == 0 ? beside : "qemu-img";
}

Status CreateBlankDisk(const std::string& qemu_img, const std::string& path, uint64_t mib) {
  return RunQemuImg({qemu_img, "create", "-q", "-f", "qcow2", path, std::to_string(mib) + "M"},
                    path);
}

Status CreateOverlay(const std::string& qemu_img, const std::string& path,
                     const std::string& backing) {
  if (backing.empty() || backing[0] != '/') {
    return Status::InvalidArgument("overlay " + path + ": backing image path must be absolute");
  }
  return RunQemuImg({qemu_img, "create", "-q", "-f", "qcow2", "-b", backing, "-F", "qcow2", path},
                    path);
}

}  // namespace ferry::vm
