// ImageFlusher: on the destination, writes the incoming disk's image back to storage every so
// often while the memory stream runs.
//
// At the switchover the source's QEMU, its guest stopped, flushes every block node, the disk
// copy's NBD client too: the destination's QEMU then fdatasyncs the image, and until it is done
// the source waits, which is downtime. The copy wrote the image through the page cache, and the
// guest's writes during the memory stream went on adding to it, so that fdatasync found 8-14 ms
// of writing to do under a redis write load (QEMU's trace events, issue 13; bare QEMU pays the
// same). Written back here beforehand, off the switchover's path, the flush finds only what the
// guest wrote since the last pass.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

namespace ferry::migrate {

inline constexpr std::chrono::milliseconds kImageFlushEvery{50};

class ImageFlusher {
 public:
  // Starts flushing `path` every `every`; nullptr when it cannot be opened or the thread cannot
  // start (the switchover is then only slower: logged, not an error).
  static std::unique_ptr<ImageFlusher> Start(const std::string& path,
                                             std::chrono::milliseconds every);
  ImageFlusher(const ImageFlusher&) = delete;
  ImageFlusher& operator=(const ImageFlusher&) = delete;
  // Stops and waits for a flush under way.
  ~ImageFlusher();

  // fdatasync calls made so far.
  int flushes() const { return flushes_.load(); }

 private:
  ImageFlusher(int fd, std::chrono::milliseconds every) : fd_(fd), every_(every) {}
  void Run();

  const int fd_;
  const std::chrono::milliseconds every_;
  std::atomic<int> flushes_{0};
  std::mutex mu_;
  std::condition_variable wake_;
  bool stopping_ = false;  // guarded by mu_
  std::thread thread_;
};

}  // namespace ferry::migrate
