// Readiness: whether the guest's services answer, so the host knows when the VM is worth using
// (and when a template snapshot can be taken). The services come from the kernel command line,
// `ferry.services=redis:6379,web:80`, because the image, not the agent, knows what it runs.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace ferry::guest {

struct ServiceSpec {
  std::string name;  // "redis" gets a protocol-level check; any other name a TCP connect
  uint16_t port = 0;
};

struct ServiceList {
  std::vector<ServiceSpec> services;
  std::vector<std::string> errors;  // one message per entry that was ignored
};

// Reads ferry.services= from the kernel command line text (/proc/cmdline). The last occurrence
// wins, as for kernel parameters. No parameter means no services.
ServiceList ParseServices(std::string_view cmdline);

// True when the service answers on 127.0.0.1:port right now. Bounded to a few hundred ms.
bool ServiceAnswers(const ServiceSpec& service);

class Readiness {
 public:
  using Probe = std::function<bool(const ServiceSpec&)>;

  Readiness(std::vector<ServiceSpec> services, Probe probe);

  // Probes the services that have not answered yet. Returns true on the call that finds the
  // last one up (exactly once per boot); ready() stays true afterwards.
  bool Poll();
  bool ready() const { return ready_; }
  std::vector<std::string> ServiceNames() const;

 private:
  std::vector<ServiceSpec> services_;
  std::vector<bool> up_;
  Probe probe_;
  bool ready_ = false;
};

}  // namespace ferry::guest
