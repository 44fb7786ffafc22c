// Spare QEMUs: started ahead of need for plain clones (no template), before anyone knows which
// snapshot they will run. A spare is a QEMU of one shape (image, CPUs, memory) that has done
// its start-up (exec, ~50 shared libraries, its options, its sockets) and stopped before building
// its machine (-preconfig), with no guest RAM. A clone that takes one links its snapshot's RAM
// image into the spare's RAM slot and binds it (GiveSpareItsRam), then restores as any clone:
// QEMU's start is off the clone's critical path, as it is for a template's warm pool, but one
// spare serves every snapshot of its shape.
//
// Which shapes get a spare: those plain clones asked for since ferryd started (the first clone
// of a shape starts its QEMU as before, and leaves a spare for the next). One spare per shape,
// refilled by a keeper thread once no clone is in flight (a QEMU starting up would take the CPU
// from the clone a user waits for). Spares are not VMs: they run under STATE/vms/.spare-ID/ with
// their slot at RAM_DIR/spares/ID/; a restarted ferryd kills the ones an earlier one left (they
// hold no guest) and starts anew.
//
// Only clones on user networking without a disk use spares; the others start their QEMU as
// before, as does a clone when no spare is ready.
//
// Thread-safety: all public methods may be called from any thread.
#pragma once

#include <condition_variable>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "core/status.h"
#include "vm/launch_plan.h"
#include "vm/vm_runtime.h"
#include "vm/vm_service.h"
#include "vm/vm_spec.h"

namespace ferry::snapshot {

// The spare shape a clone of `spec` (whose snapshot has a disk: `has_disk`) can use, as a key;
// none when it cannot use a spare.
std::optional<std::string> SpareShapeOf(const vm::VmSpec& spec, bool has_disk);

// Gives the spare `q` (PrelaunchedQemu::ram_slot_dir set) the snapshot RAM image at `ram_image`
// and builds its machine; it then waits for the device state. The slot is emptied and removed
// whatever happens.
Status GiveSpareItsRam(vm::VmRuntime& rt, const std::string& slot_dir, int slot_fd,
                       uint64_t ram_kib, const std::string& ram_image);

class SpareQemus {
 public:
  // Kills spares an earlier ferryd left, then starts the keeper.
  explicit SpareQemus(vm::VmService& vms);
  ~SpareQemus();  // stops the keeper and kills the spares waiting
  SpareQemus(const SpareQemus&) = delete;
  SpareQemus& operator=(const SpareQemus&) = delete;

  // A running spare for a clone of `spec`, or none (then the clone starts its own QEMU). Either
  // way the shape is wanted from now on and its spare refilled.
  std::optional<vm::PrelaunchedQemu> Take(const vm::VmSpec& spec, bool has_disk);
  // Kills a spare and removes its directory and slot (one taken that no VM got).
  static void Discard(vm::PrelaunchedQemu& q);
  // The pids of the spares waiting now and of the one starting, if any (`ferry host show`:
  // QEMUs that belong to no VM yet).
  std::vector<pid_t> WaitingPids();

  // While one of these lives, no spare is started (a clone is running).
  class CloneInFlight {
   public:
    explicit CloneInFlight(SpareQemus* spares);
    ~CloneInFlight();
    CloneInFlight(const CloneInFlight&) = delete;
    CloneInFlight& operator=(const CloneInFlight&) = delete;

   private:
    SpareQemus* spares_;
  };

 private:
  struct Shape {
    vm::VmSpec spec;  // what its spares are started with
    std::optional<vm::PrelaunchedQemu> ready;
  };
  void Keep();
  void KillStale();
  Result<vm::PrelaunchedQemu> Start(const vm::VmSpec& spec);

  vm::VmService& vms_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  int clones_in_flight_ = 0;
  std::map<std::string, Shape> shapes_;
  pid_t starting_pid_ = 0;  // the spare the keeper is starting (it starts one at a time)
  std::thread keeper_;
};

}  // namespace ferry::snapshot
