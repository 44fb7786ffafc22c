// The two bare-QEMU sides of the migration benchmark: a QEMU in host namespace h1 with ferryd's
// command line (bare_spec.h, with a tap on h1's ferrybr0 instead of user networking, and the
// guest's address on the kernel command line as ferryd passes it), moved live to a QEMU in h2:
//
//   native: the destination starts with `-incoming tcp:10.77.0.2:PORT`; plaintext TCP.
//   tls:    both QEMUs get `-object tls-creds-x509,id=tls0,...` (the destination with
//           verify-peer=on), the destination starts with `-incoming defer`, and both get
//           migrate-set-parameters tls-creds=tls0 before `migrate-incoming` / `migrate`.
//
// Everything through QMP, as ferryd drives its QEMUs: on the source migrate-set-capabilities
// auto-converge=on, x-ignore-shared=off, migrate-set-parameters downtime-limit (50 ms) and
// max-bandwidth 2^40, `migrate tcp:10.77.0.2:PORT`; query-migrate every 10 ms until completed.
// The destination keeps the source's VM generation id, as ferry's does.
//
// With a data disk, the same QMP commands ferryd sends, over plain TCP (tls: with tls-creds tls0
// on `nbd-server-start` and on the NBD client's `blockdev-add`): the
// destination (its own blank qcow2 of the same size) `nbd-server-start` on 10.77.0.2:PORT+1000
// and `block-export-add` (nbd, writable) of its disk node; the source `blockdev-add` driver nbd
// with that inet server, `blockdev-mirror` sync=full copy-mode=write-blocking auto-dismiss=false
// until BLOCK_JOB_READY, then the memory migration with pause-before-switchover and events on; at
// the MIGRATION event pre-switchover `block-job-cancel` (force false), query-block-jobs every
// 2 ms until concluded (as ferryd), `job-dismiss`, `blockdev-del`, `migrate-continue`. After the
// move the destination gets `nbd-server-stop`.
#pragma once

#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "bench/baselines/bare_qemu.h"
#include "bench/baselines/bare_spec.h"
#include "bench/drivers/migrating_guest.h"
#include "bench/harness/namespace_hosts.h"
#include "bench/baselines/qemu_tls_creds.h"

namespace ferry::bench {

enum class BareTransport { kTcp, kTls };

// What every bare guest shares. Owned by the entry; outlives its guests.
struct BareMigrationContext {
  static constexpr const char* kGuestAddress = "10.77.0.11";
  static constexpr int kPrefix = 24;

  const GuestSetup* guest = nullptr;
  NamespaceHosts* hosts = nullptr;
  std::string dir;      // per-guest directories (sockets, console, logs) go below
  std::string ram_dir;  // RAM files, on /dev/shm
  QemuTlsCreds tls;
  int downtime_limit_ms = 50;

  // The source's launch: BareSpec with a tap NIC on `tap` (a tap of h1's, NamespaceHosts::AddTap)
  // and ferry.ip on the kernel command line, as ferryd fills it for a VM created with --net tap
  // --ip.
  // With `disk` (a qcow2 image's path), the guest's data disk, as ferryd's `--disk`.
  BareLaunch SourceSpec(const std::string& name, const std::string& guest_dir, uint64_t memory_mib,
                        const std::string& tap, const std::string& disk = "") const;
  // FailedPrecondition unless ferryd's qemu_argv in `show` (`vm show --json` of a booted tap VM)
  // equals the command line SourceSpec's files open to, per-VM values (name, MAC, address)
  // aside. Its files, and a tap on h1 for the check, are made and removed again. `disk_mib`: the
  // VM has a data disk of that size (a blank one is made for the check).
  Status CheckSameCommandLine(const nlohmann::json& show, uint64_t disk_mib = 0) const;
};

class BareMigratingGuest : public MigratingGuest {
 public:
  // Boots a source QEMU in h1 until the image's ready marker is on its console (redis runs);
  // with a blank data disk of `disk_mib` MiB unless 0.
  static Result<std::unique_ptr<BareMigratingGuest>> Boot(const BareMigrationContext& ctx,
                                                          BareTransport transport,
                                                          const std::string& name,
                                                          uint64_t memory_mib, uint16_t port,
                                                          uint64_t disk_mib = 0);
  ~BareMigratingGuest() override;

  const std::string& address() const override { return address_; }
  Result<MoveFigures> MoveToH2() override;
  std::string Console(int host, size_t max_bytes) override;

 private:
  BareMigratingGuest(const BareMigrationContext& ctx, BareTransport transport, std::string name,
                     uint64_t memory_mib, uint16_t port, uint64_t disk_mib);
  Status SetUpSource(qemu::QmpClient& qmp);
  std::string DiskPath(int host) const;
  // The disk's copy: the destination's export, the source's mirror until ready (timed into `f`),
  // and its end at the pause before the switchover.
  Status ExportDisk(qemu::QmpClient& dst);
  Status MirrorDisk(qemu::QmpClient& src, MoveFigures& f);
  Status AwaitPreSwitchover(qemu::QmpClient& src, qemu::QmpClient::EventWaiter& events);
  Status SwitchDiskOver(qemu::QmpClient& src, MoveFigures& f);
  Status AwaitCompleted(qemu::QmpClient& src, nlohmann::json& done);

  const BareMigrationContext& ctx_;
  BareTransport transport_;
  std::string name_;
  uint64_t memory_mib_;
  uint16_t port_;
  uint64_t disk_mib_;
  std::string address_ = BareMigrationContext::kGuestAddress;
  std::string source_dir_, dest_dir_;
  std::string source_tap_, dest_tap_;
  std::unique_ptr<BareQemu> source_;
  std::unique_ptr<BareQemu> dest_;
};

}  // namespace ferry::bench
