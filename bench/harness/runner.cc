#include "bench/harness/runner.h"

#include <unistd.h>

#include <cstdio>
#include <fstream>

#include "bench/harness/testbed.h"

namespace ferry::bench {

const char* SideName(Side side) {
  switch (side) {
    case Side::kFerry:
      return "ferry";
    case Side::kComparison:
      return "comparison";
    case Side::kSecondComparison:
      return "second comparison";
  }
  return "?";
}

const std::string& EntryInfo::Label(Side side) const {
  switch (side) {
    case Side::kFerry:
      return ferry_label;
    case Side::kComparison:
      return comparison_label;
    case Side::kSecondComparison:
      return second_comparison_label;
  }
  return ferry_label;
}

namespace {
// The 1-minute load average, as /proc/loadavg prints it; "?" if unreadable.
std::string LoadAverage() {
  std::ifstream in("/proc/loadavg");
  std::string one;
  return in >> one ? one : "?";
}
}  // namespace

std::vector<std::pair<std::string, EntryFactory>>& EntryRegistry() {
  static std::vector<std::pair<std::string, EntryFactory>> entries;
  return entries;
}

bool RegisterEntry(const std::string& name, EntryFactory factory) {
  EntryRegistry().emplace_back(name, std::move(factory));
  return true;
}

nlohmann::json EntryResult::ToJson() const {
  nlohmann::json figs = nlohmann::json::array();
  for (const auto& f : figures) figs.push_back(f.ToJson());
  return {{"name", info.name},
          {"title", info.title},
          {"ferry_side", info.ferry_side},
          {"comparison_side", info.comparison_side},
          {"second_comparison_side", info.second_comparison_side},
          {"side_labels",
           {info.ferry_label, info.comparison_label,
            info.second_comparison_side.empty() ? "" : info.second_comparison_label}},
          {"figures", figs},
          {"notes", notes}};
}

Result<std::vector<std::string>> Runner::Selected() const {
  std::vector<std::string> names;
  std::string known;
  for (const auto& [name, factory] : EntryRegistry()) {
    known += (known.empty() ? "" : ", ") + name;
    if (config_.only.empty() || config_.only == name) names.push_back(name);
  }
  if (names.empty()) {
    return Status::NotFound("no benchmark entry named '" + config_.only + "'; entries: " + known);
  }
  return names;
}

Result<EntryResult> Runner::Run(const std::string& name) {
  std::unique_ptr<BenchEntry> entry;
  for (const auto& [n, factory] : EntryRegistry()) {
    if (n == name) entry = factory();
  }
  if (!entry) return Status::NotFound("no benchmark entry named '" + name + "'");
  EntryInfo info = entry->Info();

  const std::string load_before = LoadAverage();
  Status st = entry->SetUp(config_);
  Result<EntryResult> result = st.ok() ? RunRounds(*entry, info) : Result<EntryResult>(st);
  if (result.ok()) {
    result->notes = entry->Notes();
    // Other work on the host moves every absolute number; the ratios are what compare.
    result->notes.push_back("host: " + std::to_string(::sysconf(_SC_NPROCESSORS_ONLN)) +
                            " CPUs; 1-minute load average " + load_before + " before the entry, " +
                            LoadAverage() + " after it");
  }
  entry->TearDown();
  if (!result.ok()) return result.status().WithContext(name);
  return result;
}

Result<EntryResult> Runner::RunRounds(BenchEntry& entry, const EntryInfo& info) {
  std::vector<Side> sides = {Side::kFerry};
  if (!info.comparison_side.empty()) sides.push_back(Side::kComparison);
  if (!info.second_comparison_side.empty()) sides.push_back(Side::kSecondComparison);

  EntryResult result;
  result.info = info;
  for (const FigureSpec& spec : info.figures) result.figures.push_back({spec, {}, {}, {}});

  auto run_one = [&](const Trial& trial) -> Result<Measurements> {
    if (Interrupted()) return Status::Unavailable("interrupted");
    const std::string what =
        trial.warm_up() ? "warm-up"
                        : "run " + std::to_string(trial.round) + "/" + std::to_string(config_.runs);
    const std::string& side = info.Label(trial.side);
    progress_(info.name + ": " + what + ", " + side + " ...");
    auto m = entry.RunOnce(trial);
    if (!m.ok()) return m.status().WithContext(side + " side, " + what);
    std::string line = info.name + ": " + what + ", " + side + ":";
    for (const auto& [key, ms] : *m) {
      char buf[128];
      std::snprintf(buf, sizeof buf, " %s=%.1f", key.c_str(), ms);
      line += buf;
    }
    progress_(line);
    return m;
  };

  for (Side side : sides) {
    auto m = run_one({side, 0});
    if (!m.ok()) return m.status();
  }
  for (int round = 1; round <= config_.runs; ++round) {
    for (Side side : sides) {
      auto m = run_one({side, round});
      if (!m.ok()) return m.status();
      for (FigureResult& fig : result.figures) {
        // Which of this figure's sample lists this side's run feeds, and from which key.
        std::vector<std::pair<const std::string*, std::vector<double>*>> wanted;
        if (side == Side::kFerry) wanted.push_back({&fig.spec.ferry_key, &fig.ferry_ms});
        if (side != Side::kSecondComparison &&
            (side == Side::kFerry) == fig.spec.comparison_on_ferry_side) {
          wanted.push_back({&fig.spec.comparison_key, &fig.comparison_ms});
        }
        if (side == Side::kSecondComparison) {
          wanted.push_back({&fig.spec.second_comparison_key, &fig.second_comparison_ms});
        }
        for (const auto& [key, samples] : wanted) {
          if (key->empty()) continue;
          auto it = m->find(*key);
          if (it == m->end()) {
            if (fig.spec.optional) continue;
            return Status::Internal("entry measured no '" + *key + "' on the " + info.Label(side) +
                                    " side");
          }
          samples->push_back(it->second);
        }
      }
    }
  }
  return result;
}

}  // namespace ferry::bench
