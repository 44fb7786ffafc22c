// ferry peer add|list|remove; ferry migrate; ferry migration list|show|cancel
#include <CLI/CLI.hpp>
#include <iostream>

#include "cli/context.h"
#include "cli/progress_line.h"
#include "cli/table.h"

namespace ferry::cli {

using nlohmann::json;

void AddPeerCommands(CLI::App& app, Context& ctx) {
  auto* peer = app.add_subcommand("peer", "the other hosts this ferryd may migrate VMs to");
  peer->require_subcommand(1);
  {
    auto* cmd = peer->add_subcommand("add", "name a peer host and its peer port");
    auto host = std::make_shared<std::string>();
    auto address = std::make_shared<std::string>();
    cmd->add_option("host_id", *host, "the host id its certificate carries")->required();
    cmd->add_option("address", *address, "ADDRESS:PORT of its ferryd --listen")->required();
    cmd->callback([=, &ctx] {
      auto r = ctx.Client().Post("/v1/peers", {{"host_id", *host}, {"address", *address}});
      if (!r.ok()) return ctx.Fail(r.status());
      std::cout << "peer " << *host << " at " << r->value("address", *address) << "\n";
    });
  }
  {
    auto* cmd = peer->add_subcommand("list", "known peers");
    auto as_json = std::make_shared<bool>(false);
    cmd->add_flag("--json", *as_json, "print JSON");
    cmd->callback([=, &ctx] {
      auto r = ctx.Client().Get("/v1/peers");
      if (!r.ok()) return ctx.Fail(r.status());
      if (*as_json) return ctx.PrintJson((*r)["peers"]);
      Table t({"HOST", "ADDRESS"});
      for (const auto& p : (*r)["peers"])
        t.AddRow({p.value("host_id", ""), p.value("address", "")});
      t.Print(std::cout);
    });
  }
  {
    auto* cmd = peer->add_subcommand("remove", "forget a peer");
    auto host = std::make_shared<std::string>();
    cmd->add_option("host_id", *host, "peer host id")->required();
    cmd->callback([=, &ctx] {
      auto r = ctx.Client().Delete("/v1/peers/" + *host);
      if (!r.ok()) return ctx.Fail(r.status());
      std::cout << "peer " << *host << " removed\n";
    });
  }
}

void AddMigrateCommands(CLI::App& app, Context& ctx) {
  {
    auto* cmd = app.add_subcommand("migrate", "move a running VM live to a peer host");
    auto vm = std::make_shared<std::string>();
    auto to = std::make_shared<std::string>();
    auto downtime = std::make_shared<int>(0);
    auto as_json = std::make_shared<bool>(false);
    cmd->add_option("vm", *vm, "VM name")->required();
    cmd->add_option("--to", *to, "destination host id (ferry peer list)")->required();
    cmd->add_option("--downtime-ms", *downtime, "downtime limit (default: ferryd's, 50 ms)");
    cmd->add_flag("--json", *as_json, "print the result as JSON");
    cmd->callback([=, &ctx] {
      auto client = ctx.Client();
      json body = {{"vm", *vm}, {"to", *to}};
      if (*downtime > 0) body["downtime_ms"] = *downtime;
      auto accepted = client.Post("/v1/migrations", body);
      if (!accepted.ok()) return ctx.Fail(accepted.status());
      auto result = client.Follow(*accepted, ProgressOnStderr(*as_json));
      if (!result.ok()) return ctx.Fail(result.status());
      if (*as_json) return ctx.PrintJson(*result);
      std::cout << "vm " << *vm << " runs on " << *to << " (total " << result->value("total_ms", 0)
                << " ms, downtime " << result->value("downtime_ms", 0) << " ms, "
                << (result->value("wire_bytes_sent", uint64_t{0}) >> 20) << " MiB on the wire)\n";
    });
  }
  auto* mig = app.add_subcommand("migration", "live migrations to and from this host");
  mig->require_subcommand(1);
  {
    auto* cmd = mig->add_subcommand("list", "recent migrations");
    auto as_json = std::make_shared<bool>(false);
    cmd->add_flag("--json", *as_json, "print JSON");
    cmd->callback([=, &ctx] {
      auto r = ctx.Client().Get("/v1/migrations");
      if (!r.ok()) return ctx.Fail(r.status());
      if (*as_json) return ctx.PrintJson((*r)["migrations"]);
      Table t({"ID", "DIRECTION", "VM", "STATE", "PHASE"});
      for (const auto& o : (*r)["migrations"]) {
        t.AddRow({o.value("id", ""), o.value("kind", "") == "migrate" ? "out" : "in",
                  o.value("target", ""), o.value("state", ""), o.value("phase", "")});
      }
      t.Print(std::cout);
    });
  }
  {
    auto* cmd = mig->add_subcommand("show", "one migration");
    auto id = std::make_shared<std::string>();
    cmd->add_option("id", *id, "migration (operation) id")->required();
    auto as_json = std::make_shared<bool>(true);
    cmd->add_flag("--json", *as_json, "print JSON (the default)");
    cmd->callback([=, &ctx] {
      auto r = ctx.Client().Get("/v1/migrations/" + *id);
      if (!r.ok()) return ctx.Fail(r.status());
      ctx.PrintJson(*r);
    });
  }
  {
    auto* cmd = mig->add_subcommand("cancel", "stop an outgoing migration; the VM stays here");
    auto id = std::make_shared<std::string>();
    cmd->add_option("id", *id, "migration (operation) id")->required();
    cmd->callback([=, &ctx] {
      auto r = ctx.Client().Post("/v1/migrations/" + *id + "/cancel", json::object());
      if (!r.ok()) return ctx.Fail(r.status());
      std::cout << "cancelling " << *id << "\n";
    });
  }
}

}  // namespace ferry::cli
