// Which machine type a QEMU runs ferry's VMs as, and which one a saved stream needs.
//
// ferryd starts every QEMU with `-machine q35`, the alias of its release's newest machine type
// ("pc-q35-7.2" in QEMU 7.2, "pc-q35-10.0" in 10.0), and QEMU refuses a stream of another
// machine type at its first bytes. A snapshot, a hold or a migration made on one QEMU release
// therefore restores only on the same release: these checks say so before anything is started,
// naming both sides, instead of the load failing inside QEMU.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "core/status.h"
#include "qemu/qemu_version.h"

namespace ferry::qemu {

// The machine type `q35` is an alias of in QEMU `v` ("pc-q35-X.Y"); "" when `v` is unknown.
std::string Q35MachineType(const QemuVersion& v);

// Enough of a stream's first bytes for its machine type: header, section type, length, name.
inline constexpr size_t kMachineTypePrefixBytes = 8 + 1 + 4 + 256;

// The machine type a migration stream's configuration names, read from its first bytes (at
// least kMachineTypePrefixBytes of them, or the whole stream). InvalidArgument when they are not
// the start of a stream ferry reads (migration_stream.h).
Result<std::string> StreamMachineType(std::span<const uint8_t> prefix);

// StreamMachineType of the file at `path` (a snapshot's or a hold's device state).
Result<std::string> FileMachineType(const std::string& path);

// OK when a stream of machine type `stream_machine` loads into a QEMU of version `host`; also
// when `host` is unknown (QEMU itself then decides). FailedPrecondition otherwise, naming both.
Status CheckMachineTypeLoads(std::string_view stream_machine, const QemuVersion& host);

}  // namespace ferry::qemu
