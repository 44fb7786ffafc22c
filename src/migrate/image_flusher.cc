#include "migrate/image_flusher.h"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "core/guarded_thread.h"

namespace ferry::migrate {

std::unique_ptr<ImageFlusher> ImageFlusher::Start(const std::string& path,
                                                  std::chrono::milliseconds every) {
  // Read-only is enough: fdatasync writes back the file's pages whoever dirtied them.
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    spdlog::warn("cannot open {} to write it back during the migration: {}", path,
                 std::strerror(errno));
    return nullptr;
  }
  std::unique_ptr<ImageFlusher> flusher(new ImageFlusher(fd, every));
  ImageFlusher* f = flusher.get();
  auto thread = StartGuardedThread("write-back of " + path, [f] { f->Run(); });
  if (!thread.ok()) {
    spdlog::warn("cannot write back {} during the migration: {}", path, thread.status().message());
    return nullptr;  // the destructor closes the file; there is no thread to join
  }
  flusher->thread_ = std::move(*thread);
  return flusher;
}

ImageFlusher::~ImageFlusher() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
  ::close(fd_);
}

void ImageFlusher::Run() {
  std::unique_lock<std::mutex> lock(mu_);
  while (!wake_.wait_for(lock, every_, [this] { return stopping_; })) {
    lock.unlock();
    // Starts the write-back of every dirty page and does not wait for it: no journal commit,
    // no cache flush of the device, nothing QEMU's own writes would queue behind (fdatasync
    // here, tried first, held a guest write in the destination's QEMU for 95 ms). QEMU's flush
    // still decides what is durable.
    (void)::sync_file_range(fd_, 0, 0, SYNC_FILE_RANGE_WRITE);
    flushes_.fetch_add(1);
    lock.lock();
  }
}

}  // namespace ferry::migrate
