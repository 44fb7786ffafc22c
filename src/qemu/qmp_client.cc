#include "qemu/qmp_client.h"

#include <condition_variable>
#include <deque>
#include <limits>

namespace ferry::qemu {

using nlohmann::json;

struct QmpClient::EventWaiter::State {
  std::string name;         // "" matches every event
  std::string description;  // the QMP socket, for errors
  std::mutex mu;            // guards the fields below
  std::condition_variable cv;
  std::deque<QmpEvent> events;
  Status end;  // set when the connection ends
};

namespace {

using Clock = std::chrono::steady_clock;

std::chrono::milliseconds Remaining(Clock::time_point deadline) {
  auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - Clock::now());
  return std::max(left, std::chrono::milliseconds(0));
}

std::string StringField(const json& object, const char* key) {
  auto it = object.find(key);
  return it != object.end() && it->is_string() ? it->get<std::string>() : std::string();
}

}  // namespace

int64_t QmpTimestampMicros(const json& message) {
  auto ts = message.find("timestamp");
  if (ts == message.end() || !ts->is_object()) return 0;
  auto seconds = ts->find("seconds");
  auto micros = ts->find("microseconds");
  if (seconds == ts->end() || micros == ts->end() || !seconds->is_number_integer() ||
      !micros->is_number_integer()) {
    return 0;
  }
  int64_t s = seconds->get<int64_t>();
  int64_t us = micros->get<int64_t>();
  constexpr int64_t kMaxSeconds = std::numeric_limits<int64_t>::max() / 1'000'000 - 1;
  if (s < 0 || s > kMaxSeconds || us < 0 || us >= 1'000'000) return 0;
  return s * 1'000'000 + us;
}

// QEMU's error classes: CommandNotFound and DeviceNotFound name something that does not exist;
// the rest (mostly GenericError) mean QEMU refused the command as given or in its current state.
Result<json> InterpretQmpReply(const std::string& command, const json& reply) {
  auto ret = reply.find("return");
  if (ret != reply.end()) return *ret;
  auto error = reply.find("error");
  if (error != reply.end() && error->is_object()) {
    std::string error_class = StringField(*error, "class");
    std::string message = "QMP " + command + ": " +
                          (error_class.empty() ? "(no class)" : error_class) + ": " +
                          StringField(*error, "desc");
    if (error_class == "CommandNotFound" || error_class == "DeviceNotFound") {
      return Status::NotFound(message);
    }
    return Status::FailedPrecondition(message);
  }
  std::string dump = reply.dump(-1, ' ', true, json::error_handler_t::replace);
  if (dump.size() > 200) dump = dump.substr(0, 200) + "...";
  return Status::Corruption("QMP " + command +
                            ": reply has neither \"return\" nor \"error\": " + dump);
}

Result<QmpEvent> QmpClient::EventWaiter::Wait(std::chrono::milliseconds timeout) {
  if (!state_) return Status::FailedPrecondition("QMP event waiter was moved from");
  State& state = *state_;
  std::unique_lock<std::mutex> lock(state.mu);
  state.cv.wait_for(lock, timeout, [&] { return !state.events.empty() || !state.end.ok(); });
  std::string what = "QMP event " + (state.name.empty() ? std::string("(any)") : state.name);
  if (!state.events.empty()) {
    QmpEvent event = std::move(state.events.front());
    state.events.pop_front();
    return event;
  }
  if (!state.end.ok()) return state.end.WithContext(what);
  return Status::DeadlineExceeded(what + ": not received within " +
                                  std::to_string(timeout.count()) + " ms on " + state.description);
}

Result<std::unique_ptr<QmpClient>> QmpClient::Connect(const std::string& path,
                                                      std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  JsonLineConnection::Options options;
  options.description = "QMP socket " + path;
  options.no_reply_hint = "QEMU may be hung; check that its process is running";
  options.max_line_bytes = kMaxLineBytes;
  FERRY_ASSIGN_OR_RETURN(auto connection, JsonLineConnection::Connect(path, timeout, options));
  std::unique_ptr<QmpClient> client(new QmpClient(std::move(connection)));
  FERRY_RETURN_IF_ERROR(client->connection_->Start());

  std::future<Result<json>> greeting = client->greeting_promise_.get_future();
  if (greeting.wait_until(deadline) != std::future_status::ready) {
    return Status::DeadlineExceeded(
        "QMP socket " + path + ": no greeting from QEMU within " + std::to_string(timeout.count()) +
        " ms; another client may hold this monitor (QEMU serves one at a time), or QEMU is hung");
  }
  Result<json> qmp = greeting.get();
  if (!qmp.ok()) return qmp.status().WithContext("QMP greeting");
  client->greeting_ = std::move(qmp).value();
  Result<json> negotiated =
      client->Execute("qmp_capabilities", json::object(), Remaining(deadline));
  if (!negotiated.ok()) return negotiated.status();
  return client;
}

QmpClient::QmpClient(std::unique_ptr<JsonLineConnection> connection)
    : connection_(std::move(connection)) {
  connection_->SetMessageHandler([this](const json& message) { OnMessage(message, nullptr); });
  connection_->SetCloseHandler([this](const Status& why) { OnClose(why, nullptr); });
}

QmpClient::~QmpClient() {
  connection_->Close();  // joins the reader: no handler runs after this
  EndWaiters(Status::Unavailable("QMP socket " + connection_->path() + ": client closed"));
}

JsonLineConnection::PendingReply QmpClient::SendCommand(const std::string& command, json args,
                                                        int pass_fd) {
  if (!args.is_null() && !args.is_object()) {
    JsonLineConnection::PendingReply refused;
    refused.label = "QMP " + command;
    std::promise<Result<json>> promise;
    refused.future = promise.get_future();
    promise.set_value(Status::InvalidArgument("QMP " + command +
                                              ": arguments must be a JSON object, not " +
                                              std::string(args.type_name())));
    return refused;
  }
  json message = {{"execute", command}};
  if (args.is_object() && !args.empty()) message["arguments"] = std::move(args);
  return connection_->Request(
      std::move(message), "QMP " + command,
      [command](const json& reply) { return InterpretQmpReply(command, reply); }, pass_fd);
}

std::future<Result<json>> QmpClient::Send(const std::string& command, json args) {
  return SendCommand(command, std::move(args)).future;
}

Result<json> QmpClient::Execute(const std::string& command, json args,
                                std::chrono::milliseconds timeout) {
  return connection_->Wait(SendCommand(command, std::move(args)), timeout);
}

Status QmpClient::PassFd(const std::string& name, int fd, std::chrono::milliseconds timeout) {
  if (fd < 0) return Status::InvalidArgument("QMP getfd " + name + ": no descriptor to pass");
  return connection_->Wait(SendCommand("getfd", {{"fdname", name}}, fd), timeout).status();
}

Result<QmpClient::AddedFd> QmpClient::AddFd(int fd, std::optional<int64_t> fdset,
                                            std::chrono::milliseconds timeout) {
  if (fd < 0) return Status::InvalidArgument("QMP add-fd: no descriptor to pass");
  json args = json::object();
  if (fdset) args["fdset-id"] = *fdset;
  FERRY_ASSIGN_OR_RETURN(json reply, connection_->Wait(SendCommand("add-fd", args, fd), timeout));
  if (!reply.is_object() || !reply.contains("fdset-id") || !reply["fdset-id"].is_number_integer()) {
    return Status::Internal("QMP add-fd: QEMU's reply has no fdset-id");
  }
  AddedFd added;
  added.fdset = reply["fdset-id"].get<int64_t>();
  if (reply.contains("fd") && reply["fd"].is_number_integer()) {
    const int64_t number = reply["fd"].get<int64_t>();
    if (number >= 0 && number <= std::numeric_limits<int>::max())
      added.fd = static_cast<int>(number);
  }
  return added;
}

QmpClient::EventWaiter QmpClient::WatchEvent(std::string name) {
  auto state = std::make_shared<EventWaiter::State>();
  state->name = std::move(name);
  state->description = connection_->description();
  std::lock_guard<std::mutex> lock(mu_);
  if (end_status_.ok()) {
    waiters_.push_back(state);
  } else {
    state->end = end_status_;  // no other thread sees `state` yet
  }
  return EventWaiter(std::move(state));
}

Result<QmpEvent> QmpClient::WaitForEvent(const std::string& name,
                                         std::chrono::milliseconds timeout) {
  return WatchEvent(name).Wait(timeout);
}

void QmpClient::SetEventHandler(EventHandler handler) {
  connection_->SetMessageHandler(
      [this, handler = std::move(handler)](const json& message) { OnMessage(message, handler); });
}

void QmpClient::SetCloseHandler(CloseHandler handler) {
  connection_->SetCloseHandler(
      [this, handler = std::move(handler)](const Status& why) { OnClose(why, handler); });
}

void QmpClient::OnMessage(const json& message, const EventHandler& user) {
  auto greeting = message.find("QMP");
  if (greeting != message.end()) {
    std::lock_guard<std::mutex> lock(mu_);
    if (!greeting_received_) {
      greeting_received_ = true;
      if (greeting->is_object()) {
        greeting_promise_.set_value(*greeting);
      } else {
        greeting_promise_.set_value(
            Status::Corruption(connection_->description() +
                               ": the greeting's \"QMP\" member is not an object; is "
                               "this a QMP socket?"));
      }
    }
    return;
  }
  auto name = message.find("event");
  if (name == message.end() || !name->is_string()) {
    // E.g. an error without an id, which QEMU sends for a line it could not parse.
    connection_->LogDropped(
        "a message that is neither a reply nor an event: " +
        message.dump(-1, ' ', true, json::error_handler_t::replace).substr(0, 200));
    return;
  }
  auto data = message.find("data");
  QmpEvent event{name->get<std::string>(), data != message.end() ? *data : json::object(),
                 QmpTimestampMicros(message)};
  DeliverToWaiters(event);
  if (user) user(event);
}

void QmpClient::DeliverToWaiters(const QmpEvent& event) {
  std::lock_guard<std::mutex> lock(mu_);
  std::erase_if(waiters_, [&](const std::weak_ptr<EventWaiter::State>& weak) {
    std::shared_ptr<EventWaiter::State> state = weak.lock();
    if (!state) return true;  // its EventWaiter is gone
    if (state->name.empty() || state->name == event.name) {
      std::lock_guard<std::mutex> state_lock(state->mu);
      state->events.push_back(event);
      state->cv.notify_all();
    }
    return false;
  });
}

void QmpClient::EndWaiters(const Status& why) {
  std::vector<std::weak_ptr<EventWaiter::State>> waiters;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (end_status_.ok()) end_status_ = why;
    waiters.swap(waiters_);
    if (!greeting_received_) {
      greeting_received_ = true;
      greeting_promise_.set_value(why);
    }
  }
  for (const auto& weak : waiters) {
    if (std::shared_ptr<EventWaiter::State> state = weak.lock()) {
      std::lock_guard<std::mutex> state_lock(state->mu);
      state->end = why;
      state->cv.notify_all();
    }
  }
}

void QmpClient::OnClose(const Status& why, const CloseHandler& user) {
  EndWaiters(why);
  if (user) user(why);
}

}  // namespace ferry::qemu
