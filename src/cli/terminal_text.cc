#include "cli/terminal_text.h"

#include <cstdint>
#include <cstdio>

namespace ferry::cli {

namespace {

constexpr unsigned char kEsc = 0x1b;
constexpr unsigned char kBel = 0x07;

void AppendHex(std::string& out, unsigned char c) {
  char hex[5];
  std::snprintf(hex, sizeof hex, "\\x%02x", c);
  out += hex;
}

// Length of the valid UTF-8 sequence at text[i] (2..4) that is printable (not a C1 control,
// U+0080..U+009F), or 0.
size_t PrintableUtf8At(std::string_view text, size_t i) {
  auto byte = [&](size_t k) { return static_cast<unsigned char>(text[k]); };
  unsigned char c = byte(i);
  size_t n;
  uint32_t cp;
  if (c >= 0xc2 && c <= 0xdf) {
    n = 2;
    cp = c & 0x1f;
  } else if (c >= 0xe0 && c <= 0xef) {
    n = 3;
    cp = c & 0x0f;
  } else if (c >= 0xf0 && c <= 0xf4) {
    n = 4;
    cp = c & 0x07;
  } else {
    return 0;
  }
  if (i + n > text.size()) return 0;
  for (size_t k = 1; k < n; ++k) {
    if ((byte(i + k) & 0xc0) != 0x80) return 0;
    cp = (cp << 6) | (byte(i + k) & 0x3f);
  }
  // Overlong forms, surrogates, beyond U+10FFFF, and C1 controls are not printed as is.
  if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10ffff))) return 0;
  if (cp >= 0xd800 && cp <= 0xdfff) return 0;
  if (cp >= 0x80 && cp <= 0x9f) return 0;
  return n;
}

// Appends text[i..] up to the next byte needing care, then that byte handled; returns the index
// after what was consumed. `keep_layout` keeps "\n" and "\t".
size_t AppendOne(std::string& out, std::string_view text, size_t i, bool keep_layout) {
  unsigned char c = static_cast<unsigned char>(text[i]);
  if (c >= 0x20 && c < 0x7f) {
    if (c == '\\' && !keep_layout) {
      out += "\\\\";
    } else {
      out.push_back(static_cast<char>(c));
    }
    return i + 1;
  }
  if (keep_layout && (c == '\n' || c == '\t')) {
    out.push_back(static_cast<char>(c));
    return i + 1;
  }
  if (c >= 0x80) {
    size_t n = PrintableUtf8At(text, i);
    if (n > 0) {
      out.append(text.substr(i, n));
      return i + n;
    }
  }
  AppendHex(out, c);
  return i + 1;
}

// Index just past the escape sequence starting at text[i] (an ESC).
size_t SkipEscapeSequence(std::string_view text, size_t i) {
  size_t j = i + 1;
  if (j >= text.size()) return j;
  unsigned char kind = static_cast<unsigned char>(text[j]);
  if (kind == '[') {  // CSI: parameters and intermediates, then a final byte 0x40..0x7e
    for (++j; j < text.size(); ++j) {
      unsigned char c = static_cast<unsigned char>(text[j]);
      if (c >= 0x40 && c <= 0x7e) return j + 1;
      if (c < 0x20 || c >= 0x7f) return j;  // malformed: stop before the odd byte
    }
    return j;
  }
  if (kind == ']' || kind == 'P' || kind == '_' || kind == '^' || kind == 'X') {
    // OSC / DCS / APC / PM / SOS: a string up to BEL or ESC backslash.
    for (++j; j < text.size(); ++j) {
      unsigned char c = static_cast<unsigned char>(text[j]);
      if (c == kBel) return j + 1;
      if (c == kEsc) return (j + 1 < text.size() && text[j + 1] == '\\') ? j + 2 : j;
    }
    return j;
  }
  // Two-byte sequences (ESC c resets the terminal, ESC 7/8 save and restore the cursor, ...),
  // with any intermediate bytes 0x20..0x2f before the final one.
  while (j < text.size() && static_cast<unsigned char>(text[j]) >= 0x20 &&
         static_cast<unsigned char>(text[j]) <= 0x2f) {
    ++j;
  }
  return j < text.size() ? j + 1 : j;
}

}  // namespace

std::string EscapeForTerminal(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size();) i = AppendOne(out, text, i, false);
  return out;
}

std::string FilterConsoleForTerminal(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size();) {
    unsigned char c = static_cast<unsigned char>(text[i]);
    if (c == kEsc) {
      i = SkipEscapeSequence(text, i);
    } else if (c == '\r') {
      ++i;  // "\r\n" ends a line as "\n" does; a lone "\r" would let later text overwrite it
    } else {
      i = AppendOne(out, text, i, true);
    }
  }
  return out;
}

}  // namespace ferry::cli
