// A client for QEMU's machine protocol (QMP) on a UNIX socket (`-qmp unix:PATH,server=on,
// wait=off`). The protocol, as QEMU 7.2 speaks it:
//
//   QEMU  -> {"QMP": {"version": {...}, "capabilities": [...]}}        greeting, on connect
//   ferry -> {"execute": "qmp_capabilities", "id": 1}                 leave negotiation mode
//   QEMU  -> {"return": {}, "id": 1}
//   ferry -> {"execute": "stop", "arguments": {...}, "id": N}         any command
//   QEMU  -> {"return": ..., "id": N}  or  {"error": {"class": C, "desc": D}, "id": N}
//   QEMU  -> {"event": "STOP", "data": {...},
//             "timestamp": {"seconds": S, "microseconds": U}}         at any time, between replies
//
// QEMU serves one QMP client per socket at a time: a second client is accepted but gets no
// greeting until the first leaves, so Connect() then fails with DeadlineExceeded.
//
// Thread-safety: every method may be called from any thread. The event and close handlers run on
// the connection's reader thread (see JsonLineConnection); they must not block on a QMP reply.
// Reconnecting after QEMU closes the socket is the caller's job: make a new QmpClient.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "core/json_line_connection.h"
#include "core/status.h"

namespace ferry::qemu {

struct QmpEvent {
  std::string name;          // "STOP", "RESUME", "SHUTDOWN", ...
  nlohmann::json data;       // the event's "data" object ({} when QEMU sent none)
  int64_t timestamp_us = 0;  // QEMU's host-clock time in microseconds since the epoch; 0 if absent
};

// How QmpClient reads what QEMU sends, as functions of one parsed line (unit tests and fuzz/
// call them directly).
// A command's reply as its result: "return" as is, "error" as NotFound or FailedPrecondition
// naming the command, anything else Corruption.
Result<nlohmann::json> InterpretQmpReply(const std::string& command, const nlohmann::json& reply);
// An event's "timestamp" in microseconds since the epoch; 0 when missing or nonsense.
int64_t QmpTimestampMicros(const nlohmann::json& message);

class QmpClient {
 public:
  using EventHandler = std::function<void(const QmpEvent& event)>;
  using CloseHandler = JsonLineConnection::CloseHandler;

  static constexpr std::chrono::milliseconds kDefaultTimeout{10000};
  // QMP replies can be large (query-qmp-schema is hundreds of KB); the bound is against a broken
  // QEMU, not normal use.
  static constexpr size_t kMaxLineBytes = size_t{64} << 20;

  // Collects the events of one name (or all events, for an empty name) from the moment it was
  // made by WatchEvent(). Get it before sending the command that causes the event, and no event
  // can slip by between sending and waiting. Cheap to move; thread-safe; may outlive the client
  // (its Wait() then returns Unavailable once the collected events are used up).
  class EventWaiter {
   public:
    // Returns the oldest collected event not yet returned, waiting up to `timeout` for one.
    // DeadlineExceeded if none came; Unavailable if the connection ended with none left.
    Result<QmpEvent> Wait(std::chrono::milliseconds timeout);

   private:
    friend class QmpClient;
    struct State;  // shared with the client; defined in qmp_client.cc
    explicit EventWaiter(std::shared_ptr<State> state) : state_(std::move(state)) {}
    std::shared_ptr<State> state_;
  };

  // Connects, reads the greeting and negotiates capabilities, all within `timeout`.
  static Result<std::unique_ptr<QmpClient>> Connect(const std::string& path,
                                                    std::chrono::milliseconds timeout);

  QmpClient(const QmpClient&) = delete;
  QmpClient& operator=(const QmpClient&) = delete;
  // Closes the socket and joins the reader; futures from Send() that are still pending become
  // Unavailable. The close handler is not called. REQUIRES: not called from a handler, and no
  // other thread is inside a method of this client.
  ~QmpClient();

  // Sends `command` with `args` (omitted when empty). The future gets the reply's "return"
  // value, or a Status: FailedPrecondition/NotFound "QMP <command>: <class>: <desc>" for a QMP
  // error, Unavailable if the connection ends first, InvalidArgument if `args` is not an object.
  // The future never hangs past the end of the connection, but has no timeout of its own.
  std::future<Result<nlohmann::json>> Send(const std::string& command,
                                           nlohmann::json args = nlohmann::json::object());

  // Send() and wait up to `timeout`; DeadlineExceeded "QMP <command>: no reply within ..." after.
  Result<nlohmann::json> Execute(const std::string& command,
                                 nlohmann::json args = nlohmann::json::object(),
                                 std::chrono::milliseconds timeout = kDefaultTimeout);
  // `getfd`: hands QEMU a copy of `fd` under `name` (for a later "fd:NAME" migration URI).
  Status PassFd(const std::string& name, int fd,
                std::chrono::milliseconds timeout = kDefaultTimeout);
  // What add-fd reports: the set's ID, and the descriptor's number inside QEMU (which makes
  // "/proc/self/fd/N" a path QEMU can open where it takes only paths).
  struct AddedFd {
    int64_t fdset = 0;
    int fd = -1;
  };
  // Adds a copy of `fd` to a new fd set (QMP add-fd); QEMU opens it as "/dev/fdset/ID".
  // `fdset`: add to that existing set instead of a new one (QEMU picks, per open, a descriptor
  // of the set whose access mode matches: a set for a disk needs a read-only one too).
  Result<AddedFd> AddFd(int fd, std::optional<int64_t> fdset = std::nullopt,
                        std::chrono::milliseconds timeout = std::chrono::seconds(10));

  // Starts collecting events named `name` ("" for every event); see EventWaiter.
  EventWaiter WatchEvent(std::string name);
  // Waits for the next event named `name` that arrives after this call. To catch an event caused
  // by a command, use WatchEvent() before sending it instead.
  Result<QmpEvent> WaitForEvent(const std::string& name, std::chrono::milliseconds timeout);

  // Called for every event, on the reader thread, after the waiters have been fed; nullptr to
  // stop. An EventWaiter's Wait() must not be called from it (the event it waits for would be
  // read by this very thread, so it can only time out). See
  // JsonLineConnection::SetMessageHandler for when a replaced handler stops running.
  void SetEventHandler(EventHandler handler);
  // Called once, on the reader thread, when QEMU closes the socket (it quit or crashed) or the
  // connection fails; not on destruction. Install, then check connected() to close the race.
  void SetCloseHandler(CloseHandler handler);

  bool connected() const { return connection_->connected(); }
  const std::string& path() const { return connection_->path(); }
  // The "QMP" object of the greeting: {"version": {"qemu": {"major": 7, ...}}, ...}.
  const nlohmann::json& greeting() const { return greeting_; }

 private:
  explicit QmpClient(std::unique_ptr<JsonLineConnection> connection);

  // Routes one non-reply message: the greeting, or an event for the waiters and `user`.
  void OnMessage(const nlohmann::json& message, const EventHandler& user);
  void OnClose(const Status& why, const CloseHandler& user);
  void DeliverToWaiters(const QmpEvent& event);
  // Records the end of the connection and wakes every waiter with it.
  void EndWaiters(const Status& why);
  JsonLineConnection::PendingReply SendCommand(const std::string& command, nlohmann::json args,
                                               int pass_fd = -1);

  std::mutex mu_;  // guards the fields below
  std::vector<std::weak_ptr<EventWaiter::State>> waiters_;
  Status end_status_;  // OK while connected
  bool greeting_received_ = false;
  std::promise<Result<nlohmann::json>> greeting_promise_;

  nlohmann::json greeting_;  // written once by Connect() before the client is shared

  // Last, so it is destroyed first: its reader thread calls into the members above.
  std::unique_ptr<JsonLineConnection> connection_;
};

}  // namespace ferry::qemu
