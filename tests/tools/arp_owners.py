#!/usr/bin/python3
"""Duplicate address detection from outside: RFC 5227 probes for each ADDRESS out of IFACE.

Sends 3 ARP probes (sender IP 0.0.0.0) per address, 100 ms apart, listens 1 s in all, and prints
"ADDRESS MAC" for every distinct MAC that answered for the address (one line per owner; none
for a free address). Two lines for one address are a conflict.
"""
import socket
import struct
import sys
import time

iface, addresses = sys.argv[1], sys.argv[2:]
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0806))
s.bind((iface, 0x0806))
own = s.getsockname()[4][:6]
targets = {socket.inet_aton(a): a for a in addresses}
owners = {a: set() for a in addresses}
start = time.monotonic()
sent = 0
s.settimeout(0.02)
while time.monotonic() - start < 1.0:
    if sent < 3 and time.monotonic() - start >= sent * 0.1:
        for t in targets:
            arp = struct.pack("!HHBBH6s4s6s4s", 1, 0x0800, 6, 4, 1, own, b"\0" * 4, b"\0" * 6, t)
            s.send(b"\xff" * 6 + own + b"\x08\x06" + arp)
        sent += 1
    try:
        frame = s.recv(256)
    except socket.timeout:
        continue
    if len(frame) < 42 or frame[12:14] != b"\x08\x06":
        continue
    sender_mac, sender_ip = frame[22:28], frame[28:32]
    if sender_mac != own and sender_ip in targets:
        owners[targets[sender_ip]].add(":".join("%02x" % b for b in sender_mac))
for a in addresses:
    for mac in sorted(owners[a]):
        print(a, mac)
