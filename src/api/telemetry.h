// What ferryd reports about itself: it turns the VM service's and the operations' news into
// events (core/event_log.h) and Prometheus metrics (core/metrics.h), and reads the gauges that are
// cheaper to read at scrape time than to keep current (VMs by state, warm pools, the RAM
// directory). docs/operations.md lists every metric and event.
//
// Thread-safe. Installed once (ferryd's main): it must outlive the services that call it.
#pragma once

#include <map>
#include <mutex>
#include <string>

#include "core/event_log.h"
#include "core/metrics.h"
#include "core/operation.h"
#include "vm/vm_observer.h"

namespace ferry::snapshot {
class TemplateService;
}
namespace ferry::vm {
class VmService;
}

namespace ferry::api {

class Telemetry : public OperationObserver, public vm::VmObserver {
 public:
  Telemetry(metrics::Registry& registry, EventLog& events);

  // Gauges read at scrape time. REQUIRES: the services outlive this object's registry's use.
  void Collect(vm::VmService& vms, snapshot::TemplateService& templates, const std::string& ram_dir);

  void OperationStarted(Operation& op) override;
  void OperationFinished(Operation& op, int64_t duration_ms) override;
  void VmPersisted(const vm::VmRecord& rec, bool deleted) override;
  void QemuExited(const vm::VmRecord& rec, const ProcessExit& exit,
                  const std::string& shutdown_reason) override;

 private:
  metrics::Registry& registry_;
  EventLog& events_;
  metrics::Family<metrics::Counter>& operations_;
  metrics::Family<metrics::Histogram>& operation_seconds_;
  metrics::Family<metrics::Histogram>& snapshot_pause_;
  metrics::Family<metrics::Histogram>& clone_restore_;
  metrics::Family<metrics::Histogram>& migration_bytes_;
  metrics::Family<metrics::Histogram>& migration_downtime_;
  metrics::Family<metrics::Histogram>& migration_total_;
  metrics::Family<metrics::Counter>& qemu_exits_;
  metrics::Family<metrics::Counter>& vm_transitions_;

  std::mutex mu_;
  std::map<std::string, std::string> last_state_;  // by VM name: the last state published
};

// Bytes of the files under `dir` (their allocated blocks: what they take of a tmpfs) and the
// bytes its filesystem has free; zeros when it cannot be read.
struct DirectoryBytes {
  double used = 0;
  double free = 0;
};
DirectoryBytes MeasureDirectory(const std::string& dir);

// QEMU's end as a metric label: "guest_poweroff", "stopped", "signal", "error".
std::string ExitCause(const vm::VmRecord& rec, const ProcessExit& exit,
                      const std::string& shutdown_reason);

}  // namespace ferry::api
