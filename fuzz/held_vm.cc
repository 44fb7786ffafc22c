// Fuzzes what a hold keeps of its VM (hold/held_vm.h HeldVm::Parse): text from a hold's manifest,
// read again at every restore and, once holds travel, from a peer. A VM that reads back must
// write the same text again.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "hold/held_vm.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  auto held = ferry::hold::HeldVm::Parse(text, "fuzz");
  if (!held.ok()) return 0;
  auto again = ferry::hold::HeldVm::Parse(held->ToText(), "fuzz, written again");
  if (!again.ok() || again->ToText() != held->ToText()) {
    std::fprintf(stderr, "held_vm: an accepted VM does not read back the same\n");
    std::abort();
  }
  return 0;
}
