#include "testbed/stall_watch.h"

#include <pthread.h>
#include <sched.h>

#include <algorithm>

namespace ferry::testbed {

namespace {
constexpr std::chrono::milliseconds kTick{1};
constexpr std::chrono::milliseconds kLate{5};
}  // namespace

MachineStallWatch::MachineStallWatch() {
  cpu_set_t online;
  CPU_ZERO(&online);
  if (sched_getaffinity(0, sizeof online, &online) != 0) CPU_SET(0, &online);
  for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu) {
    if (CPU_ISSET(cpu, &online)) threads_.emplace_back([this, cpu] { Run(cpu); });
  }
}

MachineStallWatch::~MachineStallWatch() {
  stop_ = true;
  for (std::thread& thread : threads_) thread.join();
}

void MachineStallWatch::Run(int cpu) {
  cpu_set_t only;
  CPU_ZERO(&only);
  CPU_SET(cpu, &only);
  (void)pthread_setaffinity_np(pthread_self(), sizeof only, &only);
  // Not allowed without CAP_SYS_NICE: then an ordinary thread, which a busy host may delay too.
  sched_param param{};
  param.sched_priority = 1;
  (void)pthread_setschedparam(pthread_self(), SCHED_FIFO, &param);
  while (!stop_) {
    const TimePoint due = std::chrono::steady_clock::now() + kTick;
    std::this_thread::sleep_until(due);
    const TimePoint woke = std::chrono::steady_clock::now();
    if (woke - due > kLate) {
      std::lock_guard<std::mutex> lock(mu_);
      stalls_.push_back({due, woke});
    }
  }
}

std::chrono::nanoseconds MachineStallWatch::StillDuring(TimePoint from, TimePoint to) const {
  std::vector<Stall> inside;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (const Stall& stall : stalls_) {
      const TimePoint a = std::max(from, stall.from);
      const TimePoint b = std::min(to, stall.to);
      if (b > a) inside.push_back({a, b});
    }
  }
  // The CPUs' stalls overlap: their union, not their sum.
  std::sort(inside.begin(), inside.end(),
            [](const Stall& x, const Stall& y) { return x.from < y.from; });
  std::chrono::nanoseconds still{0};
  TimePoint covered = from;
  for (const Stall& stall : inside) {
    const TimePoint a = std::max(covered, stall.from);
    if (stall.to > a) {
      still += stall.to - a;
      covered = stall.to;
    }
  }
  return still;
}

}  // namespace ferry::testbed
