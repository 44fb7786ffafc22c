#include "vm/background_threads.h"

#include <spdlog/spdlog.h>

#include "core/guarded_thread.h"

namespace ferry::vm {

void BackgroundThreads::Run(std::function<void()> work, std::shared_ptr<Operation> op) {
  std::lock_guard<std::mutex> lock(mu_);
  for (auto it = workers_.begin(); it != workers_.end();) {
    if (*it->done) {
      it->thread.join();
      it = workers_.erase(it);
    } else {
      ++it;
    }
  }
  auto done = std::make_shared<std::atomic<bool>>(false);
  // What went wrong ends the operation it was for, if it is still running; never ferryd.
  auto fail_op = [op](const Status& why) {
    if (op && op->state() == OperationState::kRunning) op->Fail(why);
  };
  const std::string what = op ? "operation " + op->id() : std::string("background work");
  auto thread = StartGuardedThread(
      what,
      [work = std::move(work), done] {
        // Marked done however the work ends, so the thread is joined and reaped.
        struct MarkDone {
          std::atomic<bool>& done;
          ~MarkDone() { done = true; }
        } mark{*done};
        work();
      },
      fail_op);
  if (!thread.ok()) {
    spdlog::error("{}", thread.status().message());
    fail_op(thread.status());
    return;
  }
  workers_.push_back({std::move(thread).value(), done});
}

void BackgroundThreads::JoinAll() {
  std::list<Worker> workers;
  {
    std::lock_guard<std::mutex> lock(mu_);
    workers.swap(workers_);
  }
  for (auto& w : workers) w.thread.join();
}

}  // namespace ferry::vm
