#include "testbed/interrupt.h"

#include <signal.h>

#include <csignal>

namespace ferry::testbed {

namespace {
volatile std::sig_atomic_t interrupted = 0;
void OnSignal(int) { interrupted = 1; }
}  // namespace

void InstallInterruptHandlers() {
  struct sigaction sa {};
  sa.sa_handler = OnSignal;
  sigemptyset(&sa.sa_mask);
  for (int sig : {SIGINT, SIGTERM, SIGHUP}) ::sigaction(sig, &sa, nullptr);
  ::signal(SIGPIPE, SIG_IGN);
}

bool Interrupted() { return interrupted != 0; }

std::optional<ProcessExit> WaitExitUnlessInterrupted(Process& process,
                                                     std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() < 0) left = std::chrono::milliseconds(0);
    if (auto ex = process.WaitExit(std::min(left, kInterruptCheck))) return ex;
    if (Interrupted() || left.count() == 0) return std::nullopt;
  }
}

}  // namespace ferry::testbed
