// ferry owner keygen: an owner's Ed25519 signing key for VM policies (local).
#include <CLI/CLI.hpp>
#include <iostream>

#include "cli/context.h"
#include "crypto/owner_key.h"

namespace ferry::cli {

void AddOwnerCommands(CLI::App& app, Context& ctx) {
  auto* owner = app.add_subcommand("owner", "VM owners' signing keys (local)");
  owner->require_subcommand(1);
  auto* cmd = owner->add_subcommand("keygen", "create an Ed25519 owner key and its .pub");
  auto out = std::make_shared<std::string>();
  cmd->add_option("--out", *out, "private key file (0600); the public key goes to FILE.pub")
      ->required();
  cmd->callback([=, &ctx] {
    Status st = crypto::OwnerKey::Generate(*out);
    if (!st.ok()) return ctx.Fail(st);
    auto key = crypto::OwnerKey::Load(*out);
    if (!key.ok()) return ctx.Fail(key.status());
    std::cout
        << "owner key written to " << *out << " (secret, mode 0600) and " << *out << ".pub; owner "
        << crypto::OwnerKeyFingerprint(key->public_key()).substr(0, crypto::kShortFingerprintChars)
        << "\n";
  });
}

}  // namespace ferry::cli
