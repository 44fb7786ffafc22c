// Text from ferryd that may quote a guest (its hostname, its error messages, its serial console)
// made safe to print on a terminal. A guest is not trusted (docs/security.md): bytes such as
// ESC [ 2 J, an OSC title sequence or a bare carriage return, printed as they are, would let it
// clear the operator's screen, rewrite what an earlier line said, or worse on some terminals.
#pragma once

#include <string>
#include <string_view>

namespace ferry::cli {

// One value for a table cell or a "key value" line: valid UTF-8 printable text as is; control
// characters (C0, DEL, C1), bytes that are not valid UTF-8 and the backslash itself as \xNN
// (\\ for the backslash), so what is shown is unambiguous and never acts on the terminal.
std::string EscapeForTerminal(std::string_view text);

// A console log for reading on a terminal: ANSI escape sequences (CSI, OSC, and two-byte ESC
// sequences) are removed, "\r\n" becomes "\n", a lone "\r" is dropped, tabs and newlines are
// kept, and every other control character or invalid UTF-8 byte is shown as \xNN.
std::string FilterConsoleForTerminal(std::string_view text);

}  // namespace ferry::cli
