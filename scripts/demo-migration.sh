#!/usr/bin/env bash
# Part of README command 1 (run by demo.sh, or alone after a build): a second host, and redis
# under a write load moved to it live. The hosts are network namespaces on one L2 segment, as
# in a datacenter: h1 and h2 each run their own ferryd with their own fleet certificate, and a
# client namespace writes to the guest's address the whole time.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${FERRY_BUILD_DIR:-$root/build}
ferry="$build/ferry"
work=/tmp/ferry-demo-migration
p=fydemo   # namespace prefix
vm_ip=10.77.0.10

[[ $(id -u) -eq 0 ]] || { echo "demo-migration: needs root (network namespaces)"; exit 1; }

cleanup() {
  for ns in ${p}h1 ${p}h2 ${p}h3 ${p}cl ${p}sw; do
    for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -9 "$pid" 2>/dev/null || true; done
    ip netns del "$ns" 2>/dev/null || true
  done
  rm -rf "$work" /dev/shm/ferry-demo-h1 /dev/shm/ferry-demo-h2 /dev/shm/ferry-demo-h3
}
cleanup
[[ -n ${FERRY_DEMO_KEEP:-} ]] || trap cleanup EXIT

echo "--- a datacenter of namespaces: h1 10.77.0.1, h2 10.77.0.2, h3 10.77.0.3, client 10.77.0.200, one bridge"
ip netns add ${p}sw
ip -n ${p}sw link add br0 type bridge && ip -n ${p}sw link set br0 up && ip -n ${p}sw link set lo up
attach() {  # namespace, address, bridge inside the namespace ("" for none)
  local ns=$1 addr=$2 br=$3
  ip netns add "$ns"
  ip -n "$ns" link set lo up
  ip link add "${ns}-up" netns ${p}sw type veth peer name eth0 netns "$ns"
  ip -n ${p}sw link set "${ns}-up" master br0 up
  if [[ -n $br ]]; then
    ip -n "$ns" link add "$br" type bridge
    ip -n "$ns" link set eth0 master "$br" up
    ip -n "$ns" link set "$br" up
    ip -n "$ns" addr add "$addr/24" dev "$br"
  else
    ip -n "$ns" link set eth0 up
    ip -n "$ns" addr add "$addr/24" dev eth0
  fi
}
attach ${p}h1 10.77.0.1 ferrybr0
attach ${p}h2 10.77.0.2 ferrybr0
attach ${p}h3 10.77.0.3 ferrybr0
attach ${p}cl 10.77.0.200 ""

echo "--- fleet CA, one certificate per host, an owner key and a policy: web may go to zone=b"
mkdir -p "$work"
"$ferry" ca init --dir "$work/ca"
"$ferry" host enroll --ca "$work/ca" --host-id h1 --label zone=a --out "$work/h1"
"$ferry" host enroll --ca "$work/ca" --host-id h2 --label zone=b --out "$work/h2"
"$ferry" host enroll --ca "$work/ca" --host-id h3 --label zone=b --out "$work/h3"
"$ferry" owner keygen --out "$work/alice.key"
"$ferry" policy sign --key "$work/alice.key" --vm web --allow-label zone=b --hold-max 86400 \
  --out "$work/web.policy"

for i in 1 2 3; do
  ip netns exec ${p}h$i "$build/ferryd" --state-dir "$work/state-h$i" \
    --ram-dir /dev/shm/ferry-demo-h$i --socket "$work/h$i.sock" \
    --listen 10.77.0.$i:7400 --tls-dir "$work/h$i" --allow-bridge ferrybr0 --require-policy \
    >"$work/ferryd-h$i.log" 2>&1 &
  disown
done
h1() { FERRY_SOCKET="$work/h1.sock" "$ferry" "$@"; }
h2() { FERRY_SOCKET="$work/h2.sock" "$ferry" "$@"; }
h3() { FERRY_SOCKET="$work/h3.sock" "$ferry" "$@"; }
for _ in $(seq 100); do
  h1 host show >/dev/null 2>&1 && h2 host show >/dev/null 2>&1 && h3 host show >/dev/null 2>&1 &&
    break
  sleep 0.1
done
h1 peer add h2 10.77.0.2:7400
h2 peer add h1 10.77.0.1:7400
h2 peer add h3 10.77.0.3:7400

echo "--- web on h1: redis at $vm_ip on the segment (tap on h1's bridge)"
h1 vm create web --net tap --bridge ferrybr0 --ip $vm_ip/24 --policy "$work/web.policy" --wait-ready

echo "--- a client writes INCR on one TCP connection, every 10 ms, the whole time"
ip netns exec ${p}cl redis-cli -h $vm_ip -r -1 -i 0.01 incr counter >"$work/writes" 2>&1 &
writer=$!
sleep 2
echo "--- migrate web to h2 while it takes writes"
before=$(wc -l <"$work/writes")
h1 migrate web --to h2 --json | tee "$work/result.json"
sleep 2
# SIGTERM: a non-interactive shell starts background jobs with SIGINT ignored.
kill -TERM $writer 2>/dev/null || true
wait $writer 2>/dev/null || true

echo "--- after the move"
echo "h1: $(h1 vm list | tail -n +2 | wc -l) VM(s); h2:"
h2 vm list
acked=$(grep -c . "$work/writes")
last=$(tail -1 "$work/writes")
stored=$(ip netns exec ${p}cl redis-cli -h $vm_ip get counter)
broken=$(grep -vcE '^[0-9]+$' "$work/writes" || true)
python3 - "$work/result.json" "$before" "$acked" "$last" "$stored" "$broken" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
before, acked, last, stored, broken = sys.argv[2:]
print(f"  total {r['total_ms']} ms, downtime {r['downtime_ms']} ms (limit {r['downtime_limit_ms']} ms), "
      f"{r['wire_bytes_sent'] / 2**20:.1f} MiB on the wire for {r['ram_transferred_bytes'] / 2**20:.1f} MiB of RAM")
print(f"  writes acknowledged: {acked} ({int(acked) - int(before)} after the move began), "
      f"last acknowledged {last}, counter on h2 {stored}, error lines on the client {broken}")
print("  every acknowledged write is on h2" if int(stored) >= int(last) and broken == "0"
      else "  WRITES LOST OR CONNECTION BROKEN")
PY

identity() {  # host
  "$1" vm show web --json | python3 -c '
import json, sys
j = json.load(sys.stdin); g = j.get("guest", {})
keys = g.get("ssh_host_keys") or [{}]
print("host %s, mac %s, machine-id %s, ssh %s" % (g.get("hostname"),
      (g.get("macs") or [{}])[0].get("mac"), g.get("machine_id"), keys[0].get("fingerprint")))'
}
echo "--- hold web on h2: it stops running; its whole state is sealed into h2's store"
before_hold=$(ip netns exec ${p}cl redis-cli -h $vm_ip get counter)
identity_before=$(identity h2)
h2 hold web
h2 hold list
h2 store show
echo "h2: $(h2 vm list | tail -n +2 | wc -l) VM(s) running; redis at $vm_ip answers: $(
  ip netns exec ${p}cl timeout 2 redis-cli -h $vm_ip ping 2>/dev/null || echo no)"
echo "--- send the hold to h1 (zone=a): the owner's policy allows zone=b only"
if h2 hold send web --to h1; then echo "demo: a send the policy forbids went through"; exit 1; fi
echo "--- send the hold to h3 (zone=b): only the chunks h3 lacks travel; then h3 holds it"
h2 hold send web --to h3
echo "h2 holds $(h2 hold list --json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))') VM(s); h3:"
h3 hold list
echo "--- restore it on h3: the same machine, its data, its address"
h3 hold restore web --wait-ready
after_hold=$(ip netns exec ${p}cl redis-cli -h $vm_ip get counter)
echo "  counter before the hold $before_hold, after the restore on h3 $after_hold"
[[ $before_hold == "$after_hold" ]] || { echo "demo: the held VM lost its data"; exit 1; }
identity_after=$(identity h3)
echo "  before (h2): $identity_before"
echo "  after (h3):  $identity_after"
[[ $identity_before == "$identity_after" ]] || { echo "demo: the restored VM is not the same machine"; exit 1; }
h3 vm delete web --force
