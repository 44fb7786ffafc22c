// SocketRelay: carries a byte stream both ways between two sockets with splice(2), through a
// pipe per direction, so that the bytes never enter ferryd's memory. The destination of a
// storage migration uses it between the disk link's TCP connection (handed over after the
// agents' TLS, its bytes now QEMU's own TLS, nbd_tls.h) and its QEMU's NBD server, which only
// listens on the UNIX socket ferryd gave it and so cannot take the connection itself.
//
// The relay ends when both directions have ended: a socket's peer closed it (the other socket's
// write side is then shut), or Stop(). A failure in one direction ends both: NBD cannot resume a
// half-open connection.
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "core/status.h"
#include "core/unique_fd.h"
#include "migrate/nbd_turn.h"

namespace ferry::migrate {

class SocketRelay {
 public:
  // Starts relaying between `remote` (the connection from the other host) and `local` (QEMU's
  // NBD server), both connected stream sockets. `what` names the relay in errors ("disk of
  // migration m-1"). With a `turn`, bytes handed to `local` are a request and bytes read from it
  // an answer (nbd_turn.h).
  static Result<std::unique_ptr<SocketRelay>> Start(UniqueFd remote, UniqueFd local,
                                                    std::string what,
                                                    std::shared_ptr<NbdTurn> turn = nullptr);
  SocketRelay(const SocketRelay&) = delete;
  SocketRelay& operator=(const SocketRelay&) = delete;
  // Stop(), then waits for both directions.
  ~SocketRelay();

  // Waits until both directions ended. Ok when they ended by their sockets' close; otherwise the
  // first failure.
  Status Wait();
  // Ends both directions now: shuts both sockets down. Idempotent.
  void Stop();

 private:
  SocketRelay(UniqueFd remote, UniqueFd local, std::string what, std::shared_ptr<NbdTurn> turn);
  // Moves bytes from `from` to `to` until `from` ends; `inward`: towards QEMU.
  void Carry(int from, int to, bool inward);
  // Records the first failure and ends both directions.
  void Fail(const Status& why);

  UniqueFd remote_;
  UniqueFd local_;
  const std::string what_;
  const std::shared_ptr<NbdTurn> turn_;  // may be null
  std::atomic<bool> stopping_{false};
  std::mutex mu_;
  Status first_failure_;  // guarded by mu_
  std::thread in_;        // remote -> local
  std::thread out_;       // local -> remote
};

}  // namespace ferry::migrate
