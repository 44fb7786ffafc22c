#include "core/untrusted_json.h"

#include <cstdio>

namespace ferry {

namespace {

constexpr size_t kExcerptBytes = 60;

std::string Prefixed(std::string_view source, const std::string& what) {
  if (source.empty()) return what;
  return std::string(source) + ": " + what;
}

}  // namespace

std::string PrintableExcerpt(std::string_view text, size_t max_bytes) {
  std::string out;
  for (size_t i = 0; i < text.size() && i < max_bytes; ++i) {
    unsigned char c = static_cast<unsigned char>(text[i]);
    if (c >= 0x20 && c < 0x7f) {
      out.push_back(static_cast<char>(c));
    } else {
      char hex[5];
      std::snprintf(hex, sizeof hex, "\\x%02x", c);
      out += hex;
    }
  }
  if (text.size() > max_bytes) out += "...";
  return out;
}

Status CheckJsonDepth(std::string_view text, int max_depth) {
  int depth = 0;
  bool in_string = false;
  bool escaped = false;
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (in_string) {
      if (escaped) {
        escaped = false;
      } else if (c == '\\') {
        escaped = true;
      } else if (c == '"') {
        in_string = false;
      }
      continue;
    }
    switch (c) {
      case '"':
        in_string = true;
        break;
      case '[':
      case '{':
        if (++depth > max_depth) {
          return Status::Corruption("JSON nested deeper than " + std::to_string(max_depth) +
                                    " levels (at byte " + std::to_string(i) + ")");
        }
        break;
      case ']':
      case '}':
        // Unbalanced closers are a syntax error the parser reports; never go below zero here.
        if (depth > 0) --depth;
        break;
      default:
        break;
    }
  }
  return Status::Ok();
}

Result<nlohmann::json> ParseUntrustedJson(std::string_view text, std::string_view source,
                                          JsonLimits limits) {
  if (text.size() > limits.max_bytes) {
    return Status::Corruption(Prefixed(source, "JSON text of " + std::to_string(text.size()) +
                                                   " bytes, more than the limit of " +
                                                   std::to_string(limits.max_bytes)));
  }
  Status depth = CheckJsonDepth(text, limits.max_depth);
  if (!depth.ok()) return Status::Corruption(Prefixed(source, depth.message()));
  nlohmann::json value;
  try {
    value = nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    // nlohmann's message looks like "[json.exception.parse_error.101] parse error at line 1, ...":
    // keep the part after the bracketed id. It quotes the bytes it choked on, so escape it too.
    std::string_view reason = e.what();
    size_t bracket = reason.find("] ");
    if (bracket != std::string_view::npos) reason.remove_prefix(bracket + 2);
    return Status::Corruption(Prefixed(source, "not valid JSON (" + PrintableExcerpt(reason, 300) +
                                                   ") in " + std::to_string(text.size()) +
                                                   " bytes starting '" +
                                                   PrintableExcerpt(text, kExcerptBytes) + "'"));
  }
  return value;
}

}  // namespace ferry
