#include "guest/host_keys.h"

#include <algorithm>
#include <chrono>

#include "guest/ssh_host_key.h"

namespace ferry::guest {
namespace {

// Generating an ed25519 key takes a few ms; the rest is starting the program under emulation.
constexpr std::chrono::milliseconds kKeygenTimeout{5000};
constexpr std::size_t kMaxQuotedOutput = 200;
const std::vector<std::string> kProgramEnv = {"PATH=/sbin:/bin:/usr/sbin:/usr/bin"};

bool IsHostKeyName(const std::string& name) {
  const std::string prefix = "dropbear_", suffix = "_host_key";
  return name.size() > prefix.size() + suffix.size() && name.rfind(prefix, 0) == 0 &&
         name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0;
}

std::string LastOutput(const std::string& output) {
  std::string text = output;
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
  if (text.size() > kMaxQuotedOutput) text = "..." + text.substr(text.size() - kMaxQuotedOutput);
  return text.empty() ? "no output" : "output: " + text;
}

// An SSH wire-format string: a big-endian 32-bit length, then the bytes.
std::string SshString(const std::string& bytes) {
  const auto n = static_cast<uint32_t>(bytes.size());
  std::string out = {static_cast<char>(n >> 24), static_cast<char>(n >> 16),
                     static_cast<char>(n >> 8), static_cast<char>(n)};
  return out + bytes;
}

}  // namespace

std::vector<std::string> DropbearHostKeys::KeyFiles() {
  std::vector<std::string> paths;
  for (const std::string& name : system_.ListDir(kHostKeyDir)) {
    if (IsHostKeyName(name)) paths.push_back(std::string(kHostKeyDir) + "/" + name);
  }
  return paths;
}

void DropbearHostKeys::Remember(const std::string& path, const SshHostKey& key) {
  auto contents = system_.ReadFile(path);
  if (contents) by_contents_[Sha256::Of(*contents)] = key;
}

std::vector<SshHostKey> DropbearHostKeys::List() {
  std::vector<SshHostKey> keys;
  std::map<Sha256::Digest, SshHostKey> seen;  // what is not seen now is forgotten
  for (const std::string& path : KeyFiles()) {
    auto contents = system_.ReadFile(path);
    if (!contents) continue;
    Sha256::Digest digest = Sha256::Of(*contents);
    auto it = by_contents_.find(digest);
    if (it != by_contents_.end()) {
      keys.push_back(it->second);
      seen[digest] = it->second;
      continue;
    }
    ProgramRun run =
        system_.RunProgram({kDropbearKeyProgram, "-y", "-f", path}, kProgramEnv, kKeygenTimeout);
    if (run.exit_code != 0) continue;
    auto key = FindPublicKeyLine(run.output);
    if (!key) continue;
    SshHostKey host_key{key->type, Sha256Fingerprint(key->blob)};
    keys.push_back(host_key);
    seen[digest] = host_key;
  }
  by_contents_ = std::move(seen);
  return keys;
}

std::variant<SshHostKey, std::string> DropbearHostKeys::Regenerate(
    const std::optional<std::string>& key_pair) {
  // The target goes too even if the directory cannot be listed: dropbearkey will not overwrite.
  std::vector<std::string> old_keys = KeyFiles();
  if (std::find(old_keys.begin(), old_keys.end(), kHostKeyFile) == old_keys.end()) {
    old_keys.insert(old_keys.begin(), kHostKeyFile);
  }
  for (const std::string& path : old_keys) {
    if (auto error = system_.RemoveFile(path)) return "cannot delete the old host key: " + *error;
  }
  if (key_pair) return Install(*key_pair);
  ProgramRun run = system_.RunProgram({kDropbearKeyProgram, "-t", "ed25519", "-f", kHostKeyFile},
                                      kProgramEnv, kKeygenTimeout);
  if (!run.error.empty()) return run.error;
  if (run.exit_code != 0) {
    return std::string(kDropbearKeyProgram) + " -t ed25519 exited with " +
           std::to_string(run.exit_code) + "; " + LastOutput(run.output);
  }
  auto key = FindPublicKeyLine(run.output);
  if (!key || key->type != "ssh-ed25519") {
    return std::string(kDropbearKeyProgram) + " printed no ssh-ed25519 public key; " +
           LastOutput(run.output);
  }
  SshHostKey host_key{key->type, Sha256Fingerprint(key->blob)};
  by_contents_.clear();
  Remember(kHostKeyFile, host_key);
  return host_key;
}

std::variant<SshHostKey, std::string> DropbearHostKeys::Install(const std::string& key_pair) {
  if (key_pair.size() != 64) return "an ed25519 key pair is 64 bytes, not " +
                                    std::to_string(key_pair.size());
  const std::string public_key = key_pair.substr(32);
  // dropbear's key file: SSH strings "ssh-ed25519" and seed||public; the public blob is the
  // SSH strings "ssh-ed25519" and the public key.
  const std::string file = SshString("ssh-ed25519") + SshString(key_pair);
  if (auto error = system_.WriteFileAtomically(kHostKeyFile, file, 0600)) {
    return "cannot write " + std::string(kHostKeyFile) + ": " + *error;
  }
  SshHostKey host_key{"ssh-ed25519",
                      Sha256Fingerprint(SshString("ssh-ed25519") + SshString(public_key))};
  by_contents_.clear();
  Remember(kHostKeyFile, host_key);
  return host_key;
}

}  // namespace ferry::guest
