// Hex and base64 as the protocol and OpenSSH use them. Decoders are strict: any character
// outside the alphabet, a wrong length or misplaced padding is an error (nullopt), since what
// they decode comes from the host or from another program's output.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace ferry::guest {

// Lowercase hex, two digits per byte.
std::string HexEncode(std::string_view bytes);
// Accepts upper- and lowercase digits; the length must be even.
std::optional<std::string> HexDecode(std::string_view text);

// Standard base64 (RFC 4648 section 4, "+/"), with "=" padding unless pad is false (as in
// OpenSSH's "SHA256:..." fingerprints).
std::string Base64Encode(std::string_view bytes, bool pad = true);
// Standard base64 with padding: the length must be a multiple of 4; no whitespace. Unused bits
// of the last character must be zero, so each byte string has exactly one accepted encoding.
std::optional<std::string> Base64Decode(std::string_view text);

}  // namespace ferry::guest
