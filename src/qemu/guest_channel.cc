#include "qemu/guest_channel.h"

#include "qemu/guest_messages.h"

namespace ferry::qemu {

using nlohmann::json;

namespace {

// Routes one non-reply message from the guest: events (a ready event only when well-formed) go to
// `user`, anything else is logged and dropped.
void OnGuestMessage(JsonLineConnection& connection, const json& message,
                    const GuestChannel::EventHandler& user) {
  auto line = ClassifyGuestMessage(message);
  if (!line.ok()) {
    connection.LogDropped("a message that is neither a reply nor an event (" +
                          line.status().message() + ")");
    return;
  }
  if (line->kind != GuestLine::Kind::kEvent) return;  // replies are routed by the connection
  if (user) user(GuestEvent{line->event, message});
}

}  // namespace

Result<json> InterpretGuestReply(std::string_view op, const json& reply) {
  auto line = ClassifyGuestMessage(reply);
  if (!line.ok()) {
    return Status::Corruption("guest " + std::string(op) + ": " + line.status().message() +
                              "; is ferry-guest too old or new?");
  }
  if (!line->ok) return Status::FailedPrecondition("guest " + std::string(op) + ": " + line->error);
  return std::move(line->body);
}

Result<std::unique_ptr<GuestChannel>> GuestChannel::Connect(const std::string& path,
                                                            std::chrono::milliseconds timeout) {
  JsonLineConnection::Options options;
  options.description = "guest channel " + path;
  options.no_reply_hint = "ferry-guest may not be running yet in the VM";
  options.max_line_bytes = kMaxLineBytes;
  FERRY_ASSIGN_OR_RETURN(auto connection, JsonLineConnection::Connect(path, timeout, options));
  std::unique_ptr<GuestChannel> channel(new GuestChannel(std::move(connection)));
  FERRY_RETURN_IF_ERROR(channel->connection_->Start());
  return channel;
}

GuestChannel::GuestChannel(std::unique_ptr<JsonLineConnection> connection)
    : connection_(std::move(connection)) {
  SetEventHandler(nullptr);  // still logs stray messages
}

GuestChannel::~GuestChannel() = default;  // the connection closes and joins its reader

Result<json> GuestChannel::Call(std::string_view op_name, json args,
                                std::chrono::milliseconds timeout) {
  return Wait(Start(op_name, std::move(args)), timeout);
}

Result<json> GuestChannel::Wait(JsonLineConnection::PendingReply pending,
                                std::chrono::milliseconds timeout) {
  return connection_->Wait(std::move(pending), timeout);
}

JsonLineConnection::PendingReply GuestChannel::Start(std::string_view op_name, json args) {
  std::string op(op_name);
  if (!args.is_object()) {
    return JsonLineConnection::Refused(
        "guest " + op,
        Status::InvalidArgument("guest " + op + ": arguments must be a JSON object, not " +
                                std::string(args.type_name())));
  }
  json message = std::move(args);
  message["op"] = op;  // "id" is set by Request
  return connection_->Request(std::move(message), "guest " + op,
                              [op](const json& reply) { return InterpretGuestReply(op, reply); });
}

void GuestChannel::Forget(JsonLineConnection::PendingReply pending) {
  (void)connection_->Wait(std::move(pending), std::chrono::milliseconds(0));
}

void GuestChannel::SetEventHandler(EventHandler handler) {
  // The handler is owned by the connection, so the connection outlives every call of it.
  connection_->SetMessageHandler(
      [connection = connection_.get(), handler = std::move(handler)](const json& message) {
        OnGuestMessage(*connection, message, handler);
      });
}

void GuestChannel::SetCloseHandler(CloseHandler handler) {
  connection_->SetCloseHandler(std::move(handler));
}

}  // namespace ferry::qemu
