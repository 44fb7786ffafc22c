#include "bench/drivers/memory_phase.h"

#include <map>

namespace ferry::bench {

using nlohmann::json;

namespace {

// QEMU's reply member at `path` ("total-time", "ram.mbps") if it is a number.
const json* NumberAt(const json& reply, const std::string& path) {
  const json* at = &reply;
  size_t from = 0;
  while (from <= path.size()) {
    size_t dot = path.find('.', from);
    const std::string name = path.substr(from, dot == std::string::npos ? dot : dot - from);
    if (!at->is_object() || !at->contains(name)) return nullptr;
    at = &(*at)[name];
    if (dot == std::string::npos) break;
    from = dot + 1;
  }
  return at->is_number() ? at : nullptr;
}

// Parameters and capabilities flattened to name -> value text.
std::map<std::string, std::string> Flatten(const json& settings) {
  std::map<std::string, std::string> out;
  if (!settings.is_object()) return out;
  if (auto p = settings.find("parameters"); p != settings.end() && p->is_object()) {
    for (auto it = p->begin(); it != p->end(); ++it) {
      if (it.key().rfind("tls-", 0) == 0 || it.key().rfind("announce-", 0) == 0) continue;
      out[it.key()] = it.value().dump();
    }
  }
  if (auto c = settings.find("capabilities"); c != settings.end() && c->is_array()) {
    for (const json& cap : *c) {
      if (cap.is_object() && cap.contains("capability")) {
        out["cap " + cap["capability"].dump()] = cap.value("state", json()).dump();
      }
    }
  }
  return out;
}

}  // namespace

const std::vector<MemoryPhaseFigure>& MemoryPhaseFigures() {
  static const std::vector<MemoryPhaseFigure> figures = {
      {"setup_ms", "QEMU setup-time", "setup-time"},
      {"ram_mbps", "QEMU ram mbps (Mbit/s)", "ram.mbps"},
      {"dirty_syncs", "QEMU dirty-sync-count (passes)", "ram.dirty-sync-count"},
      {"dirty_rate", "QEMU dirty-pages-rate (pages/s)", "ram.dirty-pages-rate"},
      {"normal_pages", "QEMU normal pages sent", "ram.normal"},
      {"dup_pages", "QEMU duplicate (zero) pages", "ram.duplicate"},
      {"precopy_mib", "QEMU precopy-bytes (MiB)", "ram.precopy-bytes"},
      {"downtime_mib", "QEMU downtime-bytes (MiB)", "ram.downtime-bytes"},
      {"throttle_pct", "QEMU cpu-throttle-percentage", "cpu-throttle-percentage"},
  };
  return figures;
}

void AddMemoryPhaseMeasurements(const MoveFigures& f, const std::string& prefix, Measurements& m) {
  for (const MemoryPhaseFigure& figure : MemoryPhaseFigures()) {
    const json* n = NumberAt(f.qemu_migrate, figure.path);
    if (!n) continue;
    double v = n->get<double>();
    if (std::string(figure.key).find("_mib") != std::string::npos) v /= (1 << 20);
    m[prefix + figure.key] = v;
  }
}

std::string SettingsDifference(const json& a, const json& b) {
  const auto fa = Flatten(a);
  const auto fb = Flatten(b);
  std::string out;
  auto add = [&out](const std::string& name, const std::string& x, const std::string& y) {
    out += (out.empty() ? "" : "; ") + name + ": " + x + " vs " + y;
  };
  for (const auto& [name, value] : fa) {
    auto it = fb.find(name);
    const std::string other = it == fb.end() ? "(absent)" : it->second;
    if (other != value) add(name, value, other);
  }
  for (const auto& [name, value] : fb) {
    if (!fa.count(name)) add(name, "(absent)", value);
  }
  return out;
}

}  // namespace ferry::bench
