// The ferry side of the migration benchmark: two ferryds, one in each host namespace, set up as
// a user would (docs: fleet CA, host enrolment with labels, peers, an owner's signed policy):
//
//   ferry ca init --dir CA
//   ferry host enroll --ca CA --host-id h1 --label zone=a --out TLS1    (h2: zone=b, TLS2)
//   ferryd --listen 10.77.0.<i>:7400 --tls-dir TLS<i> ... in namespace h<i>
//   ferry peer add h2 10.77.0.2:7400                                     (on h1)
//   ferry owner keygen; ferry policy sign --vm NAME --allow-label zone=b (per VM name)
//
// A guest is `ferry vm create NAME --net tap --bridge ferrybr0 --ip 10.77.0.10/24 --memory M
// --policy NAME.policy --wait-ready` (and `--disk 1024M` for a disk cell) on h1, moved by `ferry
// migrate NAME --to h2 --json`.
#pragma once

#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "bench/drivers/migrating_guest.h"
#include "bench/harness/bench_ferryd.h"
#include "bench/harness/namespace_hosts.h"
#include "bench/harness/runner.h"

namespace ferry::bench {

class FerryFleet {
 public:
  static constexpr const char* kGuestAddress = "10.77.0.10";
  static constexpr uint16_t kPeerPort = 7400;

  // Makes the CA, both hosts' credentials and the owner key in `dir`, signs a policy for each of
  // `vm_names`, starts both ferryds and adds h2 as h1's peer.
  static Result<std::unique_ptr<FerryFleet>> Start(const BenchConfig& config, NamespaceHosts& hosts,
                                                   const std::string& dir,
                                                   const std::vector<std::string>& vm_names);
  ~FerryFleet();  // Stop()
  void Stop();    // both ferryds, their VMs and directories; idempotent

  BenchFerryd& host(int i) { return i == 1 ? *h1_ : *h2_; }
  std::string PolicyFile(const std::string& vm) const { return dir_ + "/" + vm + ".policy"; }
  const std::string& ferry_binary() const { return ferry_binary_; }

 private:
  FerryFleet(std::string dir, std::string ferry_binary)
      : dir_(std::move(dir)), ferry_binary_(std::move(ferry_binary)) {}
  std::string dir_;
  std::string ferry_binary_;
  std::unique_ptr<BenchFerryd> h1_;
  std::unique_ptr<BenchFerryd> h2_;
};

class FerryMigratingGuest : public MigratingGuest {
 public:
  // `vm create ... --wait-ready` on h1 (with `--disk DISK_MIBM` unless 0); `show` is its `vm
  // show --json` afterwards.
  static Result<std::unique_ptr<FerryMigratingGuest>> Boot(FerryFleet& fleet,
                                                           const std::string& name,
                                                           uint64_t memory_mib,
                                                           uint64_t disk_mib = 0);
  ~FerryMigratingGuest() override;  // `vm delete NAME --force` on both hosts

  const std::string& address() const override { return address_; }
  Result<MoveFigures> MoveToH2() override;
  std::string Console(int host, size_t max_bytes) override;
  const nlohmann::json& show() const { return show_; }

 private:
  FerryMigratingGuest(FerryFleet& fleet, std::string name)
      : fleet_(fleet), name_(std::move(name)) {}
  FerryFleet& fleet_;
  std::string name_;
  std::string address_ = FerryFleet::kGuestAddress;
  nlohmann::json show_;
};

// The fleet entries' TearDown (migration, hold_send, sibling_send): stops the fleet (its ferryds,
// their VMs), SIGKILLs whatever still uses one of `dirs`, removes them and tears the hosts down.
// Never fails.
void StopFleetAndSweep(std::unique_ptr<FerryFleet>& fleet, NamespaceHosts& hosts,
                       const std::vector<std::optional<ScratchDir>*>& dirs);

}  // namespace ferry::bench
