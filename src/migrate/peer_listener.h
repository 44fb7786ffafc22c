// PeerListener: the server side of peer links, ferryd's only TCP port (DESIGN.md "Security
// model"). It accepts connections, authenticates each one (TLS 1.3 with mutual certificates, then
// the accept frame, see peer_link.h) within a deadline, and hands every authenticated link to a
// handler.
//
// Threads: one accept thread, plus one thread per connection that runs its handshake and then
// the handler. A slow or silent client therefore never holds up other accepts; it is dropped
// when it sends nothing within the first-byte timeout, when its handshake deadline passes (however
// it trickles its bytes: the deadline is absolute), or at its first bad byte.
//
// Limits (PeerListenerOptions), so that neither a flood of connections nor a fleet host that opens
// link after link exhausts threads or descriptors:
//   - at most max_handshakes handshakes run at once, and at most max_handshakes_per_address from
//     one IP address, so one flooding address cannot lock the others out; connections beyond
//     either limit are closed at once;
//   - at most max_links authenticated links are open at once; a client beyond that completes TLS
//     and is then refused in the accept frame, so it reports why (see peer_link.h);
//   - a thread that cannot be created (std::system_error) refuses that one connection.
// Every refusal reaches the RejectHandler (or the log).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "core/status.h"
#include "migrate/peer_link.h"
#include "migrate/peer_tls.h"

namespace ferry::migrate {

struct PeerListenerOptions {
  // Time from accept() to an authenticated link; then the connection is dropped.
  std::chrono::milliseconds handshake_timeout{10'000};
  // Time from accept() to the client's first byte (its TLS ClientHello, sent at once by any real
  // client); then the connection is dropped without waiting out handshake_timeout.
  std::chrono::milliseconds first_byte_timeout{3'000};
  size_t max_handshakes = 64;
  size_t max_handshakes_per_address = 8;
  // Authenticated links open at once (handed out and not yet closed or destroyed).
  size_t max_links = 64;
  // Starts a connection's thread. Tests replace it to make thread creation fail; it may throw
  // std::system_error as std::thread's constructor does.
  std::function<std::thread(std::function<void()>)> start_thread = [](std::function<void()> body) {
    return std::thread(std::move(body));
  };
};

class PeerListener {
 public:
  using Options = PeerListenerOptions;

  // Runs on the connection's own thread with an authenticated link, after the accept frame was
  // sent. The handler may keep the link and return, or serve it until done.
  using LinkHandler = std::function<void(std::shared_ptr<PeerLink> link)>;
  // Runs when a connection is dropped before it was authenticated (on the connection's thread, or
  // on the accept thread when too many handshakes are running); `remote` is its address, `why`
  // says what went wrong. For logs and tests. Not called for connections Stop() aborts.
  using RejectHandler = std::function<void(const std::string& remote, const Status& why)>;

  // Binds and listens on `address` ("127.0.0.1:0", "[::]:7700", "0.0.0.0:7700"; port 0 picks a
  // free port, see port()) and starts accepting. `on_reject` may be null: rejections are then
  // logged.
  static Result<std::unique_ptr<PeerListener>> Start(const std::string& address,
                                                     std::shared_ptr<const PeerTlsContext> context,
                                                     LinkHandler on_link, Options options = {},
                                                     RejectHandler on_reject = nullptr);

  PeerListener(const PeerListener&) = delete;
  PeerListener& operator=(const PeerListener&) = delete;
  // Stop().
  ~PeerListener();

  // The bound port (the picked one when asked for port 0).
  uint16_t port() const { return port_; }
  // The bound address, "127.0.0.1:40123".
  const std::string& address() const { return address_; }

  // Closes the listening socket, aborts handshakes in progress, closes the links it handed out
  // that are still open (so handlers blocked on them return), and joins every thread. No handler
  // runs after it returns. Idempotent. REQUIRES: not called from a handler.
  void Stop();

 private:
  struct Connection {
    std::thread thread;
    std::string remote;
    std::string remote_host;       // the IP address alone: the key of the per-address limit
    int fd = -1;                   // guarded by mu_: the socket while its handshake runs, else -1
    std::weak_ptr<PeerLink> link;  // guarded by mu_: the link once authenticated
    std::atomic<bool> done{false};
  };

  PeerListener(int listen_fd, int wake_fd, std::string address, uint16_t port,
               std::shared_ptr<const PeerTlsContext> context, LinkHandler on_link, Options options,
               RejectHandler on_reject);

  void AcceptLoop();
  void Serve(Connection* connection);
  void Reject(const std::string& remote, const Status& why);
  // Empty when another authenticated link may open, else why not (sent to the client). Reserves
  // a link slot when it returns empty. REQUIRES: mu_ held.
  std::string ReserveLinkLocked();
  // Open links handed out, forgetting those that ended. REQUIRES: mu_ held.
  size_t OpenLinksLocked();
  // One handshake less for `c`'s address. REQUIRES: mu_ held.
  void EndHandshakeLocked(const Connection& c);
  // Joins the threads of finished connections. REQUIRES: called from the accept thread only.
  void ReapFinished();

  const int listen_fd_;
  const int wake_fd_;  // eventfd: written by Stop() to end the accept loop
  const std::string address_;
  const uint16_t port_;
  const std::shared_ptr<const PeerTlsContext> context_;
  const LinkHandler on_link_;
  const Options options_;
  const RejectHandler on_reject_;

  std::mutex stop_mu_;  // serializes Stop()
  std::atomic<bool> stopping_{false};

  std::mutex mu_;  // guards connections_ (the list itself and fd/link of each)
  std::list<Connection> connections_;
  size_t handshakes_running_ = 0;                        // guarded by mu_
  std::map<std::string, size_t> handshakes_by_address_;  // guarded by mu_; no zero entries
  std::vector<std::weak_ptr<PeerLink>> links_;  // guarded by mu_: links handed out, maybe ended
  size_t links_reserved_ = 0;  // guarded by mu_: handshakes admitted under max_links, not done

  std::thread accept_thread_;
};

}  // namespace ferry::migrate
