// A client connection to a UNIX stream socket that speaks JSON lines (see json_lines.h), with
// request/reply matching by a numeric "id". It is the shared transport under QmpClient and
// GuestChannel, whose protocols agree on this much:
//
//   - we send one JSON object per line; a request carries "id": N (an unsigned integer this
//     connection assigns, 1, 2, 3, ...);
//   - the peer answers each request with one object carrying the same "id"; replies may arrive in
//     any order, and an object with an id that matches no outstanding request (late, after a
//     timeout, or invented by a confused peer) is dropped;
//   - every other object (events, greetings) goes to the message handler.
//
// Lines that are not JSON objects or are too long are logged and skipped: the peer may be a guest
// we do not trust, and one bad line must not take the channel down.
//
// Threads: one reader thread per connection (started by Start()) reads, frames and dispatches.
// The message handler, the close handler and ReplyInterpreters all run on it, one at a time.
// Send/Request/Wait/Close and the setters are safe to call from any thread.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>

#include "core/json_lines.h"
#include "core/status.h"

namespace ferry {

class JsonLineConnection {
 public:
  struct Options {
    // Names the peer in every error and log line, e.g. "QMP socket /run/ferry/vm/web-1/qmp.sock".
    // Empty means "socket <path>".
    std::string description;
    // Appended to "no reply within N ms" errors to say what is likely wrong, e.g. "QEMU may be
    // hung". Optional.
    std::string no_reply_hint;
    size_t max_line_bytes = JsonLineFramer::kDefaultMaxLineBytes;
    // A write that cannot complete within this time breaks the connection (the peer stopped
    // reading, and a half-written line cannot be taken back).
    std::chrono::milliseconds write_timeout{10000};
  };

  // Called with each object that is not a reply.
  using MessageHandler = std::function<void(const nlohmann::json& message)>;
  // Called once when the peer closes the connection or it fails.
  using CloseHandler = std::function<void(const Status& why)>;
  // Turns a raw reply object into the request's result (e.g. QMP's "return" or "error"). Runs on
  // the reader thread; an exception it throws becomes a Corruption result.
  using ReplyInterpreter = std::function<Result<nlohmann::json>(const nlohmann::json& reply)>;

  // A request on the wire. `future` always becomes ready: with the reply, or with Unavailable
  // when the connection ends first (including by Close() or destruction).
  struct PendingReply {
    uint64_t id = 0;
    std::string label;  // names the request in errors: "QMP query-status", "guest ping"
    std::future<Result<nlohmann::json>> future;
  };

  // Connects to the socket at `path`. While the socket does not exist yet or refuses
  // (ENOENT, ECONNREFUSED, EAGAIN: its server is still starting), retries until `timeout` has
  // passed. The reader is not started: set the handlers, then call Start().
  static Result<std::unique_ptr<JsonLineConnection>> Connect(const std::string& path,
                                                             std::chrono::milliseconds timeout,
                                                             Options options);

  JsonLineConnection(const JsonLineConnection&) = delete;
  JsonLineConnection& operator=(const JsonLineConnection&) = delete;

  // Closes (see Close()) and joins the reader. REQUIRES: not called from a handler.
  ~JsonLineConnection();

  // Replace the handlers. Both run on the reader thread. When a setter returns (called from
  // another thread), the previous handler is not running and will not be called again, so its
  // captures may be destroyed. A handler may call the setters itself. A handler must not wait
  // for a reply (the reader thread would wait for itself): Wait() refuses that with
  // FailedPrecondition. The close handler installed when the connection ends is the one called;
  // installing one after the end has no effect, so install it, then check connected().
  void SetMessageHandler(MessageHandler handler);
  void SetCloseHandler(CloseHandler handler);

  // Starts the reader thread. Messages that arrived before are read then. ResourceExhausted when
  // no thread can be started. REQUIRES: called once.
  Status Start();

  // Writes `message` as one line. Lines from concurrent callers never interleave. Blocks while
  // the socket is full, up to Options::write_timeout. A failed write breaks the connection
  // (pending requests fail, the close handler runs).
  // With `pass_fd` >= 0 the line carries that descriptor (SCM_RIGHTS, UNIX sockets only), as
  // QMP's getfd expects; the caller keeps its own copy and closes it.
  Status Send(const nlohmann::json& message, int pass_fd = -1);

  // Sets message["id"] to a fresh id, registers the request and writes it (see Send). `interpret`
  // turns the reply into the result (nullptr: the reply object itself). A `message` that is not
  // an object is not sent; its future holds InvalidArgument.
  PendingReply Request(nlohmann::json message, std::string label,
                       ReplyInterpreter interpret = nullptr, int pass_fd = -1);
  // A request refused before it was sent: its future already holds `why`.
  static PendingReply Refused(std::string label, Status why);

  // Waits up to `timeout` for `pending`'s result. On timeout, forgets the request (a late reply
  // is dropped) and returns DeadlineExceeded naming the request and the peer.
  Result<nlohmann::json> Wait(PendingReply pending, std::chrono::milliseconds timeout);

  // Ends the connection from our side: pending requests fail with Unavailable, the reader stops,
  // the close handler is NOT called (the owner knows). Idempotent. May be called from a handler;
  // the reader is then joined by the destructor.
  void Close();

  // False once the connection has ended, for any reason.
  bool connected() const { return open_.load(); }
  const std::string& description() const { return description_; }
  const std::string& path() const { return path_; }
  // True when called from this connection's reader thread, i.e. from one of its handlers.
  bool OnReaderThread() const;

  // Logs that a message from the peer was ignored (`what` says which and why), rate-limited per
  // connection so a peer sending garbage cannot flood the log. For the protocol layers' handlers.
  void LogDropped(const std::string& what);

 private:
  struct Pending {
    std::string label;
    ReplyInterpreter interpret;
    std::promise<Result<nlohmann::json>> promise;
  };

  JsonLineConnection(int fd, int wake_fd, std::string path, Options options);

  void ReaderLoop();
  void DispatchLine(Result<std::string> line);
  void DispatchReply(uint64_t id, const nlohmann::json& reply);
  // Marks the connection ended with `why` and fails every pending request with it.
  void FailAll(const Status& why);
  void Wake();
  Status WriteAll(const std::string& bytes, int pass_fd);

  const int fd_;
  const int wake_fd_;  // eventfd: once written, every poll() on it returns at once
  const std::string path_;
  const std::string description_;
  const Options options_;

  std::atomic<bool> open_{true};
  std::atomic<bool> closed_locally_{false};

  std::mutex mu_;  // guards the fields below
  // Starts at a random value: a peer restored from a snapshot may still hold replies its parent
  // owed the parent's connection, and their ids must not match this connection's requests.
  uint64_t next_id_;
  std::map<uint64_t, Pending> pending_;
  Status end_status_;  // why the connection ended; OK while open

  std::mutex write_mu_;  // serializes writers so lines do not interleave

  // Held by the reader while a handler runs, and by the setters: this is what makes "after the
  // setter returns, the old handler no longer runs" true. Recursive so handlers can call setters.
  std::recursive_mutex handler_mu_;
  MessageHandler message_handler_;
  CloseHandler close_handler_;

  JsonLineFramer framer_;  // touched only by the reader thread
  std::atomic<uint64_t> dropped_messages_{0};

  std::thread reader_;
  std::atomic<std::thread::id> reader_id_{};
};

}  // namespace ferry
