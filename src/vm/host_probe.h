// Reads what this host can give a new VM right now (memory, RAM directory space, free ports).
#pragma once

#include <cstdint>
#include <string>

#include "core/status.h"
#include "vm/vm_spec.h"

namespace ferry::vm {

// MemAvailable from /proc/meminfo, in bytes.
Result<uint64_t> MemAvailableBytes();
// True if a TCP listener could bind 127.0.0.1:port now.
bool TcpPortFree(uint16_t port);
// A loopback port the kernel considers free right now (0 if none could be had).
uint16_t EphemeralPort();
HostCapacity ProbeCapacity(const std::string& ram_dir);

}  // namespace ferry::vm
