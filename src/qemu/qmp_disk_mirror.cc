#include "qemu/qmp_disk_mirror.h"

#include "core/json_fields.h"

namespace ferry::qemu {

using nlohmann::json;

namespace {

Status Run(QmpExecutor& qmp, const std::string& command, const json& args) {
  return qmp.Qmp(command, args, kQmpTimeout).status();
}

}  // namespace

Result<std::optional<BlockJobInfo>> ParseBlockJob(const json& ret, const std::string& job_id) {
  const std::string source = "QMP query-block-jobs reply";
  if (!ret.is_array()) return Status::Corruption(source + ": not an array");
  for (const json& entry : ret) {
    FERRY_ASSIGN_OR_RETURN(JsonFields f, JsonFields::Of(entry, source));
    FERRY_ASSIGN_OR_RETURN(std::string id, f.String("device"));
    if (id != job_id) continue;
    BlockJobInfo job;
    job.id = id;
    FERRY_ASSIGN_OR_RETURN(job.status, f.String("status"));
    FERRY_ASSIGN_OR_RETURN(job.ready, f.Bool("ready"));
    FERRY_ASSIGN_OR_RETURN(job.offset, f.Uint("offset"));
    FERRY_ASSIGN_OR_RETURN(job.length, f.Uint("len"));
    if (f.Has("error")) {
      FERRY_ASSIGN_OR_RETURN(job.error, f.String("error"));
    }
    if (f.Has("io-status")) {
      FERRY_ASSIGN_OR_RETURN(job.io_status, f.String("io-status"));
    }
    return std::optional<BlockJobInfo>(std::move(job));
  }
  return std::optional<BlockJobInfo>();
}

Result<std::optional<BlockJobInfo>> QueryBlockJob(QmpExecutor& qmp, const std::string& job_id) {
  FERRY_ASSIGN_OR_RETURN(json ret, qmp.Qmp("query-block-jobs", json::object(), kQmpTimeout));
  return ParseBlockJob(ret, job_id);
}

Status TlsCredsPskAdd(QmpExecutor& qmp, const std::string& id, bool server, const std::string& dir,
                      const std::string& identity, const std::string& priority) {
  json args = {{"qom-type", "tls-creds-psk"},
               {"id", id},
               {"endpoint", server ? "server" : "client"},
               {"dir", dir},
               {"priority", priority}};
  if (!server) args["username"] = identity;
  return Run(qmp, "object-add", args);
}

Status ObjectDel(QmpExecutor& qmp, const std::string& id) {
  return Run(qmp, "object-del", {{"id", id}});
}

Status NbdServerStartOnFd(QmpExecutor& qmp, const std::string& listening_fd_name,
                          const std::string& tls_creds) {
  // SocketAddressLegacy: the fd variant's member sits under "data".
  return Run(qmp, "nbd-server-start",
             {{"addr", {{"type", "fd"}, {"data", {{"str", listening_fd_name}}}}},
              {"tls-creds", tls_creds}});
}

Status BlockExportAddNbd(QmpExecutor& qmp, const std::string& export_id,
                         const std::string& node_name, const std::string& export_name) {
  return Run(qmp, "block-export-add",
             {{"type", "nbd"},
              {"id", export_id},
              {"node-name", node_name},
              {"name", export_name},
              {"writable", true}});
}

Status NbdServerStop(QmpExecutor& qmp) { return Run(qmp, "nbd-server-stop", json::object()); }

Status BlockdevAddNbdOnFd(QmpExecutor& qmp, const std::string& node_name,
                          const std::string& connected_fd_name, const std::string& export_name,
                          const std::string& tls_creds) {
  return Run(qmp, "blockdev-add",
             {{"driver", "nbd"},
              {"node-name", node_name},
              {"server", {{"type", "fd"}, {"str", connected_fd_name}}},
              {"export", export_name},
              {"tls-creds", tls_creds}});
}

Status BlockdevMirrorWriteBlocking(QmpExecutor& qmp, const std::string& job_id,
                                   const std::string& device_node, const std::string& target_node) {
  return Run(qmp, "blockdev-mirror",
             {{"job-id", job_id},
              {"device", device_node},
              {"target", target_node},
              {"sync", "full"},
              {"copy-mode", "write-blocking"},
              // A target that fails (the link cut, the destination gone) pauses the job instead
              // of ending it: ferryd then ends it with the guest's I/O drained.
              {"on-target-error", "stop"},
              {"auto-finalize", false},
              {"auto-dismiss", false}});
}

Status JobFinalize(QmpExecutor& qmp, const std::string& job_id) {
  return Run(qmp, "job-finalize", {{"id", job_id}});
}

Status JobDismiss(QmpExecutor& qmp, const std::string& job_id) {
  return Run(qmp, "job-dismiss", {{"id", job_id}});
}

Status BlockJobCancel(QmpExecutor& qmp, const std::string& job_id, bool force) {
  return Run(qmp, "block-job-cancel", {{"device", job_id}, {"force", force}});
}

}  // namespace ferry::qemu
