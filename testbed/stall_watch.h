// When this machine itself stood still. The test machines are guests of a hypervisor, and some of
// its work (taking back the memory this machine reports free, testbed/page_reporting.h, above
// all) stops the CPUs here for 20-130 ms at a time. A timing of a guest of ours that spans such a
// moment is not the guest's: this tells how much of it was the machine's.
#pragma once

#include <atomic>
#include <chrono>
#include <mutex>
#include <thread>
#include <vector>

namespace ferry::testbed {

// One thread per CPU, pinned to it and real-time (SCHED_FIFO) where allowed so that no busy
// process here delays it, that sleeps 1 ms at a time and keeps each wake-up that came more than
// 5 ms late: that CPU stood still from the moment it should have woken to the moment it did.
// The hypervisor may stop one CPU while another runs on, and a guest's vCPU thread may be on
// either.
class MachineStallWatch {
 public:
  using TimePoint = std::chrono::steady_clock::time_point;
  MachineStallWatch();
  ~MachineStallWatch();
  MachineStallWatch(const MachineStallWatch&) = delete;
  MachineStallWatch& operator=(const MachineStallWatch&) = delete;

  // How much of [from, to] some CPU of this machine stood still (the union of their stalls).
  std::chrono::nanoseconds StillDuring(TimePoint from, TimePoint to) const;

 private:
  struct Stall {
    TimePoint from, to;
  };
  void Run(int cpu);
  std::atomic<bool> stop_{false};
  mutable std::mutex mu_;
  std::vector<Stall> stalls_;  // guarded by mu_
  std::vector<std::thread> threads_;
};

}  // namespace ferry::testbed
