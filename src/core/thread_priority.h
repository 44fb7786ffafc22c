// A thread on a migration's data path, run ahead of the guests' vCPUs while it lasts.
//
// A bare QEMU migrating over TCP moves its bytes in the kernel, whose network path runs before
// any user thread. ferry moves them through ferryd (the TLS link and the NBD relay): a user
// thread that, on a host whose CPUs the guests keep busy, waits its turn behind their vCPU
// threads at every hop, and a write-blocking disk copy or a switchover pays that wait on each
// round trip. Raising these threads' priority for the migration's length gives ferryd's path
// what the kernel's has. Linux's nice values are per thread; ferryd needs CAP_SYS_NICE (root)
// to raise one, and without it the thread just runs at its usual priority.
#pragma once

namespace ferry {

class ThreadPriorityBoost {
 public:
  // The nice value migration data-path threads run at (ferryd's default is 0).
  static constexpr int kDataPathNice = -10;

  // Raises the calling thread to `nice`; the destructor, on the same thread, puts it back.
  explicit ThreadPriorityBoost(int nice = kDataPathNice);
  ~ThreadPriorityBoost();
  ThreadPriorityBoost(const ThreadPriorityBoost&) = delete;
  ThreadPriorityBoost& operator=(const ThreadPriorityBoost&) = delete;

  bool raised() const { return raised_; }

 private:
  int before_ = 0;
  bool raised_ = false;
};

// Puts the calling thread behind others at `nice` (> 0) for the rest of its life; needs no
// privilege. For a thread that ends with its work, so nothing is put back.
void LowerThisThreadPriority(int nice);

}  // namespace ferry
