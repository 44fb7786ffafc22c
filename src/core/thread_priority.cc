#include "core/thread_priority.h"

#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>

namespace ferry {
namespace {

id_t ThisThread() { return static_cast<id_t>(::syscall(SYS_gettid)); }

}  // namespace

ThreadPriorityBoost::ThreadPriorityBoost(int nice) {
  errno = 0;
  const int before = ::getpriority(PRIO_PROCESS, ThisThread());
  if (before == -1 && errno != 0) return;
  before_ = before;
  raised_ = nice < before && ::setpriority(PRIO_PROCESS, ThisThread(), nice) == 0;
}

ThreadPriorityBoost::~ThreadPriorityBoost() {
  if (raised_) (void)::setpriority(PRIO_PROCESS, ThisThread(), before_);
}

void LowerThisThreadPriority(int nice) { (void)::setpriority(PRIO_PROCESS, ThisThread(), nice); }

}  // namespace ferry
