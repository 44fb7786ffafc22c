// ferry-bench: runs the registered benchmark entries and prints their tables. Wiring only: the
// protocol is in runner.h, the entries in their own files (cold_boot.cc, ...).
#include <CLI/CLI.hpp>
#include <cstdio>
#include <iostream>

#include "bench/harness/result_table.h"
#include "bench/harness/runner.h"
#include "bench/harness/testbed.h"

#ifndef FERRY_BENCH_DEFAULT_BUILD_DIR
#define FERRY_BENCH_DEFAULT_BUILD_DIR "build"
#endif

int main(int argc, char** argv) {
  using namespace ferry::bench;
  CLI::App app{"ferry-bench: wall-clock benchmarks of ferry next to bare QEMU"};
  BenchConfig config;
  config.build_dir = FERRY_BENCH_DEFAULT_BUILD_DIR;
  bool as_json = false;
  app.add_option("--runs", config.runs, "timed runs per side (after one warm-up each)")
      ->capture_default_str()
      ->check(CLI::Range(1, 1000));
  app.add_option("--only", config.only, "run only this entry (e.g. cold_boot)");
  app.add_flag("--json", as_json, "print results as JSON on stdout (the table goes to stderr)");
  app.add_option("--build-dir", config.build_dir, "build tree with ferryd, ferry and images/")
      ->capture_default_str();
  app.add_option("--memory", config.memory_mib, "guest RAM in MiB")
      ->capture_default_str()
      ->check(CLI::Range(64, 65536));
  app.add_option(
      "--cases", config.cases,
      "entries made of cases: only these, comma-separated (migration: 256i,256l,1gi,1gl)");
  app.add_option("--qemu", config.qemu_binary,
                 "QEMU binary of both sides (ferryd's --qemu and the bare comparison)")
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  InstallInterruptHandlers();
  std::ostream& table_out = as_json ? std::cerr : std::cout;
  Runner runner(config, [](const std::string& line) { std::cerr << line << std::endl; });

  auto names = runner.Selected();
  if (!names.ok()) {
    std::cerr << "ferry-bench: " << names.status().message() << "\n";
    return 1;
  }
  table_out << "ferry-bench: " << config.runs
            << " timed runs per side after one warm-up each, sides interleaved; build "
            << config.build_dir << "; QEMU " << config.qemu_binary << "\n\n";
  nlohmann::json results = nlohmann::json::array();
  for (const std::string& name : *names) {
    auto result = runner.Run(name);
    if (!result.ok()) {
      std::cerr << "ferry-bench: " << result.status().message() << "\n";
      return Interrupted() ? 130 : 1;
    }
    PrintResultTable(*result, table_out);
    table_out << "\n";
    results.push_back(result->ToJson());
  }
  if (as_json) {
    nlohmann::json doc = {{"runs", config.runs},
                          {"memory_mib", config.memory_mib},
                          {"build_dir", config.build_dir},
                          {"qemu", config.qemu_binary},
                          {"entries", results}};
    std::cout << doc.dump(2) << "\n";
  }
  return 0;
}
