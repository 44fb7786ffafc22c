// Long operations (create, stop, later snapshot and migrate) run in the background and are
// followed by clients through an id, a state, a phase and a progress figure.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/status.h"

namespace ferry {

enum class OperationState { kRunning, kSucceeded, kFailed };

class Operation;

// Told when an operation that an OperationLog started begins and ends (metrics, events). Called
// on the operation's own thread with no lock of the operation held; must be cheap.
class OperationObserver {
 public:
  virtual ~OperationObserver() = default;
  virtual void OperationStarted(Operation& op) = 0;
  // `op.ToJson()` says how it ended; `duration_ms` is its wall time.
  virtual void OperationFinished(Operation& op, int64_t duration_ms) = 0;
};

// The process's observer, set once at start-up before any operation starts (ferryd's wiring);
// null (none) by default.
void SetOperationObserver(OperationObserver* observer);

// Thread-safe: the worker updates it while API threads read it.
class Operation {
 public:
  friend class OperationLog;
  Operation(std::string id, std::string kind, std::string target);

  const std::string& id() const { return id_; }
  const std::string& kind() const { return kind_; }
  const std::string& target() const { return target_; }
  void SetPhase(const std::string& phase, int percent);
  void Succeed(nlohmann::json result = nlohmann::json::object());
  void Fail(const Status& error);
  // Blocks until the operation has ended or `timeout_ms` passed; returns whether it ended.
  bool WaitDone(int64_t timeout_ms);
  OperationState state();
  nlohmann::json ToJson();

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  const std::string id_, kind_, target_;
  OperationState state_ = OperationState::kRunning;
  std::string phase_ = "queued";
  int percent_ = 0;
  Status error_;
  nlohmann::json result_;
  int64_t started_at_ms_ = 0;
  int64_t finished_at_ms_ = 0;
  OperationObserver* observer_ = nullptr;  // set by OperationLog::Start, before it is shared
  void Finished(int64_t duration_ms);
};

// Keeps recent operations for lookup. Finished ones beyond the newest `kKeepFinished` are dropped.
class OperationLog {
 public:
  static constexpr size_t kKeepFinished = 256;
  std::shared_ptr<Operation> Start(const std::string& kind, const std::string& target);
  Result<std::shared_ptr<Operation>> Get(const std::string& id);
  std::vector<std::shared_ptr<Operation>> List();

 private:
  std::mutex mu_;
  std::vector<std::shared_ptr<Operation>> ops_;  // oldest first
};

int64_t NowUnixMs();

}  // namespace ferry
