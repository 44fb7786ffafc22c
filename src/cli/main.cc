// ferry: the command line. Wiring only; each verb lives in its own cmd_*.cc.
#include <CLI/CLI.hpp>
#include <cstdlib>

#include "cli/context.h"
#include "cli/manual.h"

int main(int argc, char** argv) {
  CLI::App app{"ferry: snapshot, clone and migrate live QEMU VMs", "ferry"};
  app.require_subcommand(1);
  ferry::cli::Context ctx;
  const char* env = std::getenv("FERRY_SOCKET");
  ctx.socket = env && *env ? env : "/var/lib/ferry/ferryd.sock";
  app.add_option("--socket", ctx.socket, "ferryd's API socket (or FERRY_SOCKET)")
      ->capture_default_str();
  ferry::cli::AddVmCommands(app, ctx);
  ferry::cli::AddPeerCommands(app, ctx);
  ferry::cli::AddMigrateCommands(app, ctx);
  ferry::cli::AddOperationCommands(app, ctx);
  ferry::cli::AddHostCommands(app, ctx);
  ferry::cli::AddSnapshotCommands(app, ctx);
  ferry::cli::AddTemplateCommands(app, ctx);
  ferry::cli::AddHoldCommands(app, ctx);
  ferry::cli::AddCaCommands(app, ctx);
  ferry::cli::AddOwnerCommands(app, ctx);
  ferry::cli::AddPolicyCommands(app, ctx);
  ferry::cli::AddEventCommands(app, ctx);
  // The man page and bash completion the package installs (cli/self_description.h).
  ferry::cli::AddSelfDescriptionFlags(app, ferry::cli::FerryManual());
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  return ctx.exit_code;
}
