#include "core/guarded_thread.h"

#include <spdlog/spdlog.h>

#include <exception>
#include <system_error>

namespace ferry {

Status RunGuarded(const std::string& what, const std::function<void()>& body) {
  try {
    body();
    return Status::Ok();
  } catch (const std::exception& e) {
    return Status::Internal(what + ": " + e.what());
  } catch (...) {
    return Status::Internal(what + ": an unknown exception");
  }
}

Result<std::thread> StartGuardedThread(std::string what, std::function<void()> body,
                                       std::function<void(const Status&)> on_failure) {
  try {
    return std::thread(
        [what = std::move(what), body = std::move(body), on_failure = std::move(on_failure)] {
          Status failed = RunGuarded(what, body);
          if (failed.ok()) return;
          spdlog::error("{} failed and stopped: {}", what, failed.message());
          if (on_failure) (void)RunGuarded(what + " failure report", [&] { on_failure(failed); });
        });
  } catch (const std::system_error& e) {
    return Status::ResourceExhausted(what + ": cannot start a thread (" + e.what() +
                                     "); the host is out of threads or memory");
  }
}

}  // namespace ferry
