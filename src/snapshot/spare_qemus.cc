#include "snapshot/spare_qemus.h"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "core/files.h"
#include "core/guarded_thread.h"
#include "core/ids.h"
#include "qemu/launch_spec.h"
#include "qemu/qmp_commands.h"
#include "snapshot/pool_refill.h"
#include "snapshot/waiting_qemu_dir.h"

namespace ferry::snapshot {

using std::chrono::milliseconds;

namespace {
constexpr const char* kSparePrefix = ".spare-";
// After a spare failed to start: not a tight loop of failing QEMUs.
constexpr milliseconds kRetryAfterFailure(5000);
}  // namespace

std::optional<std::string> SpareShapeOf(const vm::VmSpec& spec, bool has_disk) {
  // A tap VM's QEMU holds its tap, named after the VM it becomes; a disk is the snapshot's.
  if (spec.network.mode != vm::NetworkMode::kUser || has_disk || spec.disk_mib != 0) {
    return std::nullopt;
  }
  return spec.image + "/" + std::to_string(spec.cpus) + "cpu/" + std::to_string(spec.memory_mib) +
         "MiB";
}

Status GiveSpareItsRam(vm::VmRuntime& rt, const std::string& slot_dir, int slot_fd,
                       uint64_t ram_kib, const std::string& ram_image) {
  // The image itself, not a link to it: QEMU opens what the slot holds, and the slot is QEMU's.
  std::error_code ec;
  const std::string real = std::filesystem::canonical(ram_image, ec).string();
  const std::string link = slot_dir + "/ram";
  Status st = Status::Ok();
  if (ec) {
    st = Status::NotFound("RAM image " + ram_image + ": " + ec.message());
  } else if (::link(real.c_str(), link.c_str()) != 0) {
    st = Status::Unavailable("cannot link RAM image " + real + " into spare slot " + slot_dir +
                             ": " + std::strerror(errno));
  } else {
    st = qemu::BindSpareRam(rt, qemu::SpareRamPath(slot_fd), ram_kib);
  }
  // QEMU has the image mapped (or failed): the slot is of no more use.
  ::unlink(link.c_str());
  ::rmdir(slot_dir.c_str());
  return st.WithContext("giving a spare QEMU the snapshot's RAM");
}

SpareQemus::CloneInFlight::CloneInFlight(SpareQemus* spares) : spares_(spares) {
  if (spares_ == nullptr) return;
  std::lock_guard<std::mutex> lock(spares_->mu_);
  ++spares_->clones_in_flight_;
}

SpareQemus::CloneInFlight::~CloneInFlight() {
  if (spares_ == nullptr) return;
  {
    std::lock_guard<std::mutex> lock(spares_->mu_);
    --spares_->clones_in_flight_;
  }
  spares_->cv_.notify_all();
}

SpareQemus::SpareQemus(vm::VmService& vms) : vms_(vms) {
  KillStale();
  // Without a keeper there are no spares, and clones start their own QEMU: not fatal.
  auto keeper = StartGuardedThread("spare QEMU keeper", [this] { Keep(); });
  if (keeper.ok()) {
    keeper_ = std::move(keeper).value();
  } else {
    spdlog::error("{}; clones will start their own QEMU", keeper.status().message());
  }
}

SpareQemus::~SpareQemus() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (keeper_.joinable()) keeper_.join();
  for (auto& [key, shape] : shapes_) {
    if (shape.ready) Discard(*shape.ready);
  }
}

void SpareQemus::Discard(vm::PrelaunchedQemu& q) {
  if (!q.runtime) return;
  q.runtime->Kill();
  q.runtime->WaitExit(milliseconds(5000));
  q.runtime.reset();
  RemoveAll(q.paths.dir);
  RemoveAll(q.ram_slot_dir);
}

std::optional<vm::PrelaunchedQemu> SpareQemus::Take(const vm::VmSpec& spec, bool has_disk) {
  const std::optional<std::string> key = SpareShapeOf(spec, has_disk);
  if (!key) return std::nullopt;
  std::optional<vm::PrelaunchedQemu> out;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto [it, added] = shapes_.try_emplace(*key);
    Shape& shape = it->second;
    if (added) {
      // Only what shapes the command line; the clone brings its own name and identity.
      shape.spec.name = "spare";
      shape.spec.image = spec.image;
      shape.spec.cpus = spec.cpus;
      shape.spec.memory_mib = spec.memory_mib;
    }
    if (shape.ready) {
      if (shape.ready->runtime->Exited()) {
        Discard(*shape.ready);  // died while waiting: the keeper starts another
      } else {
        out = std::move(*shape.ready);
      }
      shape.ready.reset();
    }
  }
  cv_.notify_all();
  return out;
}

Result<vm::PrelaunchedQemu> SpareQemus::Start(const vm::VmSpec& spec) {
  const std::string id = NewId();
  const std::string dir = vms_.config().state_dir + "/vms/" + kSparePrefix + id;
  const std::string slot = vms_.config().ram_dir + "/spares/" + id;
  // Listed from its spawn on: a QEMU that belongs to no VM is never unaccounted for.
  auto q = vms_.PrelaunchSpare(spec, vm::VmPaths::ForDir(dir), slot,
                               [this](pid_t pid, uint64_t, const std::vector<std::string>&) {
                                 std::lock_guard<std::mutex> lock(mu_);
                                 starting_pid_ = pid;
                               });
  {
    std::lock_guard<std::mutex> lock(mu_);
    starting_pid_ = 0;
  }
  if (!q.ok()) {
    RemoveAll(dir);
    RemoveAll(slot);
    return q.status();
  }
  // Lets a restarted ferryd find and end this QEMU if it is still waiting then.
  RecordWaitingQemu(dir, *q->runtime);
  return q;
}

std::vector<pid_t> SpareQemus::WaitingPids() {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<pid_t> pids;
  for (const auto& [key, shape] : shapes_) {
    if (shape.ready && shape.ready->runtime) pids.push_back(shape.ready->runtime->pid());
  }
  if (starting_pid_ > 0) pids.push_back(starting_pid_);
  return pids;
}

void SpareQemus::KillStale() {
  KillStaleWaitingQemus(vms_, kSparePrefix);
  // Slots hold a link only while a clone binds its RAM; none is in use now.
  RemoveAll(vms_.config().ram_dir + "/spares");
}

void SpareQemus::Keep() {
  std::unique_lock<std::mutex> lock(mu_);
  while (!stopping_) {
    std::vector<std::pair<std::string, bool>> shapes_ready;
    for (auto& [key, shape] : shapes_) {
      if (shape.ready && shape.ready->runtime->Exited()) {
        spdlog::warn("spare QEMU for {} died while waiting; replacing it", key);
        Discard(*shape.ready);
        shape.ready.reset();
      }
      shapes_ready.emplace_back(key, shape.ready.has_value());
    }
    const std::optional<std::string> start = SpareToStart(shapes_ready, clones_in_flight_);
    if (!start) {
      cv_.wait_for(lock, milliseconds(500));
      continue;
    }
    const std::string wanted = *start;
    const vm::VmSpec spec = shapes_[wanted].spec;
    lock.unlock();
    Result<vm::PrelaunchedQemu> q = Start(spec);
    lock.lock();
    if (!q.ok()) {
      spdlog::warn("spare QEMU for {}: {}", wanted, q.status().message());
      cv_.wait_for(lock, kRetryAfterFailure, [this] { return stopping_; });
      continue;
    }
    Shape& shape = shapes_[wanted];
    if (stopping_ || shape.ready) {
      Discard(*q);
      continue;
    }
    shape.ready = std::move(q).value();
  }
}

}  // namespace ferry::snapshot
