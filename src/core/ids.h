// Identifiers: random ids for objects, and validation of user-chosen names.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "core/status.h"

namespace ferry {

// 16 lowercase hex characters from the kernel's CSPRNG.
std::string NewId();
// `bytes` as lowercase hex, two characters each: how ids, digests and keys are written here.
std::string HexOf(std::string_view bytes);
// `bytes` bytes from the kernel's CSPRNG as 2*bytes lowercase hex characters.
std::string RandomHex(size_t bytes);
// A random locally administered unicast MAC in QEMU's 52:54:00 prefix.
std::string NewMac();

// Names are what users type and what paths are built from: 1-63 characters of [a-z0-9-_.],
// starting with a letter or digit. `kind` ("vm", "snapshot", ...) is used in the error.
Status ValidateName(const std::string& kind, const std::string& name);

}  // namespace ferry
