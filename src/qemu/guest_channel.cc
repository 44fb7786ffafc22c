#include "qemu/guest_channel.h"

namespace ferry::qemu {

using nlohmann::json;

namespace {

// Routes one non-reply message from the guest.
void OnGuestMessage(JsonLineConnection& connection, const json& message,
                    const GuestChannel::EventHandler& user) {
  auto name = message.find("event");
  if (name == message.end() || !name->is_string()) {
    connection.LogDropped(
        "a message that is neither a reply nor an event: " +
        message.dump(-1, ' ', true, json::error_handler_t::replace).substr(0, 200));
    return;
  }
  if (user) user(GuestEvent{name->get<std::string>(), message});
}

}  // namespace

Result<json> InterpretGuestReply(const std::string& op, const json& reply) {
  auto ok = reply.find("ok");
  if (ok == reply.end() || !ok->is_boolean()) {
    return Status::Corruption("guest " + op +
                              ": reply has no boolean \"ok\"; is ferry-guest too old or new?");
  }
  if (!ok->get<bool>()) {
    auto error = reply.find("error");
    std::string text = error != reply.end() && error->is_string()
                           ? error->get<std::string>()
                           : std::string("failed without saying why");
    return Status::FailedPrecondition("guest " + op + ": " + text);
  }
  json result = reply;
  result.erase("id");
  result.erase("ok");
  return result;
}

Result<std::unique_ptr<GuestChannel>> GuestChannel::Connect(const std::string& path,
                                                            std::chrono::milliseconds timeout) {
  JsonLineConnection::Options options;
  options.description = "guest channel " + path;
  options.no_reply_hint = "ferry-guest may not be running yet in the VM";
  options.max_line_bytes = kMaxLineBytes;
  FERRY_ASSIGN_OR_RETURN(auto connection, JsonLineConnection::Connect(path, timeout, options));
  return std::unique_ptr<GuestChannel>(new GuestChannel(std::move(connection)));
}

GuestChannel::GuestChannel(std::unique_ptr<JsonLineConnection> connection)
    : connection_(std::move(connection)) {
  SetEventHandler(nullptr);  // still logs stray messages
  connection_->Start();
}

GuestChannel::~GuestChannel() = default;  // the connection closes and joins its reader

Result<json> GuestChannel::Call(const std::string& op, json args,
                                std::chrono::milliseconds timeout) {
  if (!args.is_object()) {
    return Status::InvalidArgument("guest " + op + ": arguments must be a JSON object, not " +
                                   std::string(args.type_name()));
  }
  json message = std::move(args);
  message["op"] = op;  // "id" is set by Request
  return connection_->Wait(
      connection_->Request(std::move(message), "guest " + op,
                           [op](const json& reply) { return InterpretGuestReply(op, reply); }),
      timeout);
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
