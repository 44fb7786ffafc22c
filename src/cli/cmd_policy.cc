// ferry policy sign|show: an owner's signed policy for one VM (local; ferryd verifies it again
// wherever the VM goes).
#include <CLI/CLI.hpp>
#include <ctime>
#include <iostream>

#include "cli/context.h"
#include "core/files.h"
#include "crypto/owner_policy.h"

namespace ferry::cli {

namespace {

std::string FormatUnixTime(int64_t seconds) {
  std::time_t t = static_cast<std::time_t>(seconds);
  std::tm tm{};
  char buf[32];
  if (!gmtime_r(&t, &tm) || !std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S UTC", &tm)) {
    return std::to_string(seconds);
  }
  return buf;
}

std::string DescribeHold(const crypto::PolicyRules& r) {
  if (!r.hold_allowed) return "not allowed";
  if (r.hold_max_seconds == 0) return "allowed, no time limit";
  return "allowed, up to " + std::to_string(r.hold_max_seconds) + " s";
}

void AddPolicySign(CLI::App* policy, Context& ctx) {
  auto* cmd = policy->add_subcommand("sign", "write a policy for a VM, signed with an owner key");
  auto key_file = std::make_shared<std::string>();
  auto vm = std::make_shared<std::string>();
  auto hosts = std::make_shared<std::vector<std::string>>();
  auto labels = std::make_shared<std::vector<std::string>>();
  auto no_migrate = std::make_shared<bool>(false);
  auto no_hold = std::make_shared<bool>(false);
  auto hold_max = std::make_shared<int64_t>(0);
  auto no_clone = std::make_shared<bool>(false);
  auto out = std::make_shared<std::string>();
  cmd->add_option("--key", *key_file, "owner private key (from 'ferry owner keygen')")->required();
  cmd->add_option("--vm", *vm, "the VM this policy is for")->required();
  cmd->add_option("--allow-host", *hosts, "a host id the VM may migrate to (repeatable)");
  cmd->add_option("--allow-label", *labels,
                  "KEY=VALUE a destination must carry; all given must match (repeatable)");
  cmd->add_flag("--no-migrate", *no_migrate, "the VM may not be migrated at all");
  auto* nh = cmd->add_flag("--no-hold", *no_hold, "the VM may not be held");
  cmd->add_option("--hold-max", *hold_max, "longest hold allowed, in seconds (default: no limit)")
      ->check(CLI::PositiveNumber)
      ->excludes(nh);
  cmd->add_flag("--no-clone", *no_clone, "the VM may not be cloned");
  cmd->add_option("--out", *out, "output file (default: VM.policy)");
  cmd->callback([=, &ctx] {
    crypto::PolicyRules rules;
    rules.vm = *vm;
    rules.migratable = !*no_migrate;
    rules.allow_hosts = *hosts;
    for (const std::string& text : *labels) {
      auto label = crypto::ParseLabel(text);
      if (!label.ok()) return ctx.Fail(label.status());
      if (!rules.allow_labels.emplace(label->first, label->second).second) {
        return ctx.Fail(
            Status::InvalidArgument("--allow-label " + label->first +
                                    " is given twice; a destination has one value per label"));
      }
    }
    if (*no_migrate && (!hosts->empty() || !labels->empty())) {
      return ctx.Fail(
          Status::InvalidArgument("--no-migrate with --allow-host/--allow-label: choose one"));
    }
    rules.hold_allowed = !*no_hold;
    rules.hold_max_seconds = *hold_max;
    rules.clone = !*no_clone;
    rules.issued_at = static_cast<int64_t>(std::time(nullptr));
    auto key = crypto::OwnerKey::Load(*key_file);
    if (!key.ok()) return ctx.Fail(key.status());
    auto text = crypto::SignPolicy(rules, *key);
    if (!text.ok()) return ctx.Fail(text.status());
    std::string path = out->empty() ? *vm + ".policy" : *out;
    Status st = WriteFileAtomic(path, *text, 0644);
    if (!st.ok()) return ctx.Fail(st);
    std::cout
        << "policy for VM " << rules.vm << " signed by owner "
        << crypto::OwnerKeyFingerprint(key->public_key()).substr(0, crypto::kShortFingerprintChars)
        << ", written to " << path << ": migrate to " << crypto::DescribeAllowedDestinations(rules)
        << "; hold " << DescribeHold(rules) << "; clone "
        << (rules.clone ? "allowed" : "not allowed") << "\n";
  });
}

void AddPolicyShow(CLI::App* policy, Context& ctx) {
  auto* cmd = policy->add_subcommand("show", "verify a policy file and print it");
  auto file = std::make_shared<std::string>();
  auto as_json = std::make_shared<bool>(false);
  cmd->add_option("file", *file, "the policy file")->required();
  cmd->add_flag("--json", *as_json, "print JSON");
  cmd->callback([=, &ctx] {
    auto p = crypto::LoadPolicyFile(*file);
    if (!p.ok()) return ctx.Fail(p.status());
    std::string version = std::to_string(p->version_major) + "." + std::to_string(p->version_minor);
    if (*as_json) {
      return ctx.PrintJson({{"file", *file},
                            {"signature_valid", true},
                            {"version", version},
                            {"owner_fingerprint", p->owner_fingerprint},
                            {"policy", nlohmann::json::parse(p->text)["policy"]}});
    }
    std::cout << "file         " << *file << " (signature valid)\n"
              << "vm           " << p->vm << "\n"
              << "owner        " << p->ShortOwner() << " (sha256 " << p->owner_fingerprint << ")\n"
              << "version      " << version << "\n"
              << "issued       " << FormatUnixTime(p->issued_at) << "\n"
              << "migrate to   " << crypto::DescribeAllowedDestinations(*p) << "\n"
              << "hold         " << DescribeHold(*p) << "\n"
              << "clone        " << (p->clone ? "allowed" : "not allowed") << "\n";
  });
}

}  // namespace

void AddPolicyCommands(CLI::App& app, Context& ctx) {
  auto* policy = app.add_subcommand("policy", "owners' signed VM policies (local)");
  policy->require_subcommand(1);
  AddPolicySign(policy, ctx);
  AddPolicyShow(policy, ctx);
}

}  // namespace ferry::cli
