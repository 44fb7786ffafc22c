#include "bench/baselines/qemu_tls_creds.h"

#include <chrono>
#include <vector>

#include "bench/harness/testbed.h"
#include "core/files.h"

namespace ferry::bench {

namespace {
constexpr std::chrono::milliseconds kOpensslTimeout(30000);

Status Openssl(const std::vector<std::string>& args) {
  std::vector<std::string> argv = {"openssl"};
  argv.insert(argv.end(), args.begin(), args.end());
  return RunTool(argv, kOpensslTimeout).status().WithContext("making QEMU's TLS credentials");
}

Status CopyFile(const std::string& from, const std::string& to) {
  FERRY_ASSIGN_OR_RETURN(std::string data, ReadFile(from));
  return WriteFileAtomic(to, data, 0644);
}
}  // namespace

Result<QemuTlsCreds> MakeQemuTlsCreds(const std::string& dir, const std::string& server_ip) {
  const std::string ca_key = dir + "/ca-key.pem";
  const std::string ca_cert = dir + "/ca-cert.pem";
  const std::vector<std::string> ec_key = {"-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                                           "-nodes"};
  auto req = [&](std::vector<std::string> head, const std::vector<std::string>& tail) {
    head.insert(head.end(), ec_key.begin(), ec_key.end());
    head.insert(head.end(), tail.begin(), tail.end());
    return head;
  };
  FERRY_RETURN_IF_ERROR(Openssl(req({"req", "-x509"}, {"-keyout", ca_key, "-out", ca_cert, "-days",
                                                       "2", "-subj", "/CN=ferry-bench QEMU CA"})));
  QemuTlsCreds creds{dir + "/server", dir + "/client"};
  struct Role {
    std::string name, out_dir, extensions;
  };
  const std::vector<Role> roles = {
      {"server", creds.server_dir,
       "subjectAltName=IP:" + server_ip +
           "\nextendedKeyUsage=serverAuth\nkeyUsage=digitalSignature,keyEncipherment\n"},
      {"client", creds.client_dir,
       "extendedKeyUsage=clientAuth\nkeyUsage=digitalSignature,keyEncipherment\n"},
  };
  for (const Role& r : roles) {
    FERRY_RETURN_IF_ERROR(MakeDirs(r.out_dir, 0700));
    const std::string key = r.out_dir + "/" + r.name + "-key.pem";
    const std::string cert = r.out_dir + "/" + r.name + "-cert.pem";
    const std::string csr = dir + "/" + r.name + ".csr";
    const std::string ext = dir + "/" + r.name + ".ext";
    FERRY_RETURN_IF_ERROR(WriteFileAtomic(ext, r.extensions, 0600));
    FERRY_RETURN_IF_ERROR(Openssl(
        req({"req"}, {"-keyout", key, "-out", csr, "-subj", "/CN=ferry-bench QEMU " + r.name})));
    FERRY_RETURN_IF_ERROR(
        Openssl({"x509", "-req", "-in", csr, "-CA", ca_cert, "-CAkey", ca_key, "-CAcreateserial",
                 "-out", cert, "-days", "2", "-extfile", ext}));
    FERRY_RETURN_IF_ERROR(CopyFile(ca_cert, r.out_dir + "/ca-cert.pem"));
  }
  return creds;
}

}  // namespace ferry::bench
