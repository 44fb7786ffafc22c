// One running QEMU of one VM, and ferryd's channels to it: QMP to QEMU and the guest channel to
// ferry-guest. It watches the process and the guest and reports through callbacks; it never
// changes VM state itself (VmService does).
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "core/process.h"
#include "core/status.h"
#include "core/unique_fd.h"
#include "qemu/guest_channel.h"
#include "qemu/qmp_client.h"
#include "qemu/qmp_commands.h"
#include "vm/qemu_user.h"
#include "vm/vm_paths.h"

namespace ferry::vm {

// The end of QEMU's log (at most 1 KiB, trailing blank space removed): what QEMU said last,
// quoted in errors and in a failed VM's record.
std::string QemuLastWords(const VmPaths& paths);

// The size past which every runtime rotates its VM's console.log (console_ring.h); set once at
// start-up.
void SetConsoleRingBytes(uint64_t bytes);

// What a QEMU starts with besides its command line: every file it uses, as descriptors ferryd
// opened (it opens nothing by path), and the uid it runs as.
struct QemuStart {
  // The i-th is QEMU's descriptor InheritedFd(i); ferryd's copies close once QEMU has its own.
  std::vector<UniqueFd> fds;
  // QEMU runs as this uid with its group; an empty lease runs it as ferryd's own user.
  QemuUidLease uid;
  std::vector<gid_t> groups;  // supplementary groups, e.g. kvm's for /dev/kvm
  // Adds a descriptor; returns the number QEMU knows it by.
  int Pass(UniqueFd fd) {
    fds.push_back(std::move(fd));
    return InheritedFd(fds.size() - 1);
  }
};

class VmRuntime : public qemu::QmpExecutor {
 public:
  // Called from the runtime's own threads; they must not destroy the runtime.
  struct Callbacks {
    std::function<void(const ProcessExit&)> on_exit;
    std::function<void()> on_guest_ready;
    std::function<void(const qemu::QmpEvent&)> on_qmp_event;
  };

  // Called right after QEMU was spawned, before QMP is connected: the caller records the process
  // so that a ferryd that dies in between still finds it (see VmService::Readopt).
  using SpawnedHandler = std::function<void(pid_t pid, uint64_t start_time)>;

  // Starts QEMU with `argv` and connects QMP. If QEMU exits or QMP does not answer within
  // `timeout`, QEMU is killed and the error carries QEMU's own last words. Fault points:
  // "vm.launch.before_record" between the spawn and `on_spawned`, "vm.launch.after_spawn" between
  // `on_spawned` and the QMP connection.
  static Result<std::unique_ptr<VmRuntime>> Launch(const std::vector<std::string>& argv,
                                                   QemuStart start, const VmPaths& paths,
                                                   Callbacks callbacks,
                                                   std::chrono::milliseconds timeout,
                                                   const SpawnedHandler& on_spawned = nullptr);
  // Re-adopts a QEMU started by an earlier ferryd, holding `uid` (the one it runs as) again.
  // NotFound if it is gone.
  static Result<std::unique_ptr<VmRuntime>> Attach(pid_t pid, uint64_t start_time, QemuUidLease uid,
                                                   const VmPaths& paths, Callbacks callbacks);

  // Stops the watcher threads and closes the channels. QEMU itself keeps running.
  ~VmRuntime() override;

  // Replaces the callbacks: a pre-started QEMU (warm pool) gets its VM's callbacks when it is
  // handed to that VM. An exit that happened before is reported to the new callbacks too.
  void SetCallbacks(Callbacks callbacks);

  pid_t pid() const { return process_.pid(); }
  uid_t uid() const { return uid_.uid(); }
  uint64_t start_time() const { return process_.start_time(); }

  // QMP command; Unavailable once QEMU is gone.
  // Prefer the typed commands of qemu/qmp_commands.h, which take a VmRuntime.
  Result<nlohmann::json> Qmp(const std::string& command,
                             const nlohmann::json& args = nlohmann::json::object(),
                             std::chrono::milliseconds timeout = std::chrono::seconds(10)) override;
  // Hands QEMU a copy of `fd` as `name` (QMP getfd), for an "fd:NAME" migration URI.
  Status QmpPassFd(const std::string& name, int fd);
  // Hands QEMU a copy of `fd` in a new fd set (QMP add-fd); QEMU opens it as /dev/fdset/ID, so
  // a QEMU that runs unprivileged still uses a file only ferryd can open. Returns the ID and
  // the number QEMU gave the descriptor.
  Result<qemu::QmpClient::AddedFd> QmpAddFd(int fd, std::optional<int64_t> fdset = std::nullopt);
  // Starts collecting QMP events named `name` (qemu::QmpClient::WatchEvent); Unavailable when
  // QMP is not connected.
  Result<qemu::QmpClient::EventWaiter> WatchQmpEvent(const std::string& name);
  // Request to ferry-guest; Unavailable while the guest channel is not connected.
  Result<nlohmann::json> GuestCall(std::string_view op,
                                   const nlohmann::json& args = nlohmann::json::object(),
                                   std::chrono::milliseconds timeout = std::chrono::seconds(5));
  // GuestCall in two halves, for a request that should wait in QEMU's queue before the guest
  // resumes: GuestStart writes it, GuestWait waits for its reply.
  struct GuestRequest {
    std::shared_ptr<qemu::GuestChannel> channel;
    JsonLineConnection::PendingReply pending;
  };
  Result<GuestRequest> GuestStart(std::string_view op, const nlohmann::json& args);
  static Result<nlohmann::json> GuestWait(GuestRequest request, std::chrono::milliseconds timeout);

  // Waits until the guest channel is connected (the guest may not answer yet). Unavailable if
  // QEMU exits first, DeadlineExceeded after `timeout`.
  Status WaitGuestConnected(std::chrono::milliseconds timeout);
  // Waits for QEMU to exit; nullopt on timeout.
  std::optional<ProcessExit> WaitExit(std::chrono::milliseconds timeout);
  bool Exited();
  void Kill();  // SIGKILL: for a QEMU that does not obey `quit`

 private:
  VmRuntime(Process process, VmPaths paths, Callbacks callbacks);
  Status ConnectQmp(std::chrono::milliseconds timeout);
  Status StartThreads();
  void WatchProcess();
  void WatchGuest();
  void GuestReady();

  Callbacks CurrentCallbacks();

  Process process_;
  QemuUidLease uid_;  // given back when this runtime goes (its QEMU has ended or is re-adopted)
  VmPaths paths_;
  std::mutex callbacks_mu_;
  Callbacks callbacks_;

  std::mutex mu_;
  std::condition_variable cv_;
  std::optional<ProcessExit> exit_;
  bool stopping_ = false;
  std::shared_ptr<qemu::QmpClient> qmp_;
  std::shared_ptr<qemu::GuestChannel> guest_;
  std::atomic<bool> guest_ready_{false};

  int stop_fd_ = -1;  // eventfd that wakes the process watcher on destruction
  std::thread process_thread_;
  std::thread guest_thread_;
};

}  // namespace ferry::vm
