// The threads operations run on (a create, a stop, a snapshot, a migration...): each is joined
// when it is done (at the next Run) or when the service ends (JoinAll), never detached, so no
// operation outlives the service it uses.
//
// Thread-safety: Run and JoinAll may be called from any thread; `mu_` is a leaf lock.
#pragma once

#include <atomic>
#include <functional>
#include <list>
#include <memory>
#include <mutex>
#include <thread>

#include "core/operation.h"

namespace ferry::vm {

class BackgroundThreads {
 public:
  // Runs `work` on a new thread. If `work` throws, or no thread can be started, `op` (when given
  // and still running) fails with that error; ferryd itself carries on.
  void Run(std::function<void()> work, std::shared_ptr<Operation> op = nullptr);
  // Joins every thread started so far.
  void JoinAll();

 private:
  struct Worker {
    std::thread thread;
    std::shared_ptr<std::atomic<bool>> done;
  };
  std::mutex mu_;
  std::list<Worker> workers_;  // guarded by mu_
};

}  // namespace ferry::vm
