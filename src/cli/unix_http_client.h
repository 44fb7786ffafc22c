// A minimal HTTP/1.1 client for ferryd's API socket (AF_UNIX), so the CLI does not load
// libcpp-httplib and, through it, libssl, brotli and zlib at start-up.
//
// One request at a time on one connection, kept open between requests. A request goes out as
//   METHOD PATH HTTP/1.1 / Host: localhost / Content-Length: N / [Content-Type: T] / BODY
// and the reply body is read by Content-Length, by chunked transfer coding, or to EOF when the
// reply has neither (the connection is then not reused). Replies with `Connection: close` close
// the connection after the body.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <string>
#include <string_view>

#include "core/status.h"

namespace ferry::cli {

struct HttpResponse {
  int status = 0;
  std::string body;
};

struct HttpTimeouts {
  // Bounds the wait for the listener to take the connection (its backlog may be full).
  std::chrono::milliseconds connect{5000};
  // Bounds each wait for the socket to become readable (or writable, while sending). The API
  // long-polls operations for up to 30 s, so this must stay well above that.
  std::chrono::milliseconds read{60000};
};

// Not thread-safe: one object per CLI run, used from one thread.
class UnixHttpClient {
 public:
  static constexpr std::size_t kMaxHeaderBytes = 64 * 1024;       // status line + headers
  static constexpr std::size_t kMaxBodyBytes = 64 * 1024 * 1024;  // decoded body

  explicit UnixHttpClient(std::string socket_path, HttpTimeouts timeouts = HttpTimeouts());
  ~UnixHttpClient();
  UnixHttpClient(const UnixHttpClient&) = delete;
  UnixHttpClient& operator=(const UnixHttpClient&) = delete;

  // Sends one request and reads its reply; any HTTP status is a successful Result. `path` is
  // escaped as httplib's client escapes it (space, +, ', comma, ;, non-ASCII bytes; here also
  // every control byte), so a name with those characters reaches the server's router as typed.
  // A kept-alive connection the server dropped is replaced once, transparently. Errors name the
  // socket: Unavailable (cannot connect, connection lost), DeadlineExceeded (a timeout elapsed),
  // Corruption (malformed or oversized reply).
  // REQUIRES: `method` and `content_type` hold no CR or LF.
  Result<HttpResponse> Request(const std::string& method, const std::string& path,
                               const std::string& body = "", const std::string& content_type = "");
  // GET `path` whose 200 reply is a long-lived chunked stream (/v1/events): each chunk's bytes go
  // to `on_data` as they arrive, none is kept, and no body limit applies. Returns when the stream
  // ends (the HttpResponse has an empty body) or `on_data` returns false (Cancelled). Any other
  // reply comes back whole, as from Request. The connection is closed afterwards.
  Result<HttpResponse> Stream(const std::string& path,
                              const std::function<bool(std::string_view)>& on_data);

 private:
  Status Connect();
  void Disconnect();
  bool IdleConnectionUsable() const;
  Result<HttpResponse> Exchange(const std::string& request, const std::string& method);
  Result<HttpResponse> ReadReply(const std::string& method);
  Status Send(const std::string& data);
  Result<bool> WaitFor(short events, std::chrono::milliseconds timeout) const;
  Result<std::size_t> Receive();
  Status ClosedEarly() const;
  Result<std::string> ReadHead(std::size_t max_bytes);
  Result<std::string> ReadLine(std::size_t max_bytes);
  // What comes before the next `delimiter` (which is consumed), at most `max_bytes` with it;
  // Corruption(too_long) beyond that.
  Result<std::string> ReadUntil(std::string_view delimiter, std::size_t max_bytes,
                                const std::string& too_long);
  Result<std::string> ReadExactly(std::size_t n);
  Result<std::string> ReadChunkedBody(const std::function<bool(std::string_view)>* on_data);
  Result<std::string> ReadBodyToEof();

  std::string socket_path_;
  HttpTimeouts timeouts_;
  int fd_ = -1;
  std::string in_;               // bytes received and not yet parsed
  std::size_t reply_bytes_ = 0;  // bytes received for the request in flight
  const std::function<bool(std::string_view)>* stream_ = nullptr;  // set during Stream
};

}  // namespace ferry::cli
