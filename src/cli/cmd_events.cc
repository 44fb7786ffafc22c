// ferry events: follows ferryd's event stream (GET /v1/events), as `docker events` does.
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <ctime>
#include <iostream>
#include <thread>

#include "cli/context.h"
#include "cli/table.h"
#include "cli/unix_http_client.h"

namespace ferry::cli {

using nlohmann::json;

namespace {

std::string LocalTime(int64_t ms) {
  std::time_t secs = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  ::localtime_r(&secs, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  char out[48];
  std::snprintf(out, sizeof out, "%s.%03d", buf, static_cast<int>(ms % 1000));
  return out;
}

// "2026-12-06T14:40:01.123 #12 vm.state web-1 running (was booting)"
std::string HumanLine(const json& e) {
  const std::string type = e.value("type", "");
  std::string line;
  if (e.contains("seq")) {
    line = LocalTime(e.value("time_ms", int64_t{0})) + " #" + std::to_string(e.value("seq", 0)) +
           " ";
  }
  line += type;
  if (type == "vm.state") {
    line += " " + e.value("vm", "") + " " + e.value("state", "");
    if (e.contains("previous")) line += " (was " + e.value("previous", "") + ")";
  } else if (type == "vm.deleted" || type == "vm.qemu_exited") {
    line += " " + e.value("vm", "");
    if (e.contains("cause")) line += " " + e.value("cause", "") + ": " + e.value("exit", "");
  } else if (type == "operation.started" || type == "operation.finished") {
    line += " " + e.value("kind", "") + " " + e.value("target", "") + " " + e.value("id", "");
    if (e.contains("result")) {
      line += " " + e.value("result", "") + " in " + FormatDuration(e.value("duration_ms", 0));
    }
    if (e.contains("error")) line += ": " + e["error"].value("message", "");
  } else if (type == "pool.refilled") {
    line += " " + e.value("template", "") + " " + std::to_string(e.value("ready", 0)) + "/" +
            std::to_string(e.value("size", 0)) + " ready";
  } else if (type == "migration.finished") {
    line += " " + e.value("vm", "") + " to " + e.value("to", "") + " in " +
            FormatDuration(e.value("total_ms", 0)) + ", downtime " +
            std::to_string(e.value("downtime_ms", 0)) + " ms";
  } else if (e.contains("message")) {
    line += ": " + e.value("message", "");
  }
  return EscapeForTerminal(line);
}

}  // namespace

void AddEventCommands(CLI::App& app, Context& ctx) {
  auto* cmd = app.add_subcommand(
      "events", "follow ferryd's events: VM states, operations, pool refills, migrations");
  auto as_json = std::make_shared<bool>(false);
  auto since = std::make_shared<int64_t>(-1);
  auto count = std::make_shared<int64_t>(0);
  cmd->add_flag("--json", *as_json, "print each event as ferryd sends it: one JSON object a line");
  cmd->add_option("--since", *since,
                  "start after event number N (0: every event ferryd still keeps); default: "
                  "only what happens from now on")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--count", *count, "exit after N events (default: follow until interrupted)")
      ->check(CLI::NonNegativeNumber);
  cmd->callback([=, &ctx] {
    // The stream is idle between events: no read timeout, only ferryd going ends it.
    HttpTimeouts timeouts;
    timeouts.read = std::chrono::hours(24 * 365);
    int64_t last = *since;
    int64_t shown = 0;
    std::string partial;
    bool connected_once = false;
    for (;;) {
      UnixHttpClient http(ctx.socket, timeouts);
      std::string path = "/v1/events";
      if (last >= 0) path += "?since=" + std::to_string(last);
      bool done = false;
      bool streamed = false;  // this connection delivered something
      partial.clear();
      auto reply = http.Stream(path, [&](std::string_view data) {
        connected_once = true;
        streamed = true;
        partial.append(data);
        for (size_t nl; (nl = partial.find('\n')) != std::string::npos;) {
          std::string line = partial.substr(0, nl);
          partial.erase(0, nl + 1);
          if (line.empty()) continue;
          json e = json::parse(line, nullptr, /*allow_exceptions=*/false);
          if (!e.is_object()) continue;
          if (e.contains("seq") && e["seq"].is_number_unsigned()) last = e["seq"].get<int64_t>();
          if (*as_json) {
            std::cout << e.dump(-1, ' ', true, json::error_handler_t::replace) << "\n";
          } else {
            std::cout << HumanLine(e) << "\n";
          }
          std::cout.flush();
          if (e.contains("seq") && *count > 0 && ++shown >= *count) {
            done = true;
            return false;
          }
        }
        return true;
      });
      if (done) return;
      if (reply.ok() && reply->status != 200) {
        json body = json::parse(reply->body, nullptr, false);
        std::string msg = body.is_object() && body.contains("error")
                              ? body["error"].value("message", "")
                              : "HTTP " + std::to_string(reply->status);
        return ctx.Fail(Status::Unavailable("events: " + msg));
      }
      if (!reply.ok() && reply.status().code() == Status::Code::kUnavailable && !connected_once) {
        return ctx.Fail(Status::Unavailable("cannot reach ferryd: " + reply.status().message() +
                                            "; start ferryd or point FERRY_SOCKET / --socket at "
                                            "its socket"));
      }
      connected_once = true;
      // ferryd went away (restart, stop): follow again from the last event seen.
      // Said once per lost stream, not once per attempt while ferryd is away.
      if (streamed) {
        std::cerr << "ferry: event stream ended; reconnecting after event "
                  << std::max<int64_t>(last, 0) << "\n";
      }
      if (last < 0) last = 0;
      std::this_thread::sleep_for(std::chrono::seconds(1));
    }
  });
}

}  // namespace ferry::cli
