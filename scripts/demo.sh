#!/usr/bin/env bash
# README command 1: installs and builds what is missing, starts ferryd if it is not running,
# and walks a redis VM through its life, timing each step.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${FERRY_BUILD_DIR:-$root/build}
state=${FERRY_STATE_DIR:-/var/lib/ferry}
export FERRY_SOCKET=${FERRY_SOCKET:-$state/ferryd.sock}
ferry="$build/ferry"
vm=${FERRY_DEMO_VM:-demo-redis}

"$root/scripts/setup.sh"

now_ms() { date +%s%3N; }
declare -a step_names=() step_ms=()
step() {  # step "what" command...
  local what=$1; shift
  local t0; t0=$(now_ms)
  echo "--- $what"
  "$@"
  step_names+=("$what"); step_ms+=($(( $(now_ms) - t0 )))
}

if ! "$ferry" host show >/dev/null 2>&1; then
  echo "--- starting ferryd (state $state, log $state/ferryd.log)"
  mkdir -p "$state" && chmod 700 "$state"
  nohup "$build/ferryd" --state-dir "$state" --socket "$FERRY_SOCKET" >>"$state/ferryd.log" 2>&1 &
  for _ in $(seq 100); do "$ferry" host show >/dev/null 2>&1 && break; sleep 0.1; done
  "$ferry" host show >/dev/null || { echo "ferryd did not start; see $state/ferryd.log"; exit 1; }
fi
"$ferry" host show

# A VM left over from an interrupted demo goes first.
"$ferry" vm delete "$vm" --force >/dev/null 2>&1 || true

# The first port from 16379 on that nothing answers on.
port=16379
while (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do port=$((port + 1)); done

step "create $vm (256 MiB, redis forwarded to 127.0.0.1:$port) and wait until redis answers" \
  "$ferry" vm create "$vm" --memory 256 --forward "$port:6379" --wait-ready
step "write 3 keys with redis-cli" bash -c "
  redis-cli -p $port set city Lisbon && redis-cli -p $port set river Tejo &&
  redis-cli -p $port incrby visitors 41 && redis-cli -p $port incr visitors"
step "ferry vm list" "$ferry" vm list
step "pause" "$ferry" vm pause "$vm"
step "resume" "$ferry" vm resume "$vm"
step "read the keys back" bash -c "redis-cli -p $port mget city river visitors"
got=$(redis-cli -p "$port" mget city river visitors | tr '\n' ' ')
[[ $got == "Lisbon Tejo 42 " ]] || { echo "demo: keys came back wrong: $got"; exit 1; }
step "ferry vm show" "$ferry" vm show "$vm"

# --- warm clones: snapshot the loaded VM, start three clones, each with a new identity
"$ferry" snapshot delete demo-warm >/dev/null 2>&1 || true
for c in demo-c1 demo-c2 demo-c3; do "$ferry" vm delete "$c" --force >/dev/null 2>&1 || true; done
step "load a data set (10000 keys) into $vm" bash -c "
  seq 1 10000 | sed 's/.*/SET key:& value-&/' | redis-cli -p $port --pipe >/dev/null &&
  redis-cli -p $port dbsize"
step "snapshot $vm while it runs" "$ferry" snapshot create "$vm" --name demo-warm
step "clone it three times" "$ferry" clone demo-warm --count 3 \
  --name demo-c1 --name demo-c2 --name demo-c3 --forward 0:6379
echo "--- each clone serves the parent's data on its own port"
for c in demo-c1 demo-c2 demo-c3; do
  p=$("$ferry" vm show "$c" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["spec"]["network"]["forwards"][0]["host_port"])')
  printf '  %-8s port %-5s dbsize %s  key:4242=%s\n' "$c" "$p" \
    "$(redis-cli -p "$p" dbsize)" "$(redis-cli -p "$p" get key:4242)"
done
echo "--- identities side by side (parent first)"
for v in "$vm" demo-c1 demo-c2 demo-c3; do
  "$ferry" vm show "$v" --json | python3 -c '
import json, sys
j = json.load(sys.stdin); g = j.get("guest", {}); t = j.get("timings", {})
keys = g.get("ssh_host_keys") or [{}]
print("  %-10s host %-10s mac %s  machine-id %s  ssh %s  restore %s ms" % (
    j["name"], g.get("hostname"), (g.get("macs") or [{}])[0].get("mac"), g.get("machine_id"),
    keys[0].get("fingerprint", "-")[:20] + "...", t.get("restore_total_ms", "-")))'
done
echo "--- 32 bytes of each guest's /dev/urandom"
for v in "$vm" demo-c1 demo-c2 demo-c3; do printf '  %-10s %s\n' "$v" "$("$ferry" vm random "$v")"; done
step "delete the clones and the snapshot" bash -c "
  for c in demo-c1 demo-c2 demo-c3; do '$ferry' vm delete \$c --force; done &&
  '$ferry' snapshot delete demo-warm"
step "stop (graceful, through ferry-guest)" "$ferry" vm stop "$vm"
step "delete" "$ferry" vm delete "$vm"

# Live migration needs network namespaces (root): a second host and redis moved there live.
if [[ $(id -u) -eq 0 ]]; then
  step "live migration between two hosts under a redis write load" "$root/scripts/demo-migration.sh"
else
  echo "--- live migration demo skipped: it needs root for network namespaces"
fi

echo
echo "step timings"
for i in "${!step_names[@]}"; do printf '  %8d ms  %s\n' "${step_ms[$i]}" "${step_names[$i]}"; done
echo "ferryd keeps running (socket $FERRY_SOCKET); stop it with: pkill -f 'ferryd --state-dir $state'"
