#include "core/operation.h"

#include <atomic>
#include <chrono>

#include "core/ids.h"

namespace ferry {

namespace {
std::atomic<OperationObserver*> g_observer{nullptr};

const char* StateName(OperationState s) {
  switch (s) {
    case OperationState::kRunning: return "running";
    case OperationState::kSucceeded: return "succeeded";
    case OperationState::kFailed: return "failed";
  }
  return "unknown";
}
}  // namespace

void SetOperationObserver(OperationObserver* observer) { g_observer.store(observer); }

int64_t NowUnixMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

Operation::Operation(std::string id, std::string kind, std::string target)
    : id_(std::move(id)), kind_(std::move(kind)), target_(std::move(target)),
      started_at_ms_(NowUnixMs()) {}

void Operation::SetPhase(const std::string& phase, int percent) {
  std::lock_guard<std::mutex> lock(mu_);
  phase_ = phase;
  percent_ = percent;
}

void Operation::Succeed(nlohmann::json result) {
  bool was_running;
  int64_t duration_ms;
  {
    std::lock_guard<std::mutex> lock(mu_);
    was_running = state_ == OperationState::kRunning;  // observers see one end
    state_ = OperationState::kSucceeded;
    phase_ = "done";
    percent_ = 100;
    result_ = std::move(result);
    finished_at_ms_ = NowUnixMs();
    duration_ms = finished_at_ms_ - started_at_ms_;
  }
  if (was_running) Finished(duration_ms);
  cv_.notify_all();
}

void Operation::Fail(const Status& error) {
  bool was_running;
  int64_t duration_ms;
  {
    std::lock_guard<std::mutex> lock(mu_);
    was_running = state_ == OperationState::kRunning;  // observers see one end
    state_ = OperationState::kFailed;
    error_ = error;
    finished_at_ms_ = NowUnixMs();
    duration_ms = finished_at_ms_ - started_at_ms_;
  }
  if (was_running) Finished(duration_ms);
  cv_.notify_all();
}

void Operation::Finished(int64_t duration_ms) {
  if (observer_) observer_->OperationFinished(*this, duration_ms);
}

bool Operation::WaitDone(int64_t timeout_ms) {
  std::unique_lock<std::mutex> lock(mu_);
  return cv_.wait_for(lock, std::chrono::milliseconds(timeout_ms),
                      [this] { return state_ != OperationState::kRunning; });
}

OperationState Operation::state() {
  std::lock_guard<std::mutex> lock(mu_);
  return state_;
}

nlohmann::json Operation::ToJson() {
  std::lock_guard<std::mutex> lock(mu_);
  nlohmann::json j = {{"id", id_},
                      {"kind", kind_},
                      {"target", target_},
                      {"state", StateName(state_)},
                      {"phase", phase_},
                      {"progress", percent_},
                      {"started_at_ms", started_at_ms_}};
  if (state_ != OperationState::kRunning) {
    j["finished_at_ms"] = finished_at_ms_;
    j["duration_ms"] = finished_at_ms_ - started_at_ms_;
  }
  if (state_ == OperationState::kFailed) {
    j["error"] = {{"code", error_.CodeName()}, {"message", error_.message()}};
  }
  if (state_ == OperationState::kSucceeded) j["result"] = result_;
  return j;
}

std::shared_ptr<Operation> OperationLog::Start(const std::string& kind, const std::string& target) {
  auto op = std::make_shared<Operation>("op-" + NewId(), kind, target);
  op->observer_ = g_observer.load();
  if (op->observer_) op->observer_->OperationStarted(*op);
  std::lock_guard<std::mutex> lock(mu_);
  ops_.push_back(op);
  size_t finished = 0;
  for (const auto& o : ops_) finished += o->state() != OperationState::kRunning;
  for (auto it = ops_.begin(); finished > kKeepFinished && it != ops_.end();) {
    if ((*it)->state() != OperationState::kRunning) {
      it = ops_.erase(it);
      --finished;
    } else {
      ++it;
    }
  }
  return op;
}

Result<std::shared_ptr<Operation>> OperationLog::Get(const std::string& id) {
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& o : ops_) {
    if (o->id() == id) return o;
  }
  return Status::NotFound("operation " + id + " is unknown (finished operations are kept only "
                          "until ferryd restarts)");
}

std::vector<std::shared_ptr<Operation>> OperationLog::List() {
  std::lock_guard<std::mutex> lock(mu_);
  return ops_;
}

}  // namespace ferry
