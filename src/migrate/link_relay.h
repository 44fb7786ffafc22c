// LinkRelay: carries a byte stream both ways between a local stream socket and a PeerLink, as a
// storage migration's NBD traffic travels between the source's QEMU (its NBD client) and the
// destination's (its NBD server): each direction is the link's data frames, ended by a
// stream-end frame. A link of its own, beside the migration's control link, so that a guest
// write waiting for its NBD round trip never queues behind a megabyte of memory stream.
//
// The relay ends when both directions have ended: the socket's peer closed it (stream-end is
// sent), the link delivered stream-end (the socket's write side is shut), the link ended, or
// Stop(). A failure in one direction ends both: NBD cannot resume a half-open connection.
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "core/status.h"
#include "migrate/nbd_turn.h"
#include "migrate/peer_link.h"
#include "migrate/qemu_stream.h"

namespace ferry::migrate {

class LinkRelay {
 public:
  // Starts relaying between `socket` (connected, stream) and `link`. `what` names the relay in
  // errors ("disk of vm db"). With a `turn` (the destination's NBD server on `socket`), bytes
  // handed to the socket are a request and bytes read from it an answer (nbd_turn.h).
  static Result<std::unique_ptr<LinkRelay>> Start(StreamFd socket, std::shared_ptr<PeerLink> link,
                                                  std::string what,
                                                  std::shared_ptr<NbdTurn> turn = nullptr);
  LinkRelay(const LinkRelay&) = delete;
  LinkRelay& operator=(const LinkRelay&) = delete;
  // Stop(), then waits for both directions.
  ~LinkRelay();

  // Waits until both directions ended. Ok when they ended by stream-end / the socket's close;
  // otherwise the first failure.
  Status Wait();
  // Ends both directions now: closes the link and shuts the socket down. Idempotent.
  void Stop();
  bool running() const { return !ended_.load(); }

 private:
  LinkRelay(StreamFd socket, std::shared_ptr<PeerLink> link, std::string what,
            std::shared_ptr<NbdTurn> turn);
  void SocketToLink();
  void LinkToSocket();
  // Records the first failure and ends both directions.
  void Fail(const Status& why);

  StreamFd socket_;
  std::shared_ptr<PeerLink> link_;
  const std::string what_;
  const std::shared_ptr<NbdTurn> turn_;  // may be null
  std::atomic<bool> stopping_{false};
  std::atomic<bool> ended_{false};
  std::mutex mu_;
  Status first_failure_;  // guarded by mu_
  std::thread out_;       // socket -> link
  std::thread in_;        // link -> socket
};

}  // namespace ferry::migrate
