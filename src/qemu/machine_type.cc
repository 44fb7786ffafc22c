#include "qemu/machine_type.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "core/unique_fd.h"
#include "qemu/migration_stream.h"

namespace ferry::qemu {

std::string Q35MachineType(const QemuVersion& v) {
  if (!v.known()) return "";
  return "pc-q35-" + std::to_string(v.major) + "." + std::to_string(v.minor);
}

Result<std::string> StreamMachineType(std::span<const uint8_t> prefix) {
  MigrationStreamVisitor ignore_all;
  MigrationStreamReader reader(ignore_all);
  // The reader stops at the first thing it refuses; a prefix that only ends early is fine.
  Status read = reader.Feed(prefix.first(std::min(prefix.size(), kMachineTypePrefixBytes)));
  if (!read.ok()) return read;
  if (reader.machine_type().empty()) {
    return Status::InvalidArgument("the stream's first " + std::to_string(prefix.size()) +
                                   " bytes name no machine type");
  }
  return reader.machine_type();
}

Result<std::string> FileMachineType(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) {
    return Status::NotFound(path + ": cannot open it: " + std::strerror(errno));
  }
  std::vector<uint8_t> prefix(kMachineTypePrefixBytes);
  size_t have = 0;
  while (have < prefix.size()) {
    ssize_t got = ::read(fd.get(), prefix.data() + have, prefix.size() - have);
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) return Status::Internal(path + ": " + std::strerror(errno));
    if (got == 0) break;
    have += static_cast<size_t>(got);
  }
  auto machine = StreamMachineType(std::span<const uint8_t>(prefix.data(), have));
  if (!machine.ok()) return machine.status().WithContext(path);
  return machine;
}

Status CheckMachineTypeLoads(std::string_view stream_machine, const QemuVersion& host) {
  const std::string own = Q35MachineType(host);
  if (own.empty() || stream_machine == own) return Status::Ok();
  return Status::FailedPrecondition(
      "it was made by a QEMU running machine type " + std::string(stream_machine) +
      ", and this host's QEMU " + host.ToString() + " runs " + own +
      ", which loads only its own: state moves only between hosts with the same QEMU release");
}

}  // namespace ferry::qemu
