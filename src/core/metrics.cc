#include "core/metrics.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>

namespace ferry::metrics {

void Counter::Inc(double by) { value_.fetch_add(by, std::memory_order_relaxed); }

void Gauge::Add(double by) { value_.fetch_add(by, std::memory_order_relaxed); }

Histogram::Histogram(std::vector<double> bounds)
    : bounds_(std::move(bounds)),
      buckets_(std::make_unique<std::atomic<uint64_t>[]>(bounds_.size() + 1)) {}

void Histogram::Observe(double v) {
  size_t i = std::lower_bound(bounds_.begin(), bounds_.end(), v) - bounds_.begin();
  buckets_[i].fetch_add(1, std::memory_order_relaxed);
  sum_.fetch_add(v, std::memory_order_relaxed);
  count_.fetch_add(1, std::memory_order_relaxed);
}

std::vector<uint64_t> Histogram::CumulativeCounts() const {
  std::vector<uint64_t> out(bounds_.size() + 1);
  uint64_t running = 0;
  for (size_t i = 0; i < out.size(); ++i) {
    running += buckets_[i].load(std::memory_order_relaxed);
    out[i] = running;
  }
  return out;
}

std::vector<double> SecondsBuckets() {
  return {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600};
}

std::vector<double> BytesBuckets() {
  std::vector<double> b;
  for (double v = 1 << 20; v <= 64.0 * (1ull << 30); v *= 4) b.push_back(v);
  return b;
}

std::string EscapeLabelValue(const std::string& v) {
  std::string out;
  out.reserve(v.size());
  for (char c : v) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

std::string FormatValue(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  char buf[64];
  if (v == std::floor(v) && std::fabs(v) < 1e15) {
    std::snprintf(buf, sizeof buf, "%.0f", v);
  } else {
    // The shortest of 15 or 17 digits that reads back as the same double: 0.1, not 0.1000...01.
    std::snprintf(buf, sizeof buf, "%.15g", v);
    if (std::strtod(buf, nullptr) != v) std::snprintf(buf, sizeof buf, "%.17g", v);
  }
  return buf;
}

namespace {

std::string LabelText(const std::vector<std::string>& names, const Labels& values,
                      const std::string& extra = "") {
  std::string out;
  for (size_t i = 0; i < names.size() && i < values.size(); ++i) {
    if (!out.empty()) out += ',';
    out += names[i] + "=\"" + EscapeLabelValue(values[i]) + "\"";
  }
  if (!extra.empty()) {
    if (!out.empty()) out += ',';
    out += extra;
  }
  return out.empty() ? "" : "{" + out + "}";
}

// HELP text escapes only backslash and newline.
std::string EscapeHelp(const std::string& h) {
  std::string out;
  for (char c : h) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

void Header(std::string& out, const std::string& name, const std::string& help, const char* type) {
  out += "# HELP " + name + " " + EscapeHelp(help) + "\n# TYPE " + name + " " + type + "\n";
}

template <typename T>
T& Add(std::mutex& mu, std::map<std::string, std::unique_ptr<T>>& families, const std::string& name,
       std::function<std::unique_ptr<T>()> make) {
  std::lock_guard<std::mutex> lock(mu);
  auto& slot = families[name];
  if (!slot) slot = make();
  return *slot;
}

}  // namespace

Family<Counter>& Registry::AddCounter(const std::string& name, const std::string& help,
                                      std::vector<std::string> label_names) {
  return Add<Family<Counter>>(mu_, counters_, name, [&] {
    return std::make_unique<Family<Counter>>(name, help, label_names,
                                             [] { return std::make_unique<Counter>(); });
  });
}

Family<Gauge>& Registry::AddGauge(const std::string& name, const std::string& help,
                                  std::vector<std::string> label_names) {
  return Add<Family<Gauge>>(mu_, gauges_, name, [&] {
    return std::make_unique<Family<Gauge>>(name, help, label_names,
                                           [] { return std::make_unique<Gauge>(); });
  });
}

Family<Histogram>& Registry::AddHistogram(const std::string& name, const std::string& help,
                                          std::vector<std::string> label_names,
                                          std::vector<double> bounds) {
  return Add<Family<Histogram>>(mu_, histograms_, name, [&] {
    return std::make_unique<Family<Histogram>>(
        name, help, label_names, [bounds] { return std::make_unique<Histogram>(bounds); });
  });
}

void Registry::AddCollector(const std::string& name, const std::string& help,
                            std::vector<std::string> label_names,
                            std::function<GaugeSamples()> collect) {
  std::lock_guard<std::mutex> lock(mu_);
  collectors_[name] = Collector{help, std::move(label_names), std::move(collect)};
}

std::string Registry::Render() {
  // Families are never removed, so pointers taken under the lock stay valid after it.
  std::map<std::string, std::function<void(std::string&)>> parts;
  std::map<std::string, Collector> collectors;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& [name, f] : counters_) {
      Family<Counter>* fam = f.get();
      parts[name] = [fam](std::string& out) {
        Header(out, fam->name(), fam->help(), "counter");
        fam->ForEach([&](const Labels& l, const Counter& c) {
          out += fam->name() + LabelText(fam->label_names(), l) + " " + FormatValue(c.value()) +
                 "\n";
        });
      };
    }
    for (auto& [name, f] : gauges_) {
      Family<Gauge>* fam = f.get();
      parts[name] = [fam](std::string& out) {
        Header(out, fam->name(), fam->help(), "gauge");
        fam->ForEach([&](const Labels& l, const Gauge& g) {
          out += fam->name() + LabelText(fam->label_names(), l) + " " + FormatValue(g.value()) +
                 "\n";
        });
      };
    }
    for (auto& [name, f] : histograms_) {
      Family<Histogram>* fam = f.get();
      parts[name] = [fam](std::string& out) {
        Header(out, fam->name(), fam->help(), "histogram");
        fam->ForEach([&](const Labels& l, const Histogram& h) {
          const auto counts = h.CumulativeCounts();
          for (size_t i = 0; i < counts.size(); ++i) {
            std::string le =
                i < h.bounds().size() ? FormatValue(h.bounds()[i]) : std::string("+Inf");
            out += fam->name() + "_bucket" +
                   LabelText(fam->label_names(), l, "le=\"" + le + "\"") + " " +
                   std::to_string(counts[i]) + "\n";
          }
          const std::string labels = LabelText(fam->label_names(), l);
          out += fam->name() + "_sum" + labels + " " + FormatValue(h.sum()) + "\n";
          out += fam->name() + "_count" + labels + " " + std::to_string(counts.back()) + "\n";
        });
      };
    }
    collectors = collectors_;
  }
  for (auto& [name, c] : collectors) {
    parts[name] = [name = name, c = c](std::string& out) {
      Header(out, name, c.help, "gauge");
      for (const auto& [labels, v] : c.collect()) {
        out += name + LabelText(c.label_names, labels) + " " + FormatValue(v) + "\n";
      }
    };
  }
  std::string out;
  for (auto& [name, render] : parts) render(out);
  return out;
}

Registry& Default() {
  static Registry* registry = new Registry();  // never destroyed: recorded into until exit
  return *registry;
}

}  // namespace ferry::metrics
