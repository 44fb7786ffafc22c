#!/usr/bin/env python3
"""Probe: can a QEMU 7.2 started before anyone knows which snapshot it will run be given that
snapshot at "take" time, and how long from take to guest running, against today's plain clone
path (spawn with the snapshot's RAM file on the command line, -incoming defer, load, cont)?

Roads (--road):
  plain        today's clone: spawn with -machine memory-backend=ram0 and the RAM object on the
               command line; timed from spawn.
  preconfig    spare: spawned with -preconfig and -machine memory-backend=ram0 but no ram0 object;
               at take: add-fd (the RAM image), object-add ram0, x-exit-preconfig, load, cont.
  numa         spare: as preconfig, but no memory-backend=; at take: object-add ram0,
               set-numa-node memdev=ram0, x-exit-preconfig, load, cont.
  late-path    spare: spawned with -incoming defer and mem-path=<a path> that is empty at start;
               at take the path is replaced by the snapshot's image (does QEMU map at start?).

Usage: spare_qemu_probe.py --snapshot-dir DIR --kernel K --initrd I --cmdline C --road R [--runs N]
Prints one line per run: spawn->qmp ms (spare: not on the critical path), take->running ms.
"""
import argparse
import json
import os
import shutil
import socket
import subprocess
import tempfile
import time


def now_ms():
    return time.monotonic() * 1000.0


class Qmp:
    def __init__(self, sock):
        self.sock = sock
        self.buf = b""

    def _line(self):
        while b"\n" not in self.buf:
            d = self.sock.recv(65536)
            if not d:
                raise RuntimeError("QMP closed")
            self.buf += d
        line, self.buf = self.buf.split(b"\n", 1)
        return json.loads(line)

    def greeting(self):
        return self._line()

    def cmd(self, name, args=None, fds=None):
        msg = {"execute": name}
        if args is not None:
            msg["arguments"] = args
        data = json.dumps(msg).encode() + b"\n"
        if fds:
            rights = b"".join(fd.to_bytes(4, "little") for fd in fds)
            self.sock.sendmsg([data], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, rights)])
        else:
            self.sock.sendall(data)
        while True:
            r = self._line()
            if "event" in r:
                continue
            if "error" in r:
                raise RuntimeError(f"{name}: {r['error']}")
            return r["return"]


def argv_for(road, a, mem_kib, ram_path):
    m = f"{mem_kib}K"
    machine = "q35,accel=tcg"
    if road in ("plain", "preconfig", "late-path"):
        machine += ",memory-backend=ram0"
    argv = ["qemu-system-x86_64", "-name", "guest=probe,debug-threads=on", "-machine", machine,
            "-cpu", "max", "-smp", "1", "-m", m]
    if road in ("plain", "late-path"):
        argv += ["-object", f"memory-backend-file,id=ram0,size={m},mem-path={ram_path},share=off"]
    argv += ["-nodefaults", "-no-user-config", "-display", "none", "-no-reboot",
             "-kernel", "/proc/self/fd/4", "-initrd", "/proc/self/fd/5", "-append", a.cmdline,
             "-add-fd", "fd=8,set=8", "-chardev", "file,id=serial0,append=on,path=/dev/fdset/8",
             "-serial", "chardev:serial0", "-device", "virtio-serial-pci,id=vser0",
             "-chardev", "socket,id=guest0,fd=7,server=on,wait=off",
             "-device", "virtserialport,bus=vser0.0,chardev=guest0,name=org.ferry.guest",
             "-netdev", f"user,id=net0,restrict=on,hostfwd=tcp:127.0.0.1:{a.redis_port}-:6379",
             "-device", "virtio-net-pci,netdev=net0,mac=52:54:00:26:75:93",
             "-device", "virtio-rng-pci", "-device", "vmgenid,guid=auto",
             "-S", "-incoming", "defer",
             "-chardev", "socket,id=qmp0,fd=6,server=on,wait=off", "-mon",
             "chardev=qmp0,mode=control",
             "-sandbox", "on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny"]
    if road in ("preconfig", "numa"):
        argv.insert(1, "-preconfig")
    return argv


def spawn(argv, fds, workdir):
    """fds: {number in QEMU: fd here}."""
    def child():
        high = {target: os.dup2(fd, 100 + target) for target, fd in fds.items()}
        for target, fd in high.items():
            os.dup2(fd, target)
            os.set_inheritable(target, True)
    err = open(os.path.join(workdir, "qemu.log"), "w")
    env = dict(os.environ, GLIBC_TUNABLES="glibc.malloc.hugetlb=1")
    return subprocess.Popen(argv, preexec_fn=child, stdout=err, stderr=err, env=env,
                            close_fds=False)


def redis_ping(port):
    """What the guest's redis answers to PING through the forward (the guest runs, not only
    its QEMU)."""
    try:
        r = socket.create_connection(("127.0.0.1", port), timeout=5)
        r.settimeout(5)
        r.sendall(b"PING\r\n")
        return r.recv(64).decode().strip()
    except OSError as e:
        return "no answer: " + str(e)


def fd_in(pid, want):
    d = f"/proc/{pid}/fd"
    for n in os.listdir(d):
        try:
            st = os.stat(os.path.join(d, n))
        except OSError:
            continue
        if (st.st_dev, st.st_ino) == (want.st_dev, want.st_ino) and int(n) > 8:
            return int(n)
    raise RuntimeError("RAM image descriptor not found in QEMU")


def listener(path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(path)
    s.listen(1)
    return s


def load_and_cont(q, dev_state, t_take):
    q.cmd("migrate-set-capabilities",
          {"capabilities": [{"capability": "x-ignore-shared", "state": False}]})
    fd = os.open(dev_state, os.O_RDONLY)
    q.cmd("getfd", {"fdname": "ds"}, fds=[fd])
    os.close(fd)
    q.cmd("migrate-incoming", {"uri": "fd:ds"})
    t_inc = now_ms()
    while True:
        st = q.cmd("query-migrate").get("status")
        if st == "completed":
            break
        if st in ("failed", "cancelled"):
            raise RuntimeError("incoming failed: " + json.dumps(q.cmd("query-migrate")))
        time.sleep(0.001)
    t_loaded = now_ms()
    q.cmd("cont")
    t_run = now_ms()
    return {"load_ms": t_loaded - t_inc, "running_ms": t_run - t_take}


def one_run(a, road):
    work = tempfile.mkdtemp(prefix="spare-probe-")
    try:
        mem_kib = a.memory_mib * 1024 - 8
        ram_image = os.path.join(a.snapshot_dir, "ram")
        dev_state = os.path.join(a.snapshot_dir, "device.state")
        qmp_l = listener(os.path.join(work, "qmp.sock"))
        guest_l = listener(os.path.join(work, "guest.sock"))
        fds = {4: os.open(a.kernel, os.O_RDONLY), 5: os.open(a.initrd, os.O_RDONLY),
               6: qmp_l.fileno(), 7: guest_l.fileno(),
               8: os.open(os.path.join(work, "console.log"), os.O_WRONLY | os.O_CREAT | os.O_APPEND)}
        late = os.path.join(work, "late.ram")
        if road == "plain":
            fds[3] = os.open(ram_image, os.O_RDONLY)
            ram_path = "/proc/self/fd/3"
        elif road == "late-path":
            open(late, "wb").truncate(a.memory_mib << 20)  # an empty placeholder
            ram_path = late
        else:
            ram_path = None
        t0 = now_ms()
        p = spawn(argv_for(road, a, mem_kib, ram_path), fds, work)
        c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        c.connect(os.path.join(work, "qmp.sock"))
        c.settimeout(20)
        q = Qmp(c)
        q.greeting()
        q.cmd("qmp_capabilities")
        t_qmp = now_ms()
        out = {"road": road, "spawn_to_qmp_ms": round(t_qmp - t0, 1)}
        if road == "plain":
            r = load_and_cont(q, dev_state, t0)
        else:
            time.sleep(0.3)  # the spare waits; take happens later
            t_take = now_ms()
            if road == "late-path":
                os.unlink(late)
                os.symlink(os.path.realpath(ram_image), late)
            else:
                # add-fd and getfd are refused before machine init (QEMU 7.2): QEMU opens the
                # image by a path (ferry: a per-spare directory QEMU holds a descriptor of, where
                # ferryd links the snapshot's image at take time).
                added = {"fd": None}
                img = os.path.realpath(ram_image)
                q.cmd("object-add", {"qom-type": "memory-backend-file", "id": "ram0",
                                     "size": mem_kib * 1024,
                                     "mem-path": img,
                                     "share": False})
                if road == "numa":
                    q.cmd("set-numa-node", {"type": "node", "nodeid": 0, "memdev": "ram0"})
                t_obj = now_ms()
                q.cmd("x-exit-preconfig")
                out["exit_preconfig_ms"] = round(now_ms() - t_obj, 1)
            r = load_and_cont(q, dev_state, t_take)
        out.update({k: round(v, 1) for k, v in r.items()})
        time.sleep(a.settle)
        out["status"] = q.cmd("query-status")["status"]
        out["alive"] = p.poll() is None
        out["redis"] = redis_ping(a.redis_port)
        out["console_tail"] = open(os.path.join(work, "console.log")).read()[-200:]
        p.kill()
        p.wait()
        return out
    except Exception as e:  # a probe reports what QEMU said, it does not stop
        log = os.path.join(work, "qemu.log")
        said = open(log).read()[-400:] if os.path.exists(log) else ""
        try:
            p.kill()
        except Exception:
            pass
        return {"road": road, "error": str(e), "qemu_said": said}
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--snapshot-dir", required=True)
    ap.add_argument("--kernel", required=True)
    ap.add_argument("--initrd", required=True)
    ap.add_argument("--cmdline", required=True)
    ap.add_argument("--memory-mib", type=int, default=256)
    ap.add_argument("--road", required=True)
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--settle", type=float, default=0.5)
    ap.add_argument("--redis-port", type=int, default=16379)
    a = ap.parse_args()
    for _ in range(a.runs):
        print(json.dumps(one_run(a, a.road)), flush=True)


if __name__ == "__main__":
    main()
