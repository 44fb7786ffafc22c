#include "migrate/peer_link.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/err.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>

#include "core/untrusted_json.h"

namespace ferry::migrate {

namespace {

using Clock = std::chrono::steady_clock;

// Control messages and small data frames go out as one buffer, so header and payload share TLS
// records; bigger payloads are written in place after their header.
constexpr size_t kCoalesceBytes = 16 * 1024;
constexpr char kAcceptPayload[] = "{}";
constexpr size_t kMaxAcceptPayloadBytes = 4096;

std::string Millis(std::chrono::milliseconds d) { return std::to_string(d.count()) + " ms"; }

// What poll() waits for after an SSL call on the non-blocking socket failed with `ssl_error`;
// 0 when it did not fail for want of I/O (the link's failure then).
short WantedEvents(int ssl_error) {
  if (ssl_error == SSL_ERROR_WANT_READ) return POLLIN;
  if (ssl_error == SSL_ERROR_WANT_WRITE) return POLLOUT;
  return 0;
}

}  // namespace

Result<std::unique_ptr<PeerLink>> PeerLink::Establish(
    int fd, const PeerTlsContext& context, PeerRole role, const std::string& expected_host_id,
    Clock::time_point deadline, const std::string& remote, const std::string& refusal) {
  auto session = context.Handshake(fd, role, expected_host_id, deadline, "peer " + remote);
  if (!session.ok()) return session.status();
  std::string description = std::string(role == PeerRole::kClient ? "link to " : "link from ") +
                            session->peer.host_id + " (" + remote + ")";
  std::unique_ptr<PeerLink> link(new PeerLink(fd, std::move(session).value(), description));
  link->owns_fd_ = false;  // until established: the caller closes fd on failure

  if (role == PeerRole::kServer && !refusal.empty()) {
    const std::string payload = nlohmann::json{{"refused", refusal}}.dump();
    Status sent = link->SendFrame(FrameType::kAccept, payload.data(), payload.size(), deadline);
    if (!sent.ok()) return sent;
    return Status::ResourceExhausted(description + ": refused: " + refusal);
  }
  if (role == PeerRole::kServer) {
    Status sent =
        link->SendFrame(FrameType::kAccept, kAcceptPayload, sizeof kAcceptPayload - 1, deadline);
    if (!sent.ok()) return sent;
    link->owns_fd_ = true;
    return link;
  }

  // The server's accept frame tells us it verified our certificate (see the header comment).
  std::lock_guard<std::mutex> lock(link->receive_mu_);
  link->establishing_.store(true);
  auto first = link->ReceiveFrame(deadline);
  link->establishing_.store(false);
  if (!first.ok()) {
    if (first.status().code() == Status::Code::kDeadlineExceeded) {
      return Status::DeadlineExceeded(description + ": the server did not accept this host in " +
                                      "time; check that it runs ferryd and is not overloaded");
    }
    return Status::Unavailable(first.status().message());
  }
  if (first->type != FrameType::kAccept) {
    return link->Fail(Status::Corruption(description + ": the server sent a " +
                                         FrameTypeName(first->type) +
                                         " frame before accepting this host"));
  }
  // Parsed without exceptions and only when small (a refusal is one line): it comes from the peer.
  const auto accept = first->payload.size() > kMaxAcceptPayloadBytes
                          ? nlohmann::json()
                          : nlohmann::json::parse(first->payload, nullptr, false);
  if (accept.is_object() && accept.contains("refused") && accept["refused"].is_string()) {
    return Status::Unavailable(
        description + ": the server refused this link: " + accept["refused"].get<std::string>());
  }
  link->owns_fd_ = true;
  return link;
}

X509* PeerLink::peer_certificate() const { return SSL_get0_peer_certificate(ssl_.get()); }

PeerLink::PeerLink(int fd, TlsSession session, std::string description)
    : fd_(fd),
      ssl_(std::move(session.ssl)),
      peer_(std::move(session.peer)),
      description_(std::move(description)),
      rx_header_bytes_(kFrameHeaderBytes, '\0') {
  std::lock_guard<std::mutex> lock(ssl_mu_);
  UpdateWireCounters();  // the handshake's bytes
}

PeerLink::~PeerLink() {
  Close();
  if (owns_fd_) ::close(fd_);
}

void PeerLink::Close() {
  if (closed_locally_.exchange(true)) return;
  {
    std::lock_guard<std::mutex> lock(ssl_mu_);
    // close_notify lets the peer tell our close from a cut connection. Skipped when a record is
    // half-written: the alert would then follow a torn record. SSL_shutdown on a non-blocking
    // socket never waits; if the alert does not fit in the socket buffer, the peer sees a cut.
    if (!ended_.load() && !write_pending_) {
      ERR_clear_error();
      (void)SSL_shutdown(ssl_.get());
      ERR_clear_error();
      UpdateWireCounters();
    }
  }
  Fail(Status::Unavailable(description_ + ": closed by this agent"));
}

Status PeerLink::Fail(const Status& why) {
  Status first;
  {
    std::lock_guard<std::mutex> lock(end_mu_);
    if (end_status_.ok()) end_status_ = why;
    first = end_status_;
    ended_.store(true);
  }
  // Wakes a sender or receiver waiting in poll() on the other direction; both then see ended_.
  if (!handed_over_.load()) ::shutdown(fd_, SHUT_RDWR);
  return first;
}

Status PeerLink::end_status() const {
  std::lock_guard<std::mutex> lock(end_mu_);
  return end_status_;
}

PeerLink::Counters PeerLink::counters() const {
  Counters c;
  c.wire_bytes_sent = wire_sent_.load();
  c.wire_bytes_received = wire_received_.load();
  c.payload_bytes_sent = payload_sent_.load();
  c.payload_bytes_received = payload_received_.load();
  c.frames_sent = frames_sent_.load();
  c.frames_received = frames_received_.load();
  return c;
}

void PeerLink::UpdateWireCounters() {
  wire_received_.store(BIO_number_read(SSL_get_rbio(ssl_.get())));
  wire_sent_.store(BIO_number_written(SSL_get_wbio(ssl_.get())));
}

Status PeerLink::IoFailure(int ssl_error, int saved_errno, const char* doing) {
  unsigned long first_error = ERR_peek_error();
  std::string tls = TakeTlsErrors();
  if (closed_locally_.load()) return Status::Unavailable(description_ + ": closed by this agent");
  if (establishing_.load()) {
    // The server refused us after the handshake: its alert (unknown ca, certificate expired, ...)
    // or its close is the reason.
    std::string reason = ssl_error == SSL_ERROR_SSL && !tls.empty() ? tls
                         : saved_errno != 0                         ? std::strerror(saved_errno)
                                                                    : "it closed the connection";
    return Status::Unavailable(description_ + ": the server did not accept this host: " + reason +
                               "; check that this host is enrolled with the same fleet CA and " +
                               "see the server's log");
  }
  switch (ssl_error) {
    case SSL_ERROR_ZERO_RETURN:
      return Status::Unavailable(description_ + ": the peer closed the link");
    case SSL_ERROR_SYSCALL:
      return Status::Unavailable(
          description_ + ": connection lost while " + doing + ": " +
          (saved_errno != 0 ? std::strerror(saved_errno) : "unexpected end of stream") +
          "; the peer went away or the network failed");
    case SSL_ERROR_SSL:
      if (ERR_GET_LIB(first_error) == ERR_LIB_SSL &&
          ERR_GET_REASON(first_error) == SSL_R_UNEXPECTED_EOF_WHILE_READING) {
        return Status::Unavailable(description_ + ": connection cut while " + doing +
                                   " (no TLS close_notify); the peer went away or the network " +
                                   "failed");
      }
      return Status::Corruption(
          description_ + ": TLS error while " + doing + ": " + (tls.empty() ? "unknown" : tls) +
          "; the link is closed and nothing after the last intact TLS " + "record was delivered");
    default:
      return Status::Internal(description_ + ": unexpected OpenSSL result " +
                              std::to_string(ssl_error) + " while " + doing +
                              (tls.empty() ? "" : ": " + tls));
  }
}

Status PeerLink::SendMessage(const nlohmann::json& message) {
  if (!message.is_object()) {
    return Status::InvalidArgument(description_ + ": a control message must be a JSON object");
  }
  std::string text;
  try {
    text = message.dump();
  } catch (const nlohmann::json::exception& e) {  // strings that are not valid UTF-8
    return Status::InvalidArgument(description_ + ": cannot encode a control message: " + e.what());
  }
  return SendControlBytes(text);
}

Status PeerLink::SendControlBytes(std::string_view text) {
  if (text.size() > kMaxFramePayloadBytes) {
    return Status::InvalidArgument(description_ + ": control message of " +
                                   std::to_string(text.size()) + " bytes is over the frame " +
                                   "limit; send bulk data as data frames");
  }
  auto timeout = std::chrono::milliseconds(send_timeout_ms_.load());
  return SendFrame(FrameType::kControl, text.data(), text.size(), Clock::now() + timeout);
}

Status PeerLink::SendData(const void* data, size_t size) {
  auto timeout = std::chrono::milliseconds(send_timeout_ms_.load());
  const auto* p = static_cast<const char*>(data);
  // An empty write still sends one (empty) frame, so a caller's "send" is never silently nothing.
  do {
    size_t n = std::min(size, kDataFrameBytes);
    FERRY_RETURN_IF_ERROR(SendFrame(FrameType::kData, p, n, Clock::now() + timeout));
    p += n;
    size -= n;
  } while (size > 0);
  return Status::Ok();
}

Status PeerLink::SendStreamEnd() {
  auto timeout = std::chrono::milliseconds(send_timeout_ms_.load());
  return SendFrame(FrameType::kStreamEnd, nullptr, 0, Clock::now() + timeout);
}

Status PeerLink::SendFrame(FrameType type, const void* payload, size_t size,
                           Clock::time_point deadline) {
  std::lock_guard<std::mutex> lock(send_mu_);
  if (ended_.load()) return end_status();
  std::string_view body(static_cast<const char*>(payload), size);
  std::string header = EncodeFrameHeader(type, body);
  if (size <= kCoalesceBytes) {
    header.append(body);
    FERRY_RETURN_IF_ERROR(WriteAll(header.data(), header.size(), deadline));
  } else {
    FERRY_RETURN_IF_ERROR(WriteAll(header.data(), header.size(), deadline));
    FERRY_RETURN_IF_ERROR(WriteAll(payload, size, deadline));
  }
  payload_sent_.fetch_add(size);
  frames_sent_.fetch_add(1);
  return Status::Ok();
}

Status PeerLink::WriteAll(const void* bytes, size_t size, Clock::time_point deadline) {
  const auto* p = static_cast<const char*>(bytes);
  size_t done = 0;
  while (done < size) {
    short events = 0;
    {
      std::lock_guard<std::mutex> lock(ssl_mu_);
      if (ended_.load()) return end_status();
      ERR_clear_error();
      errno = 0;
      size_t written = 0;
      int ret = SSL_write_ex(ssl_.get(), p + done, size - done, &written);
      int saved_errno = errno;
      UpdateWireCounters();
      if (ret == 1) {
        done += written;
        write_pending_ = false;
        continue;
      }
      int error = SSL_get_error(ssl_.get(), ret);
      events = WantedEvents(error);
      if (events == 0) return Fail(IoFailure(error, saved_errno, "sending"));
      write_pending_ = true;
    }
    FERRY_ASSIGN_OR_RETURN(bool ready, AwaitSocket(events, deadline));
    if (!ready) {
      return Fail(Status::Unavailable(
          description_ + ": the peer stopped reading; gave up " + "sending after " +
          Millis(std::chrono::milliseconds(send_timeout_ms_.load())) + " and closed the link"));
    }
  }
  return Status::Ok();
}

Result<size_t> PeerLink::ReadSome(void* buffer, size_t size, Clock::time_point deadline) {
  while (true) {
    short events = 0;
    {
      std::lock_guard<std::mutex> lock(ssl_mu_);
      if (ended_.load()) return end_status();
      ERR_clear_error();
      errno = 0;
      size_t got = 0;
      int ret = SSL_read_ex(ssl_.get(), buffer, size, &got);
      int saved_errno = errno;
      UpdateWireCounters();
      if (ret == 1) return got;
      int error = SSL_get_error(ssl_.get(), ret);
      events = WantedEvents(error);
      if (events == 0) return Fail(IoFailure(error, saved_errno, "receiving"));
    }
    FERRY_ASSIGN_OR_RETURN(bool ready, AwaitSocket(events, deadline));
    if (!ready) return Status::DeadlineExceeded(description_ + ": nothing received in time");
  }
}

Result<bool> PeerLink::AwaitSocket(short events, Clock::time_point deadline) {
  pollfd pfd{fd_, events, 0};
  const int ready = ::poll(&pfd, 1, PollMillisUntil(deadline));
  if (ready < 0 && errno == EINTR) return true;  // the caller's SSL call says what is still owed
  if (ready < 0) return Fail(Status::Internal(description_ + ": poll: " + std::strerror(errno)));
  return ready > 0;
}

Result<UniqueFd> PeerLink::HandOverSocket(std::chrono::milliseconds timeout) {
  std::lock_guard<std::mutex> send_lock(send_mu_);
  std::lock_guard<std::mutex> receive_lock(receive_mu_);
  const auto deadline = Clock::now() + timeout;
  if (ended_.load()) return end_status();
  if (rx_have_header_ || rx_header_fill_ != 0) {
    return Fail(Status::Corruption(description_ + ": part of a frame arrived where the peer " +
                                   "should have ended its TLS"));
  }
  bool sent = false;  // our close_notify
  for (;;) {
    short events = 0;
    {
      std::lock_guard<std::mutex> lock(ssl_mu_);
      if (ended_.load()) return end_status();
      ERR_clear_error();
      errno = 0;
      size_t got = 0;
      char byte = 0;
      // Ours first; then reads (not a second SSL_shutdown) until the peer's, so that a byte that
      // comes instead is seen and refused.
      const int ret = sent ? SSL_read_ex(ssl_.get(), &byte, 1, &got) : SSL_shutdown(ssl_.get());
      const int saved_errno = errno;
      UpdateWireCounters();
      if (!sent && ret >= 0) {
        sent = true;
        if (ret == 1) break;  // the peer's had come already
        continue;
      }
      if (sent && ret == 1) {
        return Fail(Status::Corruption(description_ + ": the peer sent data where it should " +
                                       "have ended its TLS"));
      }
      const int error = SSL_get_error(ssl_.get(), ret);
      if (error == SSL_ERROR_ZERO_RETURN) break;  // the peer's close_notify
      events = WantedEvents(error);
      if (events == 0) return Fail(IoFailure(error, saved_errno, "ending TLS for the hand-over"));
    }
    FERRY_ASSIGN_OR_RETURN(bool ready, AwaitSocket(events, deadline));
    if (!ready) {
      return Fail(Status::DeadlineExceeded(description_ + ": the peer did not end its TLS within " +
                                           Millis(timeout)));
    }
  }
  {
    std::lock_guard<std::mutex> lock(ssl_mu_);
    // Without read-ahead OpenSSL reads record by record: nothing past close_notify is buffered.
    if (SSL_has_pending(ssl_.get()) != 0) {
      return Fail(Status::Corruption(description_ + ": bytes after the peer's close_notify"));
    }
    const int flags = ::fcntl(fd_, F_GETFL);
    if (flags < 0 || ::fcntl(fd_, F_SETFL, flags & ~O_NONBLOCK) != 0) {
      return Fail(Status::Internal(description_ + ": fcntl: " + std::strerror(errno)));
    }
    handed_over_.store(true);
    owns_fd_ = false;
  }
  Fail(Status::Unavailable(description_ + ": handed over to another protocol"));
  return UniqueFd(fd_);
}

Result<Frame> PeerLink::ReceiveFrame(Clock::time_point deadline) {
  if (ended_.load()) return end_status();
  if (!rx_have_header_) {
    while (rx_header_fill_ < kFrameHeaderBytes) {
      FERRY_ASSIGN_OR_RETURN(size_t n, ReadSome(rx_header_bytes_.data() + rx_header_fill_,
                                                kFrameHeaderBytes - rx_header_fill_, deadline));
      rx_header_fill_ += n;
    }
    auto header = DecodeFrameHeader(rx_header_bytes_, description_);
    if (!header.ok()) return Fail(header.status());
    rx_header_ = *header;
    rx_have_header_ = true;
    rx_header_fill_ = 0;
    rx_payload_.assign(rx_header_.payload_bytes, '\0');
    rx_payload_fill_ = 0;
  }
  while (rx_payload_fill_ < rx_payload_.size()) {
    FERRY_ASSIGN_OR_RETURN(size_t n, ReadSome(rx_payload_.data() + rx_payload_fill_,
                                              rx_payload_.size() - rx_payload_fill_, deadline));
    rx_payload_fill_ += n;
  }
  Status checked = CheckFramePayload(rx_header_, rx_payload_, description_);
  if (!checked.ok()) return Fail(checked);
  rx_have_header_ = false;
  payload_received_.fetch_add(rx_payload_.size());
  frames_received_.fetch_add(1);
  return Frame{rx_header_.type, std::move(rx_payload_)};
}

Result<Frame> PeerLink::Receive(std::chrono::milliseconds timeout) {
  std::lock_guard<std::mutex> lock(receive_mu_);
  auto frame = ReceiveFrame(Clock::now() + timeout);
  if (!frame.ok()) {
    if (frame.status().code() == Status::Code::kDeadlineExceeded) {
      return Status::DeadlineExceeded(description_ + ": no frame within " + Millis(timeout));
    }
    return frame.status();
  }
  if (frame->type == FrameType::kAccept) {
    return Fail(Status::Corruption(description_ + ": unexpected accept frame on an established " +
                                   "link; the peer's agent is confused"));
  }
  return frame;
}

Result<nlohmann::json> PeerLink::ReceiveMessage(std::chrono::milliseconds timeout) {
  FERRY_ASSIGN_OR_RETURN(Frame frame, Receive(timeout));
  if (frame.type != FrameType::kControl) {
    return Fail(Status::Corruption(description_ + ": expected a control message, got a " +
                                   FrameTypeName(frame.type) + " frame; protocol out of step"));
  }
  auto message = ParseControlPayload(frame.payload, description_);
  if (!message.ok()) return Fail(message.status());
  return message;
}

}  // namespace ferry::migrate
