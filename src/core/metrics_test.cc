#include "core/metrics.h"

#include <gtest/gtest.h>

#include <thread>
#include <vector>

namespace ferry::metrics {
namespace {

TEST(MetricsTest, CounterRendersWithHelpTypeAndLabels) {
  Registry r;
  auto& ops = r.AddCounter("ferry_operations_total", "Operations finished", {"kind", "result"});
  ops.With({"clone", "succeeded"}).Inc();
  ops.With({"clone", "succeeded"}).Inc(2);
  ops.With({"create", "failed"}).Inc();
  const std::string text = r.Render();
  EXPECT_NE(text.find("# HELP ferry_operations_total Operations finished\n"
                      "# TYPE ferry_operations_total counter\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("ferry_operations_total{kind=\"clone\",result=\"succeeded\"} 3\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("ferry_operations_total{kind=\"create\",result=\"failed\"} 1\n"),
            std::string::npos)
      << text;
}

TEST(MetricsTest, HistogramBucketsAreCumulativeWithInfSumAndCount) {
  Registry r;
  auto& h = r.AddHistogram("ferry_x_seconds", "x", {}, {0.1, 1});
  h.With().Observe(0.05);
  h.With().Observe(0.5);
  h.With().Observe(0.5);
  h.With().Observe(7);
  const std::string text = r.Render();
  EXPECT_NE(text.find("ferry_x_seconds_bucket{le=\"0.1\"} 1\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("ferry_x_seconds_bucket{le=\"1\"} 3\n"), std::string::npos) << text;
  EXPECT_NE(text.find("ferry_x_seconds_bucket{le=\"+Inf\"} 4\n"), std::string::npos) << text;
  EXPECT_NE(text.find("ferry_x_seconds_sum 8.05"), std::string::npos) << text;
  EXPECT_NE(text.find("ferry_x_seconds_count 4\n"), std::string::npos) << text;
}

TEST(MetricsTest, ABoundaryValueFallsInItsBucket) {
  Histogram h({1, 2});
  h.Observe(1);
  h.Observe(2);
  EXPECT_EQ(h.CumulativeCounts(), (std::vector<uint64_t>{1, 2, 2}));
}

TEST(MetricsTest, LabelValuesAreEscaped) {
  Registry r;
  r.AddGauge("ferry_g", "g", {"name"}).With({"a\"b\\c\nd"}).Set(1.5);
  EXPECT_NE(r.Render().find("ferry_g{name=\"a\\\"b\\\\c\\nd\"} 1.5\n"), std::string::npos)
      << r.Render();
}

TEST(MetricsTest, CollectorsRunAtRenderAndFamiliesAreSortedByName) {
  Registry r;
  int calls = 0;
  r.AddCollector("ferry_vms", "VMs", {"state"}, [&] {
    ++calls;
    return GaugeSamples{{{"running"}, 2}, {{"stopped"}, 0}};
  });
  r.AddCounter("ferry_a_total", "a").With().Inc();
  const std::string text = r.Render();
  EXPECT_EQ(calls, 1);
  EXPECT_LT(text.find("ferry_a_total"), text.find("ferry_vms"));
  EXPECT_NE(text.find("# TYPE ferry_vms gauge\nferry_vms{state=\"running\"} 2\n"
                      "ferry_vms{state=\"stopped\"} 0\n"),
            std::string::npos)
      << text;
}

TEST(MetricsTest, RegisteringTwiceReturnsTheSameFamily) {
  Registry r;
  auto& a = r.AddCounter("ferry_c_total", "c", {"k"});
  auto& b = r.AddCounter("ferry_c_total", "c", {"k"});
  EXPECT_EQ(&a, &b);
}

TEST(MetricsTest, ConcurrentRecordingLosesNothing) {
  Registry r;
  auto& c = r.AddCounter("ferry_c_total", "c", {"t"});
  auto& h = r.AddHistogram("ferry_h_seconds", "h", {}, SecondsBuckets());
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 10000; ++i) {
        c.With({"x"}).Inc();
        h.With().Observe(0.02);
        if (i % 1000 == 0) r.Render();
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(c.With({"x"}).value(), 40000);
  EXPECT_EQ(h.With().count(), 40000u);
  EXPECT_EQ(h.With().CumulativeCounts().back(), 40000u);
}

TEST(MetricsTest, ValuesAreFormattedAsPrometheusReadsThem) {
  EXPECT_EQ(FormatValue(3), "3");
  EXPECT_EQ(FormatValue(0.25), "0.25");
  EXPECT_EQ(FormatValue(0.1), "0.1");
  EXPECT_EQ(FormatValue(0.03), "0.03");
  EXPECT_EQ(FormatValue(1.0 / 0.0), "+Inf");
  EXPECT_EQ(FormatValue(-1.0 / 0.0), "-Inf");
  EXPECT_EQ(FormatValue(0.0 / 0.0), "NaN");
  EXPECT_EQ(FormatValue(68719476736.0), "68719476736");
}

}  // namespace
}  // namespace ferry::metrics
