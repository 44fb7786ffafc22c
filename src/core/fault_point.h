// Fault points: named places where a test can make this process die exactly there, as a crash
// would, to prove that what was saved before that point is enough to recover from it. A test
// starts ferryd with FERRY_FAULT_POINT=NAME; when execution reaches FaultPoint("NAME") the
// process logs the point and kills itself with SIGKILL (no destructors, no flushing of buffers
// beyond the log line: the state is whatever was already on disk or in the kernel).
// FERRY_FAULT_POINT=NAME:slow instead makes each pass through the point take 100 ms longer: a
// step that is too quick to catch in the act (a cancel while sending) can then be caught.
// FERRY_FAULT_POINT=NAME:fail makes FaultPointFails("NAME") true: the write guarded there fails
// as if the disk had refused it, so a test can prove that such a failure is not only logged.
//
// Without the variable a fault point costs one cached comparison. Points are named
// "module.where" (e.g. "migrate.destination.before_resume") and listed where they are used
// (docs/migration.md, "Recovery").
#pragma once

namespace ferry {

void FaultPoint(const char* name);
// True when FERRY_FAULT_POINT is "NAME:fail" (then the caller fails its step); else false.
bool FaultPointFails(const char* name);

}  // namespace ferry
