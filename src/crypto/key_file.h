// Files that hold secrets: created exclusively with a tight mode, and checked for that mode
// before use.
#pragma once

#include <string>

#include "core/status.h"

namespace ferry::crypto {

// Writes a file that must not exist yet: the bytes go to a private temporary file that is
// then link(2)ed into place, so the target appears complete or not at all, and an existing
// file is never replaced (AlreadyExists, naming it).
Status WriteNewFile(const std::string& path, const std::string& contents, int mode);

// Refuses a private key file that group or others may read or write:
// "<path>: key file mode 0644 lets other users read it; chmod 600 it".
// A missing file is NotFound naming it.
Status CheckKeyFileMode(const std::string& path);

}  // namespace ferry::crypto
