// Loopback TCP ports for the ferryds, QEMUs and clients of a benchmark or an integration test.
#pragma once

#include <cstdint>

#include "core/status.h"

namespace ferry::testbed {

// A TCP port on 127.0.0.1 that was free a moment ago (the kernel's pick for a bind to port 0).
// Another process may take it before the caller binds it; good enough for a test bed.
Result<uint16_t> FreeLoopbackPort();

}  // namespace ferry::testbed
