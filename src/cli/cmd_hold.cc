// ferry hold VM | hold list|show|restore|send|delete, and ferry store show|verify|gc
#include <CLI/CLI.hpp>
#include <ctime>
#include <iostream>

#include "cli/context.h"
#include "cli/progress_line.h"
#include "cli/table.h"

namespace ferry::cli {

using nlohmann::json;

namespace {

std::string MiB(uint64_t bytes) { return std::to_string(bytes >> 20) + " MiB"; }

std::string When(int64_t unix_seconds) {
  if (unix_seconds == 0) return "never";
  std::time_t t = unix_seconds;
  char text[32];
  std::strftime(text, sizeof text, "%Y-%m-%d %H:%M:%S UTC", std::gmtime(&t));
  return text;
}

// ferry hold list
void AddHoldList(CLI::App& hold, Context& ctx) {
  auto* cmd = hold.add_subcommand("list", "the VMs this host holds");
  auto as_json = std::make_shared<bool>(false);
  cmd->add_flag("--json", *as_json, "print JSON");
  cmd->callback([=, &ctx] {
    auto r = ctx.Client().Get("/v1/holds");
    if (!r.ok()) return ctx.Fail(r.status());
    if (*as_json) return ctx.PrintJson((*r)["holds"]);
    Table t({"VM", "SIZE", "STEP", "HELD AT", "EXPIRES"});
    for (const auto& h : (*r)["holds"]) {
      t.AddRow({EscapeForTerminal(h.value("vm", "")), MiB(h.value("size_bytes", uint64_t{0})),
                h.value("step", ""), When(h.value("held_at", int64_t{0})),
                When(h.value("expires_at", int64_t{0}))});
    }
    t.Print(std::cout);
  });
}

// ferry hold show VM
void AddHoldShow(CLI::App& hold, Context& ctx) {
  auto* cmd = hold.add_subcommand("show", "one hold: size, owner, expiry, where it was sealed");
  auto vm = std::make_shared<std::string>();
  auto as_json = std::make_shared<bool>(false);
  cmd->add_option("vm", *vm, "the held VM")->required();
  cmd->add_flag("--json", *as_json, "print JSON");
  cmd->callback([=, &ctx] {
    auto r = ctx.Client().Get("/v1/holds/" + *vm);
    if (!r.ok()) return ctx.Fail(r.status());
    if (*as_json) return ctx.PrintJson(*r);
    std::cout << "vm          " << EscapeForTerminal(r->value("vm", "")) << "\n"
              << "hold id     " << r->value("hold_id", "") << "\n"
              << "step        " << r->value("step", "") << "\n"
              << "size        " << MiB(r->value("size_bytes", uint64_t{0})) << "\n"
              << "owner       " << r->value("owner", "") << "\n"
              << "held on     " << r->value("held_on", "") << "\n"
              << "held at     " << When(r->value("held_at", int64_t{0})) << "\n"
              << "expires     " << When(r->value("expires_at", int64_t{0})) << "\n";
    if (r->contains("shredded_by")) {
      std::cout << "shredded by " << When(r->value("shredded_by", int64_t{0})) << "\n";
    }
    if (r->contains("problem")) std::cout << "problem     " << r->value("problem", "") << "\n";
  });
}

// ferry hold restore VM
void AddHoldRestore(CLI::App& hold, Context& ctx) {
  auto* cmd = hold.add_subcommand("restore", "bring the held VM back: the same machine");
  auto vm = std::make_shared<std::string>();
  auto wait_ready = std::make_shared<bool>(false);
  auto forwards = std::make_shared<std::vector<std::string>>();
  cmd->add_option("vm", *vm, "the held VM")->required();
  cmd->add_flag("--wait-ready", *wait_ready, "return when the guest is ready");
  cmd->add_option("--forward", *forwards,
                  "HOST_PORT:GUEST_PORT on 127.0.0.1 instead of the held VM's forwards "
                  "(repeatable; 0 as HOST_PORT picks a free one)");
  cmd->callback([=, &ctx] {
    auto client = ctx.Client();
    nlohmann::json body = {{"wait_ready", *wait_ready}};
    if (!forwards->empty()) body["forwards"] = *forwards;
    auto accepted = client.Post("/v1/holds/" + *vm + "/restore", body);
    if (!accepted.ok()) return ctx.Fail(accepted.status());
    auto result = client.Follow(*accepted, ProgressOnStderr(false));
    if (!result.ok()) return ctx.Fail(result.status());
    std::cout << "vm " << *vm << " restored from its hold and running\n";
  });
}

// ferry hold send VM --to HOST
void AddHoldSend(CLI::App& hold, Context& ctx) {
  auto* cmd = hold.add_subcommand(
      "send", "move the hold to a peer host: only chunks it lacks travel, then it holds it");
  auto vm = std::make_shared<std::string>();
  auto to = std::make_shared<std::string>();
  auto as_json = std::make_shared<bool>(false);
  cmd->add_option("vm", *vm, "the held VM")->required();
  cmd->add_option("--to", *to, "destination host id (ferry peer list)")->required();
  cmd->add_flag("--json", *as_json, "print the result as JSON");
  cmd->callback([=, &ctx] {
    auto client = ctx.Client();
    auto accepted = client.Post("/v1/holds/" + *vm + "/send", {{"to", *to}});
    if (!accepted.ok()) return ctx.Fail(accepted.status());
    auto result = client.Follow(*accepted, ProgressOnStderr(*as_json));
    if (!result.ok()) return ctx.Fail(result.status());
    if (*as_json) return ctx.PrintJson(*result);
    std::cout << "hold of vm " << *vm << " moved to " << *to << ": "
              << result->value("chunks_sent", uint64_t{0}) << " of "
              << result->value("chunks", uint64_t{0}) << " chunks sent ("
              << MiB(result->value("chunk_bytes_sent", uint64_t{0})) << " of "
              << MiB(result->value("logical_bytes", uint64_t{0})) << " held, "
              << MiB(result->value("wire_bytes_sent", uint64_t{0})) << " on the wire) in "
              << FormatDuration(result->value("total_ms", int64_t{0})) << "\n";
  });
}

// ferry hold delete VM
void AddHoldDelete(CLI::App& hold, Context& ctx) {
  auto* cmd = hold.add_subcommand("delete", "crypto-shred a hold: its key is destroyed");
  auto vm = std::make_shared<std::string>();
  cmd->add_option("vm", *vm, "the held VM")->required();
  cmd->callback([=, &ctx] {
    auto r = ctx.Client().Delete("/v1/holds/" + *vm);
    if (!r.ok()) return ctx.Fail(r.status());
    std::cout << "hold of vm " << *vm << " shredded\n";
  });
}

void AddHoldVerbs(CLI::App& hold, Context& ctx) {
  AddHoldList(hold, ctx);
  AddHoldShow(hold, ctx);
  AddHoldRestore(hold, ctx);
  AddHoldSend(hold, ctx);
  AddHoldDelete(hold, ctx);
}

void AddStoreCommands(CLI::App& app, Context& ctx) {
  auto* store = app.add_subcommand("store", "this host's store of held state");
  store->require_subcommand(1);
  {
    auto* cmd = store->add_subcommand("show", "logical and stored bytes, dedup ratio");
    auto as_json = std::make_shared<bool>(false);
    cmd->add_flag("--json", *as_json, "print JSON");
    cmd->callback([=, &ctx] {
      auto r = ctx.Client().Get("/v1/store");
      if (!r.ok()) return ctx.Fail(r.status());
      if (*as_json) return ctx.PrintJson(*r);
      std::cout << "holds         " << r->value("holds", 0) << "\n"
                << "chunks        " << r->value("chunks", 0) << "\n"
                << "logical       " << MiB(r->value("logical_bytes", uint64_t{0})) << "\n"
                << "stored        " << MiB(r->value("stored_bytes", uint64_t{0})) << "\n"
                << "dedup ratio   " << r->value("dedup_ratio", 0.0) << "\n";
    });
  }
  {
    auto* cmd = store->add_subcommand("verify", "check every chunk and every hold's manifest");
    auto as_json = std::make_shared<bool>(false);
    cmd->add_flag("--json", *as_json, "print JSON");
    cmd->callback([=, &ctx] {
      auto r = ctx.Client().Post("/v1/store/verify", json::object());
      if (!r.ok()) return ctx.Fail(r.status());
      if (*as_json) ctx.PrintJson(*r);
      for (const auto& p : (*r)["problems"]) {
        if (!*as_json) std::cout << "problem: " << EscapeForTerminal(p.get<std::string>()) << "\n";
      }
      if (!*as_json) {
        std::cout << r->value("chunks_checked", 0) << " chunks and " << r->value("holds_checked", 0)
                  << " holds checked: " << (r->value("ok", false) ? "ok" : "DAMAGED") << "\n";
      }
      if (!r->value("ok", false)) ctx.exit_code = 1;
    });
  }
  {
    auto* cmd = store->add_subcommand("gc", "remove chunks no hold uses");
    cmd->callback([=, &ctx] {
      auto r = ctx.Client().Post("/v1/store/collect", json::object());
      if (!r.ok()) return ctx.Fail(r.status());
      std::cout << r->value("chunks_removed", 0) << " chunks removed, "
                << MiB(r->value("bytes_freed", uint64_t{0})) << " freed\n";
    });
  }
}

}  // namespace

void AddHoldCommands(CLI::App& app, Context& ctx) {
  auto* hold = app.add_subcommand("hold", "seal a VM's whole state into this host's store");
  hold->require_subcommand(0, 1);
  auto vm = std::make_shared<std::string>();
  auto as_json = std::make_shared<bool>(false);
  hold->add_option("vm", *vm, "the VM to hold (it stops running here)");
  hold->add_flag("--json", *as_json, "print JSON");
  AddHoldVerbs(*hold, ctx);
  hold->callback([=, &ctx] {
    if (!hold->get_subcommands().empty()) return;
    if (vm->empty()) return ctx.Fail(Status::InvalidArgument("ferry hold VM: which VM?"));
    auto client = ctx.Client();
    auto accepted = client.Post("/v1/holds", {{"vm", *vm}});
    if (!accepted.ok()) return ctx.Fail(accepted.status());
    auto result = client.Follow(*accepted, ProgressOnStderr(*as_json));
    if (!result.ok()) return ctx.Fail(result.status());
    if (*as_json) return ctx.PrintJson(*result);
    std::cout << "vm " << *vm << " held: " << MiB(result->value("logical_bytes", uint64_t{0}))
              << " of state, " << MiB(result->value("stored_new_bytes", uint64_t{0}))
              << " new in the store, durable "
              << FormatDuration(result->value("pause_to_durable_ms", int64_t{0}))
              << " after the pause\n";
  });
  AddStoreCommands(app, ctx);
}

}  // namespace ferry::cli
