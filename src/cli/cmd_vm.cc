// ferry vm create|list|show|set-policy|pause|resume|start|stop|delete|random|console: one
// function per verb.
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <iostream>

#include "cli/context.h"
#include "cli/progress_line.h"
#include "cli/table.h"
#include "cli/terminal_text.h"
#include "core/files.h"

namespace ferry::cli {

using nlohmann::json;

namespace {

std::string Forwards(const json& forwards) {
  std::string out;
  for (const auto& f : forwards) {
    if (!out.empty()) out += ",";
    out +=
        std::to_string(f.value("host_port", 0)) + "->" + std::to_string(f.value("guest_port", 0));
  }
  return out.empty() ? "-" : out;
}

// One "key   value" line of `vm show`.
void Line(const std::string& k, const std::string& v) {
  // Values may be the guest's own words (hostname, kernel, errors): escaped.
  std::cout << k << std::string(k.size() < 14 ? 14 - k.size() : 1, ' ') << EscapeForTerminal(v)
            << "\n";
}

// The owner's policy as `vm show` prints it.
void PrintPolicy(const json& policy) {
  if (policy.contains("error")) {
    Line("owner", "policy unreadable: " + policy.value("error", ""));
  } else if (!policy.value("owner", json()).is_string()) {
    Line("owner", "none (no owner policy: nothing is restricted)");
  } else {
    Line("owner", policy.value("owner", "") + "…");
    std::string bound = "signed for vm " + policy.value("bound_to", "");
    if (policy.contains("inherited_from")) {
      const json& from = policy["inherited_from"];
      bound += ", inherited from vm " + from.value("vm", "") +
               (from.contains("snapshot") ? " (snapshot " + from.value("snapshot", "") + ")" : "");
    }
    Line("policy", bound);
    Line("migrate to", policy.value("destinations", ""));
    const json& hold = policy.value("hold", json::object());
    const int64_t max_s = hold.value("max_seconds", int64_t{0});
    Line("hold", !hold.value("allowed", false) ? "not allowed"
                 : max_s > 0                   ? "allowed, up to " + std::to_string(max_s) + " s"
                                               : "allowed, no limit");
    Line("clone", policy.value("clone", false) ? "allowed" : "not allowed");
  }
}

void PrintVm(const json& vm) {
  Line("name", vm.value("name", ""));
  Line("id", vm.value("id", ""));
  Line("state", vm.value("state", ""));
  Line("image", vm["spec"].value("image", ""));
  Line("memory", std::to_string(vm.value("memory_mib", 0)) + " MiB");
  Line("cpus", std::to_string(vm["spec"].value("cpus", 1)));
  Line("accelerator", vm.value("accelerator", ""));
  if (vm["spec"].contains("disk")) {
    const json& paths = vm.value("paths", json::object());
    Line("disk",
         vm["spec"].value("disk", "") + " " + paths.value("disk", "") +
             (paths.value("disk_chain", json::array()).empty()
                  ? ""
                  : " (on " + std::to_string(paths["disk_chain"].size()) + " frozen image(s))"));
  }
  const json& net = vm["spec"]["network"];
  if (net.value("mode", "user") == "tap") {
    Line("network", "tap " + vm.value("tap", "") + " on bridge " + net.value("bridge", ""));
    Line("address",
         net.value("ip", "") + (net.contains("gateway") ? " via " + net.value("gateway", "") : ""));
  } else {
    Line("network", "user");
    Line("forwards", Forwards(net["forwards"]));
  }
  Line("mac", vm.value("mac", ""));
  PrintPolicy(vm.value("policy", json::object()));
  if (vm.value("pid", 0) != 0) Line("qemu pid", std::to_string(vm.value("pid", 0)));
  if (vm.value("uptime_ms", 0) > 0) Line("uptime", FormatDuration(vm.value("uptime_ms", 0)));
  if (vm.value("boot_to_ready_ms", 0) > 0) {
    Line("boot to ready", FormatDuration(vm.value("boot_to_ready_ms", 0)));
  }
  Line("ram file", vm["paths"].value("ram_file", ""));
  Line("console", vm["paths"].value("console_log", ""));
  if (!vm.value("failure", "").empty()) Line("failure", vm.value("failure", ""));
  if (!vm.value("last_words", "").empty()) Line("qemu said", vm.value("last_words", ""));
  if (vm.contains("guest")) {
    const json& g = vm["guest"];
    if (g.contains("error")) {
      Line("guest", "unreachable: " + g.value("error", ""));
    } else {
      Line("hostname", g.value("hostname", ""));
      Line("machine-id", g.value("machine_id", ""));
      Line("boot id", g.value("boot_id", ""));
      Line("kernel", g.value("kernel", ""));
      for (const auto& nic : g.value("macs", json::array())) {
        std::string addresses;
        for (const auto& a : nic.value("ipv4", json::array())) {
          if (a.is_string()) addresses += (addresses.empty() ? "" : ", ") + a.get<std::string>();
        }
        Line("guest " + EscapeForTerminal(nic.value("iface", "nic")),
             addresses.empty() ? "no IPv4 address" : addresses);
      }
    }
  }
}

// What `vm create` takes; the options write into it as CLI11 parses them.
struct VmCreateOptions {
  std::string name;
  std::string image = "default";
  std::string memory = "256";
  int cpus = 1;
  std::string disk;
  std::string policy_file;
  std::vector<std::string> forwards;
  std::string net = "user";
  std::string bridge;
  std::string ip;
  std::string gateway;
  bool wait_ready = false;
  bool as_json = false;
  std::string from_template;
};

// The body of POST /v1/vms: a spec to boot, or a template to clone.
Result<json> VmCreateBody(const VmCreateOptions& o) {
  // Tap settings go to ferryd as given; it checks them and names what is wrong.
  json network = {{"mode", o.net}, {"forwards", o.forwards}};
  if (!o.bridge.empty()) network["bridge"] = o.bridge;
  if (!o.ip.empty()) network["ip"] = o.ip;
  if (!o.gateway.empty()) network["gateway"] = o.gateway;
  json spec = {{"name", o.name},
               {"image", o.image},
               {"memory", o.memory},
               {"cpus", o.cpus},
               {"network", network}};
  if (!o.disk.empty()) spec["disk"] = o.disk;
  if (!o.policy_file.empty()) {
    auto text = ReadFile(o.policy_file);
    if (!text.ok()) return text.status().WithContext("--policy");
    spec["policy"] = *text;
  }
  if (o.from_template.empty()) return json{{"spec", spec}, {"wait_ready", o.wait_ready}};
  // A clone has its template's network; on tap networking it needs an address of its own.
  if (!o.bridge.empty() || !o.gateway.empty() || (o.net != "user" && o.net != "tap") ||
      (o.net == "tap") != !o.ip.empty()) {
    return Status::InvalidArgument("vm " + o.name +
                                   ": with --template, a clone has its template's network: give "
                                   "--net tap --ip A.B.C.D/P (its own address) for a template on "
                                   "tap networking, and no --bridge or --gateway");
  }
  json body = {{"name", o.name}, {"template", o.from_template}, {"forwards", o.forwards}};
  if (!o.ip.empty()) body["ip"] = o.ip;
  return body;
}

// "vm web-1 running (clone of base from the warm pool, restored in 41 ms)".
void PrintCreated(const std::string& name, const json& result) {
  std::cout << "vm " << name << " " << result.value("state", "");
  const json& t = result.value("timings", json::object());
  const json& origin = result.value("origin", json::object());
  if (t.contains("restore_total_ms")) {
    std::cout << " (clone of " << origin.value("snapshot", "")
              << (origin.value("warm_pool", false) ? " from the warm pool" : "") << ", restored in "
              << FormatDuration(t.value("restore_total_ms", 0)) << ")";
  } else if (result.value("boot_to_ready_ms", 0) > 0) {
    std::cout << " (ready " << FormatDuration(result.value("boot_to_ready_ms", 0))
              << " after QEMU start)";
  }
  std::cout << "\n";
}

void AddVmCreate(CLI::App& vm, Context& ctx) {
  auto* cmd = vm.add_subcommand("create", "create a VM and boot it");
  auto o = std::make_shared<VmCreateOptions>();
  cmd->add_option("name", o->name, "VM name")->required();
  cmd->add_option("--template", o->from_template,
                  "clone this template (from its warm pool when a QEMU waits there)");
  cmd->add_option("--image", o->image, "guest image")->capture_default_str();
  cmd->add_option("--memory", o->memory, "guest RAM in MiB (or 512M, 1G)")->capture_default_str();
  cmd->add_option("--cpus", o->cpus, "virtual CPUs")->capture_default_str();
  cmd->add_option("--policy", o->policy_file,
                  "the owner's signed policy for this VM (ferry policy sign): where it may go");
  cmd->add_option("--disk", o->disk,
                  "a qcow2 data disk of this size (64M, 1G): the guest keeps redis's "
                  "append-only file on it");
  cmd->add_option("--forward", o->forwards, "HOST_PORT:GUEST_PORT on 127.0.0.1 (repeatable)");
  cmd->add_option("--net", o->net,
                  "user: QEMU user networking, reached through --forward; tap: a tap on a "
                  "host bridge, reached at --ip (can move between hosts with it)")
      ->check(CLI::IsMember({"user", "tap"}))
      ->capture_default_str();
  cmd->add_option("--bridge", o->bridge, "with --net tap: the host bridge (default ferrybr0)");
  cmd->add_option("--ip", o->ip,
                  "with --net tap: the guest's address and prefix, 10.77.0.10/24 (with --template: "
                  "the clone's own)");
  cmd->add_option("--gateway", o->gateway, "with --net tap: the guest's default route, 10.77.0.1");
  cmd->add_flag("--wait-ready", o->wait_ready, "return once the guest's services answer");
  cmd->add_flag("--json", o->as_json, "print the VM as JSON");
  cmd->callback([o, &ctx] {
    auto body = VmCreateBody(*o);
    if (!body.ok()) return ctx.Fail(body.status());
    auto client = ctx.Client();
    auto accepted = client.Post("/v1/vms", *body);
    if (!accepted.ok()) return ctx.Fail(accepted.status());
    auto result = client.Follow(*accepted, ProgressOnStderr(o->as_json));
    if (!result.ok()) return ctx.Fail(result.status());
    if (o->as_json) return ctx.PrintJson(*result);
    PrintCreated(o->name, *result);
  });
}

void AddVmList(CLI::App& vm, Context& ctx) {
  auto* cmd = vm.add_subcommand("list", "list VMs");
  auto as_json = std::make_shared<bool>(false);
  cmd->add_flag("--json", *as_json, "print JSON");
  cmd->callback([=, &ctx] {
    auto r = ctx.Client().Get("/v1/vms");
    if (!r.ok()) return ctx.Fail(r.status());
    if (*as_json) return ctx.PrintJson((*r)["vms"]);
    Table t({"NAME", "STATE", "MEMORY", "CPUS", "UPTIME", "ACCEL", "FORWARDS"});
    for (const auto& v : (*r)["vms"]) {
      int64_t up = v.value("uptime_ms", int64_t{0});
      t.AddRow({v.value("name", ""), v.value("state", ""),
                std::to_string(v.value("memory_mib", 0)) + " MiB",
                std::to_string(v.value("cpus", 1)), up > 0 ? FormatDuration(up) : "-",
                v.value("accelerator", ""), Forwards(v["forwards"])});
    }
    t.Print(std::cout);
  });
}

void AddVmShow(CLI::App& vm, Context& ctx) {
  auto* cmd = vm.add_subcommand("show", "everything ferry knows about a VM");
  auto name = std::make_shared<std::string>();
  auto as_json = std::make_shared<bool>(false);
  cmd->add_option("name", *name, "VM name")->required();
  cmd->add_flag("--json", *as_json, "print JSON");
  cmd->callback([=, &ctx] {
    auto r = ctx.Client().Get("/v1/vms/" + *name);
    if (!r.ok()) return ctx.Fail(r.status());
    if (*as_json) return ctx.PrintJson(*r);
    PrintVm(*r);
  });
}

void AddVmSetPolicy(CLI::App& vm, Context& ctx) {
  auto* cmd = vm.add_subcommand("set-policy",
                                "replace a VM's owner policy with one signed by the same owner");
  auto name = std::make_shared<std::string>();
  auto file = std::make_shared<std::string>();
  cmd->add_option("name", *name, "VM name")->required();
  cmd->add_option("file", *file, "the new signed policy (ferry policy sign)")->required();
  cmd->callback([=, &ctx] {
    auto text = ReadFile(*file);
    if (!text.ok()) return ctx.Fail(text.status());
    auto r = ctx.Client().Post("/v1/vms/" + *name + "/policy", {{"policy", *text}});
    if (!r.ok()) return ctx.Fail(r.status());
    std::cout << "vm " << *name << ": policy replaced (owner " << (*r)["policy"].value("owner", "")
              << "…)\n";
  });
}

// pause and resume: the same request to /v1/vms/NAME/VERB.
void AddVmPauseOrResume(CLI::App& vm, Context& ctx, const std::string& verb,
                        const std::string& description) {
  auto* cmd = vm.add_subcommand(verb, description);
  auto name = std::make_shared<std::string>();
  auto as_json = std::make_shared<bool>(false);
  cmd->add_option("name", *name, "VM name")->required();
  cmd->add_flag("--json", *as_json, "print the VM as JSON");
  cmd->callback([=, &ctx] {
    auto r = ctx.Client().Post("/v1/vms/" + *name + "/" + verb, json::object());
    if (!r.ok()) return ctx.Fail(r.status());
    if (*as_json) return ctx.PrintJson(*r);
    std::cout << "vm " << *name << " " << r->value("state", "") << "\n";
  });
}

void AddVmStart(CLI::App& vm, Context& ctx) {
  auto* cmd = vm.add_subcommand("start", "boot a stopped or failed VM again");
  auto name = std::make_shared<std::string>();
  auto wait_ready = std::make_shared<bool>(false);
  cmd->add_option("name", *name, "VM name")->required();
  cmd->add_flag("--wait-ready", *wait_ready, "return once the guest's services answer");
  cmd->callback([=, &ctx] {
    auto client = ctx.Client();
    auto accepted = client.Post("/v1/vms/" + *name + "/start", {{"wait_ready", *wait_ready}});
    if (!accepted.ok()) return ctx.Fail(accepted.status());
    auto result = client.Follow(*accepted, ProgressOnStderr(false));
    if (!result.ok()) return ctx.Fail(result.status());
    std::cout << "vm " << *name << " " << result->value("state", "") << "\n";
  });
}

void AddVmStop(CLI::App& vm, Context& ctx) {
  auto* cmd = vm.add_subcommand("stop",
                                "shut a VM down: gracefully via its guest agent, "
                                "forced after a timeout");
  auto name = std::make_shared<std::string>();
  auto force = std::make_shared<bool>(false);
  auto timeout = std::make_shared<int>(0);
  cmd->add_option("name", *name, "VM name")->required();
  cmd->add_flag("--force", *force, "do not ask the guest; end QEMU now");
  cmd->add_option("--timeout", *timeout, "seconds to wait for a graceful shutdown (default 30)");
  cmd->callback([=, &ctx] {
    json body = {{"force", *force}};
    if (*timeout > 0) body["timeout_s"] = *timeout;
    auto client = ctx.Client();
    auto accepted = client.Post("/v1/vms/" + *name + "/stop", body);
    if (!accepted.ok()) return ctx.Fail(accepted.status());
    auto result = client.Follow(*accepted, ProgressOnStderr(false));
    if (!result.ok()) return ctx.Fail(result.status());
    std::cout << "vm " << *name << " stopped (" << result->value("stop_mode", "") << ")\n";
  });
}

void AddVmDelete(CLI::App& vm, Context& ctx) {
  auto* cmd = vm.add_subcommand("delete", "delete a VM and its files");
  auto name = std::make_shared<std::string>();
  auto force = std::make_shared<bool>(false);
  cmd->add_option("name", *name, "VM name")->required();
  cmd->add_flag("--force", *force, "delete even if it runs (its QEMU is killed)");
  cmd->callback([=, &ctx] {
    auto r = ctx.Client().Delete("/v1/vms/" + *name + (*force ? "?force=1" : ""));
    if (!r.ok()) return ctx.Fail(r.status());
    std::cout << "vm " << *name << " deleted\n";
  });
}

void AddVmRandom(CLI::App& vm, Context& ctx) {
  auto* cmd = vm.add_subcommand("random", "bytes from the guest's /dev/urandom (RNG check)");
  auto name = std::make_shared<std::string>();
  auto bytes = std::make_shared<int>(32);
  auto as_json = std::make_shared<bool>(false);
  cmd->add_option("name", *name, "VM name")->required();
  cmd->add_option("--bytes", *bytes, "how many (1-64)")->capture_default_str();
  cmd->add_flag("--json", *as_json, "print JSON");
  cmd->callback([=, &ctx] {
    auto r =
        ctx.Client().Get("/v1/vms/" + *name + "/guest/urandom?bytes=" + std::to_string(*bytes));
    if (!r.ok()) return ctx.Fail(r.status());
    if (*as_json) return ctx.PrintJson(*r);
    std::cout << r->value("hex", "") << "\n";
  });
}

void AddVmBallast(CLI::App& vm, Context& ctx) {
  auto* cmd = vm.add_subcommand(
      "ballast", "make the guest hold MIB of random bytes (a test and benchmark aid; 0 frees)");
  auto name = std::make_shared<std::string>();
  auto mib = std::make_shared<uint64_t>(0);
  cmd->add_option("name", *name, "VM name")->required();
  cmd->add_option("mib", *mib, "MiB the guest holds afterwards")->required();
  cmd->callback([=, &ctx] {
    auto r = ctx.Client().Post("/v1/vms/" + *name + "/guest/ballast", {{"mib", *mib}});
    if (!r.ok()) return ctx.Fail(r.status());
    std::cout << "vm " << *name << " holds " << r->value("mib", uint64_t{0})
              << " MiB of random bytes (filled in " << r->value("fill_ms", int64_t{0}) << " ms)\n";
  });
}

void AddVmConsole(CLI::App& vm, Context& ctx) {
  auto* cmd = vm.add_subcommand("console", "print the VM's serial console log");
  auto name = std::make_shared<std::string>();
  auto bytes = std::make_shared<size_t>(64 * 1024);
  auto as_json = std::make_shared<bool>(false);
  auto raw = std::make_shared<bool>(false);
  cmd->add_option("name", *name, "VM name")->required();
  cmd->add_option("--bytes", *bytes, "how much of the end of the log")->capture_default_str();
  cmd->add_flag("--json", *as_json, "print JSON");
  cmd->add_flag("--raw", *raw,
                "print the log byte for byte, terminal escape sequences included (the guest "
                "wrote them: only for a trusted guest, or into a file)");
  cmd->callback([=, &ctx] {
    auto r = ctx.Client().GetText("/v1/vms/" + *name + "/console?bytes=" + std::to_string(*bytes));
    if (!r.ok()) return ctx.Fail(r.status());
    if (*as_json) return ctx.PrintJson({{"name", *name}, {"console", *r}});
    // Filtered whether or not stdout is a terminal: a log saved to a file is often shown on
    // one later (cat, less -R), and the guest wrote every byte of it.
    std::cout << (*raw ? *r : FilterConsoleForTerminal(*r));
  });
}

}  // namespace

void AddVmCommands(CLI::App& app, Context& ctx) {
  auto* vm = app.add_subcommand("vm", "create and manage VMs");
  vm->require_subcommand(1);
  AddVmCreate(*vm, ctx);
  AddVmList(*vm, ctx);
  AddVmShow(*vm, ctx);
  AddVmSetPolicy(*vm, ctx);
  AddVmPauseOrResume(*vm, ctx, "pause", "pause a VM's CPUs");
  AddVmPauseOrResume(*vm, ctx, "resume", "resume a paused VM");
  AddVmStart(*vm, ctx);
  AddVmStop(*vm, ctx);
  AddVmDelete(*vm, ctx);
  AddVmRandom(*vm, ctx);
  AddVmBallast(*vm, ctx);
  AddVmConsole(*vm, ctx);
}

}  // namespace ferry::cli
