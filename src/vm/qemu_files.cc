#include "vm/qemu_files.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "vm/tap_device.h"

namespace ferry::vm {

namespace {

Result<UniqueFd> OpenFile(const std::string& path, int flags, const std::string& what,
                          mode_t mode = 0) {
  UniqueFd fd(::open(path.c_str(), flags | O_CLOEXEC, mode));
  if (!fd.valid()) {
    return Status::Unavailable("cannot open " + what + " " + path + ": " + std::strerror(errno));
  }
  return fd;
}

}  // namespace

Status ShareRamImageWithQemus(int fd, gid_t group, const std::string& path) {
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    return Status::Internal("cannot stat RAM image " + path + ": " + std::strerror(errno));
  }
  if (st.st_gid == group && (st.st_mode & 0777) == 0460) return Status::Ok();
  if (::fchown(fd, static_cast<uid_t>(-1), group) != 0 || ::fchmod(fd, 0460) != 0) {
    return Status::Internal("cannot hand RAM image " + path +
                            " to the clones' QEMU group: " + std::strerror(errno));
  }
  return Status::Ok();
}

Result<UniqueFd> ListenUnix(const std::string& path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof addr.sun_path) {
    return Status::InvalidArgument("socket path " + path + " is longer than " +
                                   std::to_string(sizeof addr.sun_path - 1) + " bytes");
  }
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  ::unlink(path.c_str());  // a stale socket of an earlier run
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd.valid() || ::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::listen(fd.get(), 4) != 0) {
    return Status::Unavailable("cannot listen on " + path + ": " + std::strerror(errno));
  }
  return fd;
}

Status OpenQemuFiles(const QemuFilePaths& paths, UniqueFd ram, qemu::LaunchSpec& spec,
                     QemuStart& start) {
  QemuStart opened;  // moved into `start` only when everything opened
  const uid_t uid = start.uid.held() ? start.uid.uid() : ::geteuid();
  const gid_t gid = start.uid.held() ? start.uid.gid() : ::getegid();
  if (ram.valid()) {
    // The VM's own RAM: QEMU maps it shared and writes it, so its uid owns it (mode 0600).
    if (::fchown(ram.get(), uid, gid) != 0) {
      return Status::Internal("cannot give the RAM file to QEMU's uid " + std::to_string(uid) +
                              ": " + std::strerror(errno));
    }
    spec.ram_fd = opened.Pass(std::move(ram));
  } else if (!paths.ram_slot_dir.empty()) {
    // Only this QEMU's uid searches it; the image linked there is the clones' group's already
    // (ShareRamImageWithQemus).
    FERRY_ASSIGN_OR_RETURN(
        UniqueFd slot,
        OpenFile(paths.ram_slot_dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW, "spare RAM slot"));
    // ferryd links into it: as root past the mode, else as its owner (QEMU then runs as ferryd).
    const mode_t mode = uid == ::geteuid() ? 0700 : 0500;
    if (::fchown(slot.get(), uid, gid) != 0 || ::fchmod(slot.get(), mode) != 0) {
      return Status::Internal("cannot give the spare RAM slot " + paths.ram_slot_dir +
                              " to QEMU's uid " + std::to_string(uid) + ": " +
                              std::strerror(errno));
    }
    spec.ram_slot_fd = opened.Pass(std::move(slot));
  } else {
    FERRY_ASSIGN_OR_RETURN(UniqueFd image,
                           OpenFile(paths.shared_image, O_RDONLY | O_NOFOLLOW, "RAM image"));
    // Done when the snapshot was taken (VmService::ShareRamImage); an image from before that
    // is handed over now.
    if (start.uid.held()) {
      FERRY_RETURN_IF_ERROR(ShareRamImageWithQemus(image.get(), gid, paths.shared_image));
    }
    spec.ram_fd = opened.Pass(std::move(image));
  }
  FERRY_ASSIGN_OR_RETURN(UniqueFd kernel, OpenFile(paths.kernel, O_RDONLY, "kernel"));
  spec.kernel_fd = opened.Pass(std::move(kernel));
  FERRY_ASSIGN_OR_RETURN(UniqueFd initrd, OpenFile(paths.initrd, O_RDONLY, "initrd"));
  spec.initrd_fd = opened.Pass(std::move(initrd));
  FERRY_ASSIGN_OR_RETURN(UniqueFd qmp, ListenUnix(paths.qmp_socket));
  spec.qmp_fd = opened.Pass(std::move(qmp));
  FERRY_ASSIGN_OR_RETURN(UniqueFd guest, ListenUnix(paths.guest_socket));
  spec.guest_fd = opened.Pass(std::move(guest));
  FERRY_ASSIGN_OR_RETURN(
      UniqueFd console,
      OpenFile(paths.console_log, O_WRONLY | O_CREAT | O_APPEND | O_NOFOLLOW, "console log", 0600));
  spec.console_fd = opened.Pass(std::move(console));
  if (!paths.tap.empty()) {
    for (qemu::NicSpec& nic : spec.nics) {
      if (nic.backend != qemu::NicSpec::Backend::kTap) continue;
      FERRY_ASSIGN_OR_RETURN(UniqueFd tap, TapDevice(paths.tap, "").Open());
      nic.tap_fd = opened.Pass(std::move(tap));
    }
  }
  if (!paths.disk.empty()) {
    spec.disk_node = qemu::DiskNodeName(paths.disk);
    qemu::DiskImage top;
    FERRY_ASSIGN_OR_RETURN(UniqueFd rw, OpenFile(paths.disk, O_RDWR | O_NOFOLLOW, "data disk"));
    top.read_write_fd = opened.Pass(std::move(rw));
    FERRY_ASSIGN_OR_RETURN(UniqueFd ro, OpenFile(paths.disk, O_RDONLY | O_NOFOLLOW, "data disk"));
    top.read_only_fd = opened.Pass(std::move(ro));
    spec.disk.push_back(top);
    for (const std::string& below : paths.disk_chain) {
      qemu::DiskImage image;
      FERRY_ASSIGN_OR_RETURN(UniqueFd fd,
                             OpenFile(below, O_RDONLY | O_NOFOLLOW, "frozen disk image"));
      image.read_only_fd = opened.Pass(std::move(fd));
      spec.disk.push_back(image);
    }
  }
  start.fds = std::move(opened.fds);
  return Status::Ok();
}

}  // namespace ferry::vm
