#include "migrate/nbd_turn.h"

namespace ferry::migrate {

void NbdTurn::RequestIn() {
  std::lock_guard<std::mutex> lock(mu_);
  owed_ = true;
}

void NbdTurn::AnswerOut() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!owed_) return;
    owed_ = false;
  }
  answered_.notify_all();
}

void NbdTurn::AwaitTurn(std::chrono::milliseconds max) {
  std::unique_lock<std::mutex> lock(mu_);
  answered_.wait_for(lock, max, [this] { return !owed_; });
}

}  // namespace ferry::migrate
