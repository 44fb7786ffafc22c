// A VM's serial console as a bounded ring of two files: QEMU appends to console.log (opened
// O_APPEND); past a cap ferryd keeps its last `cap` bytes as console.log.1 and truncates
// console.log, so a guest that floods its console holds at most about twice the cap on the state
// disk. Bytes QEMU writes between that copy and the truncation are lost: a rotation is rare and
// the console is a diagnostic, not a record.
#pragma once

#include <cstdint>
#include <string>

#include "core/status.h"

namespace ferry::vm {

// Rotates `path` when it is larger than `cap_bytes`; a missing file is fine. Returns whether it
// rotated.
Result<bool> RotateConsoleIfOver(const std::string& path, uint64_t cap_bytes);
// The last `max_bytes` of the console across console.log.1 and console.log.
std::string ConsoleTail(const std::string& path, size_t max_bytes);

}  // namespace ferry::vm
