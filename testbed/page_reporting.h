// The test host's own free page reporting, which a timing must not be taken across. The test
// machines are guests themselves: their kernel reports freed memory to the hypervisor below in
// passes about 2 s apart (virtio-balloon free page reporting), and while a pass is reported
// every CPU of the machine stands still for 20-130 ms at a time (measured: a redis client's
// replies and ICMP echo stall at exactly the moments /sys/module/page_reporting/parameters/
// reported_kib grows; 4 GiB freed was reported over about 11 s). A test or benchmark that just
// freed gigabytes (a deleted VM or snapshot) waits here before it times the next one.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>

namespace ferry::testbed {

// The KiB this machine's kernel has reported so far, if it reports free pages (the module
// parameter exists); nullopt elsewhere.
std::optional<uint64_t> ReportedFreeKib();

// Waits until this machine's kernel reported less than `quiet_mib` in the last `window` (its
// idle passes report a few tens of MiB), or `limit` passed; at once where nothing is reported.
// True when it settled, false at the limit.
bool WaitForFreePageReportingToSettle(std::chrono::milliseconds window = std::chrono::seconds(3),
                                      uint64_t quiet_mib = 128,
                                      std::chrono::seconds limit = std::chrono::seconds(90));

}  // namespace ferry::testbed
