#include "cli/http_reply_head.h"

#include <cstdint>

namespace ferry::cli {
namespace {

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

bool IsDigit(char c) { return c >= '0' && c <= '9'; }

}  // namespace

Result<HttpReplyHead> ParseHttpReplyHead(std::string_view head, const std::string& peer) {
  auto malformed = [&](const std::string& what) {
    return Status::Corruption(peer + " sent a malformed HTTP reply: " + what);
  };
  std::size_t eol = head.find("\r\n");
  std::string_view line = head.substr(0, eol);
  // "HTTP/1.x NNN[ reason]"
  if (line.size() < 12 || line.substr(0, 7) != "HTTP/1." || !IsDigit(line[7]) || line[8] != ' ' ||
      line[9] < '1' || line[9] > '5' || !IsDigit(line[10]) || !IsDigit(line[11]) ||
      (line.size() > 12 && line[12] != ' ')) {
    return malformed("bad status line");
  }
  HttpReplyHead out;
  out.http10 = line[7] == '0';
  out.status = (line[9] - '0') * 100 + (line[10] - '0') * 10 + (line[11] - '0');

  std::size_t pos = eol == std::string_view::npos ? head.size() : eol + 2;
  while (pos < head.size()) {
    std::size_t next = head.find("\r\n", pos);
    if (next == std::string_view::npos) next = head.size();
    line = head.substr(pos, next - pos);
    pos = next + 2;
    std::size_t colon = line.find(':');
    // A name with blanks also catches obsolete line folding, which HTTP/1.1 forbids.
    if (colon == 0 || colon == std::string_view::npos ||
        line.substr(0, colon).find_first_of(" \t") != std::string_view::npos) {
      return malformed("bad header line");
    }
    std::string name = Lower(line.substr(0, colon));
    std::string_view value = Trim(line.substr(colon + 1));
    if (name == "content-length") {
      if (value.empty()) return malformed("empty Content-Length");
      std::uint64_t length = 0;
      for (char c : value) {
        if (!IsDigit(c)) return malformed("bad Content-Length");
        auto digit = static_cast<std::uint64_t>(c - '0');
        length = length > (UINT64_MAX - digit) / 10 ? UINT64_MAX : length * 10 + digit;
      }
      if (out.content_length && *out.content_length != length) {
        return malformed("conflicting Content-Length headers");
      }
      out.content_length = length;
    } else if (name == "transfer-encoding") {
      out.has_transfer_encoding = true;
      std::size_t comma = value.rfind(',');
      std::string_view last = comma == std::string_view::npos ? value : value.substr(comma + 1);
      out.chunked = Lower(Trim(last)) == "chunked";
    } else if (name == "connection") {
      while (!value.empty()) {
        std::size_t comma = value.find(',');
        std::string token = Lower(Trim(value.substr(0, comma)));
        if (token == "close") out.connection_close = true;
        if (token == "keep-alive") out.connection_keep_alive = true;
        value = comma == std::string_view::npos ? std::string_view() : value.substr(comma + 1);
      }
    }
  }
  return out;
}

}  // namespace ferry::cli
