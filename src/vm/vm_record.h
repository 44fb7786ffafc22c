// What ferry knows about one VM, as persisted in the registry and shown by `vm show`.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/status.h"
#include "qemu/accelerator.h"
#include "registry/registry.h"
#include "vm/vm_spec.h"

namespace ferry::vm {

// creating -> booting -> running <-> paused; any live state -> stopping -> stopped;
// any live state -> failed when QEMU dies unexpectedly. stopped/failed -> booting on start.
// The transitions, drawn, and the only code that makes them: vm_state_machine.h.
enum class VmState { kCreating, kBooting, kRunning, kPaused, kStopping, kStopped, kFailed };

const char* VmStateName(VmState s);
Result<VmState> VmStateFromName(const std::string& name);
// States in which a QEMU process is expected to exist.
bool HasProcess(VmState s);

struct VmRecord {
  VmSpec spec;
  std::string id;
  VmState state = VmState::kCreating;
  // The accelerator in effect when the VM was created. Stored as AcceleratorName writes it; a
  // record without a name ferry knows reads as TCG (what such a VM ran under).
  qemu::Accelerator accelerator = qemu::Accelerator::kTcg;
  std::string mac;
  std::string ram_path;  // the file backing guest RAM
  // True when ram_path is this VM's own file (deleted when QEMU ends); false for a clone, which
  // maps its snapshot's RAM file privately (copy-on-write) and must never remove it.
  bool ram_owned = true;
  // The data disk QEMU writes (qcow2), "" for none, and the frozen images below it, nearest
  // first: each snapshot freezes the disk and the VM goes on in a new overlay.
  std::string disk_path;
  std::vector<std::string> disk_chain;
  std::string dir;  // the VM's directory (see VmPaths)
  // The owner pinned when the VM was created: the SHA-256 fingerprint of the key that signed its
  // policy, "" for a VM created without one. Only this owner can replace the policy.
  std::string owner;
  // Where the VM came from, as vm_origin.h writes it (OriginFromJson reads it).
  nlohmann::json origin = nlohmann::json::object();
  nlohmann::json timings = nlohmann::json::object();  // e.g. a clone's restore phases in ms
  pid_t pid = 0;
  uint64_t pid_start_time = 0;  // with pid, identifies the QEMU process across ferryd restarts
  bool guest_ready = false;
  int64_t created_at_ms = 0;
  int64_t started_at_ms = 0;  // last QEMU launch
  int64_t ready_at_ms = 0;    // guest reported ready after that launch
  std::string failure;        // why the VM is failed: one line
  std::string last_words;     // tail of QEMU's stderr when it died
  std::string stop_mode;      // "graceful" or "forced", for the last stop
  std::vector<std::string> qemu_argv;

  nlohmann::json ToJson() const;
  static Result<VmRecord> FromJson(const nlohmann::json& j);

  // A row of the registry's VM table (registry/table.h), stored under its VM's name.
  static constexpr std::string_view kKind = registry::kVmKind;
  static Result<VmRecord> FromJson(const std::string& name, const nlohmann::json& j);
};

}  // namespace ferry::vm
