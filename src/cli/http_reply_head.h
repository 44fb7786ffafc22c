// The status line and header fields of an HTTP/1.x reply, reduced to what a client needs to read
// the body and to decide whether the connection can carry another request.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "core/status.h"

namespace ferry::cli {

struct HttpReplyHead {
  int status = 0;
  bool http10 = false;
  std::optional<std::uint64_t> content_length;  // saturates at UINT64_MAX
  bool has_transfer_encoding = false;
  bool chunked = false;  // the last transfer coding is "chunked" (RFC 9112 section 6.3)
  bool connection_close = false;
  bool connection_keep_alive = false;
};

// Parses `head`: the status line and header lines, each ended by CRLF except the last, without
// the blank line that ends them. Header names match case-insensitively. `peer` names the sender
// in errors (Corruption). Unknown headers are ignored.
Result<HttpReplyHead> ParseHttpReplyHead(std::string_view head, const std::string& peer);

}  // namespace ferry::cli
