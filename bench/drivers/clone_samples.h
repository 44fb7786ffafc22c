// What the two clone entries (clone_boot, metrics_overhead) share beyond their fixture
// (clone_fixture.h): the snapshot and template names they set up, and the keys of the samples
// both record, so that a figure means the same in each.
#pragma once

#include "bench/drivers/ferry_ops.h"
#include "bench/harness/runner.h"

namespace ferry::bench {

inline constexpr char kCloneSnapshot[] = "s";
inline constexpr char kCloneTemplate[] = "t";

// Command to running and CLI wall, of a plain clone and of a warm-pool clone.
inline constexpr char kCloneToRunning[] = "clone_to_running_ms";
inline constexpr char kCloneCli[] = "clone_cli_ms";
inline constexpr char kPoolToRunning[] = "pool_to_running_ms";
inline constexpr char kPoolCli[] = "pool_cli_ms";
// Where ferryd says each clone's time went: its identity reset, and what was outside the restore.
inline constexpr char kCloneIdentity[] = "clone_identity_ms";
inline constexpr char kCloneOutside[] = "clone_outside_restore_ms";
inline constexpr char kPoolIdentity[] = "pool_identity_ms";
inline constexpr char kPoolOutside[] = "pool_outside_restore_ms";

// The keys of the four samples above, of one kind of clone.
struct CloneSampleKeys {
  const char* to_running;
  const char* cli;
  const char* identity;
  const char* outside;
};
inline constexpr CloneSampleKeys kPlainCloneKeys{kCloneToRunning, kCloneCli, kCloneIdentity,
                                                 kCloneOutside};
inline constexpr CloneSampleKeys kPoolCloneKeys{kPoolToRunning, kPoolCli, kPoolIdentity,
                                                kPoolOutside};

// Records clone `c`'s command to running, CLI wall, identity reset and time outside the restore.
inline void RecordCloneSamples(const CloneRun& c, const CloneSampleKeys& keys, Measurements& m) {
  m[keys.to_running] = c.CommandToRunningMs();
  m[keys.cli] = c.cli_ms;
  m[keys.identity] = c.AfterRunningMs();
  m[keys.outside] = c.cli_ms - c.Timing("restore_total_ms");
}

}  // namespace ferry::bench
