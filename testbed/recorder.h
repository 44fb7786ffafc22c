// What a handler saw, recorded from the thread that calls it (a reader thread, a watcher) and
// awaited with a deadline by the test, so that no test sleeps and guesses. Header-only: the unit
// tests beside their code use it too. Thread-safe.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <mutex>
#include <vector>

namespace ferry::testbed {

template <typename T>
class Recorder {
 public:
  void Add(T item) {
    std::lock_guard<std::mutex> lock(mu_);
    items_.push_back(std::move(item));
    cv_.notify_all();
  }
  // Whether `n` items were recorded before `timeout` passed.
  bool WaitForCount(size_t n, std::chrono::milliseconds timeout = std::chrono::seconds(5)) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, timeout, [&] { return items_.size() >= n; });
  }
  std::vector<T> items() {
    std::lock_guard<std::mutex> lock(mu_);
    return items_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<T> items_;
};

}  // namespace ferry::testbed
