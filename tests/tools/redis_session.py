#!/usr/bin/python3
"""One TCP connection to redis that does INCR KEY every INTERVAL seconds until SIGTERM.

Prints one line per reply ("N"); a reply that is not the previous one plus one, a connection that
breaks, or a reply later than 5 s prints "error: ..." and exits 1. On SIGTERM it prints
"stopped after N requests" and exits 0. Used by the tap tests to show that a connection to a
parent VM is never interrupted while it is cloned.
"""
import signal
import socket
import sys
import time

host, key, interval = sys.argv[1], sys.argv[2], float(sys.argv[3])
stop = False


def on_term(signum, frame):
    global stop
    stop = True


signal.signal(signal.SIGTERM, on_term)
try:
    conn = socket.create_connection((host, 6379), timeout=5)
    reader = conn.makefile("rb")
    previous, count = None, 0
    while not stop:
        conn.sendall(b"INCR " + key.encode() + b"\r\n")
        line = reader.readline()
        if not line.startswith(b":"):
            print("error: reply %r" % line, flush=True)
            sys.exit(1)
        n = int(line[1:])
        if previous is not None and n != previous + 1:
            print("error: %d after %d" % (n, previous), flush=True)
            sys.exit(1)
        previous, count = n, count + 1
        print(n, flush=True)
        time.sleep(interval)
    print("stopped after %d requests" % count, flush=True)
except Exception as e:  # a broken connection or a timeout
    if not stop:
        print("error: %s" % e, flush=True)
        sys.exit(1)
    print("stopped after %d requests" % count, flush=True)
