// Shared by the CLI's verbs: where ferryd is, and how a command reports its outcome.
#pragma once

#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "cli/api_client.h"
#include "cli/terminal_text.h"
#include "core/status.h"

namespace CLI {
class App;
}

namespace ferry::cli {

struct Context {
  std::string socket;
  int exit_code = 0;

  ApiClient Client() const { return ApiClient(socket); }
  // One clear line on stderr and a non-zero exit code.
  void Fail(const Status& st) {
    std::string line = st.message();
    for (size_t at; (at = line.find('\n')) != std::string::npos;) line.replace(at, 1, " | ");
    // Errors may quote a guest: shown escaped (cli/terminal_text.h).
    std::cerr << "ferry: " << EscapeForTerminal(line) << "\n";
    exit_code = 1;
  }
  // JSON escapes control characters itself; invalid UTF-8 from a guest is replaced.
  // ASCII only: guest-reported strings may hold C1 controls (U+0080..U+009F, e.g. U+009B, an
  // 8-bit CSI) that JSON leaves unescaped but a terminal obeys; \u-escaped they are inert.
  void PrintJson(const nlohmann::json& j) const {
    std::cout << j.dump(2, ' ', true, nlohmann::json::error_handler_t::replace) << "\n";
  }
};

void AddVmCommands(CLI::App& app, Context& ctx);
void AddPeerCommands(CLI::App& app, Context& ctx);
void AddMigrateCommands(CLI::App& app, Context& ctx);
void AddOperationCommands(CLI::App& app, Context& ctx);
void AddHostCommands(CLI::App& app, Context& ctx);
void AddSnapshotCommands(CLI::App& app, Context& ctx);
void AddTemplateCommands(CLI::App& app, Context& ctx);
void AddHoldCommands(CLI::App& app, Context& ctx);  // and "ferry store"
// Local verbs (no ferryd): fleet CA, owner keys, VM policies.
void AddCaCommands(CLI::App& app, Context& ctx);
void AddHostEnrollCommand(CLI::App& host, Context& ctx);  // adds "enroll" to "ferry host"
void AddOwnerCommands(CLI::App& app, Context& ctx);
void AddPolicyCommands(CLI::App& app, Context& ctx);
void AddEventCommands(CLI::App& app, Context& ctx);  // ferry events

}  // namespace ferry::cli
