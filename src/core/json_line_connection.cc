#include "core/json_line_connection.h"

#include <fcntl.h>
#include <poll.h>
#include <spdlog/spdlog.h>
#include <sys/eventfd.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cassert>
#include <cerrno>
#include <cstring>
#include <exception>
#include <vector>

#include "core/fd_message.h"
#include "core/guarded_thread.h"

namespace ferry {

namespace {

// A random first id below 2^52, so ids stay exact in any JSON parser and never wrap.
uint64_t FirstRequestId() {
  uint64_t value = 0;
  if (getrandom(&value, sizeof value, 0) != sizeof value) value = static_cast<uint64_t>(::getpid());
  return (value & ((uint64_t{1} << 52) - 1)) | 1;
}

using Clock = std::chrono::steady_clock;

constexpr size_t kReadChunkBytes = 64 * 1024;
// Ignored messages are logged individually up to this many per connection, then one in kLogEvery,
// so a guest spewing garbage cannot flood ferryd's log.
constexpr uint64_t kLogFirstDropped = 10;
constexpr uint64_t kLogEvery = 1000;

std::string Errno(int err) { return std::strerror(err); }

int64_t Millis(std::chrono::milliseconds d) { return static_cast<int64_t>(d.count()); }

// Milliseconds left until `deadline` for poll(), rounded up so we never spin on 0 early.
int PollTimeout(Clock::time_point deadline) {
  auto left = deadline - Clock::now();
  if (left <= Clock::duration::zero()) return 0;
  auto ms = std::chrono::ceil<std::chrono::milliseconds>(left).count();
  return static_cast<int>(std::min<int64_t>(ms, 60'000));
}

bool IsRetryableConnectError(int err) {
  return err == ENOENT || err == ECONNREFUSED || err == EAGAIN;
}

}  // namespace

Result<std::unique_ptr<JsonLineConnection>> JsonLineConnection::Connect(
    const std::string& path, std::chrono::milliseconds timeout, Options options) {
  std::string description = options.description.empty() ? "socket " + path : options.description;
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof addr.sun_path) {
    return Status::InvalidArgument("connect to " + description + ": the path must be 1 to " +
                                   std::to_string(sizeof addr.sun_path - 1) +
                                   " bytes long; use a shorter state directory");
  }
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);

  const auto deadline = Clock::now() + timeout;
  auto backoff = std::chrono::milliseconds(5);
  int fd = -1;
  while (true) {
    fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) {
      return Status::ResourceExhausted("connect to " + description + ": socket(): " + Errno(errno));
    }
    if (::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) == 0) break;
    int err = errno;
    ::close(fd);
    fd = -1;
    if (!IsRetryableConnectError(err) || Clock::now() >= deadline) {
      return Status::Unavailable("connect to " + description + ": " + Errno(err) +
                                 " (gave up after " + std::to_string(Millis(timeout)) +
                                 " ms); check that the process serving it is running");
    }
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    std::this_thread::sleep_for(std::max(std::chrono::milliseconds(1), std::min(backoff, left)));
    backoff = std::min(backoff * 2, std::chrono::milliseconds(100));
  }

  int wake_fd = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (wake_fd < 0) {
    int err = errno;
    ::close(fd);
    return Status::ResourceExhausted("connect to " + description + ": eventfd(): " + Errno(err));
  }
  options.description = description;
  return std::unique_ptr<JsonLineConnection>(
      new JsonLineConnection(fd, wake_fd, path, std::move(options)));
}

JsonLineConnection::JsonLineConnection(int fd, int wake_fd, std::string path, Options options)
    : fd_(fd),
      wake_fd_(wake_fd),
      path_(std::move(path)),
      description_(options.description),
      options_(std::move(options)),
      framer_(options_.max_line_bytes) {
  next_id_ = FirstRequestId();
}

JsonLineConnection::~JsonLineConnection() {
  assert(!OnReaderThread() && "a JsonLineConnection must not be destroyed from its own handler");
  Close();
  if (reader_.joinable()) reader_.join();
  ::close(fd_);
  ::close(wake_fd_);
}

bool JsonLineConnection::OnReaderThread() const {
  return reader_id_.load() == std::this_thread::get_id();
}

void JsonLineConnection::SetMessageHandler(MessageHandler handler) {
  std::lock_guard<std::recursive_mutex> lock(handler_mu_);
  message_handler_ = std::move(handler);
}

void JsonLineConnection::SetCloseHandler(CloseHandler handler) {
  std::lock_guard<std::recursive_mutex> lock(handler_mu_);
  close_handler_ = std::move(handler);
}

Status JsonLineConnection::Start() {
  assert(!reader_.joinable() && "JsonLineConnection::Start called twice");
  // Whatever a handler or a peer's bytes make the reader throw ends this connection (pending
  // requests fail with the error), never ferryd.
  FERRY_ASSIGN_OR_RETURN(
      reader_, StartGuardedThread(
                   description_ + " reader", [this] { ReaderLoop(); },
                   [this](const Status& why) { FailAll(Status::Unavailable(why.message())); }));
  return Status::Ok();
}

void JsonLineConnection::Wake() {
  uint64_t one = 1;
  // Can only fail if the counter would overflow, which leaves it readable anyway.
  (void)!::write(wake_fd_, &one, sizeof one);
}

void JsonLineConnection::Close() {
  if (closed_locally_.exchange(true)) return;
  FailAll(Status::Unavailable(description_ + ": closed by ferryd"));
  Wake();
  if (reader_.joinable() && !OnReaderThread()) reader_.join();
}

void JsonLineConnection::FailAll(const Status& why) {
  std::map<uint64_t, Pending> failed;
  Status end;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (end_status_.ok()) end_status_ = why;
    end = end_status_;
    open_.store(false);
    failed.swap(pending_);
  }
  for (auto& [id, pending] : failed) pending.promise.set_value(end.WithContext(pending.label));
}

Status JsonLineConnection::Send(const nlohmann::json& message, int pass_fd) {
  if (!open_.load()) {
    std::lock_guard<std::mutex> lock(mu_);
    return end_status_;
  }
  Status written = WriteAll(EncodeJsonLine(message), pass_fd);
  if (!written.ok()) {
    FailAll(written);
    Wake();  // the reader reports the end to the close handler
  }
  return written;
}

Status JsonLineConnection::WriteAll(const std::string& bytes, int pass_fd) {
  std::lock_guard<std::mutex> lock(write_mu_);
  const auto deadline = Clock::now() + options_.write_timeout;
  size_t done = 0;
  while (done < bytes.size()) {
    ssize_t n;
    if (pass_fd >= 0) {
      // The descriptor rides on the first byte(s) sent; the kernel delivers it with them.
      FdMessage message(const_cast<char*>(bytes.data() + done), bytes.size() - done);
      message.Attach(pass_fd);
      n = ::sendmsg(fd_, &message.msg, MSG_NOSIGNAL);
      if (n > 0) pass_fd = -1;
    } else {
      n = ::send(fd_, bytes.data() + done, bytes.size() - done, MSG_NOSIGNAL);
    }
    if (n > 0) {
      done += static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno != EAGAIN) {
      return Status::Unavailable(description_ + ": write failed: " + Errno(errno) +
                                 "; the peer has gone away, reconnect when it is back");
    }
    pollfd fds[2] = {{fd_, POLLOUT, 0}, {wake_fd_, POLLIN, 0}};
    int ready = ::poll(fds, 2, PollTimeout(deadline));
    if (ready < 0 && errno == EINTR) continue;
    if (ready < 0) return Status::Internal(description_ + ": poll: " + Errno(errno));
    if (fds[1].revents != 0) return Status::Unavailable(description_ + ": connection closed");
    if (ready == 0) {
      return Status::Unavailable(description_ + ": the peer has not read for " +
                                 std::to_string(Millis(options_.write_timeout)) +
                                 " ms; dropped the connection, reconnect to retry");
    }
  }
  return Status::Ok();
}

JsonLineConnection::PendingReply JsonLineConnection::Refused(std::string label, Status why) {
  PendingReply reply;
  reply.label = std::move(label);
  std::promise<Result<nlohmann::json>> promise;
  reply.future = promise.get_future();
  promise.set_value(std::move(why));
  return reply;
}

JsonLineConnection::PendingReply JsonLineConnection::Request(nlohmann::json message,
                                                             std::string label,
                                                             ReplyInterpreter interpret,
                                                             int pass_fd) {
  if (!message.is_object()) {
    Status why = Status::InvalidArgument(label + ": a request must be a JSON object");
    return Refused(std::move(label), std::move(why));
  }
  PendingReply reply;
  reply.label = std::move(label);
  std::promise<Result<nlohmann::json>> promise;
  reply.future = promise.get_future();
  {
    // Registered before writing, so even an instant reply finds its request.
    std::lock_guard<std::mutex> lock(mu_);
    if (!open_.load()) {
      promise.set_value(end_status_.WithContext(reply.label));
      return reply;
    }
    reply.id = next_id_++;
    pending_.emplace(reply.id, Pending{reply.label, std::move(interpret), std::move(promise)});
  }
  message["id"] = reply.id;
  Status sent = Send(message, pass_fd);
  if (!sent.ok()) {
    // A failed write normally failed every pending request already; this covers the rest.
    std::lock_guard<std::mutex> lock(mu_);
    auto it = pending_.find(reply.id);
    if (it != pending_.end()) {
      it->second.promise.set_value(sent.WithContext(reply.label));
      pending_.erase(it);
    }
  }
  return reply;
}

Result<nlohmann::json> JsonLineConnection::Wait(PendingReply pending,
                                                std::chrono::milliseconds timeout) {
  if (!pending.future.valid()) {
    return Status::InvalidArgument(pending.label + ": this reply was already taken");
  }
  if (pending.future.wait_for(std::chrono::seconds(0)) != std::future_status::ready &&
      OnReaderThread()) {
    return Status::FailedPrecondition(
        pending.label + ": cannot wait for a reply from " + description_ +
        " inside its event or close handler (the handler runs on the thread that reads the "
        "reply); wait from another thread");
  }
  if (pending.future.wait_for(timeout) == std::future_status::ready) return pending.future.get();
  bool forgotten = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    forgotten = pending_.erase(pending.id) > 0;
  }
  // Not found: the reply (or the end of the connection) arrived while we gave up; use it.
  if (!forgotten) return pending.future.get();
  std::string message = pending.label + ": no reply within " + std::to_string(Millis(timeout)) +
                        " ms from " + description_;
  if (!options_.no_reply_hint.empty()) message += "; " + options_.no_reply_hint;
  return Status::DeadlineExceeded(message);
}

void JsonLineConnection::ReaderLoop() {
  reader_id_.store(std::this_thread::get_id());
  std::vector<char> buffer(kReadChunkBytes);
  Status end;
  while (true) {
    pollfd fds[2] = {{fd_, POLLIN, 0}, {wake_fd_, POLLIN, 0}};
    int ready = ::poll(fds, 2, -1);
    if (ready < 0 && errno == EINTR) continue;
    if (ready < 0) {
      end = Status::Internal(description_ + ": poll: " + Errno(errno));
      break;
    }
    if (fds[1].revents != 0) break;  // Close(), or a writer broke the connection
    ssize_t n = ::read(fd_, buffer.data(), buffer.size());
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (n < 0) {
      end = Status::Unavailable(description_ + ": read failed: " + Errno(errno) +
                                "; reconnect when the peer is back");
      break;
    }
    if (n == 0) {
      end = Status::Unavailable(description_ +
                                ": closed by the peer; reconnect when the peer is back");
      break;
    }
    for (auto& line : framer_.Feed(std::string_view(buffer.data(), static_cast<size_t>(n)))) {
      if (closed_locally_.load()) break;  // a handler called Close(): deliver nothing more
      DispatchLine(std::move(line));
    }
  }
  if (closed_locally_.load()) return;
  if (!end.ok()) FailAll(end);
  Status why;
  {
    std::lock_guard<std::mutex> lock(mu_);
    why = end_status_;
  }
  std::lock_guard<std::recursive_mutex> lock(handler_mu_);
  CloseHandler handler = close_handler_;
  if (!handler) return;
  try {
    handler(why);
  } catch (const std::exception& e) {
    spdlog::error("{}: close handler threw: {}", description_, e.what());
  } catch (...) {
    spdlog::error("{}: close handler threw", description_);
  }
}

void JsonLineConnection::LogDropped(const std::string& what) {
  uint64_t dropped = ++dropped_messages_;
  if (dropped <= kLogFirstDropped || dropped % kLogEvery == 0) {
    spdlog::warn("{}: ignored {} (ignored so far: {})", description_, what, dropped);
  }
}

void JsonLineConnection::DispatchLine(Result<std::string> line) {
  if (!line.ok()) {
    LogDropped("a line: " + line.status().message());
    return;
  }
  Result<nlohmann::json> parsed = ParseJsonLine(line.value());
  if (!parsed.ok()) {
    LogDropped("a line: " + parsed.status().message());
    return;
  }
  nlohmann::json& message = parsed.value();
  if (!message.is_object()) {
    LogDropped("a line that is JSON but not an object");
    return;
  }
  auto id = message.find("id");
  if (id != message.end()) {
    if (id->is_number_unsigned()) {
      DispatchReply(id->get<uint64_t>(), message);
    } else {
      LogDropped("a reply whose id is not one we send: " +
                 id->dump(-1, ' ', true, nlohmann::json::error_handler_t::replace).substr(0, 80));
    }
    return;
  }
  std::lock_guard<std::recursive_mutex> lock(handler_mu_);
  // A copy, so a handler that replaces itself does not destroy the function it is running in.
  MessageHandler handler = message_handler_;
  if (!handler) return;
  try {
    handler(message);
  } catch (const std::exception& e) {
    spdlog::error("{}: message handler threw: {}", description_, e.what());
  } catch (...) {
    spdlog::error("{}: message handler threw", description_);
  }
}

void JsonLineConnection::DispatchReply(uint64_t id, const nlohmann::json& reply) {
  Pending pending;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = pending_.find(id);
    if (it == pending_.end()) {
      spdlog::debug(
          "{}: dropped a reply with id {} that matches no request (late after a "
          "timeout, or a confused peer)",
          description_, id);
      return;
    }
    pending = std::move(it->second);
    pending_.erase(it);
  }
  if (!pending.interpret) {
    pending.promise.set_value(reply);
    return;
  }
  try {
    pending.promise.set_value(pending.interpret(reply));
  } catch (const std::exception& e) {
    pending.promise.set_value(Status::Corruption(pending.label + ": unusable reply from " +
                                                 description_ + ": " + e.what()));
  } catch (...) {
    pending.promise.set_value(
        Status::Corruption(pending.label + ": unusable reply from " + description_));
  }
}

}  // namespace ferry
