// The QMP commands of storage migration (migrate/disk_mirror.h, migrate/disk_export.h), typed.
//
//   destination   nbd-server-start on a listening socket ferryd hands QEMU (getfd), never a TCP
//                 port, requiring TLS with a tls-creds-psk object (migrate/nbd_tls.h);
//                 block-export-add makes the waiting VM's disk node writable through it;
//                 nbd-server-stop before the guest resumes.
//   source        blockdev-add an NBD client node on a connected socket ferryd hands QEMU, with
//                 its own tls-creds-psk object;
//                 blockdev-mirror the disk into it in write-blocking mode (a guest write
//                 completes only once it is on both sides, so the copy converges under any write
//                 load); query-block-jobs until "ready"; block-job-cancel of a ready job at the
//                 switchover completes the copy without moving the source off its own image.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "core/status.h"
#include "qemu/qmp_commands.h"

namespace ferry::qemu {

// The NBD export's name, the same at both ends.
inline constexpr const char* kDiskExportName = "disk";

// One block job as query-block-jobs reports it.
struct BlockJobInfo {
  std::string id;  // QEMU's "device": the job id
  std::string status;
  bool ready = false;
  uint64_t offset = 0;  // bytes copied so far
  uint64_t length = 0;  // bytes to copy; grows while the guest writes new areas
  std::string error;    // QEMU's "error" when the job met one
  std::string io_status;  // "ok", "failed", "nospace": a job paused by a target error says so
};

// query-block-jobs: the job `job_id`, nullopt when QEMU no longer has it (it ended).
Result<std::optional<BlockJobInfo>> ParseBlockJob(const nlohmann::json& ret,
                                                  const std::string& job_id);
Result<std::optional<BlockJobInfo>> QueryBlockJob(QmpExecutor& qmp, const std::string& job_id);

// object-add of a tls-creds-psk object: QEMU's TLS keyed with a pre-shared key, which QEMU reads
// from `dir`/keys.psk (lines "identity:hex key"). The server (`server` true) looks the client's
// identity up in that file at each handshake; the client (with `identity`) reads its key once,
// here. `priority`: GnuTLS's priority string for the session (QEMU adds the PSK key exchanges).
Status TlsCredsPskAdd(QmpExecutor& qmp, const std::string& id, bool server, const std::string& dir,
                      const std::string& identity, const std::string& priority);
// object-del.
Status ObjectDel(QmpExecutor& qmp, const std::string& id);

// Destination. With `tls_creds`, a client must start TLS with them before anything else.
Status NbdServerStartOnFd(QmpExecutor& qmp, const std::string& listening_fd_name,
                          const std::string& tls_creds);
Status BlockExportAddNbd(QmpExecutor& qmp, const std::string& export_id,
                         const std::string& node_name, const std::string& export_name);
Status NbdServerStop(QmpExecutor& qmp);

// Source.
Status BlockdevAddNbdOnFd(QmpExecutor& qmp, const std::string& node_name,
                          const std::string& connected_fd_name, const std::string& export_name,
                          const std::string& tls_creds);
Status BlockdevMirrorWriteBlocking(QmpExecutor& qmp, const std::string& job_id,
                                   const std::string& device_node, const std::string& target_node);
// job-finalize: lets a pending job end, which takes the mirror's filter out of the disk's graph.
// The mirror is started without auto-finalize, so that this happens only when ferryd says, with
// the guest stopped and its I/O drained: QEMU 7.2 can crash on a guest write that races the
// filter's removal after a job ended on its own (its target failed).
Status JobFinalize(QmpExecutor& qmp, const std::string& job_id);
// job-dismiss: forgets a concluded job (the mirror is started without auto-dismiss, so that its
// outcome can be read after it ended).
Status JobDismiss(QmpExecutor& qmp, const std::string& job_id);
// block-job-cancel. Of a ready mirror without `force`: completes the copy (the target then
// equals the source) and leaves the guest on its own image.
Status BlockJobCancel(QmpExecutor& qmp, const std::string& job_id, bool force);

}  // namespace ferry::qemu
