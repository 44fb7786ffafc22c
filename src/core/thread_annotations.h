// Clang's thread-safety analysis (-Wthread-safety, on in every clang build): which lock guards
// which member (FERRY_GUARDED_BY), which lock a function needs held (FERRY_REQUIRES), checked at
// compile time. libstdc++'s std::mutex carries no annotations, so the locks the analysis checks
// are ferry::Mutex, held through ferry::MutexLock. Under GCC the macros are empty.
#pragma once

#include <mutex>

#if defined(__clang__)
#define FERRY_THREAD_ANNOTATION(x) __attribute__((x))
#else
#define FERRY_THREAD_ANNOTATION(x)
#endif

#define FERRY_CAPABILITY(x) FERRY_THREAD_ANNOTATION(capability(x))
#define FERRY_SCOPED_CAPABILITY FERRY_THREAD_ANNOTATION(scoped_lockable)
#define FERRY_GUARDED_BY(x) FERRY_THREAD_ANNOTATION(guarded_by(x))
#define FERRY_REQUIRES(...) FERRY_THREAD_ANNOTATION(requires_capability(__VA_ARGS__))
#define FERRY_ACQUIRE(...) FERRY_THREAD_ANNOTATION(acquire_capability(__VA_ARGS__))
#define FERRY_RELEASE(...) FERRY_THREAD_ANNOTATION(release_capability(__VA_ARGS__))
// For code that runs before other threads can see the data (start-up) or that the analysis
// cannot follow (a condition variable's predicate); say why where it is used.
#define FERRY_NO_THREAD_SAFETY_ANALYSIS FERRY_THREAD_ANNOTATION(no_thread_safety_analysis)

namespace ferry {

// A std::mutex the analysis knows.
class FERRY_CAPABILITY("mutex") Mutex {
 public:
  void lock() FERRY_ACQUIRE() { mu_.lock(); }
  void unlock() FERRY_RELEASE() { mu_.unlock(); }

 private:
  friend class MutexLock;
  std::mutex mu_;
};

// Holds a Mutex for its scope; unique() is what a std::condition_variable waits with.
class FERRY_SCOPED_CAPABILITY MutexLock {
 public:
  explicit MutexLock(Mutex& mu) FERRY_ACQUIRE(mu) : lock_(mu.mu_) {}
  ~MutexLock() FERRY_RELEASE() {}
  MutexLock(const MutexLock&) = delete;
  MutexLock& operator=(const MutexLock&) = delete;
  std::unique_lock<std::mutex>& unique() { return lock_; }

 private:
  std::unique_lock<std::mutex> lock_;
};

}  // namespace ferry
