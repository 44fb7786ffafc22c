// ferryd's end of the channel to ferry-guest, the agent inside a VM. QEMU exposes the guest's
// virtio-serial port as a UNIX socket (`-chardev socket,id=guest0,path=PATH,server=on,wait=off`).
// What goes over it -- framing, requests, replies, events, ops, versions -- is guest/protocol.h,
// the one description of the protocol, shared with ferry-guest; this class is the transport: it
// numbers requests, matches replies by id, checks only their "ok" and "error", and hands events
// to a handler. guest_messages.h types the rest of each reply. Lines are limited in size
// (kMaxLineBytes: ferryd's own bound, larger than the guest's) and nesting depth (see
// core/untrusted_json.h).
//
// There is no greeting. Until ferry-guest runs, QEMU accepts the connection but nothing answers,
// so a Call() then ends in DeadlineExceeded; the request may still reach the guest later and be
// answered then, and such a late reply is dropped. Everything the guest sends is untrusted:
// garbage, over-long lines and unknown ids are logged and ignored.
//
// Thread-safety: every method may be called from any thread. The event and close handlers run on
// the connection's reader thread and must not call Call(). When the guest or QEMU closes the
// socket the channel stays closed: reconnecting is the caller's job (make a new GuestChannel).
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "core/json_line_connection.h"
#include "core/status.h"
#include "guest/protocol.h"

namespace ferry::qemu {

struct GuestEvent {
  std::string name;        // the "event" member: one of guest::events
  nlohmann::json message;  // the whole object (guest_messages.h parses it)
};

// A reply to `op` as GuestChannel::Call returns it (see there), as a function of one parsed line
// (unit tests and fuzz/ call it directly).
Result<nlohmann::json> InterpretGuestReply(std::string_view op, const nlohmann::json& reply);

class GuestChannel {
 public:
  using EventHandler = std::function<void(const GuestEvent& event)>;
  using CloseHandler = JsonLineConnection::CloseHandler;

  static constexpr std::chrono::milliseconds kDefaultTimeout{5000};
  static constexpr size_t kMaxLineBytes = size_t{1} << 20;

  // Connects to the chardev socket within `timeout`. Success says nothing about the guest: only a
  // reply to Call("ping") does.
  static Result<std::unique_ptr<GuestChannel>> Connect(const std::string& path,
                                                       std::chrono::milliseconds timeout);

  GuestChannel(const GuestChannel&) = delete;
  GuestChannel& operator=(const GuestChannel&) = delete;
  // Closes the socket and joins the reader; the close handler is not called. REQUIRES: not
  // called from a handler, and no other thread is inside a method of this channel.
  ~GuestChannel();

  // Sends request `op` (one of guest::ops) with `args` and waits up to `timeout` for the reply.
  // Returns the reply without "id" and "ok". Errors: FailedPrecondition
  // "guest <op>: <guest's error>" for "ok": false; Corruption for a reply without a boolean "ok";
  // DeadlineExceeded naming the op; Unavailable when the channel ends first; InvalidArgument if
  // `args` is not an object.
  Result<nlohmann::json> Call(std::string_view op, nlohmann::json args = nlohmann::json::object(),
                              std::chrono::milliseconds timeout = kDefaultTimeout);

  // Call() in two halves, for a caller that waits in steps: Start writes the request, and the
  // returned future becomes ready with what Call() would return. Forget drops a request still
  // unanswered (its late reply is then dropped).
  JsonLineConnection::PendingReply Start(std::string_view op,
                                         nlohmann::json args = nlohmann::json::object());
  void Forget(JsonLineConnection::PendingReply pending);
  // Waits up to `timeout` for a started request's reply, as Call() does.
  Result<nlohmann::json> Wait(JsonLineConnection::PendingReply pending,
                              std::chrono::milliseconds timeout);

  // Called for each {"event": ...} message, on the reader thread; nullptr to stop. See
  // JsonLineConnection::SetMessageHandler for when a replaced handler stops running.
  void SetEventHandler(EventHandler handler);
  // Called once, on the reader thread, when the socket is closed by the other side or fails;
  // not on destruction. Install, then check connected() to close the race.
  void SetCloseHandler(CloseHandler handler);

  bool connected() const { return connection_->connected(); }
  const std::string& path() const { return connection_->path(); }

 private:
  explicit GuestChannel(std::unique_ptr<JsonLineConnection> connection);

  std::unique_ptr<JsonLineConnection> connection_;
};

}  // namespace ferry::qemu
