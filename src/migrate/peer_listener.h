// PeerListener: the server side of peer links, ferryd's only TCP port (DESIGN.md "Security
// model"). It accepts connections, authenticates each one (TLS 1.3 with mutual certificates, then
// the accept frame, see peer_link.h) within a deadline, and hands every authenticated link to a
// handler.
//
// Threads: one accept thread, plus one thread per connection that runs its handshake and then
// the handler. A slow or silent client therefore never holds up other accepts; it is dropped
// when its handshake deadline passes, or at its first bad byte. At most
// PeerListenerOptions::max_handshakes handshakes run at once; connections beyond that are closed at
// once.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "core/status.h"
#include "migrate/peer_link.h"
#include "migrate/peer_tls.h"

namespace ferry::migrate {

struct PeerListenerOptions {
  // Time from accept() to an authenticated link; then the connection is dropped.
  std::chrono::milliseconds handshake_timeout{10'000};
  size_t max_handshakes = 64;
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
  size_t handshakes_running_ = 0;  // guarded by mu_

  std::thread accept_thread_;
};

}  // namespace ferry::migrate
