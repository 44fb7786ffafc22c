// The QMP commands ferry uses, as typed functions, and their replies parsed into types. QEMU runs
// a guest we do not trust and may be subverted by it, so its replies are read with checked
// accessors (core/json_fields.h): a reply of an unexpected shape fails that command with an
// error naming the command and the member, never ferryd.
//
// The functions run on anything that executes QMP commands (QmpExecutor): vm::VmRuntime, which
// adds "QMP is not connected", or a test's fake.
#pragma once

#include <chrono>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/status.h"
#include "qemu/qemu_version.h"

namespace ferry::qemu {

class QmpExecutor {
 public:
  virtual ~QmpExecutor() = default;
  // Runs `command` with `args`; the reply's "return" value, or the error.
  virtual Result<nlohmann::json> Qmp(const std::string& command, const nlohmann::json& args,
                                     std::chrono::milliseconds timeout) = 0;
};

inline constexpr std::chrono::milliseconds kQmpTimeout{10000};

// query-status.
struct QmpVmStatus {
  bool running = false;
  std::string status;  // QEMU's RunState: "running", "paused", "inmigrate", "postmigrate", ...
};

// query-migrate's "status" (MigrationStatus in QEMU's schema).
enum class MigrationState {
  kNone,  // no migration since QEMU started (QEMU omits "status")
  kSetup,
  kActive,
  kDevice,
  kPreSwitchover,
  kPostcopy,  // any postcopy-* state; ferry does not use postcopy
  kCancelling,
  kCancelled,
  kCompleted,
  kFailed,
  kOther,  // a state this ferry does not know (a newer QEMU)
};

// query-migrate.
struct MigrationInfo {
  MigrationState state = MigrationState::kNone;
  std::string status;      // QEMU's own word, for messages ("" when absent)
  std::string error_desc;  // set when failed
  // "ram" counters, when QEMU reports them.
  bool has_ram = false;
  uint64_t ram_total = 0;
  uint64_t ram_transferred = 0;
  uint64_t ram_remaining = 0;
  double ram_mbps = 0;
  uint64_t dirty_pages_rate = 0;
  // Once completed: how long the guest stood stopped, from QEMU's stop for the last pass to the
  // end of the stream (a pause before switchover included).
  int64_t downtime_ms = 0;
  nlohmann::json raw;  // the whole reply, for reports that show QEMU's numbers as they are

  // The migration is still going: setup, active, device, pre-switchover, cancelling, postcopy.
  bool InProgress() const;
};

Result<QmpVmStatus> ParseQueryStatus(const nlohmann::json& ret);
Result<MigrationInfo> ParseQueryMigrate(const nlohmann::json& ret);
// The MIGRATION event's data ({"status": "pre-switchover"}; sent with the "events" capability
// on): the state QEMU's migration has just entered.
Result<MigrationState> ParseMigrationEvent(const nlohmann::json& data);
// query-vm-generation-id: the GUID as QEMU prints it.
Result<std::string> ParseVmGenerationId(const nlohmann::json& ret);
// query-version: the running QEMU's release ("qemu": major, minor, micro), each 1 to 1000.
Result<QemuVersion> ParseQueryVersion(const nlohmann::json& ret);
// query-block: the node name of the image the guest device with id `device` writes (its active
// top: after a blockdev-snapshot, the overlay's node). NotFound when QEMU has no such device or
// no medium in it.
Result<std::string> ParseBlockNodeName(const nlohmann::json& ret, const std::string& device);
// query-named-block-nodes (flat): the names of all block nodes.
Result<std::vector<std::string>> ParseBlockNodeNames(const nlohmann::json& ret);

// One line from QEMU's monitor, as QmpClient reads it: a reply ({"return": ...} or {"error":
// {"class": C, "desc": D}} with an "id"), an event ({"event": E, "data": {...}}) or the
// greeting ({"QMP": {...}}). Bytes in, for fuzzing. A reply with an error gives its status.
struct QmpLine {
  enum class Kind { kReturn, kError, kEvent, kGreeting };
  Kind kind = Kind::kReturn;
  std::optional<uint64_t> id;
  nlohmann::json value;  // kReturn: "return"; kEvent: "data" ({} if none); kGreeting: "QMP"
  std::string event;     // kEvent
  std::string error_class, error_desc;  // kError
};
Result<QmpLine> ParseQmpLine(std::string_view line);
Result<QmpLine> ClassifyQmpMessage(const nlohmann::json& message);

// How long Cont waits for a just-completed migration to leave QEMU's finish-migrate state.
inline constexpr std::chrono::milliseconds kContAfterMigrationWait{2000};

// The commands.
Status Cont(QmpExecutor& qmp);
Status Stop(QmpExecutor& qmp);
Status Quit(QmpExecutor& qmp, std::chrono::milliseconds timeout = kQmpTimeout);
Result<QmpVmStatus> QueryStatus(QmpExecutor& qmp, std::chrono::milliseconds timeout = kQmpTimeout);
Result<MigrationInfo> QueryMigrate(QmpExecutor& qmp);
Result<std::string> QueryVmGenerationId(QmpExecutor& qmp);
Result<QemuVersion> QueryVersion(QmpExecutor& qmp);
Result<std::string> QueryBlockNodeName(QmpExecutor& qmp, const std::string& device);
Result<std::vector<std::string>> QueryBlockNodeNames(QmpExecutor& qmp);
Status Migrate(QmpExecutor& qmp, const std::string& uri);
Status MigrateIncoming(QmpExecutor& qmp, const std::string& uri);
// Gives a spare QEMU (started with -preconfig, launch_spec.h) its guest RAM and builds its
// machine: the file at `mem_path` (QEMU opens it) mapped copy-on-write as NUMA node 0's memory
// of `ram_kib` KiB (GuestRamKib), then x-exit-preconfig. QEMU then waits, as a clone's does, for
// migrate-incoming.
Status BindSpareRam(QmpExecutor& qmp, const std::string& mem_path, uint64_t ram_kib);
Status MigrateCancel(QmpExecutor& qmp);
// migrate_cancel, then query-migrate polled until the migration is no longer in progress, QEMU
// stops answering, or `timeout` passes. Returns the cancel's own failure; a migration still
// winding down at the timeout is not reported (callers go on to restore the guest either way).
Status MigrateCancelAndWait(QmpExecutor& qmp, std::chrono::milliseconds timeout);
// migrate-continue: ends the pause-before-switchover (the guest is stopped, the last pass and the
// device state not yet sent).
Status MigrateContinueFromPreSwitchover(QmpExecutor& qmp);
Status SetMigrationCapability(QmpExecutor& qmp, const std::string& capability, bool on);
// Several capabilities in one migrate-set-capabilities, in the order given.
Status SetMigrationCapabilities(QmpExecutor& qmp,
                                const std::vector<std::pair<std::string, bool>>& capabilities);
// migrate-set-parameters: the pause QEMU aims at when it stops the guest for the last pass
// (downtime-limit), and its bandwidth cap in bytes/s (max-bandwidth).
struct MigrationParameters {
  int64_t downtime_limit_ms = 0;
  int64_t max_bandwidth_bytes_per_s = 0;
};
Status SetMigrationParameters(QmpExecutor& qmp, const MigrationParameters& parameters);

// human-monitor-command: runs one HMP command line; returns what the monitor printed, which is
// how HMP reports a failure ("" for success for commands such as hostfwd_add).
Result<std::string> HumanMonitorCommand(QmpExecutor& qmp, const std::string& command_line);

// The block commands of a disk freeze (snapshot/disk_freeze.cc).
// blockdev-add: a qcow2 node `node_name` over the file node `node_name`-file on /dev/fdset/ID
// (add-fd), with no backing of its own.
Status BlockdevAddQcow2(QmpExecutor& qmp, const std::string& node_name, int64_t fdset_id);
// blockdev-del of both nodes BlockdevAddQcow2 made.
Status BlockdevDelQcow2(QmpExecutor& qmp, const std::string& node_name);
// blockdev-snapshot: `overlay` becomes the active top, with `node` beneath it.
Status BlockdevSnapshot(QmpExecutor& qmp, const std::string& node, const std::string& overlay);
Status BlockdevDel(QmpExecutor& qmp, const std::string& node_name);
// remove-fd: drops the fd set ID (add-fd).
Status RemoveFdSet(QmpExecutor& qmp, int64_t fdset_id);

}  // namespace ferry::qemu
