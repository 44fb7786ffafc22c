// ferry template create|list|show|delete|pool
#include <CLI/CLI.hpp>
#include <iostream>

#include "cli/context.h"
#include "cli/table.h"

namespace ferry::cli {

using nlohmann::json;

namespace {

void AddTemplateCreate(CLI::App* tmpl, Context& ctx) {
  auto* cmd = tmpl->add_subcommand("create",
                                   "a template from a snapshot, or from an image "
                                   "(boots it, waits ready, snapshots it)");
  auto name = std::make_shared<std::string>();
  auto from = std::make_shared<std::string>();
  auto image = std::make_shared<std::string>();
  auto memory = std::make_shared<std::string>("256");
  auto cpus = std::make_shared<int>(1);
  cmd->add_option("name", *name, "template name")->required();
  auto* from_opt = cmd->add_option("--from-snapshot", *from, "an existing snapshot");
  auto* image_opt = cmd->add_option("--image", *image, "boot this image instead");
  from_opt->excludes(image_opt);
  cmd->add_option("--memory", *memory, "with --image: guest RAM")->capture_default_str();
  cmd->add_option("--cpus", *cpus, "with --image: virtual CPUs")->capture_default_str();
  cmd->callback([=, &ctx] {
    auto client = ctx.Client();
    if (!from->empty()) {
      auto r = client.Post("/v1/templates", {{"name", *name}, {"from_snapshot", *from}});
      if (!r.ok()) return ctx.Fail(r.status());
      std::cout << "template " << *name << " from snapshot " << *from << "\n";
      return;
    }
    if (image->empty()) {
      return ctx.Fail(
          Status::InvalidArgument("template " + *name + ": give --from-snapshot or --image"));
    }
    json spec = {{"image", *image}, {"memory", *memory}, {"cpus", *cpus}};
    auto accepted = client.Post("/v1/templates", {{"name", *name}, {"spec", spec}});
    if (!accepted.ok()) return ctx.Fail(accepted.status());
    auto result = client.Follow(*accepted, nullptr);
    if (!result.ok()) return ctx.Fail(result.status());
    std::cout << "template " << *name << " (snapshot " << result->value("snapshot", "")
              << ", taken at the ready point)\n";
  });
}

void AddTemplateList(CLI::App* tmpl, Context& ctx) {
  auto* cmd = tmpl->add_subcommand("list", "list templates");
  auto as_json = std::make_shared<bool>(false);
  cmd->add_flag("--json", *as_json, "print JSON");
  cmd->callback([=, &ctx] {
    auto r = ctx.Client().Get("/v1/templates");
    if (!r.ok()) return ctx.Fail(r.status());
    if (*as_json) return ctx.PrintJson((*r)["templates"]);
    Table t({"NAME", "SNAPSHOT", "POOL", "READY"});
    for (const auto& x : (*r)["templates"]) {
      t.AddRow({x.value("name", ""), x.value("snapshot", ""),
                std::to_string(x.value("pool_size", 0)), std::to_string(x.value("pool_ready", 0))});
    }
    t.Print(std::cout);
  });
}

void AddTemplateShow(CLI::App* tmpl, Context& ctx) {
  auto* cmd = tmpl->add_subcommand("show", "one template");
  auto name = std::make_shared<std::string>();
  auto as_json = std::make_shared<bool>(false);
  cmd->add_option("name", *name, "template name")->required();
  cmd->add_flag("--json", *as_json, "print JSON");
  cmd->callback([=, &ctx] {
    auto r = ctx.Client().Get("/v1/templates/" + *name);
    if (!r.ok()) return ctx.Fail(r.status());
    if (*as_json) return ctx.PrintJson(*r);
    std::cout << "name      " << r->value("name", "") << "\n"
              << "snapshot  " << r->value("snapshot", "") << "\n"
              << "pool      " << r->value("pool_ready", 0) << " of " << r->value("pool_size", 0)
              << " QEMUs waiting\n";
  });
}

void AddTemplateDelete(CLI::App* tmpl, Context& ctx) {
  auto* cmd = tmpl->add_subcommand("delete", "delete a template (and its own snapshot)");
  auto name = std::make_shared<std::string>();
  cmd->add_option("name", *name, "template name")->required();
  cmd->callback([=, &ctx] {
    auto r = ctx.Client().Delete("/v1/templates/" + *name);
    if (!r.ok()) return ctx.Fail(r.status());
    std::cout << "template " << *name << " deleted\n";
  });
}

void AddTemplatePool(CLI::App* tmpl, Context& ctx) {
  auto* cmd = tmpl->add_subcommand("pool", "keep N QEMUs started, waiting to become clones");
  auto name = std::make_shared<std::string>();
  auto size = std::make_shared<int>(0);
  cmd->add_option("name", *name, "template name")->required();
  cmd->add_option("--size", *size, "how many QEMUs to keep waiting")->required();
  cmd->callback([=, &ctx] {
    auto r = ctx.Client().Put("/v1/templates/" + *name + "/pool", {{"size", *size}});
    if (!r.ok()) return ctx.Fail(r.status());
    std::cout << "template " << *name << ": pool of " << *size << " (refills in the background)\n";
  });
}

}  // namespace

void AddTemplateCommands(CLI::App& app, Context& ctx) {
  auto* tmpl = app.add_subcommand("template", "templates and their warm pools of QEMUs");
  tmpl->require_subcommand(1);
  AddTemplateCreate(tmpl, ctx);
  AddTemplateList(tmpl, ctx);
  AddTemplateShow(tmpl, ctx);
  AddTemplateDelete(tmpl, ctx);
  AddTemplatePool(tmpl, ctx);
}

}  // namespace ferry::cli
