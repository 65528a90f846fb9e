#!/usr/bin/env python3
"""Rebuilds a plaintext capture from what tshark decrypts, so that tshark's
own protocol dissectors can read it where tshark 4.0 cannot chain them after
TLS (SPICE: there is no tls.port entry for it).

usage: tls2plain.py CAPTURE KEYS PORT OUT.pcap OUT.map [--frame-offset N] [--rfb-prefix]

For every frame of CAPTURE that carries decrypted TLS application data (as
tshark -o tls.keylog_file:KEYS -d tcp.port==PORT,tls -d tls.port==PORT,data
shows it in data.data), OUT.pcap gets one TCP segment holding exactly those
plaintext bytes, same ports, same timestamp, on a synthetic connection per
TCP stream (SYN, SYN-ACK, ACK first, so tshark numbers streams alike).
OUT.map lists "synthetic_frame original_frame" for the data segments
(original = frame in CAPTURE + N, for a CAPTURE cut from a longer one).
--rfb-prefix (VeNCrypt): each connection starts with four synthetic segments,
server "RFB 003.008\\n", client "RFB 003.008\\n", server 01 01 (one security
type, None), client 01, so that tshark's VNC dissector is in the
SecurityResult state when the decrypted bytes begin; they are not in OUT.map.
"""
import struct
import subprocess
import sys

cap, keys, port, out, mapfile = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5]
extra = sys.argv[6:]
offset = int(extra[extra.index("--frame-offset") + 1]) if "--frame-offset" in extra else 0
rfb_prefix = "--rfb-prefix" in extra
rows = subprocess.run(
    ["tshark", "-r", cap, "-o", f"tls.keylog_file:{keys}", "-o", "tcp.desegment_tcp_streams:TRUE",
     "-d", f"tcp.port=={port},tls", "-d", f"tls.port=={port},data",
     "-T", "fields", "-E", "occurrence=a", "-E", "aggregator=,",
     "-e", "frame.number", "-e", "frame.time_epoch", "-e", "tcp.stream",
     "-e", "tcp.srcport", "-e", "tcp.dstport", "-e", "tcp.flags.syn", "-e", "data.data"],
    capture_output=True, text=True, check=True).stdout.splitlines()


def csum(b):
    if len(b) % 2:
        b += b"\0"
    s = sum(struct.unpack(f"!{len(b) // 2}H", b))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def packet(sport, dport, seq, ack, flags, payload):
    ip_src = ip_dst = bytes([127, 0, 0, 1])
    tcp = struct.pack("!HHIIBBHHH", sport, dport, seq & 0xFFFFFFFF, ack & 0xFFFFFFFF, 5 << 4, flags, 65535, 0, 0) + payload
    pseudo = ip_src + ip_dst + struct.pack("!BBH", 0, 6, len(tcp))
    tcp = tcp[:16] + struct.pack("!H", csum(pseudo + tcp)) + tcp[18:]
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp), 0, 0x4000, 64, 6, 0, ip_src, ip_dst)
    ip = ip[:10] + struct.pack("!H", csum(ip)) + ip[12:]
    return b"\0" * 12 + b"\x08\x00" + ip + tcp


frames = []  # (time, bytes, original frame or None)
streams = {}  # stream -> {"client": port, "seq": {port: next seq}}
for r in rows:
    f = r.split("\t")
    num, t, stream, sp, dp, syn, data = int(f[0]), float(f[1]), f[2], int(f[3]), int(f[4]), f[5], f[6]
    if stream not in streams:
        client = sp if dp == port else dp
        st = streams[stream] = {"seq": {client: 1000, port: 5000}}
        frames.append((t, packet(client, port, 999, 0, 0x02, b""), None))
        frames.append((t, packet(port, client, 4999, 1000, 0x12, b""), None))
        frames.append((t, packet(client, port, 1000, 5000, 0x10, b""), None))
        if rfb_prefix:
            for frm, to, b in ((port, client, b"RFB 003.008\n"), (client, port, b"RFB 003.008\n"),
                               (port, client, b"\x01\x01"), (client, port, b"\x01")):
                frames.append((t, packet(frm, to, st["seq"][frm], st["seq"][to], 0x18, b), None))
                st["seq"][frm] += len(b)
    st = streams[stream]
    if not data:
        continue
    payload = b"".join(bytes.fromhex(d) for d in data.split(","))
    seq = st["seq"][sp]
    ack = st["seq"][dp]
    frames.append((t, packet(sp, dp, seq, ack, 0x18, payload), num + offset))
    st["seq"][sp] = seq + len(payload)

with open(out, "wb") as o, open(mapfile, "w") as m:
    o.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, 1))
    for i, (t, pkt, orig) in enumerate(frames, 1):
        sec = int(t)
        o.write(struct.pack("<IIII", sec, int(round((t - sec) * 1e6)), len(pkt), len(pkt)) + pkt)
        if orig is not None:
            m.write(f"{i} {orig}\n")
