// The one way ferryd parses JSON text it did not write: a guest's line, a QMP reply, a peer's
// message, an API request body. Besides syntax, it bounds the text's size and its nesting depth.
//
// Why the depth is checked before nlohmann sees the text: nlohmann parses without recursion, but
// copying, comparing and dump()ing a value recurse once per level, so a 1 MiB line of "[[[[..."
// (half a million levels) would parse fine and then overflow the stack wherever it is copied or
// logged. The pre-scan counts brackets outside strings in one pass and refuses the text before
// anything is built.
#pragma once

#include <cstddef>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "core/status.h"

namespace ferry {

struct JsonLimits {
  // Deep enough for every message ferry exchanges (the deepest, a peer's prepare with a VM spec
  // and policy, nests under 10), shallow enough that recursion over it is harmless.
  static constexpr int kDefaultMaxDepth = 64;
  static constexpr size_t kDefaultMaxBytes = size_t{1} << 20;

  size_t max_bytes = kDefaultMaxBytes;
  int max_depth = kDefaultMaxDepth;
};

// The deepest nesting of arrays and objects in `text`, counting brackets outside strings, or
// Corruption as soon as it passes `max_depth`. Does not check the syntax (the parser does that).
Status CheckJsonDepth(std::string_view text, int max_depth);

// Parses `text` as one JSON value within `limits`. Errors are Corruption and start with `source`
// (e.g. "guest channel of vm web-1"), then say what is wrong: too large, too deep, or the
// parser's reason with the start of the text, non-printable bytes escaped. Never throws.
Result<nlohmann::json> ParseUntrustedJson(std::string_view text, std::string_view source,
                                          JsonLimits limits = {});

// `text` cut at `max_bytes` and made safe for a log line or a terminal: printable ASCII as is,
// every other byte as \xNN, "..." when cut.
std::string PrintableExcerpt(std::string_view text, size_t max_bytes);

}  // namespace ferry
