#include "cli/unix_http_client.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>
#include <string_view>

#include "cli/http_reply_head.h"

namespace ferry::cli {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

std::string Errno(int err) { return std::strerror(err); }

std::string FormatTimeout(milliseconds t) {
  if (t.count() % 1000 == 0) return std::to_string(t.count() / 1000) + " s";
  return std::to_string(t.count()) + " ms";
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Escapes what httplib's client escapes in a request target (space, +, ', comma, ;, CR, LF and
// non-ASCII bytes), plus the other control bytes, which would otherwise break the request line.
std::string EscapePath(const std::string& path) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(path.size());
  for (char c : path) {
    auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u >= 0x7f || c == '+' || c == '\'' || c == ',' || c == ';') {
      out += '%';
      out += kHex[u >> 4];
      out += kHex[u & 0xf];
    } else {
      out += c;
    }
  }
  return out;
}

}  // namespace

UnixHttpClient::UnixHttpClient(std::string socket_path, HttpTimeouts timeouts)
    : socket_path_(std::move(socket_path)), timeouts_(timeouts) {}

UnixHttpClient::~UnixHttpClient() { Disconnect(); }

Result<HttpResponse> UnixHttpClient::Request(const std::string& method, const std::string& path,
                                             const std::string& body,
                                             const std::string& content_type) {
  std::string request =
      method + " " + EscapePath(path) +
      " HTTP/1.1\r\nHost: localhost\r\nContent-Length: " + std::to_string(body.size()) + "\r\n";
  if (!content_type.empty()) request += "Content-Type: " + content_type + "\r\n";
  request += "\r\n";
  request += body;

  if (fd_ >= 0 && !IdleConnectionUsable()) Disconnect();
  const bool reused = fd_ >= 0;
  if (!reused) FERRY_RETURN_IF_ERROR(Connect());
  auto reply = Exchange(request, method);
  // A kept-alive connection the server closed just as we sent shows up as a failed send, or as
  // EOF or a reset before the first reply byte. The server dropped it as idle rather than
  // handling the request, so the request goes once more on a fresh connection. A timeout or a
  // partial reply is never retried, nor is a fresh connection's failure: a request is sent at
  // most twice.
  if (!reply.ok() && reused && reply_bytes_ == 0 &&
      reply.status().code() == Status::Code::kUnavailable) {
    FERRY_RETURN_IF_ERROR(Connect());
    reply = Exchange(request, method);
  }
  return reply;
}

Status UnixHttpClient::Connect() {
  Disconnect();
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (socket_path_.empty() || socket_path_.size() >= sizeof(addr.sun_path)) {
    return Status::InvalidArgument("socket path '" + socket_path_ + "' is empty or longer than " +
                                   std::to_string(sizeof(addr.sun_path) - 1) + " bytes");
  }
  std::memcpy(addr.sun_path, socket_path_.data(), socket_path_.size());

  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return Status::Unavailable("cannot connect to " + socket_path_ + ": " + Errno(errno));
  // An AF_UNIX connect completes at once or, while the listener's backlog is full, waits for
  // room. poll() cannot bound that wait (a non-blocking connect just fails with EAGAIN), so the
  // socket stays blocking for connect() and SO_SNDTIMEO bounds it; after that, I/O is
  // non-blocking and poll() bounds it.
  const auto deadline = Clock::now() + timeouts_.connect;
  for (;;) {
    auto left = std::chrono::ceil<std::chrono::microseconds>(deadline - Clock::now());
    int err = EAGAIN;
    if (left.count() > 0) {
      timeval tv{};
      tv.tv_sec = static_cast<time_t>(left.count() / 1000000);
      tv.tv_usec = static_cast<suseconds_t>(left.count() % 1000000);
      ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
      if (::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) == 0) break;
      err = errno;
      if (err == EINTR) continue;  // the socket is still unconnected: try again
    }
    ::close(fd);
    if (err == EAGAIN || err == EINPROGRESS) {
      return Status::DeadlineExceeded(socket_path_ + " did not accept a connection within " +
                                      FormatTimeout(timeouts_.connect));
    }
    return Status::Unavailable("cannot connect to " + socket_path_ + ": " + Errno(err));
  }
  int flags = ::fcntl(fd, F_GETFL);
  if (flags < 0 || ::fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0) {
    int err = errno;
    ::close(fd);
    return Status::Internal("cannot make the connection to " + socket_path_ +
                            " non-blocking: " + Errno(err));
  }
  fd_ = fd;
  return Status::Ok();
}

void UnixHttpClient::Disconnect() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
  in_.clear();
}

bool UnixHttpClient::IdleConnectionUsable() const {
  // Between replies the server has nothing to say: readable means EOF (or stray bytes), and
  // either way, as a hang-up or an error, the connection is not worth a request.
  pollfd p{fd_, POLLIN, 0};
  return ::poll(&p, 1, 0) == 0;
}

Result<HttpResponse> UnixHttpClient::Exchange(const std::string& request,
                                              const std::string& method) {
  in_.clear();
  reply_bytes_ = 0;
  Status sent = Send(request);
  if (!sent.ok()) {
    Disconnect();
    return sent;
  }
  auto reply = ReadReply(method);
  if (!reply.ok()) Disconnect();
  return reply;
}

Result<HttpResponse> UnixHttpClient::ReadReply(const std::string& method) {
  std::size_t head_budget = kMaxHeaderBytes;
  HttpReplyHead head;
  do {  // 1xx replies are interim: the final reply follows on the same connection
    FERRY_ASSIGN_OR_RETURN(std::string text, ReadHead(head_budget));
    head_budget -= text.size() + 4;
    FERRY_ASSIGN_OR_RETURN(head, ParseHttpReplyHead(text, socket_path_));
  } while (head.status < 200);

  bool reusable = !head.connection_close && (!head.http10 || head.connection_keep_alive);
  std::string body;
  if (method == "HEAD" || head.status == 204 || head.status == 304) {
    // No body, whatever the headers say.
  } else if (head.chunked) {
    FERRY_ASSIGN_OR_RETURN(body, ReadChunkedBody(head.status == 200 ? stream_ : nullptr));
  } else if (head.has_transfer_encoding || !head.content_length) {
    // Neither chunked nor a length: the body ends when the server closes (RFC 9112 6.3).
    FERRY_ASSIGN_OR_RETURN(body, ReadBodyToEof());
    reusable = false;
  } else {
    if (*head.content_length > kMaxBodyBytes) {
      return Status::Corruption("reply body from " + socket_path_ + " exceeds 64 MiB");
    }
    FERRY_ASSIGN_OR_RETURN(body, ReadExactly(static_cast<std::size_t>(*head.content_length)));
  }
  // Bytes past the reply were never asked for: the stream cannot be trusted for the next one.
  if (!in_.empty()) reusable = false;
  if (!reusable) Disconnect();
  return HttpResponse{head.status, std::move(body)};
}

Status UnixHttpClient::Send(const std::string& data) {
  std::size_t sent = 0;
  while (sent < data.size()) {
    ssize_t n = ::send(fd_, data.data() + sent, data.size() - sent, MSG_NOSIGNAL);
    if (n >= 0) {
      sent += static_cast<std::size_t>(n);
      continue;
    }
    if (errno == EINTR) continue;
    if (errno != EAGAIN && errno != EWOULDBLOCK) {
      return Status::Unavailable("cannot send to " + socket_path_ + ": " + Errno(errno));
    }
    FERRY_ASSIGN_OR_RETURN(bool ready, WaitFor(POLLOUT, timeouts_.read));
    if (!ready) {
      return Status::DeadlineExceeded(socket_path_ + " did not take the request within " +
                                      FormatTimeout(timeouts_.read));
    }
  }
  return Status::Ok();
}

Result<bool> UnixHttpClient::WaitFor(short events, milliseconds timeout) const {
  const auto deadline = Clock::now() + timeout;
  for (;;) {
    auto left = std::chrono::ceil<milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) return false;
    pollfd p{fd_, events, 0};
    int rc = ::poll(&p, 1, static_cast<int>(std::min<long long>(left, INT_MAX)));
    if (rc > 0) return true;  // ready, hung up or failed: the next send/recv says which
    if (rc < 0 && errno != EINTR) {
      return Status::Internal("poll on " + socket_path_ + " failed: " + Errno(errno));
    }
  }
}

Result<std::size_t> UnixHttpClient::Receive() {
  char buf[64 * 1024];
  for (;;) {
    ssize_t n = ::recv(fd_, buf, sizeof(buf), 0);
    if (n >= 0) {
      in_.append(buf, static_cast<std::size_t>(n));
      reply_bytes_ += static_cast<std::size_t>(n);
      return static_cast<std::size_t>(n);
    }
    // A reset means the server closed with our request unread: for us, the same as EOF.
    if (errno == ECONNRESET) return std::size_t{0};
    if (errno == EINTR) continue;
    if (errno != EAGAIN && errno != EWOULDBLOCK) {
      return Status::Unavailable("cannot read from " + socket_path_ + ": " + Errno(errno));
    }
    FERRY_ASSIGN_OR_RETURN(bool ready, WaitFor(POLLIN, timeouts_.read));
    if (!ready) {
      return Status::DeadlineExceeded("no reply from " + socket_path_ + " within " +
                                      FormatTimeout(timeouts_.read));
    }
  }
}

Status UnixHttpClient::ClosedEarly() const {
  if (reply_bytes_ == 0) {
    return Status::Unavailable(socket_path_ + " closed the connection without replying");
  }
  return Status::Unavailable(socket_path_ + " closed the connection in the middle of a reply");
}

Result<std::string> UnixHttpClient::ReadHead(std::size_t max_bytes) {
  return ReadUntil("\r\n\r\n", max_bytes, "reply headers from " + socket_path_ + " exceed 64 KiB");
}

Result<std::string> UnixHttpClient::ReadLine(std::size_t max_bytes) {
  return ReadUntil("\r\n", max_bytes,
                   "chunked reply from " + socket_path_ + " has a line over " +
                       std::to_string(max_bytes) + " bytes");
}

Result<std::string> UnixHttpClient::ReadUntil(std::string_view delimiter, std::size_t max_bytes,
                                              const std::string& too_long) {
  std::size_t scanned = 0;
  for (;;) {
    // The delimiter may straddle what was scanned and what just arrived.
    const std::size_t from = scanned < delimiter.size() ? 0 : scanned - (delimiter.size() - 1);
    std::size_t end = in_.find(delimiter, from);
    if (end != std::string::npos && end + delimiter.size() <= max_bytes) {
      std::string text = in_.substr(0, end);
      in_.erase(0, end + delimiter.size());
      return text;
    }
    if (end != std::string::npos || in_.size() >= max_bytes) {
      return Status::Corruption(too_long);
    }
    scanned = in_.size();
    FERRY_ASSIGN_OR_RETURN(std::size_t n, Receive());
    if (n == 0) return ClosedEarly();
  }
}

Result<std::string> UnixHttpClient::ReadExactly(std::size_t n) {
  while (in_.size() < n) {
    FERRY_ASSIGN_OR_RETURN(std::size_t got, Receive());
    if (got == 0) return ClosedEarly();
  }
  std::string out = in_.substr(0, n);
  in_.erase(0, n);
  return out;
}

Result<HttpResponse> UnixHttpClient::Stream(
    const std::string& path, const std::function<bool(std::string_view)>& on_data) {
  stream_ = &on_data;
  auto reply = Request("GET", path);
  stream_ = nullptr;
  Disconnect();
  return reply;
}

Result<std::string> UnixHttpClient::ReadChunkedBody(
    const std::function<bool(std::string_view)>* on_data) {
  auto malformed = [&](const std::string& what) {
    return Status::Corruption(socket_path_ + " sent a malformed chunked reply: " + what);
  };
  std::string body;
  for (;;) {
    FERRY_ASSIGN_OR_RETURN(std::string line, ReadLine(kMaxHeaderBytes));
    // chunk-size [; extensions], in hex
    std::size_t size = 0;
    std::size_t i = 0;
    for (; i < line.size() && HexValue(line[i]) >= 0; ++i) {
      size = size * 16 + static_cast<std::size_t>(HexValue(line[i]));
      if (size > kMaxBodyBytes) break;
    }
    if (size > kMaxBodyBytes || (!on_data && body.size() + size > kMaxBodyBytes)) {
      return Status::Corruption("reply body from " + socket_path_ + " exceeds 64 MiB");
    }
    if (i == 0 || (i < line.size() && line[i] != ';' && line[i] != ' ' && line[i] != '\t')) {
      return malformed("bad chunk size");
    }
    if (size == 0) break;
    FERRY_ASSIGN_OR_RETURN(std::string data, ReadExactly(size));
    if (on_data) {
      if (!(*on_data)(data)) return Status::Cancelled("stream from " + socket_path_ + " ended");
    } else {
      body += data;
    }
    FERRY_ASSIGN_OR_RETURN(std::string crlf, ReadExactly(2));
    if (crlf != "\r\n") return malformed("chunk data longer than its size");
  }
  // Trailer fields, ignored, then the blank line that ends the body; bounded like headers.
  std::size_t budget = kMaxHeaderBytes;
  for (;;) {
    FERRY_ASSIGN_OR_RETURN(std::string trailer, ReadLine(budget));
    if (trailer.empty()) return body;
    budget -= trailer.size() + 2;
  }
}

Result<std::string> UnixHttpClient::ReadBodyToEof() {
  for (;;) {
    if (in_.size() > kMaxBodyBytes) {
      return Status::Corruption("reply body from " + socket_path_ + " exceeds 64 MiB");
    }
    FERRY_ASSIGN_OR_RETURN(std::size_t n, Receive());
    if (n == 0) break;
  }
  std::string body = std::move(in_);
  in_.clear();
  return body;
}

}  // namespace ferry::cli
