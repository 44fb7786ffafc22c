// Resetting a clone's identity from the host: what makes a clone its own machine, as ferryd asks
// ferry-guest for it (guest/protocol.h; the guest's side is guest/identity_reset.h).
//
// A plain clone gets everything at once as it resumes: reset_identity (RNG, clock, machine-id,
// hostname, MAC, SSH host key, DHCP lease), written before `cont` and answered after it. A warm-pool QEMU is primed instead: while it waits
// in the pool, it is resumed once, gets every part of a new identity that does not depend on
// the clone's name (under a placeholder hostname), and is paused again. The clone that takes
// it then only needs finish_identity: its hostname, a second RNG reseed and the clock. That
// moves the slow steps (DHCP, MAC, key) and the guest's first run in a new QEMU (cold TCG
// code, first page faults) out of the time a user waits for.
//
// Why a primed QEMU is as fresh as a plain clone: its MAC, machine-id and key were made for it
// alone, it never served (no port forward exists before it becomes a clone; the tap of a pool
// QEMU of a tap VM is on no bridge until it becomes a clone with its own address), and the RNG is reseeded again after the final resume, so a clone never
// shares RNG state with anything that ran before.
#pragma once

#include <chrono>
#include <nlohmann/json.hpp>
#include <string>

#include "core/status.h"
#include "qemu/guest_messages.h"
#include "vm/vm_runtime.h"

namespace ferry::snapshot {

// Covers reset_identity's slowest case (guest/protocol.h: about 5 s and the quick steps) with
// room for TCG.
inline constexpr std::chrono::milliseconds kGuestIdentityTimeout(30000);

// A VM name as a hostname label: RFC 1123 allows letters, digits and '-'.
std::string HostnameFor(const std::string& name);

// The part of a clone's identity made while it waited in the pool (see above).
struct PrimedIdentity {
  std::string mac;          // the guest NIC's MAC, also the clone's recorded MAC
  nlohmann::json steps_ms;  // reset_identity's steps, as the guest timed them
  double guest_ms = 0;      // the whole reset_identity as the guest timed it
  int64_t ms = 0;           // from `cont` to paused again, as ferryd timed it
};

// The outcome of resetting (or finishing) a clone's identity right after its resume.
struct IdentityOutcome {
  std::string mac;
  qemu::GuestIdentityChange reply;  // the guest's reply: identity, steps_ms, total_ms
};

// reset_identity: everything new, `hostname` included; with `ipv4` ("A.B.C.D/P", a clone on tap
// networking) the parent's static address replaced by it. The guest must be running.
Result<IdentityOutcome> ResetIdentity(vm::VmRuntime& rt, const std::string& hostname,
                                      const std::string& ipv4 = "");

// ResetIdentity in two halves, for a plain clone: the request is written while the restored
// guest is still paused, so it waits in QEMU's queue and the guest reads it as soon as it runs
// (the time from `cont` to the request's arrival is then the guest's alone). `time_unix_ns` is
// taken then; the guest's clock step sets it, and the finish of a clone is milliseconds later.
struct StartedIdentityReset {
  std::string mac;
  vm::VmRuntime::GuestRequest request;
};
Result<StartedIdentityReset> StartResetIdentity(vm::VmRuntime& rt, const std::string& hostname,
                                                const std::string& ipv4 = "");
Result<IdentityOutcome> AwaitResetIdentity(StartedIdentityReset started);

// finish_identity on a primed guest: hostname, RNG reseed, clock. The guest must be running.
// With `ipv4`, a pool QEMU of a VM on tap networking (primed with its parent's address, off the
// bridge) takes the clone's own address now.
Result<IdentityOutcome> FinishIdentity(vm::VmRuntime& rt, const PrimedIdentity& primed,
                                       const std::string& hostname, const std::string& ipv4 = "");

// Resumes a pool QEMU whose device state is loaded, resets its identity under `placeholder`
// and pauses it again. NotFound (the QEMU paused again, nothing changed in the guest) when
// the guest predates finish_identity (proto < 3): such a QEMU stays a plain preloaded one.
// On any other error the QEMU must be discarded: its state is unknown.
Result<PrimedIdentity> PrimePoolQemu(vm::VmRuntime& rt, const std::string& placeholder);

}  // namespace ferry::snapshot
