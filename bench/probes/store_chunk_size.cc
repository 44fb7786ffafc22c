// store-chunk-size: how the store's chunk size trades dedup against speed, on real RAM images.
// Not a ferry-bench entry (those time ferry next to bare QEMU); a standalone tool that seals two
// RAM images into a fresh store per chunk size and prints one table:
//
//   store-chunk-size IMAGE1 IMAGE2 [--sizes 16,64,256] [--threads 2] [--dir /var/tmp]
//                    [--random-mib 256] [--pack-mib 64]
//
// IMAGE1 and IMAGE2 are RAM files of two VMs of the same image (e.g. /dev/shm/ferry/ID.ram of two
// running ferry VMs, or two snapshot images RAM_DIR/snapshots/ID.ram). Both are sealed as holds
// of one owner, IMAGE1 first; "stored 2" is what IMAGE2 added: the dedup a sibling gets. The
// seal MiB/s rows time SealHold to durable (packs of --pack-mib); "random" seals
// --random-mib of incompressible data, the worst case for zstd and for dedup. The store and the
// random file go under --dir (on the disk a store would use, not tmpfs).
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "core/files.h"
#include "core/unique_fd.h"
#include "crypto/fleet_ca.h"
#include "crypto/host_signer.h"
#include "store/store.h"

namespace {

using namespace ferry;
using Clock = std::chrono::steady_clock;

const std::string kOwner(64, 'b');

struct Host {
  std::unique_ptr<crypto::KeyHostSigner> signer;
  crypto::X509Ptr cert;
};

Result<Host> MakeHost(const std::string& dir) {
  FERRY_RETURN_IF_ERROR(crypto::InitFleetCa(dir + "/ca"));
  FERRY_RETURN_IF_ERROR(crypto::EnrollHost(dir + "/ca", {"bench", {}}, dir + "/tls"));
  Host host;
  FERRY_ASSIGN_OR_RETURN(host.signer, crypto::KeyHostSigner::Load(dir + "/tls/host.key"));
  FERRY_ASSIGN_OR_RETURN(host.cert, crypto::ReadCertificatePem(dir + "/tls/host.crt"));
  return host;
}

struct Sealed {
  store::HoldStats stats;
  double seconds = 0;
};

Result<Sealed> SealFile(store::Store& s, const std::string& id, const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  struct stat st;
  if (!fd.valid() || ::fstat(fd.get(), &st) != 0) {
    return Status::NotFound("cannot open RAM image " + path);
  }
  store::HoldHeader h;
  h.hold_id = id;
  h.vm_name = id;
  h.owner_fingerprint = kOwner;
  h.state = "durable";
  const auto start = Clock::now();
  FERRY_ASSIGN_OR_RETURN(store::HoldStats stats,
                         s.SealHold(h, {{"ram", fd.get(), static_cast<uint64_t>(st.st_size)}}));
  return Sealed{stats, std::chrono::duration<double>(Clock::now() - start).count()};
}

Result<double> ReconstituteSeconds(store::Store& s, const std::string& id, const std::string& out) {
  UniqueFd fd(::open(out.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
  const auto start = Clock::now();
  FERRY_RETURN_IF_ERROR(s.ReconstituteBlob(id, "ram", fd.get()));
  const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  ::unlink(out.c_str());
  return seconds;
}

double MiB(uint64_t bytes) { return bytes / 1048576.0; }

// A row per chunk size: both images sealed into a fresh store.
Status RunSize(const std::string& scratch, const Host& host, uint32_t kib, int threads,
               uint64_t pack_mib, const std::vector<std::string>& images) {
  store::StoreOptions o;
  o.dir = scratch + "/store-" + std::to_string(kib);
  o.chunk_bytes = kib * 1024;
  o.threads = threads;
  o.pack_bytes = pack_mib << 20;
  FERRY_ASSIGN_OR_RETURN(auto s, store::Store::Open(o, *host.signer, host.cert.get()));
  FERRY_ASSIGN_OR_RETURN(Sealed one, SealFile(*s, "one", images[0]));
  FERRY_ASSIGN_OR_RETURN(Sealed two, SealFile(*s, "two", images[1]));
  FERRY_ASSIGN_OR_RETURN(double back, ReconstituteSeconds(*s, "one", scratch + "/out.ram"));
  const uint64_t data1 = (one.stats.chunks) * uint64_t{o.chunk_bytes};
  std::printf(
      "%6u KiB %4llu MiB %9.1f %9.1f %9.1f %10.2f %8zu %9.0f %9.0f %9.0f %lld/%lld/%lld\n", kib,
      static_cast<unsigned long long>(pack_mib), MiB(two.stats.logical_bytes),
      MiB(one.stats.stored_new_bytes), MiB(two.stats.stored_new_bytes),
      100.0 * two.stats.stored_new_bytes / std::max<uint64_t>(1, one.stats.stored_new_bytes),
      static_cast<size_t>(one.stats.new_chunks), MiB(data1) / one.seconds,
      MiB(one.stats.logical_bytes) / one.seconds, MiB(one.stats.logical_bytes) / back,
      static_cast<long long>(one.stats.chunk_ms), static_cast<long long>(one.stats.sync_ms),
      static_cast<long long>(one.stats.manifest_ms));
  std::fflush(stdout);
  return RemoveAll(o.dir);
}

Result<std::string> MakeRandomFile(const std::string& dir, uint64_t mib) {
  const std::string path = dir + "/random.ram";
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
  UniqueFd urandom(::open("/dev/urandom", O_RDONLY | O_CLOEXEC));
  std::string buf(1 << 20, '\0');
  for (uint64_t i = 0; i < mib; ++i) {
    if (::read(urandom.get(), buf.data(), buf.size()) != static_cast<ssize_t>(buf.size()) ||
        ::write(fd.get(), buf.data(), buf.size()) != static_cast<ssize_t>(buf.size())) {
      return Status::Internal("cannot write " + path);
    }
  }
  ::fsync(fd.get());
  return path;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"store-chunk-size: the store's chunk size against dedup and sealing speed"};
  std::vector<std::string> images;
  std::vector<uint32_t> sizes = {16, 64, 256};
  int threads = 2;
  std::string parent = "/var/tmp";
  uint64_t random_mib = 256;
  uint64_t pack_mib = 64;
  app.add_option("images", images, "two RAM images of sibling VMs")->required()->expected(2);
  app.add_option("--sizes", sizes, "chunk sizes in KiB")->delimiter(',')->capture_default_str();
  app.add_option("--threads", threads, "sealing threads")->capture_default_str();
  app.add_option("--dir", parent, "where the scratch store goes")->capture_default_str();
  app.add_option("--pack-mib", pack_mib, "store pack size in MiB")->capture_default_str();
  app.add_option("--random-mib", random_mib, "MiB of random data for the throughput rows (0: none)")
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  std::string scratch = parent + "/store-bench-XXXXXX";
  if (::mkdtemp(scratch.data()) == nullptr) {
    std::perror("mkdtemp");
    return 1;
  }
  auto fail = [&](const Status& st) {
    std::fprintf(stderr, "store-chunk-size: %s\n", st.message().c_str());
    (void)RemoveAll(scratch);
    return 1;
  };
  auto host = MakeHost(scratch);
  if (!host.ok()) return fail(host.status());
  std::printf("images: %s, %s; %d sealing threads; store in %s\n", images[0].c_str(),
              images[1].c_str(), threads, scratch.c_str());
  std::printf("%10s %8s %9s %9s %9s %10s %8s %9s %9s %9s %s\n", "chunk", "pack", "MiB img",
              "stored 1", "stored 2", "2 vs 1 %", "chunks 1", "seal MB/s", "seal log", "restore",
              "ms chunk/sync/manifest");
  for (uint32_t kib : sizes) {
    Status st = RunSize(scratch, *host, kib, threads, pack_mib, images);
    if (!st.ok()) return fail(st);
  }
  if (random_mib > 0) {
    auto random = MakeRandomFile(scratch, random_mib);
    if (!random.ok()) return fail(random.status());
    std::printf("random data (%llu MiB, sealed twice: the second is all dedup):\n",
                static_cast<unsigned long long>(random_mib));
    for (uint32_t kib : sizes) {
      Status st = RunSize(scratch, *host, kib, threads, pack_mib, {*random, *random});
      if (!st.ok()) return fail(st);
    }
  }
  std::printf(
      "MiB img: size of image 2; stored 1/2: MiB of chunks each seal added; chunks 1: "
      "chunks image 1 added; seal MB/s: non-zero data of image 1 per second of SealHold "
      "(to durable); seal log: its logical size per second; restore: logical MiB/s of "
      "ReconstituteBlob; ms: image 1's seal split into chunking, syncing, manifest\n");
  (void)RemoveAll(scratch);
  return 0;
}
