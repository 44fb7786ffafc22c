// ferry ca init, and ferry host enroll: the fleet CA's verbs. They run locally, on the machine
// holding the CA directory, and never talk to ferryd.
#include <CLI/CLI.hpp>
#include <iostream>

#include "cli/context.h"
#include "crypto/fleet_ca.h"
#include "crypto/host_identity.h"

namespace ferry::cli {

void AddCaCommands(CLI::App& app, Context& ctx) {
  auto* ca = app.add_subcommand("ca", "the fleet CA that vouches for every host (local)");
  ca->require_subcommand(1);
  auto* cmd = ca->add_subcommand("init", "create the fleet CA key and certificate");
  auto dir = std::make_shared<std::string>();
  cmd->add_option("--dir", *dir, "directory for ca.key and ca.crt (created 0700)")->required();
  cmd->callback([=, &ctx] {
    Status st = crypto::InitFleetCa(*dir);
    if (!st.ok()) return ctx.Fail(st);
    std::cout << "fleet CA created in " << *dir << ": " << crypto::kCaKeyFile
              << " (secret; keep it off the hosts and back it up), " << crypto::kCaCertFile
              << " (every host gets a copy at enrollment)\n";
  });
}

void AddHostEnrollCommand(CLI::App& host, Context& ctx) {
  auto* cmd = host.add_subcommand(
      "enroll", "issue a host's TLS key and certificate from the fleet CA (local)");
  auto ca_dir = std::make_shared<std::string>();
  auto host_id = std::make_shared<std::string>();
  auto labels = std::make_shared<std::vector<std::string>>();
  auto out = std::make_shared<std::string>();
  cmd->add_option("--ca", *ca_dir, "the fleet CA directory (from 'ferry ca init')")->required();
  cmd->add_option("--host-id", *host_id, "the host's id, e.g. h2")->required();
  cmd->add_option("--label", *labels, "KEY=VALUE host label, e.g. zone=b (repeatable)");
  cmd->add_option("--out", *out, "directory for host.key, host.crt and ca.crt")->required();
  cmd->callback([=, &ctx] {
    crypto::HostIdentity who{*host_id, {}};
    for (const std::string& text : *labels) {
      auto label = crypto::ParseLabel(text);
      if (!label.ok()) return ctx.Fail(label.status());
      if (!who.labels.emplace(label->first, label->second).second) {
        return ctx.Fail(Status::InvalidArgument("label " + label->first +
                                                " is given twice; a host has one value per label"));
      }
    }
    Status st = crypto::EnrollHost(*ca_dir, who, *out);
    if (!st.ok()) return ctx.Fail(st);
    std::cout << "host " << who.host_id;
    if (!who.labels.empty()) std::cout << " (" << crypto::FormatLabels(who.labels) << ")";
    std::cout << " enrolled for 1 year: " << *out << "/{" << crypto::kHostKeyFile << ","
              << crypto::kHostCertFile << "," << crypto::kCaCertFile
              << "}; copy the directory to the host, keeping host.key mode 0600\n";
  });
}

}  // namespace ferry::cli
