// ferry snapshot create|list|show|delete, and ferry clone
#include <CLI/CLI.hpp>
#include <iostream>

#include "cli/context.h"
#include "cli/progress_line.h"
#include "cli/table.h"

namespace ferry::cli {

using nlohmann::json;

namespace {

std::string MiB(uint64_t bytes) { return std::to_string(bytes >> 20) + " MiB"; }

void PrintClone(const json& vm) {
  const json& t = vm.value("timings", json::object());
  std::cout << "vm " << vm.value("name", "") << " " << vm.value("state", "");
  if (t.contains("restore_total_ms")) {
    std::cout << " (restored in " << FormatDuration(t.value("restore_total_ms", 0))
              << ", identity reset " << FormatDuration(t.value("identity_ms", 0)) << ")";
  }
  const json& net = vm["spec"]["network"];
  if (net.value("mode", "") == "tap") {
    std::cout << " at " << net.value("ip", "") << " on " << net.value("bridge", "") << " mac "
              << vm.value("mac", "");
  }
  const json& fwds = vm["spec"]["network"]["forwards"];
  for (const auto& f : fwds) {
    std::cout << " 127.0.0.1:" << f.value("host_port", 0) << "->" << f.value("guest_port", 0);
  }
  std::cout << "\n";
}

void AddSnapshotCreate(CLI::App* snap, Context& ctx) {
  auto* cmd = snap->add_subcommand("create", "snapshot a running VM (it pauses briefly)");
  auto vm = std::make_shared<std::string>();
  auto name = std::make_shared<std::string>();
  auto as_json = std::make_shared<bool>(false);
  cmd->add_option("vm", *vm, "the VM")->required();
  cmd->add_option("--name", *name, "snapshot name")->required();
  cmd->add_flag("--json", *as_json, "print JSON");
  cmd->callback([=, &ctx] {
    auto client = ctx.Client();
    auto accepted = client.Post("/v1/snapshots", {{"vm", *vm}, {"name", *name}});
    if (!accepted.ok()) return ctx.Fail(accepted.status());
    auto result = client.Follow(*accepted, ProgressOnStderr(*as_json));
    if (!result.ok()) return ctx.Fail(result.status());
    if (*as_json) return ctx.PrintJson(*result);
    std::cout << "snapshot " << *name << " of vm " << *vm << ": VM paused "
              << result->value("pause_ms", 0) << " ms, device state "
              << result->value("device_state_bytes", 0) / 1024 << " KiB, RAM data "
              << result->value("ram_data_bytes", uint64_t{0}) / (1 << 20) << " MiB\n";
  });
}

void AddSnapshotList(CLI::App* snap, Context& ctx) {
  auto* cmd = snap->add_subcommand("list", "list snapshots");
  auto as_json = std::make_shared<bool>(false);
  cmd->add_flag("--json", *as_json, "print JSON");
  cmd->callback([=, &ctx] {
    auto r = ctx.Client().Get("/v1/snapshots");
    if (!r.ok()) return ctx.Fail(r.status());
    if (*as_json) return ctx.PrintJson((*r)["snapshots"]);
    Table t({"NAME", "VM", "MEMORY", "RAM DATA", "PAUSE", "CLONES"});
    for (const auto& s : (*r)["snapshots"]) {
      t.AddRow({s.value("name", ""), s.value("vm", ""),
                std::to_string(s.value("memory_mib", 0)) + " MiB",
                std::to_string(s.value("ram_data_bytes", uint64_t{0}) >> 20) + " MiB",
                std::to_string(s.value("pause_ms", 0)) + " ms",
                std::to_string(s.value("clones", json::array()).size())});
    }
    t.Print(std::cout);
  });
}

void AddSnapshotShow(CLI::App* snap, Context& ctx) {
  auto* cmd = snap->add_subcommand("show", "one snapshot");
  auto name = std::make_shared<std::string>();
  auto as_json = std::make_shared<bool>(false);
  cmd->add_option("name", *name, "snapshot name")->required();
  cmd->add_flag("--json", *as_json, "print JSON");
  cmd->callback([=, &ctx] {
    auto r = ctx.Client().Get("/v1/snapshots/" + *name);
    if (!r.ok()) return ctx.Fail(r.status());
    if (*as_json) return ctx.PrintJson(*r);
    std::cout << "name          " << r->value("name", "") << "\n"
              << "vm            " << r->value("vm", "") << "\n"
              << "memory        " << r->value("memory_mib", 0) << " MiB\n"
              << "pause         " << r->value("pause_ms", 0) << " ms\n"
              << "ram data      " << (r->value("ram_data_bytes", uint64_t{0}) >> 20) << " MiB\n"
              << "device state  " << (r->value("device_state_bytes", uint64_t{0}) >> 10) << " KiB\n"
              << "clones        " << (*r)["clones"].dump() << "\n";
  });
}

void AddSnapshotDelete(CLI::App* snap, Context& ctx) {
  auto* cmd = snap->add_subcommand("delete", "delete a snapshot no clone maps");
  auto name = std::make_shared<std::string>();
  cmd->add_option("name", *name, "snapshot name")->required();
  cmd->callback([=, &ctx] {
    auto r = ctx.Client().Delete("/v1/snapshots/" + *name);
    if (!r.ok()) return ctx.Fail(r.status());
    std::cout << "snapshot " << *name << " deleted\n";
  });
}

void AddSnapshotSend(CLI::App* snap, Context& ctx) {
  auto* cmd = snap->add_subcommand(
      "send", "copy a snapshot to a peer host through the store: only chunks it lacks travel");
  auto name = std::make_shared<std::string>();
  auto to = std::make_shared<std::string>();
  auto as_json = std::make_shared<bool>(false);
  cmd->add_option("name", *name, "snapshot name (a template's: ferry template show)")->required();
  cmd->add_option("--to", *to, "destination host id (ferry peer list)")->required();
  cmd->add_flag("--json", *as_json, "print the result as JSON");
  cmd->callback([=, &ctx] {
    auto client = ctx.Client();
    auto accepted = client.Post("/v1/snapshots/" + *name + "/send", {{"to", *to}});
    if (!accepted.ok()) return ctx.Fail(accepted.status());
    auto result = client.Follow(*accepted, ProgressOnStderr(*as_json));
    if (!result.ok()) return ctx.Fail(result.status());
    if (*as_json) return ctx.PrintJson(*result);
    std::cout << "snapshot " << *name << " copied to " << *to
              << " (kept here too): " << result->value("chunks_sent", uint64_t{0}) << " of "
              << result->value("chunks", uint64_t{0}) << " chunks sent ("
              << MiB(result->value("chunk_bytes_sent", uint64_t{0})) << " of "
              << MiB(result->value("logical_bytes", uint64_t{0})) << ", "
              << MiB(result->value("wire_bytes_sent", uint64_t{0})) << " on the wire) in "
              << FormatDuration(result->value("total_ms", int64_t{0})) << "\n";
  });
}

}  // namespace

void AddSnapshotCommands(CLI::App& app, Context& ctx) {
  auto* snap = app.add_subcommand("snapshot", "live snapshots of running VMs");
  snap->require_subcommand(1);
  AddSnapshotCreate(snap, ctx);
  AddSnapshotList(snap, ctx);
  AddSnapshotShow(snap, ctx);
  AddSnapshotDelete(snap, ctx);
  AddSnapshotSend(snap, ctx);

  auto* clone = app.add_subcommand("clone", "start VMs from a snapshot, each with a new identity");
  auto snapshot = std::make_shared<std::string>();
  auto count = std::make_shared<int>(1);
  auto names = std::make_shared<std::vector<std::string>>();
  auto forwards = std::make_shared<std::vector<std::string>>();
  auto as_json = std::make_shared<bool>(false);
  auto net = std::make_shared<std::string>();
  auto ip = std::make_shared<std::string>();
  clone->add_option("snapshot", *snapshot, "snapshot name")->required();
  clone->add_option("--net", *net,
                    "tap: the snapshot's VM is on tap networking and each clone gets its own "
                    "address (--ip)")
      ->check(CLI::IsMember({"user", "tap"}));
  clone->add_option("--ip", *ip,
                    "with --net tap: the first clone's address and prefix, 10.77.0.21/24; each "
                    "next clone's is one higher");
  clone->add_option("--count", *count, "how many clones")->capture_default_str();
  clone->add_option("--name", *names, "clone names (one per clone; default SOURCE-cN)");
  clone->add_option("--forward", *forwards,
                    "HOST:GUEST for the first clone, host port +1 for each next (0: any free)");
  clone->add_flag("--json", *as_json, "print JSON");
  clone->callback([=, &ctx] {
    if ((*net == "tap") != !ip->empty()) {
      return ctx.Fail(Status::InvalidArgument(
          "clone of snapshot " + *snapshot +
          ": --net tap and --ip go together (the first clone's address, such as --ip "
          "10.77.0.21/24)"));
    }
    json body = {{"count", names->empty() ? *count : static_cast<int>(names->size())},
                 {"names", *names},
                 {"forwards", *forwards}};
    if (!ip->empty()) body["ip"] = *ip;
    auto client = ctx.Client();
    auto accepted = client.Post("/v1/snapshots/" + *snapshot + "/clone", body);
    if (!accepted.ok()) return ctx.Fail(accepted.status());
    auto result = client.Follow(*accepted, ProgressOnStderr(*as_json));
    if (!result.ok()) return ctx.Fail(result.status());
    if (*as_json) return ctx.PrintJson((*result)["clones"]);
    for (const auto& vm : (*result)["clones"]) PrintClone(vm);
  });
}

}  // namespace ferry::cli
