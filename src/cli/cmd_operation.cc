// ferry operation list and show; ferry host show
#include <CLI/CLI.hpp>
#include <iostream>

#include "cli/context.h"
#include "cli/table.h"

namespace ferry::cli {

using nlohmann::json;

void AddOperationCommands(CLI::App& app, Context& ctx) {
  auto* op = app.add_subcommand("operation", "follow long operations (create, stop, ...)");
  op->alias("op");
  op->require_subcommand(1);
  {
    auto* cmd = op->add_subcommand("list", "recent operations");
    auto as_json = std::make_shared<bool>(false);
    cmd->add_flag("--json", *as_json, "print JSON");
    cmd->callback([=, &ctx] {
      auto r = ctx.Client().Get("/v1/operations");
      if (!r.ok()) return ctx.Fail(r.status());
      if (*as_json) return ctx.PrintJson((*r)["operations"]);
      Table t({"ID", "KIND", "TARGET", "STATE", "PHASE", "DURATION"});
      for (const auto& o : (*r)["operations"]) {
        t.AddRow({o.value("id", ""), o.value("kind", ""), o.value("target", ""),
                  o.value("state", ""), o.value("phase", ""),
                  o.contains("duration_ms") ? FormatDuration(o.value("duration_ms", 0)) : "-"});
      }
      t.Print(std::cout);
    });
  }
  {
    auto* cmd = op->add_subcommand("show", "one operation");
    auto id = std::make_shared<std::string>();
    auto as_json = std::make_shared<bool>(false);
    cmd->add_option("id", *id, "operation id")->required();
    cmd->add_flag("--json", *as_json, "print JSON");
    cmd->callback([=, &ctx] {
      auto r = ctx.Client().Get("/v1/operations/" + *id);
      if (!r.ok()) return ctx.Fail(r.status());
      const json& o = (*r)["operation"];
      if (*as_json) return ctx.PrintJson(o);
      std::cout << o.value("id", "") << " " << o.value("kind", "") << " " << o.value("target", "")
                << ": " << o.value("state", "") << " (" << o.value("phase", "") << ", "
                << o.value("progress", 0) << "%)\n";
      if (o.contains("error")) {
        std::cout << "error: " << EscapeForTerminal(o["error"].value("message", "")) << "\n";
      }
    });
  }
}

void AddHostCommands(CLI::App& app, Context& ctx) {
  auto* host = app.add_subcommand("host", "this host as ferryd sees it");
  host->require_subcommand(1);
  AddHostEnrollCommand(*host, ctx);
  auto* cmd = host->add_subcommand("show", "accelerator, capacity, images");
  auto as_json = std::make_shared<bool>(false);
  cmd->add_flag("--json", *as_json, "print JSON");
  cmd->callback([=, &ctx] {
    auto r = ctx.Client().Get("/v1/host");
    if (!r.ok()) return ctx.Fail(r.status());
    if (*as_json) return ctx.PrintJson(*r);
    std::cout << "accelerator    " << r->value("accelerator", "") << " ("
              << r->value("accelerator_reason", "") << ")\n"
              << "qemu           " << r->value("qemu_version", "") << "\n"
              << "state dir      " << r->value("state_dir", "") << "\n"
              << "ram dir        " << r->value("ram_dir", "") << " ("
              << r->value("ram_dir_free_mib", 0) << " MiB free)\n"
              << "memory         " << r->value("mem_available_mib", 0) << " MiB available\n"
              << "images         " << (*r)["images"].dump() << "\n";
  });
}

}  // namespace ferry::cli
