#!/usr/bin/env python3
"""Writes the seed corpora in fuzz/corpus/<target>/ from real messages: the lines QEMU 7.2 and
ferry-guest send, the frames and prepare messages two ferryds exchange, policies signed by
`ferry policy sign` (read from POLICY_DIR), manifests as WriteManifest lays them out, API
bodies as the CLI sends them, host requests from guest/protocol.h and DHCP replies as QEMU's
user networking sends them. Run it again after a format changes:
    fuzz/make_corpus.py POLICY_DIR   (a directory of *.policy files)"""
import hashlib, json, os, struct, sys, zlib

here = os.path.dirname(os.path.abspath(__file__))


def write(target, name, data):
    d = os.path.join(here, "corpus", target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def line(obj):
    return json.dumps(obj, separators=(",", ":")) + "\n"


ts = {"seconds": 1765000000, "microseconds": 412345}
qmp = {
    "greeting": {"QMP": {"version": {"qemu": {"micro": 19, "minor": 2, "major": 7},
                                     "package": "Debian 1:7.2+dfsg-7+deb12u12"},
                         "capabilities": ["oob"]}},
    "capabilities": {"return": {}, "id": 1},
    "status": {"return": {"status": "running", "singlestep": False, "running": True}, "id": 2},
    "stop_event": {"timestamp": ts, "event": "STOP"},
    "shutdown_event": {"timestamp": ts, "event": "SHUTDOWN",
                       "data": {"guest": True, "reason": "guest-shutdown"}},
    "migration_event": {"timestamp": ts, "event": "MIGRATION", "data": {"status": "completed"}},
    "generic_error": {"error": {"class": "GenericError",
                                "desc": "Parameter 'uri' is missing"}, "id": 7},
    "not_found": {"error": {"class": "CommandNotFound",
                            "desc": "The command query-nothing has not been found"}, "id": 8},
    "query_migrate": {"return": {"status": "completed", "setup-time": 3, "downtime": 41,
                                 "total-time": 2210, "ram": {"total": 268435456,
                                 "transferred": 98765432, "remaining": 0, "duplicate": 51234,
                                 "normal": 23456, "mbps": 812.5, "dirty-pages-rate": 120}},
                      "id": 12},
    "query_version": {"return": {"qemu": {"micro": 2, "minor": 0, "major": 10},
                                 "package": "Debian 1:10.0.2+ds-2+deb13u1~bpo12+1"}, "id": 3},
    # After a snapshot switched the data disk to its overlay (node top-disk-ID, fd set).
    "query_block": {"return": [{"io-status": "ok", "device": "disk0", "locked": False,
                                "removable": False, "inserted": {
                                    "iops_rd": 0, "detect_zeroes": "off", "image": {
                                        "virtual-size": 67108864, "filename": "/dev/fdset/0",
                                        "format": "qcow2", "backing-filename":
                                        "/var/lib/ferry/disks/0123456789abcdef.qcow2"},
                                    "node-name": "top-disk-0123456789abcdef", "ro": False,
                                    "drv": "qcow2", "encrypted": False,
                                    "file": "/dev/fdset/0", "cache": {"writeback": True,
                                    "direct": False, "no-flush": False}}, "qdev": "vd0",
                                "type": "unknown"}], "id": 14},
}
for name, obj in qmp.items():
    write("qmp_reply", name, line(obj))
write("qmp_reply", "session", "".join(line(qmp[k]) for k in
                                      ("greeting", "capabilities", "stop_event", "status")))

guest = {
    "ping": {"id": 3, "ok": True, "proto": 3, "ready": True, "uptime_ms": 2412},
    "ready_event": {"event": "ready", "proto": 3, "services": ["redis"], "boot_ms": 1834},
    "identity": {"id": 4, "ok": True, "hostname": "web-1",
                 "machine_id": "0123456789abcdef0123456789abcdef",
                 "boot_id": "6b1e2b2a-1d7c-4d2e-9a57-1a2b3c4d5e6f",
                 "macs": [{"iface": "eth0", "mac": "52:54:00:12:34:56", "ipv4": ["10.0.2.15/24"],
                           "ipv6_link_local": ["fe80::5054:ff:fe12:3456"]}],
                 "kernel": "6.1.0-28-amd64",
                 "ssh_host_keys": [{"type": "ssh-ed25519", "fingerprint":
                                    "SHA256:CMfTW4xhg+QJe2ifVnnjTpGx/8+JJbybjzF/OlZ6bbs"}],
                 "clock_unix_ns": 1765000000123456789},
    "reset_identity": {"id": 5, "ok": True, "identity": {"hostname": "web-1-c1"},
                       "steps_ms": {"rng": 0.03, "clock": 0.01, "machine_id": 0.2,
                                    "hostname": 0.4, "mac": 3.1, "ssh_keys": 212.5, "dhcp": 15.2},
                       "total_ms": 231.6},
    "reset_failed": {"id": 6, "ok": False, "error": "reset_identity failed at step 'mac': "
                     "SIOCSIFHWADDR eth0: Operation not permitted. Done before it, and still in "
                     "effect: rng, clock, machine_id, hostname; not attempted: ssh_keys, dhcp",
                     "failed_step": "mac", "steps_ms": {"rng": 0.03, "clock": 0.01}},
    "urandom": {"id": 7, "ok": True, "hex": "5a" * 16},
    "bad_request": {"id": None, "ok": False,
                    "error": "request must be a JSON object like {\"id\":1,\"op\":\"ping\"}"},
    "shutdown": {"id": 9, "ok": True},
    "announce": {"id": 10, "ok": True, "announced": ["10.77.0.21"], "rounds": 2},
}
for name, obj in guest.items():
    write("guest_message", name, line(obj))
write("guest_message", "session", "".join(line(guest[k]) for k in ("ready_event", "ping", "identity")))

# json_line: a control byte (line limit and piece size, see json_line.cc), then lines.
write("json_line", "qmp_session", b"\x3f" + "".join(line(qmp[k]) for k in
                                                    ("greeting", "capabilities", "status")).encode())
write("json_line", "guest_crlf", b"\x80" + (line(guest["ping"]).rstrip("\n") + "\r\n\n").encode())
write("json_line", "small_limit", b"\x08" + b'{"id":1}\n{"a":[1,2,3,4,5,6]}\n\n[1]\n')
write("json_line", "split_pieces", b"\xc0" + line(guest["ready_event"]).encode())
write("json_line", "numbers", b"\x7f" + b'{"n":-1,"f":0.5,"e":1e10,"u":18446744073709551615}\n')
write("json_line", "unicode", b"\x7f" + '{"s":"h\\u00e9 \\ud83d\\ude00 \u00e9"}\n'.encode())

guest_requests = {
    "ping": {"id": 1, "op": "ping"},
    "identity": {"id": 2, "op": "identity"},
    "reset_identity": {"id": 11, "op": "reset_identity", "hostname": "web-2",
                       "mac": "52:54:00:ab:cd:ef", "machine_id": "00112233445566778899aabbccddeeff",
                       "entropy": "a" * 64 + "b" * 64, "time_unix_ns": 1750000000123456789},
    "finish_identity": {"id": 12, "op": "finish_identity", "hostname": "web-2-c3",
                        "entropy": "0123456789abcdef" * 8, "time_unix_ns": 1750000000123456789},
    "reset_identity_tap": {"id": 15, "op": "reset_identity", "hostname": "db-1-c2",
                           "mac": "52:54:00:ab:cd:f0",
                           "machine_id": "00112233445566778899aabbccddeef0",
                           "entropy": "c" * 128, "time_unix_ns": 1750000000123456789,
                           "ipv4": "10.77.0.22/24"},
    "announce": {"id": 16, "op": "announce"},
    "urandom": {"id": 13, "op": "urandom", "bytes": 16},
    "shutdown": {"id": 14, "op": "shutdown"},
}
for name, obj in guest_requests.items():
    write("guest_request", name, line(obj))
write("guest_request", "resync_then_ping", "\n" + line(guest_requests["ping"]).rstrip("\n") + "\r\n")
write("guest_request", "not_json", "ping\n")


def crc32c(data, crc=0):
    crc ^= 0xFFFFFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF


def frame(kind, payload):
    if isinstance(payload, str):
        payload = payload.encode()
    head = b"FRYM" + bytes([1, 0, kind, 0]) + struct.pack("<I", len(payload))
    return head + struct.pack("<I", crc32c(head + payload)) + payload


policies = {}
policy_dir = sys.argv[1] if len(sys.argv) > 1 else None
if policy_dir:
    for f in sorted(os.listdir(policy_dir)):
        if f.endswith(".policy"):
            policies[f[:-len(".policy")]] = open(os.path.join(policy_dir, f)).read()
            write("owner_policy", f, policies[f[:-len(".policy")]])

spec = {"name": "web-1", "image": "default", "memory_mib": 256, "cpus": 1,
        "network": {"mode": "tap", "forwards": [], "bridge": "ferrybr0", "ip": "10.0.0.10/24"}}
if "web-1" in policies:
    spec["policy"] = policies["web-1"]
messages = {
    "prepare": {"type": "prepare", "migration": "m-3f9a2c", "spec": spec,
                "mac": "52:54:00:3a:7c:01", "vmgenid": "8d3c7a4e-1b2f-4c5d-9e6f-0a1b2c3d4e5f"},
    "prepare_machine_type": {"type": "prepare", "migration": "m-3f9a2d", "spec": spec,
                             "mac": "52:54:00:3a:7c:02", "machine_type": "pc-q35-10.0"},
    "prepare_user_net": {"type": "prepare", "migration": "m-77aa01",
                         "spec": {"name": "redis", "image": "default", "memory_mib": 512, "cpus": 2,
                                  "disk": "1024M", "network": {"mode": "user", "forwards": [
                                      {"host_port": 16379, "guest_port": 6379}]}},
                         "mac": "52:54:00:11:22:33", "vmgenid": "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"},
    "prepared": {"type": "prepared"},
    "received": {"type": "received"},
    "finish": {"type": "finish"},
    "finished": {"type": "finished"},
    "failed": {"type": "failed", "error": "vm web-1: a VM of that name exists on h2"},
    "abort": {"type": "abort", "error": "cancelled by the user"},
    "query": {"type": "query", "migration": "m-3f9a2c", "vm": "web-1"},
    "state": {"type": "state", "state": "running"},
    "hold_prepare": {"type": "hold-prepare", "migration": "m-3f9a2c", "vm": "web-1",
                     "owner": "a" * 64, "manifest_bytes": 70123, "data_key": "0f" * 32,
                     "owner_secret": "c3" * 32},
    "hold_prepare_unowned": {"type": "hold-prepare", "migration": "m-77aa01", "vm": "redis",
                             "manifest_bytes": 812, "data_key": "5a" * 32},
    "hold_prepare_snapshot": {"type": "hold-prepare", "migration": "m-5b0c11", "vm": "web-1",
                              "owner": "a" * 64, "manifest_bytes": 9000, "data_key": "0f" * 32,
                              "snapshot": "warm"},
    "hold_prepared": {"type": "hold-prepared", "chunks": 4096},
    "hold_query": {"type": "hold-query", "migration": "m-3f9a2c", "vm": "web-1"},
    "state_held": {"type": "state", "state": "held"},
}
for name, obj in messages.items():
    write("peer_message", name, json.dumps(obj))
write("peer_frame", "prepare", frame(1, json.dumps(messages["prepare_user_net"])))
write("peer_frame", "finish", frame(1, json.dumps(messages["finish"])))
write("peer_frame", "accept", frame(4, "{}"))
write("peer_frame", "data", frame(2, b"QEVM\x00\x00\x00\x03" + bytes(range(64))))
write("peer_frame", "data_empty", frame(2, b""))
write("peer_frame", "stream_end", frame(3, b""))

# API bodies as the CLI sends them (cli/cmd_*.cc).
api = {
    "vm_create": {"name": "web-1", "image": "default", "memory": "256M", "cpus": 1,
                  "network": {"mode": "user", "forwards": ["16379:6379"]}},
    "vm_create_spec": {"spec": {"name": "db", "memory_mib": 512, "disk": "1G",
                                "network": {"forwards": [{"host_port": 0, "guest_port": 6379}]}},
                       "wait_ready": True},
    "vm_create_tap": {"name": "web-2", "network": {"mode": "tap", "bridge": "ferrybr0",
                                                   "ip": "10.77.0.10/24", "gateway": "10.77.0.1"}},
    "vm_create_template": {"name": "api-7", "template": "redis", "forwards": ["0:6379"]},
    "clone": {"count": 3, "forwards": ["0:6379"]},
    "snapshot": {"vm": "web-1", "name": "warm"},
    "stop": {"force": False, "timeout_s": 30},
    "migrate": {"vm": "web-1", "to": "h2", "downtime_ms": 300},
    "peer_add": {"host_id": "h2", "address": "10.0.0.2:7400"},
}
if "db" in policies:
    api["vm_create_policy"] = {"name": "db", "memory": "1G", "policy": policies["db"]}
for name, obj in api.items():
    write("api_request", name, json.dumps(obj))
write("api_request", "empty", b"")


def manifest(name, with_disk, chunks):
    chunk_bytes = 2 << 20
    m = {"format": "ferry-snapshot", "version_major": 1, "version_minor": 1, "name": name,
         "id": "s-" + hashlib.sha256(name.encode()).hexdigest()[:16],
         "source_vm": {"name": "web-1", "id": "v-0f3e9a7c21b4d685",
                       "spec": {"name": "web-1", "image": "default", "memory_mib": 256, "cpus": 1,
                                "network": {"mode": "user", "forwards": [
                                    {"host_port": 16379, "guest_port": 6379}]}}},
         "image": "default", "memory_mib": 256, "accelerator": "tcg",
         "machine": "pc-i440fx-7.2 qemu64", "created_at_ms": 1765000000123, "pause_ms": 212,
         "device_state": {"file": "device.state", "size": 1048123,
                          "sha256": hashlib.sha256(b"device").hexdigest()},
         "ram": {"file": "ram", "size": len(chunks) * chunk_bytes, "chunk_bytes": chunk_bytes,
                 "checksum": "crc32", "data_bytes": sum(c != "zero" for c in chunks) * chunk_bytes,
                 "chunks": chunks}}
    if with_disk:
        m["disk"] = {"file": "disk.qcow2", "size": 1245184,
                     "sha256": hashlib.sha256(b"disk").hexdigest(),
                     "chain": ["/var/lib/ferry/frozen/d-1.qcow2"]}
    canonical = json.dumps(m, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    m["manifest_sha256"] = hashlib.sha256(canonical.encode()).hexdigest()
    return json.dumps(m, sort_keys=True, indent=1) + "\n"


chunks = ["%08x" % (zlib.crc32(bytes([i])) ) if i % 3 else "zero" for i in range(16)]
write("snapshot_manifest", "warm", manifest("warm", False, chunks))
write("snapshot_manifest", "with_disk", manifest("nightly", True, chunks[:4]))
write("snapshot_manifest", "all_zero", manifest("empty", False, ["zero"] * 8))

# DHCP replies as QEMU's user networking sends them (guest/fake_dhcp_messages.h).
def dhcp_reply(msg_type, yiaddr, extra=b""):
    b = bytearray(240)
    b[0], b[1], b[2] = 2, 1, 6
    b[4:8] = struct.pack(">I", 0x12345678)
    b[16:20] = bytes(yiaddr)
    b[20:24] = bytes([10, 0, 2, 2])
    b[28:34] = bytes([0x52, 0x54, 0x00, 0x12, 0x34, 0x56])
    b[236:240] = b"\x63\x82\x53\x63"
    opts = bytes([53, 1, msg_type, 54, 4, 10, 0, 2, 2, 51, 4]) + struct.pack(">I", 86400)
    opts += bytes([1, 4, 255, 255, 255, 0, 3, 4, 10, 0, 2, 2, 6, 4, 10, 0, 2, 3])
    return bytes(b) + opts + extra + b"\xff" + bytes(60)


write("dhcp_message", "offer", dhcp_reply(2, [10, 0, 2, 16]))
write("dhcp_message", "ack", dhcp_reply(5, [10, 0, 2, 15], bytes([15, 9]) + b"ferry.lan"))
write("dhcp_message", "nak", dhcp_reply(6, [0, 0, 0, 0], bytes([56, 14]) + b"wrong address"[:14].ljust(14)))

# Store formats (src/store/): sealed chunks as SealChunk writes them (raw and zstd-compressed),
# and hold manifests laid out as EncodeHoldManifest writes them. The fuzz target re-signs a
# manifest with its own key, so the seeds carry a placeholder signature.
def store_seeds():
    import subprocess
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    import hmac as hmac_mod

    key = bytes([0x5a]) * 32

    def sealed_chunk(plain, level=1):
        z = subprocess.run(["zstd", "-q", "-c", "-%d" % level, "--no-check"], input=plain,
                           capture_output=True, check=True).stdout
        compressed = len(z) < len(plain)
        body = z if compressed else plain
        header = b"FRCK" + bytes([2, 0, 1 if compressed else 0, 0])
        header += struct.pack("<II", len(plain), len(body) + 16)
        nonce = hmac_mod.new(key, b"nonce", hashlib.sha256).digest()[:12]
        f = header + AESGCM(key).encrypt(nonce, body, header)
        return f + struct.pack("<I", crc32c(f))

    def crc32c(data):
        crc = 0xffffffff
        for b in data:
            crc ^= b
            for _ in range(8):
                crc = (crc >> 1) ^ 0x82f63b78 if crc & 1 else crc >> 1
        return crc ^ 0xffffffff

    write("sealed_chunk", "text_page", sealed_chunk(b"redis key value pairs. " * 178))
    write("sealed_chunk", "random_page", sealed_chunk(os.urandom(4096)))
    write("sealed_chunk", "short_tail", sealed_chunk(b"\x01\x02\x03 end of a blob"))

    def pack(seq, chunks, index=True):
        out = b"FRPK" + bytes([1, 0, 0, 0]) + struct.pack("<Q", seq)
        entries = b""
        for plain in chunks:
            sealed = sealed_chunk(plain)
            cid = hashlib.sha256(plain).digest()
            entries += cid + struct.pack("<QI", len(out), len(sealed))
            out += cid + struct.pack("<I", len(sealed)) + sealed
        if not index:
            return out
        tail = entries + struct.pack("<QI", len(out), len(chunks)) + b"FRPX"
        return out + tail + hashlib.sha256(tail).digest()

    write("pack_file", "two_chunks", pack(1, [b"redis key value pairs. " * 178, os.urandom(3000)]))
    write("pack_file", "no_index", pack(7, [os.urandom(2000), b"\x01\x02 end of a blob"],
                                        index=False))
    write("pack_file", "empty", pack(2, []))

    def table(blobs, chunk_bytes=65536):
        out = struct.pack("<II", chunk_bytes, len(blobs))
        for name, size, kinds in blobs:
            out += struct.pack("<I", len(name)) + name + struct.pack("<QQ", size, len(kinds))
            for k in kinds:
                out += bytes([k]) + (os.urandom(64) if k else b"")
        return out

    def manifest(header, table_bytes):
        h = json.dumps(header, separators=(",", ":"), sort_keys=True).encode()
        out = b"FERRYHLD" + struct.pack("<HHIQ", 1, 0, len(h), len(table_bytes)) + h
        out += table_bytes + struct.pack("<I", 71) + bytes(71)
        return out + hashlib.sha256(out).digest()

    header = {"chunk_bytes": 65536, "created_at": 1765000000, "expires_at": 0,
              "hold_id": "web-1-3f2a", "logical_bytes": 268435468, "owner_fingerprint": "a" * 64,
              "policy": "{\"magic\":\"ferry-policy\"}", "sealed_at": 1765000100,
              "signer_host_id": "h1", "spec": "{\"name\":\"web-1\",\"memory_mib\":256}",
              "state": "durable", "vm_name": "web-1",
              "wrapped_data_key": "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"[:80]}
    write("hold_manifest", "durable", manifest(header, os.urandom(28 + 200)))
    write("hold_manifest", "unowned", manifest(dict(header, owner_fingerprint="", policy="",
                                                    state="restoring"), os.urandom(60)))
    write("hold_manifest", "snapshot", manifest(dict(header, kind="snapshot",
                                                     hold_id="snap-3f2a0c1d"), os.urandom(60)))
    write("hold_manifest", "table", table([(b"ram", 3 * 65536 + 10, [1, 0, 0, 1]),
                                           (b"device-state", 12, [1])]))


store_seeds()
# QEMU 7.2 migration streams (src/qemu/migration_stream.h), laid out as qemu-system-x86_64 7.2
# writes them for a q35 VM (the real ones, src/qemu/testdata/, are too big for seeds): the RAM
# sections with few pages, then a small device state ending in EOF and a vmdesc. qemu10: as QEMU
# 10.0 writes them (machine type pc-q35-10.0, COMMAND SWITCHOVER_START before RAM's END).
def mig_stream(ignore_shared=False, pages=True, uuid=False, qemu10=False):
    def name(s):
        return bytes([len(s)]) + s.encode()
    blocks = [("ram0", 16 * 4096, 0), ("/rom@etc/acpi/tables", 4 * 4096, 0),
              ("pc.bios", 4 * 4096, 0xfffc0000)]
    machine = b"pc-q35-10.0" if qemu10 else b"pc-q35-7.2"
    b = b"QEVM" + struct.pack(">I", 3) + b"\x07" + struct.pack(">I", len(machine)) + machine
    if ignore_shared:
        b += b"\x05" + name("configuration/capabilities") + struct.pack(">II", 1, 1)
        b += name("x-ignore-shared")
    if uuid:
        b += b"\x05" + name("configuration/uuid") + struct.pack(">I", 1) + bytes(range(16))
    b += b"\x01" + struct.pack(">I", 2) + name("ram") + struct.pack(">II", 0, 4)
    b += struct.pack(">Q", sum(s for _, s, _ in blocks) | 0x04)
    for n, s, a in blocks:
        b += name(n) + struct.pack(">Q", s) + (struct.pack(">Q", a) if ignore_shared else b"")
    eos = struct.pack(">Q", 0x10) + b"\x7e" + struct.pack(">I", 2)

    def page(block, offset, data=None, cont=False):
        flags = (0x08 if data is not None else 0x02) | (0x20 if cont else 0)
        r = struct.pack(">Q", offset | flags) + (b"" if cont else name(block))
        return r + (data if data is not None else b"\x00")

    if pages:
        first = "pc.bios" if ignore_shared else "ram0"
        b += page(first, 0) + page(first, 4096, cont=True)
        b += page(first, 8192, bytes([0x5a]) * 4096, cont=True)
    b += eos + b"\x02" + struct.pack(">I", 2)
    if pages:
        b += page("/rom@etc/acpi/tables", 0, b"ferry" * 819 + b"!")
    b += eos + (b"\x08" + struct.pack(">HH", 11, 0) if qemu10 else b"")
    b += b"\x03" + struct.pack(">I", 2)
    if pages:
        b += page("pc.bios", 3 * 4096)
    b += eos
    vmdesc = json.dumps({"page_size": 4096, "devices": [{"name": "timer", "instance_id": 0}]})
    b += b"\x04" + struct.pack(">I", 3) + name("timer") + struct.pack(">II", 0, 2)
    b += struct.pack(">QQ", 0x1234, 0) + b"\x7e" + struct.pack(">I", 3)
    return b + b"\x00\x06" + struct.pack(">I", len(vmdesc)) + vmdesc.encode()


write("migration_stream", "share_off", mig_stream())
write("migration_stream", "ignore_shared", mig_stream(ignore_shared=True))
write("migration_stream", "stripped", mig_stream(pages=False))
write("migration_stream", "uuid", mig_stream(uuid=True))
write("migration_stream", "qemu10", mig_stream(qemu10=True))
# The same streams split into a RAM image and the rest (their ram0 is the target's VM RAM size).
for name, stream in [("share_off", mig_stream()), ("ignore_shared", mig_stream(ignore_shared=True)),
                     ("stripped", mig_stream(pages=False)), ("uuid", mig_stream(uuid=True)),
                     ("qemu10", mig_stream(qemu10=True))]:
    write("stream_ram_split", name, stream)
