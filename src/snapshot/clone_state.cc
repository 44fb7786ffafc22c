#include "snapshot/clone_state.h"

#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <vector>

#include "core/fault_point.h"
#include "core/files.h"
#include "core/unique_fd.h"
#include "qemu/qmp_commands.h"
#include "snapshot/device_state.h"

namespace ferry::snapshot {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr const char* kFdName = "ferry-clone-state";
constexpr int64_t kUnlimitedBandwidth = int64_t{1} << 40;  // bytes/s: no throttle in practice
constexpr int64_t kDowntimeLimitMs = 300;                  // QEMU's default; the VM is paused
constexpr int kPipeBytes = 1 << 20;
constexpr size_t kReadBytes = 256 << 10;

// Reads QEMU's stream from `fd` to its end into `reader`. Stops at `deadline`, after `idle`
// without a byte, or when the reader refuses.
Status ReadStream(int fd, qemu::MigrationStreamReader& reader, milliseconds idle,
                  Clock::time_point deadline) {
  std::vector<uint8_t> buf(kReadBytes);
  bool checked_fault = false;
  for (;;) {
    const auto now = Clock::now();
    if (now >= deadline) {
      return Status::DeadlineExceeded("QEMU did not finish sending within " +
                                      std::to_string(kCloneStateTimeout.count() / 1000) + " s (" +
                                      std::to_string(reader.bytes_read()) + " bytes read)");
    }
    const auto wait = std::min<milliseconds>(
        idle, std::chrono::duration_cast<milliseconds>(deadline - now) + milliseconds(1));
    struct pollfd p = {fd, POLLIN, 0};
    int ready = ::poll(&p, 1, static_cast<int>(wait.count()));
    if (ready < 0 && errno == EINTR) continue;
    if (ready < 0) return Status::Internal(std::string("poll: ") + std::strerror(errno));
    if (ready == 0) {
      if (Clock::now() >= deadline) continue;
      return Status::DeadlineExceeded("QEMU sent nothing for " +
                                      std::to_string(idle.count() / 1000) + " s after " +
                                      std::to_string(reader.bytes_read()) + " bytes");
    }
    ssize_t n = ::read(fd, buf.data(), buf.size());
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (n < 0) return Status::Internal(std::string("read: ") + std::strerror(errno));
    if (n == 0) return reader.Finish();
    FERRY_RETURN_IF_ERROR(reader.Feed(std::span<const uint8_t>(buf.data(), size_t(n))));
    FaultPoint("snapshot.clone_state.streaming");
    if (!checked_fault && reader.bytes_read() >= (uint64_t{1} << 20)) {
      checked_fault = true;
      if (FaultPointFails("snapshot.clone_state.streaming")) {
        return Status::ResourceExhausted("no space left for the RAM image (fault point)");
      }
    }
  }
}

}  // namespace

Result<CloneStateSaved> SaveCloneState(vm::VmRuntime& vm, const CloneStateFiles& files,
                                       milliseconds idle_timeout) {
  // Saved with x-ignore-shared on, as every device state ferry keeps: the loader must use the
  // setting the stream was saved with (it changes the block list), and LoadDeviceState sets it.
  // The clone's RAM is share=off, so QEMU sends it all the same.
  FERRY_RETURN_IF_ERROR(qemu::SetMigrationCapability(vm, "x-ignore-shared", true));
  // A paused VM has nothing to throttle for; QEMU's default cap is 128 MiB/s.
  Status st = qemu::SetMigrationParameters(vm, {kDowntimeLimitMs, kUnlimitedBandwidth});

  int ends[2] = {-1, -1};
  if (st.ok() && ::pipe2(ends, O_CLOEXEC) != 0) {
    st = Status::Internal(std::string("cannot make a pipe: ") + std::strerror(errno));
  }
  UniqueFd from_qemu(ends[0]);
  UniqueFd to_qemu(ends[1]);
  if (st.ok()) {
    ::fcntl(from_qemu.get(), F_SETPIPE_SZ, kPipeBytes);  // a larger pipe if allowed; not needed
    st = vm.QmpPassFd(kFdName, to_qemu.get());
    to_qemu.Reset();  // QEMU holds its own copy: its close is the stream's end
  }
  if (st.ok()) st = qemu::Migrate(vm, std::string("fd:") + kFdName);
  const bool started = st.ok();

  CloneStateSaved saved;
  StreamRamSplit split(files.ram_fd, files.ram_path,
                       {files.ram_bytes, kMaxCloneDeviceStateBytes, files.image_bytes},
                       [&](std::span<const uint8_t> bytes) {
                         return WriteAllTo(files.device_state_fd, bytes,
                                           "the device state " + files.device_state_path);
                       });
  qemu::MigrationStreamReader reader(split);
  if (st.ok()) {
    st = ReadStream(from_qemu.get(), reader, idle_timeout, Clock::now() + kCloneStateTimeout);
    if (st.ok()) st = split.Finish();
    if (!st.ok()) st = st.WithContext("the clone's migration stream");
  }
  saved.stream_bytes = reader.bytes_read();
  saved.split = split.stats();
  from_qemu.Reset();  // a QEMU still writing gets EPIPE
  if (st.ok()) {
    st = AwaitMigration(vm, "saving the clone's state", kDeviceStateTimeout);
  } else if (started) {
    // Stop QEMU's side and let it settle, so the clone can be resumed.
    (void)qemu::MigrateCancel(vm);
    (void)AwaitMigration(vm, "cancelling the clone's save", milliseconds(10000));
  }
  if (!st.ok() && vm.Exited()) {
    st = st.WithContext("QEMU exited while saving the clone's state");
  }
  // Later migrations of this VM (to another host) must send its RAM.
  Status reset = qemu::SetMigrationCapability(vm, "x-ignore-shared", false);
  FERRY_RETURN_IF_ERROR(st);
  FERRY_RETURN_IF_ERROR(reset);
  return saved;
}

}  // namespace ferry::snapshot
