#include "vm/vm_disk.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "core/files.h"
#include "core/process.h"

namespace ferry::vm {
namespace {

constexpr std::chrono::milliseconds kQemuImgTimeout{60000};
// QEMU refuses a longer backing file name (BDRV_ORIGINAL_FILENAME is 4096; qcow2 caps it at
// 1023 bytes).
constexpr uint32_t kMaxBackingBytes = 1023;

uint64_t BigEndian(const unsigned char* p, int bytes) {
  uint64_t v = 0;
  for (int i = 0; i < bytes; ++i) v = (v << 8) | p[i];
  return v;
}

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

Result<std::string> Qcow2BackingFile(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) {
    return Status::NotFound("disk image " + path + ": cannot open it: " + std::strerror(errno));
  }
  // The header starts: magic "QFI\xfb", version (4 bytes), backing file offset (8), backing
  // file size (4), all big-endian.
  unsigned char header[20];
  struct stat st;
  std::string backing;
  Status status = Status::Ok();
  if (::fstat(fd, &st) != 0 || ::pread(fd, header, sizeof header, 0) != sizeof header ||
      BigEndian(header, 4) != 0x514649fb) {
    status = Status::Corruption("disk image " + path + " is not a qcow2 image");
  } else {
    const uint64_t offset = BigEndian(header + 8, 8);
    const uint64_t size = BigEndian(header + 16, 4);
    if (offset != 0 && (size > kMaxBackingBytes || offset > static_cast<uint64_t>(st.st_size) ||
                        size > static_cast<uint64_t>(st.st_size) - offset)) {
      status = Status::Corruption("disk image " + path +
                                  ": the backing file name in its header is out of bounds");
    } else if (offset != 0) {
      backing.resize(size);
      if (::pread(fd, backing.data(), size, static_cast<off_t>(offset)) !=
          static_cast<ssize_t>(size)) {
        status = Status::Corruption("disk image " + path + ": cannot read its backing file name");
      }
    }
  }
  ::close(fd);
  if (!status.ok()) return status;
  return backing;
}

Result<uint64_t> CheckedDiskChainBytes(const std::string& top,
                                       const std::vector<std::string>& chain) {
  std::vector<std::string> images = {top};
  images.insert(images.end(), chain.begin(), chain.end());
  uint64_t bytes = 0;
  for (size_t i = 0; i < images.size(); ++i) {
    const std::string& image = images[i];
    auto backing = Qcow2BackingFile(image);
    if (!backing.ok()) {
      return Status::FailedPrecondition(backing.status().message() +
                                        "; ferry moves only the qcow2 disks it made");
    }
    const bool last = i + 1 == images.size();
    if (!backing->empty() && (last || *backing != images[i + 1])) {
      return Status::FailedPrecondition("disk image " + image + " lies on " + *backing +
                                        ", which is not the chain ferry made for it; ferry "
                                        "moves only the qcow2 disks it made");
    }
    struct stat st;
    if (::stat(image.c_str(), &st) != 0) {
      return Status::NotFound("disk image " + image + ": " + std::strerror(errno));
    }
    bytes += static_cast<uint64_t>(st.st_blocks) * 512;
  }
  return bytes;
}

}  // namespace ferry::vm
