// NbdTurn: on the destination, the memory stream waits while the disk's NBD server owes the
// source an answer.
//
// The destination's QEMU loads the memory stream in its main loop and reads its NBD socket only
// once it has read all the stream it was given. At the switchover the source's QEMU, its guest
// stopped, waits for this export to answer a flush (vm_stop flushes every node), and then for the
// copy's last flush: every byte of stream ferryd hands QEMU while such a request is inside it is
// read first, and that wait is downtime. So the relay of the disk says when it hands QEMU a
// request and when QEMU answers, and the stream's pump holds its next write in between, at most
// kNbdTurnMaxWait (a reply never owed, e.g. after a disconnect, costs the stream no more).
#pragma once

#include <chrono>
#include <condition_variable>
#include <mutex>

namespace ferry::migrate {

inline constexpr std::chrono::milliseconds kNbdTurnMaxWait{20};

class NbdTurn {
 public:
  // The relay handed QEMU's NBD server bytes from the source (a request).
  void RequestIn();
  // QEMU's NBD server sent bytes back (an answer): the stream may go on.
  void AnswerOut();
  // The stream's pump: returns once no request waits in QEMU, or after `max`.
  void AwaitTurn(std::chrono::milliseconds max);

 private:
  std::mutex mu_;
  std::condition_variable answered_;
  bool owed_ = false;  // guarded by mu_
};

}  // namespace ferry::migrate
