#include "snapshot/clone_identity_reset.h"

#include <time.h>

#include "core/ids.h"
#include "crypto/ssh_host_key_pair.h"

namespace ferry::snapshot {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

namespace {

int64_t RealtimeNs() {
  struct timespec ts;
  ::clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

// A guest call whose failure, or a reply of the wrong shape, means the clone must not serve.
Result<qemu::GuestIdentityChange> IdentityReply(std::string_view op, const Result<json>& reply) {
  Result<qemu::GuestIdentityChange> change =
      reply.ok() ? qemu::ParseIdentityChangeReply(op, *reply)
                 : Result<qemu::GuestIdentityChange>(reply.status());
  if (!change.ok()) {
    return Status::Unavailable("the clone's identity could not be reset (" + std::string(op) +
                               ": " + change.status().message() + "); it was not started");
  }
  return change;
}

Result<vm::VmRuntime::GuestRequest> StartIdentityCall(vm::VmRuntime& rt, std::string_view op,
                                                      const json& args) {
  FERRY_RETURN_IF_ERROR(rt.WaitGuestConnected(kGuestIdentityTimeout));
  auto request = rt.GuestStart(op, args);
  if (!request.ok()) return IdentityReply(op, request.status()).status();
  return request;
}

Result<qemu::GuestIdentityChange> IdentityCall(vm::VmRuntime& rt, std::string_view op,
                                               const json& args) {
  FERRY_ASSIGN_OR_RETURN(auto request, StartIdentityCall(rt, op, args));
  return IdentityReply(op, vm::VmRuntime::GuestWait(std::move(request), kGuestIdentityTimeout));
}

}  // namespace

std::string HostnameFor(const std::string& name) {
  std::string h = name;
  for (char& c : h) {
    if (c == '_' || c == '.') c = '-';
  }
  while (!h.empty() && h.back() == '-') h.pop_back();
  return h.empty() ? "ferry" : h;
}

Result<StartedIdentityReset> StartResetIdentity(vm::VmRuntime& rt, const std::string& hostname,
                                                const std::string& ipv4) {
  StartedIdentityReset started;
  started.mac = NewMac();
  FERRY_ASSIGN_OR_RETURN(const std::string ssh_key, crypto::NewSshHostKeyPair());
  json args = {
      {"hostname", HostnameFor(hostname)}, {"mac", started.mac},
      {"machine_id", RandomHex(16)},       {"entropy", RandomHex(64)},
      {"time_unix_ns", RealtimeNs()},      {"ssh_host_key", HexOf(ssh_key)},
  };
  if (!ipv4.empty()) args["ipv4"] = ipv4;
  FERRY_ASSIGN_OR_RETURN(started.request, StartIdentityCall(rt, guest::ops::kResetIdentity, args));
  return started;
}

Result<IdentityOutcome> AwaitResetIdentity(StartedIdentityReset started) {
  IdentityOutcome out;
  out.mac = std::move(started.mac);
  FERRY_ASSIGN_OR_RETURN(
      out.reply,
      IdentityReply(guest::ops::kResetIdentity,
                    vm::VmRuntime::GuestWait(std::move(started.request), kGuestIdentityTimeout)));
  return out;
}

Result<IdentityOutcome> ResetIdentity(vm::VmRuntime& rt, const std::string& hostname,
                                      const std::string& ipv4) {
  FERRY_ASSIGN_OR_RETURN(auto started, StartResetIdentity(rt, hostname, ipv4));
  return AwaitResetIdentity(std::move(started));
}

Result<IdentityOutcome> FinishIdentity(vm::VmRuntime& rt, const PrimedIdentity& primed,
                                       const std::string& hostname, const std::string& ipv4) {
  IdentityOutcome out;
  out.mac = primed.mac;
  json args = {{"hostname", HostnameFor(hostname)},
               {"entropy", RandomHex(64)},
               {"time_unix_ns", RealtimeNs()}};
  if (!ipv4.empty()) args["ipv4"] = ipv4;
  FERRY_ASSIGN_OR_RETURN(out.reply, IdentityCall(rt, guest::ops::kFinishIdentity, args));
  return out;
}

Result<PrimedIdentity> PrimePoolQemu(vm::VmRuntime& rt, const std::string& placeholder) {
  const auto t0 = Clock::now();
  Status cont = qemu::Cont(rt);
  if (!cont.ok()) return cont.WithContext("priming a pool QEMU: resuming it");
  // Paused again on every path out: a waiting pool QEMU must not run.
  auto pause = [&rt]() -> Status {
    Status stop = qemu::Stop(rt);
    return stop.ok() ? Status::Ok() : stop.WithContext("priming a pool QEMU: pausing it");
  };
  FERRY_RETURN_IF_ERROR(rt.WaitGuestConnected(kGuestIdentityTimeout));
  auto reply = rt.GuestCall(guest::ops::kPing, json::object(), kGuestIdentityTimeout);
  auto ping = reply.ok() ? qemu::ParsePingReply(*reply) : Result<qemu::GuestPing>(reply.status());
  if (!ping.ok()) {
    (void)pause();
    return ping.status().WithContext("priming a pool QEMU: ping");
  }
  if (ping->proto < guest::kProtoWithFinishIdentity) {
    FERRY_RETURN_IF_ERROR(pause());
    return Status::NotFound("the snapshot's ferry-guest speaks protocol " +
                            std::to_string(ping->proto) + ", without finish_identity");
  }
  auto reset = ResetIdentity(rt, placeholder);
  Status paused = pause();
  if (!reset.ok()) return reset.status();
  FERRY_RETURN_IF_ERROR(paused);
  PrimedIdentity primed;
  primed.mac = reset->mac;
  primed.steps_ms = reset->reply.StepsJson();
  primed.guest_ms = reset->reply.total_ms;
  primed.ms = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0).count();
  return primed;
}

}  // namespace ferry::snapshot
