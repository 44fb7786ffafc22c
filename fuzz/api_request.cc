// Fuzzes the body of an API request as ferryd reads it (api/api_server.h ParseRequestBody), and
// the VM spec of `POST /v1/vms` in it (vm/vm_spec.h VmSpec::FromJson, then CheckFitsHost). The
// socket is root's, but a request must still be refused with an error, never crash ferryd; a
// spec that is accepted must read back the same from its own ToJson.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>

#include "api/api_server.h"
#include "vm/vm_spec.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto body = ferry::api::ParseRequestBody(text);
  if (!body.ok()) return 0;
  const nlohmann::json& spec_json = body->contains("spec") ? (*body)["spec"] : *body;
  auto spec = ferry::vm::VmSpec::FromJson(spec_json);
  if (!spec.ok()) return 0;
  auto again = ferry::vm::VmSpec::FromJson(spec->ToJson());
  if (!again.ok() || !(*again == *spec)) {
    std::fprintf(stderr, "api_request: an accepted spec does not read back from its ToJson\n");
    std::abort();
  }
  ferry::vm::HostCapacity host;
  host.mem_available_bytes = uint64_t{8} << 30;
  host.ram_dir_free_bytes = uint64_t{4} << 30;
  host.tcp_port_free = [](uint16_t port) { return port % 2 == 0; };
  host.bridge_usable = [](const std::string&) { return ferry::Status::Ok(); };
  (void)ferry::vm::CheckFitsHost(*spec, host);
  return 0;
}
