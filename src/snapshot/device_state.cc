#include "snapshot/device_state.h"

#include <thread>

namespace ferry::snapshot {

using nlohmann::json;
using std::chrono::milliseconds;

namespace {

Status IgnoreSharedRam(vm::VmRuntime& vm, bool on) {
  auto r = vm.Qmp("migrate-set-capabilities",
                  {{"capabilities", json::array({{{"capability", "x-ignore-shared"},
                                                  {"state", on}}})}});
  return r.status();
}

// Polls query-migrate until the migration completes or fails.
Status AwaitMigration(vm::VmRuntime& vm, const std::string& what, milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    auto info = vm.Qmp("query-migrate");
    if (!info.ok()) return info.status().WithContext(what);
    const std::string status = info->value("status", "");
    if (status == "completed") return Status::Ok();
    if (status == "failed" || status == "cancelled") {
      return Status::Unavailable(what + " failed in QEMU: " +
                                 info->value("error-desc", std::string("no reason given")));
    }
    std::this_thread::sleep_for(milliseconds(1));
  }
  return Status::DeadlineExceeded(what + " did not finish within " +
                                  std::to_string(timeout.count()) + " ms");
}

}  // namespace

std::string ShellQuote(const std::string& path) {
  std::string out = "'";
  for (char c : path) {
    if (c == '\'') {
      out += "'\\''";
    } else {
      out += c;
    }
  }
  return out + "'";
}

Status SaveDeviceState(vm::VmRuntime& vm, const std::string& path, milliseconds timeout) {
  FERRY_RETURN_IF_ERROR(IgnoreSharedRam(vm, true));
  auto started = vm.Qmp("migrate", {{"uri", "exec:cat > " + ShellQuote(path)}});
  Status st = started.ok() ? AwaitMigration(vm, "saving device state", timeout) : started.status();
  // Later migrations of this VM (to another host) must send its RAM.
  Status reset = IgnoreSharedRam(vm, false);
  FERRY_RETURN_IF_ERROR(st);
  return reset;
}

Status LoadDeviceState(vm::VmRuntime& vm, const std::string& path, milliseconds timeout) {
  FERRY_RETURN_IF_ERROR(IgnoreSharedRam(vm, true));
  auto started = vm.Qmp("migrate-incoming", {{"uri", "exec:cat " + ShellQuote(path)}});
  if (!started.ok()) return started.status().WithContext("restoring device state");
  return AwaitMigration(vm, "restoring device state", timeout);
}

}  // namespace ferry::snapshot
