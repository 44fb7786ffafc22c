// The set-up and teardown the clone entries share (clone_boot and metrics_overhead in whole;
// snapshot_pause, hold, cold_boot and restore_migration the end): the snapshot every clone comes
// from, a template with a warm pool of one made from it, and an end that leaves nothing running.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "bench/drivers/ferry_ops.h"
#include "bench/harness/bench_ferryd.h"

namespace ferry::bench {

// How long a template's warm pool may take to fill.
inline constexpr std::chrono::milliseconds kWarmPoolTimeout(120000);

// Boots default VM `vm` (`memory_mib`, forwarding a host port to `guest_port`), runs `check` on
// it when given, snapshots it as `snapshot` at its ready point, as a template is, and deletes the
// VM: it would only compete for the CPU with what is timed. Returns `snapshot create --json`.
Result<nlohmann::json> SnapshotFreshVm(BenchFerryd& ferryd, const std::string& vm,
                                       const std::string& snapshot, uint64_t memory_mib,
                                       uint16_t guest_port,
                                       const std::function<Status(const BootedVm&)>& check = {});

// `ferry template create TMPL --from-snapshot SNAPSHOT`, `template pool TMPL --size 1`, and waits
// until the pool holds its clone. `made` is set once the template exists (RemoveTemplate's cue).
Status MakeWarmPool(BenchFerryd& ferryd, const std::string& tmpl, const std::string& snapshot,
                    bool& made);

// The names of a run's `count` clones: PREFIX<round>-1, PREFIX<round>-2, ...
std::vector<std::string> RunCloneNames(const std::string& prefix, int round, int count);

// Clones `names` of `snapshot` in one `ferry clone`, with `cleanup` to delete them, then redis
// PING on each until it answers (within `ping_timeout`).
Result<std::vector<CloneRun>> ClonesPinged(BenchFerryd& ferryd, VmsToDelete& cleanup,
                                           const std::string& snapshot,
                                           const std::vector<std::string>& names,
                                           uint16_t guest_port,
                                           std::chrono::milliseconds ping_timeout);

// A plain clone as a run times it: `ferry clone SNAPSHOT --name NAME`, with `cleanup` to delete
// it, then redis PING until it answers (within `ping_timeout`): a clone that does not serve is not
// worth timing.
Result<CloneRun> ClonePinged(BenchFerryd& ferryd, VmsToDelete& cleanup, const std::string& snapshot,
                             const std::string& name, uint16_t guest_port,
                             std::chrono::milliseconds ping_timeout);

// A warm-pool clone as a run times it: waits until template `tmpl`'s pool holds its QEMU, then
// `ferry vm create NAME --template TMPL`, with `cleanup` to delete it; refused unless the clone
// came from the pool; then redis PING until it answers (within `ping_timeout`).
Result<CloneRun> PoolClonePinged(BenchFerryd& ferryd, VmsToDelete& cleanup, const std::string& tmpl,
                                 const std::string& name, uint16_t guest_port,
                                 std::chrono::milliseconds ping_timeout);

// The entries' TearDown (the clone entries', cold_boot's, restore_migration's): empties and
// deletes template `tmpl` (none when ""), stops ferryd (deleting its VMs), then SIGKILLs whatever
// still uses one of `dirs` (a QEMU that outlived ferryd, a bare QEMU of the comparison side) and
// removes them. Never fails; even after Ctrl-C.
void StopAndSweep(std::unique_ptr<BenchFerryd>& ferryd, const std::string& tmpl,
                  const std::vector<std::optional<ScratchDir>*>& dirs);

}  // namespace ferry::bench
