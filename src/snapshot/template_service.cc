#include "snapshot/template_service.h"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include "core/event_log.h"
#include "core/files.h"
#include "core/guarded_thread.h"
#include "core/ids.h"
#include "core/metrics.h"
#include "snapshot/pool_refill.h"
#include "snapshot/waiting_qemu_dir.h"
#include "vm/tap_device.h"
#include "vm/vm_policy.h"

namespace ferry::snapshot {

using nlohmann::json;
using std::chrono::milliseconds;

namespace {
constexpr int kMaxPoolSize = 64;
constexpr const char* kPoolPrefix = ".pool-";
}  // namespace

TemplateService::TemplateService(vm::VmService& vms, registry::Registry& registry,
                                 SnapshotService& snapshots)
    : vms_(vms), rows_(registry), snapshots_(snapshots) {
  KillStalePoolQemus();
  auto all = rows_.List([](const Status& damaged) {
    spdlog::error("templates: {}; left as it is", damaged.message());
    return true;
  });
  if (all.ok()) {
    for (const auto& [name, row] : *all) {
      Pool& p = pools_[name];
      p.snapshot = row.snapshot;
      p.size = row.pool_size;
    }
  }
  // Without a keeper the pools are not refilled, but clones still work (cold): not fatal.
  auto keeper = StartGuardedThread("template pool keeper", [this] { Keep(); });
  if (keeper.ok()) {
    keeper_ = std::move(keeper).value();
  } else {
    spdlog::error("{}; template pools will not be refilled", keeper.status().message());
  }
}

TemplateService::~TemplateService() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (keeper_.joinable()) keeper_.join();
  for (auto& [name, pool] : pools_) {
    for (auto& q : pool.ready) Discard(q);
  }
}

void TemplateService::Discard(WarmQemu& warm) {
  vm::PrelaunchedQemu& q = warm.qemu;
  if (!q.runtime) return;
  q.runtime->Kill();
  q.runtime->WaitExit(milliseconds(5000));
  q.runtime.reset();
  RemoveAll(q.paths.dir);
  // A pool QEMU of a tap VM has a tap of its own, named after the VM it would have become.
  if (!q.vm_id.empty()) (void)vm::TapDevice(vm::TapDevice::NameFor(q.vm_id), "").Remove();
}

Result<WarmQemu> TemplateService::StartPoolQemu(const std::string& pool_name,
                                                const std::string& snapshot) {
  FERRY_ASSIGN_OR_RETURN(auto planned, snapshots_.ClonePlan(snapshot, "pool", std::nullopt));
  // Without a warm QEMU, ClonePlan plans a clone in a QEMU of its own: the one started here.
  const auto* clone = std::get_if<vm::CloneLaunch>(&planned.second);
  if (clone == nullptr) return Status::Internal("template " + pool_name + ": not a clone plan");
  const std::string dir = vms_.config().state_dir + "/vms/" + kPoolPrefix + NewId();
  WarmQemu warm;
  FERRY_ASSIGN_OR_RETURN(warm.qemu,
                         vms_.Prelaunch(planned.first, *clone, vm::VmPaths::ForDir(dir)));
  // Lets a restarted ferryd find and end this QEMU if it is still waiting then.
  RecordWaitingQemu(dir, *warm.qemu.runtime);
  Status loaded = snapshots_.Preload(snapshot, *warm.qemu.runtime);
  if (!loaded.ok()) {
    Discard(warm);
    return loaded;
  }
  auto primed = PrimePoolQemu(*warm.qemu.runtime, HostnameFor(pool_name));
  if (primed.ok()) {
    warm.primed = std::move(primed).value();
  } else if (primed.status().code() == Status::Code::kNotFound) {
    spdlog::info("template {}: pool QEMU not primed: {}", pool_name, primed.status().message());
  } else {
    Discard(warm);
    return primed.status().WithContext("template " + pool_name);
  }
  return warm;
}

void TemplateService::KillStalePoolQemus() { KillStaleWaitingQemus(vms_, kPoolPrefix); }

void TemplateService::Keep() {
  std::unique_lock<std::mutex> lock(mu_);
  while (!stopping_) {
    // Drop pool QEMUs that died while waiting and those beyond a lowered size; then find one
    // pool that is short (pool_refill.h).
    std::vector<std::pair<std::string, PoolLevel>> levels;
    for (auto& [name, pool] : pools_) {
      for (auto it = pool.ready.begin(); it != pool.ready.end();) {
        if (it->qemu.runtime->Exited()) {
          spdlog::warn("template {}: a pool QEMU died while waiting; replacing it", name);
          Discard(*it);
          it = pool.ready.erase(it);
        } else {
          ++it;
        }
      }
      PoolLevel level{
          static_cast<int>(pool.ready.size()), pool.starting, pool.size,
          pool.clone_in_flight && pool.clone_in_flight->state() == OperationState::kRunning};
      for (int n = Surplus(level); n > 0; --n) {
        Discard(pool.ready.back());
        pool.ready.pop_back();
      }
      level.ready = static_cast<int>(pool.ready.size());
      if (!level.clone_running) pool.clone_in_flight.reset();
      levels.emplace_back(name, level);
    }
    const RefillPlan plan = PlanRefill(levels);
    const std::string& short_pool = plan.start_for;
    if (short_pool.empty()) {
      cv_.wait_for(lock, milliseconds(plan.clone_running ? 20 : 500));
      continue;
    }
    Pool& pool = pools_[short_pool];
    const std::string snapshot = pool.snapshot;
    ++pool.starting;
    lock.unlock();
    Result<WarmQemu> q = StartPoolQemu(short_pool, snapshot);
    lock.lock();
    auto it = pools_.find(short_pool);
    if (it == pools_.end()) {
      if (q.ok()) Discard(*q);
      continue;
    }
    --it->second.starting;
    if (q.ok()) {
      it->second.ready.push_back(std::move(q).value());
      PoolRefilled(short_pool, it->second.ready.size(), it->second.size);
    } else {
      spdlog::error("template {}: cannot start a pool QEMU: {}", short_pool, q.status().message());
      cv_.wait_for(lock, milliseconds(2000));  // do not spin on a persistent failure
    }
  }
}

void TemplateService::PoolRefilled(const std::string& name, size_t ready, int size) {
  static auto& refills = metrics::Default().AddCounter(
      "ferry_pool_refills_total", "Warm-pool QEMUs started, per template", {"template"});
  refills.With({name}).Inc();
  Events().Publish("pool.refilled", {{"template", name}, {"ready", ready}, {"size", size}});
}

void TemplateService::CountPoolUse(const std::string& name, bool hit) {
  static auto& hits = metrics::Default().AddCounter(
      "ferry_pool_hits_total", "Clones of a template served by a warm-pool QEMU", {"template"});
  static auto& misses = metrics::Default().AddCounter(
      "ferry_pool_misses_total", "Clones of a template that found its warm pool empty (cold)",
      {"template"});
  (hit ? hits : misses).With({name}).Inc();
}

Result<TemplateRow> TemplateService::Record(const std::string& name) {
  FERRY_RETURN_IF_ERROR(ValidateName("template", name));
  FERRY_ASSIGN_OR_RETURN(std::optional<TemplateRow> row, rows_.Find(name));
  if (row) return std::move(*row);
  return Status::NotFound("template " + name + " does not exist; `ferry template list` shows them");
}

Status TemplateService::CreateFromSnapshot(const std::string& name, const std::string& snapshot) {
  FERRY_RETURN_IF_ERROR(ValidateName("template", name));
  auto snap = snapshots_.Show(snapshot);
  if (!snap.ok()) return snap.status();
  // A template exists to be cloned.
  FERRY_RETURN_IF_ERROR(
      snapshots_.CheckClonable(snapshot, "template " + name + " from snapshot " + snapshot));
  FERRY_RETURN_IF_ERROR(rows_.Insert(name, TemplateRow{snapshot, 0, /*owns_snapshot=*/false}));
  std::lock_guard<std::mutex> lock(mu_);
  pools_[name].snapshot = snapshot;
  return Status::Ok();
}

Result<std::shared_ptr<Operation>> TemplateService::CreateFromSpec(const std::string& name,
                                                                   json spec) {
  FERRY_RETURN_IF_ERROR(ValidateName("template", name));
  if (Record(name).ok()) {
    return Status::AlreadyExists("template " + name + " already exists; choose another name");
  }
  const std::string builder = "template-" + name;
  const std::string snapshot = "template-" + name;
  spec["name"] = builder;
  if (auto parsed = vm::VmSpec::FromJson(spec); parsed.ok()) {
    // Refused before the builder boots: its snapshot would be refused at the end.
    FERRY_RETURN_IF_ERROR(vm::CheckSpecCloneAllowed(*parsed, "template " + name));
  }
  auto create = vms_.Create(spec, /*wait_ready=*/true);
  if (!create.ok()) return create.status().WithContext("template " + name);
  auto op = vms_.operations().Start("template", name);
  vms_.InBackground([this, name, builder, snapshot, op, boot = *create] {
    auto fail = [&](const Status& st) {
      vms_.Delete(builder, /*force=*/true);
      op->Fail(st.WithContext("template " + name));
    };
    op->SetPhase("booting " + builder, 20);
    boot->WaitDone(600000);
    json booted = boot->ToJson();
    if (booted.value("state", "") != "succeeded") {
      return fail(Status::Unavailable(booted["error"].value("message", "boot failed")));
    }
    op->SetPhase("snapshot at the ready point", 70);
    auto snap = snapshots_.Create(builder, snapshot);
    if (!snap.ok()) return fail(snap.status());
    (*snap)->WaitDone(600000);
    json taken = (*snap)->ToJson();
    if (taken.value("state", "") != "succeeded") {
      return fail(Status::Unavailable(taken["error"].value("message", "snapshot failed")));
    }
    vms_.Delete(builder, /*force=*/true);
    Status st = rows_.Insert(name, TemplateRow{snapshot, 0, /*owns_snapshot=*/true});
    if (!st.ok()) {
      snapshots_.Delete(snapshot);
      return op->Fail(st);
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      pools_[name].snapshot = snapshot;
    }
    op->Succeed(
        {{"name", name}, {"snapshot", snapshot}, {"pause_ms", taken["result"]["pause_ms"]}});
  }, op);
  return op;
}

Status TemplateService::SetPoolSize(const std::string& name, int size) {
  FERRY_ASSIGN_OR_RETURN(TemplateRow row, Record(name));
  if (size < 0 || size > kMaxPoolSize) {
    return Status::InvalidArgument("pool size " + std::to_string(size) + " is not between 0 and " +
                                   std::to_string(kMaxPoolSize));
  }
  if (size > 0) {
    // A pool QEMU is a clone in waiting; the owner's policy may have forbidden clones since.
    FERRY_RETURN_IF_ERROR(
        snapshots_.CheckClonable(row.snapshot, "the warm pool of template " + name));
  }
  row.pool_size = size;
  FERRY_RETURN_IF_ERROR(rows_.Put(name, row));
  {
    std::lock_guard<std::mutex> lock(mu_);
    Pool& p = pools_[name];
    p.snapshot = row.snapshot;
    p.size = size;
  }
  cv_.notify_all();
  return Status::Ok();
}

Status TemplateService::Delete(const std::string& name) {
  FERRY_ASSIGN_OR_RETURN(TemplateRow row, Record(name));
  const std::string& snapshot = row.snapshot;
  std::deque<WarmQemu> waiting;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = pools_.find(name);
    if (it != pools_.end()) {
      waiting = std::move(it->second.ready);
      pools_.erase(it);
    }
  }
  // Killed without mu_: each kill may wait seconds, and other template calls must not.
  for (auto& q : waiting) Discard(q);
  // The record goes first: a snapshot that is a template's base refuses deletion.
  FERRY_RETURN_IF_ERROR(rows_.Delete(name));
  if (row.owns_snapshot) {
    // The template's own snapshot goes with it, unless clones still map it.
    Status st = snapshots_.Delete(snapshot);
    if (!st.ok()) {
      rows_.Put(name, row);
      std::lock_guard<std::mutex> lock(mu_);
      pools_[name].snapshot = snapshot;
      pools_[name].size = row.pool_size;
      return st.WithContext("template " + name);
    }
  }
  return Status::Ok();
}

json TemplateService::List() {
  json out = json::array();
  auto all = rows_.List([](const Status&) { return true; });  // logged at start-up
  if (!all.ok()) return out;
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& [name, row] : *all) {
    json item = row.ToJson();
    item["name"] = name;
    auto it = pools_.find(name);
    item["pool_ready"] = it == pools_.end() ? 0 : static_cast<int>(it->second.ready.size());
    out.push_back(item);
  }
  return out;
}

Result<json> TemplateService::Show(const std::string& name) {
  FERRY_ASSIGN_OR_RETURN(TemplateRow record, Record(name));
  json row = record.ToJson();
  row["name"] = name;
  std::lock_guard<std::mutex> lock(mu_);
  auto it = pools_.find(name);
  row["pool_ready"] = it == pools_.end() ? 0 : static_cast<int>(it->second.ready.size());
  json pids = json::array();
  if (it != pools_.end()) {
    for (const auto& q : it->second.ready) pids.push_back(q.qemu.runtime->pid());
  }
  row["pool_pids"] = pids;
  return row;
}

Result<std::shared_ptr<Operation>> TemplateService::CreateVm(
    const std::string& vm, const std::string& name, std::vector<vm::PortForwardSpec> forwards,
    const std::string& ip) {
  FERRY_ASSIGN_OR_RETURN(TemplateRow row, Record(name));
  // Its address, before anything starts (tap networking); the probe runs on beside the start.
  FERRY_ASSIGN_OR_RETURN(std::shared_ptr<const vm::AddressProbe> probe,
                         snapshots_.CheckCloneAddresses(row.snapshot, {vm}, ip));
  WarmQemu warm;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = pools_.find(name);
    while (it != pools_.end() && !it->second.ready.empty()) {
      warm = std::move(it->second.ready.front());
      it->second.ready.pop_front();
      if (!warm.qemu.runtime->Exited()) break;
      Discard(warm);
      warm = {};
    }
    // Until the clone's own operation exists, a stand-in holds the refill back (see Pool).
    if (warm.qemu.runtime && it != pools_.end()) {
      it->second.clone_in_flight = std::make_shared<Operation>("pending", "clone", vm);
    }
  }
  CountPoolUse(name, warm.qemu.runtime != nullptr);
  // A copy: if the clone is refused before it starts, the QEMU is still ours to put back.
  auto op = snapshots_.CloneOne(row.snapshot, vm, std::move(forwards), ip, std::move(probe), warm);
  if (warm.qemu.runtime) {
    std::lock_guard<std::mutex> lock(mu_);
    Pool& pool = pools_[name];
    if (op.ok()) {
      ::unlink((warm.qemu.paths.dir + "/pid").c_str());  // no longer a pool QEMU
      pool.clone_in_flight = *op;
    } else {
      // Refused before the pool QEMU was used (e.g. a name taken): it goes back.
      pool.clone_in_flight.reset();
      pool.ready.push_front(std::move(warm));
    }
  }
  cv_.notify_all();  // the keeper refills, once the clone is done
  return op;
}

}  // namespace ferry::snapshot
