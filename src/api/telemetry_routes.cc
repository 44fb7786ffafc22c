// Routes over what ferryd reports: the event stream and metrics.
#include "api/api_server.h"

#include <httplib.h>

#include "api/api_reply.h"
#include "core/event_log.h"
#include "core/metrics.h"

namespace ferry::api {

using nlohmann::json;

EventStreamStart StartEventStream(uint64_t since, uint64_t newest) {
  EventStreamStart start;
  start.since = since;
  if (since > newest) {
    start.since = 0;
    start.notice = json{{"type", "events.restarted"},
                        {"since", since},
                        {"message", "ferryd restarted since event " + std::to_string(since) +
                                        "; its events are numbered from 1 again, and the stream "
                                        "starts with the oldest event kept"}}
                       .dump();
  }
  return start;
}

std::string EventsLostLine(uint64_t since, uint64_t first_kept) {
  return json{{"type", "events.lost"},
              {"since", since},
              {"first_kept", first_kept},
              {"message", "events " + std::to_string(since + 1) + " to " +
                              std::to_string(first_kept - 1) + " are gone (ferryd keeps the " +
                              std::to_string(EventLog::kDefaultCapacity) +
                              " newest); following from " + std::to_string(first_kept)}}
      .dump();
}

void ApiServer::TelemetryRoutes() {
  httplib::Server& s = *server_;
  s.Get("/metrics", [](const httplib::Request&, httplib::Response& res) {
    res.status = 200;
    res.set_content(metrics::Default().Render(), "text/plain; version=0.0.4; charset=utf-8");
  });
  // A long-lived stream of JSON lines (chunked), from the event after `since` (default: only
  // what happens from now on). It ends when the client goes or ferryd stops.
  s.Get("/v1/events", [this](const httplib::Request& req, httplib::Response& res) {
    EventLog& log = Events();
    uint64_t since = log.last_seq();
    if (req.has_param("since")) {
      auto parsed = ParseEventSince(req.get_param_value("since"));
      if (!parsed.ok()) return ReplyError(res, parsed.status());
      since = *parsed;
    }
    auto start = std::make_shared<EventStreamStart>(StartEventStream(since, log.last_seq()));
    res.status = 200;
    res.set_chunked_content_provider(
        "application/x-ndjson", [this, start, &log](size_t, httplib::DataSink& sink) {
          if (!start->notice.empty()) {
            std::string line = start->notice + "\n";
            start->notice.clear();
            if (!sink.write(line.data(), line.size())) return false;
          }
          EventLog::Batch b = log.Read(start->since, 256, std::chrono::milliseconds(1000));
          if (log.closed() || stopping_.load()) {
            sink.done();
            return true;
          }
          std::string out;
          if (b.gap_from) out += EventsLostLine(start->since, *b.gap_from) + "\n";
          for (const auto& l : b.lines) out += l + "\n";
          start->since = b.last_seq;
          if (!out.empty() && !sink.write(out.data(), out.size())) return false;
          return sink.is_writable();
        });
  });
}

}  // namespace ferry::api
