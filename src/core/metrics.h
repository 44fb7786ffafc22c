// A small metrics registry that renders the Prometheus text exposition format (version 0.0.4).
//
// Families are registered once, by name, with their label names; a child per label set is made on
// first use and lives as long as the registry, so a caller may keep the reference it gets.
// Recording is lock-free (atomics): a counter or histogram costs a few atomic adds, which is what
// lets ferryd record on every operation and still cost nothing measurable (bench/README.md).
// Gauges that are cheaper to read than to keep current (VMs by state, a RAM directory's bytes)
// are collectors: a callback run at scrape time.
//
// Thread-safe: every method may be called from any thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

namespace ferry::metrics {

using Labels = std::vector<std::string>;  // values, in the family's label-name order

class Counter {
 public:
  void Inc(double by = 1);
  double value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0};
};

class Gauge {
 public:
  void Set(double v) { value_.store(v, std::memory_order_relaxed); }
  void Add(double by);
  double value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0};
};

class Histogram {
 public:
  // REQUIRES: `bounds` ascending (the +Inf bucket is implicit).
  explicit Histogram(std::vector<double> bounds);
  void Observe(double v);
  const std::vector<double>& bounds() const { return bounds_; }
  // Cumulative counts per bound, then +Inf (what the exposition format lists).
  std::vector<uint64_t> CumulativeCounts() const;
  double sum() const { return sum_.load(std::memory_order_relaxed); }
  uint64_t count() const { return count_.load(std::memory_order_relaxed); }

 private:
  const std::vector<double> bounds_;
  std::unique_ptr<std::atomic<uint64_t>[]> buckets_;  // bounds_.size() + 1, not cumulative
  std::atomic<double> sum_{0};
  std::atomic<uint64_t> count_{0};
};

// Seconds from 5 ms to 10 minutes; bytes from 1 MiB to 64 GiB.
std::vector<double> SecondsBuckets();
std::vector<double> BytesBuckets();

// One metric name with its children, one per label set.
template <typename T>
class Family {
 public:
  Family(std::string name, std::string help, std::vector<std::string> label_names,
         std::function<std::unique_ptr<T>()> make)
      : name_(std::move(name)), help_(std::move(help)), label_names_(std::move(label_names)),
        make_(std::move(make)) {}
  // REQUIRES: labels.size() == label names' size.
  T& With(const Labels& labels = {}) {
    std::lock_guard<std::mutex> lock(mu_);
    auto& slot = children_[labels];
    if (!slot) slot = make_();
    return *slot;
  }
  const std::string& name() const { return name_; }
  const std::string& help() const { return help_; }
  const std::vector<std::string>& label_names() const { return label_names_; }
  // Calls `f(labels, child)` for every child, in label order.
  void ForEach(const std::function<void(const Labels&, const T&)>& f) {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& [labels, child] : children_) f(labels, *child);
  }

 private:
  const std::string name_, help_;
  const std::vector<std::string> label_names_;
  const std::function<std::unique_ptr<T>()> make_;
  std::mutex mu_;
  std::map<Labels, std::unique_ptr<T>> children_;
};

// A gauge read at scrape time: the callback returns one value per label set.
using GaugeSamples = std::vector<std::pair<Labels, double>>;

class Registry {
 public:
  // Registering a name twice returns the first family (the kind and labels must agree).
  Family<Counter>& AddCounter(const std::string& name, const std::string& help,
                              std::vector<std::string> label_names = {});
  Family<Gauge>& AddGauge(const std::string& name, const std::string& help,
                          std::vector<std::string> label_names = {});
  Family<Histogram>& AddHistogram(const std::string& name, const std::string& help,
                                  std::vector<std::string> label_names, std::vector<double> bounds);
  void AddCollector(const std::string& name, const std::string& help,
                    std::vector<std::string> label_names, std::function<GaugeSamples()> collect);

  // The text exposition format, families in name order. Collectors run on this thread.
  std::string Render();

 private:
  struct Collector {
    std::string help;
    std::vector<std::string> label_names;
    std::function<GaugeSamples()> collect;
  };
  std::mutex mu_;
  std::map<std::string, std::unique_ptr<Family<Counter>>> counters_;
  std::map<std::string, std::unique_ptr<Family<Gauge>>> gauges_;
  std::map<std::string, std::unique_ptr<Family<Histogram>>> histograms_;
  std::map<std::string, Collector> collectors_;
};

// The process's registry: what ferryd serves on /metrics. Libraries record into it directly.
Registry& Default();

// A label value or HELP text escaped as the exposition format wants (\\, \", \n).
std::string EscapeLabelValue(const std::string& v);
// A sample value: integers without a fraction, +Inf/-Inf/NaN spelled as Prometheus spells them.
std::string FormatValue(double v);

}  // namespace ferry::metrics
