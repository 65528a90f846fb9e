#!/usr/bin/env python3
"""Checks the TLS recordings in this directory with tshark, prints a report.

usage: verify.py [NAME...]     (default: every NAME.pcap here)

Per recording:
  - tshark -o tls.keylog_file:NAME.keys decrypts: every TLS record has a
    decrypted content type (TLS 1.3) or tshark follows decrypted bytes in both
    directions of every stream (TLS 1.2), and the NAME.tshark.txt rows agree;
  - NAME.client.txt (what the scripted client sent/received above TLS) equals
    what tshark decrypts: sent == client->server bytes exactly; received ==
    the first `received` bytes of server->client (a server may have had
    records in flight when the client stopped reading);
  - for the twins (same script, TLS and plain), the application message
    sequences that NAME.tshark.txt lists, side by side;
  - NAME.dsb.pcapng decrypts with no key log option.
"""
import glob
import hashlib
import os
import subprocess
import sys
import tempfile

here = os.path.dirname(os.path.abspath(__file__))
PORTS = {"novnc": 17080, "spice-plain": 17201, "spice": 17200, "vencrypt": 17301, "vnc-plain": 17302}


def port_of(name):
    for k in ("spice-plain", "vnc-plain", "novnc", "spice", "vencrypt"):
        if name.startswith(k):
            return PORTS[k]


def tshark(*a):
    return subprocess.run(["tshark", *a], capture_output=True, text=True).stdout


def follow(cap, keys, port, kind, stream, decode):
    out = tshark("-r", cap, "-o", f"tls.keylog_file:{keys}", *decode, "-q", "-z", f"follow,{kind},raw,{stream}")
    nodes, data, on = {}, {0: bytearray(), 1: bytearray()}, False
    for l in out.split("\n"):
        if l.startswith("Node 0:") or l.startswith("Node 1:"):
            nodes[int(l[5])] = l.split(":")[-1].strip()
            on = l.startswith("Node 1:")
            continue
        if l.startswith("===="):
            on = False
            continue
        if on and l.strip():
            data[1 if l.startswith("\t") else 0].extend(bytes.fromhex(l.strip()))
    server = 0 if nodes.get(0) == str(port) else 1
    return bytes(data[1 - server]), bytes(data[server])


def section(txt, title):
    rows, on = [], False
    for l in txt.split("\n"):
        if l.startswith("## "):
            on = l.startswith(title)
            continue
        if on and l and not l.startswith("#"):
            rows.append(l.split("\t"))
    return rows


def app_sequence(name):
    """Messages per (stream, direction) as NAME.tshark.txt lists them."""
    txt = open(os.path.join(here, name + ".tshark.txt")).read()
    seq = {}
    add = lambda k, m: seq.setdefault(k, []).append(m)
    if name.startswith("novnc"):
        for r in section(txt, "## WebSocket frames"):
            d = "C>S" if r[4] == "17080" else "S>C"
            for op, head in zip(r[6].split(","), r[-1].split(",") + [""] * 9):
                # opcode and the RFB message type byte (first payload byte)
                add(("ws", d), f"op{op}:{head[:2]}")
    elif name.startswith("spice"):
        for r in section(txt, "## SPICE messages"):
            d = "C>S" if r[4] in ("17200", "17201") else "S>C"
            info = r[9].replace(" [TCP segment of a reassembled PDU]", "").replace("[TCP ZeroWindow] , ", "")
            for m in info.split(", "):
                if m and not m.startswith("["):
                    add((f"stream {r[2]}", d), m)
    else:
        started = False
        for title in ("## VNC/RFB inside", "## VNC/RFB messages"):
            for r in section(txt, title):
                info = r[-1].replace(" [TCP segment of a reassembled PDU]", "")
                started |= info == "Authentication result"
                if started:  # the twins differ before SecurityResult by design
                    add(("rfb", "C>S" if r[4] in ("17301", "17302") else "S>C"), info)
    return seq


def check(name):
    cap = os.path.join(here, name + ".pcap")
    keys = os.path.join(here, name + ".keys")
    port = port_of(name)
    print(f"== {name}  ({os.path.getsize(cap)} bytes pcap)")
    ok = True
    if not os.path.exists(keys):
        print("   plaintext twin: no keys")
        return ok
    decode = ["-d", f"tcp.port=={port},tls"]
    cut = cap
    tmp = None
    if name.startswith("vencrypt"):
        first = tshark("-r", cap, "-d", f"tcp.port=={port},vnc", "-Y", "tls.handshake.type==1",
                       "-T", "fields", "-e", "frame.number").split()[0]
        tmp = tempfile.NamedTemporaryFile(suffix=".pcap", delete=False).name
        tshark("-r", cap, "-Y", f"frame.number >= {first}", "-w", tmp)
        cut = tmp
    recs = tshark("-r", cut, "-o", f"tls.keylog_file:{keys}", *decode, "-Y", "tls.record",
                  "-T", "fields", "-E", "occurrence=a", "-E", "aggregator=,",
                  "-e", "tls.record.opaque_type", "-e", "tls.record.content_type",
                  "-e", "tls.record.length").splitlines()
    count = lambda v: len([x for x in v.split(",") if x])
    rows = [r.split("\t") for r in recs if r]
    n13 = sum(count(r[0]) for r in rows)
    missing = sum(count(r[2]) - count(r[1]) for r in rows)
    # (with -d: tshark's VNC heuristic otherwise splits an RFB connection into two tcp.streams)
    app = "vnc" if name.startswith("vencrypt") else "tls"
    streams = sorted(set(tshark("-r", cap, "-d", f"tcp.port=={port},{app}", "-T", "fields",
                                "-e", "tcp.stream").split()), key=int)
    print(f"   TLS records: {sum(count(r[2]) for r in rows)} ({n13} TLS 1.3 encrypted), not decrypted by tshark: {missing}")
    ok &= missing == 0
    client = {}
    ctxt = os.path.join(here, name + ".client.txt")
    if os.path.exists(ctxt):
        for l in open(ctxt):
            if l.startswith("#"):
                continue
            f = l.rstrip("\n").split("\t")
            client[len(client)] = f[-4:]
    for i, s in enumerate(streams):
        c2s, s2c = follow(cut, keys, port, "tls", s, decode)
        line = f"   stream {s}: decrypted c2s {len(c2s)} B, s2c {len(s2c)} B"
        ok &= len(c2s) > 0 and len(s2c) > 0
        if i in client:
            sn, sh, rn, rh = client[i]
            sent_ok = int(sn) == len(c2s) and hashlib.sha256(c2s).hexdigest() == sh
            recv_ok = int(rn) <= len(s2c) and hashlib.sha256(s2c[:int(rn)]).hexdigest() == rh
            line += f"; client.txt sent {sn} {'==' if sent_ok else '!='} c2s, received {rn} {'== prefix of' if recv_ok else '!='} s2c"
            ok &= sent_ok and recv_ok
        print(line)
    if tmp:
        os.unlink(tmp)
    dsb = os.path.join(here, name + ".dsb.pcapng")
    if os.path.exists(dsb):
        a = tshark("-r", dsb, *decode, "-d", f"tls.port=={port},http", "-Y", "websocket", "-T", "fields", "-e", "frame.number")
        b = tshark("-r", cap, "-o", f"tls.keylog_file:{keys}", *decode, "-d", f"tls.port=={port},http", "-Y", "websocket",
                   "-T", "fields", "-e", "frame.number")
        print(f"   {name}.dsb.pcapng without -o tls.keylog_file: {len(a.split())} WebSocket frames decoded "
              f"({'same frames as' if a == b and a else 'DIFFERENT from'} the .pcap with the key log)")
        ok &= a == b and bool(a)
    print("   OK" if ok else "   FAILED")
    return ok


def twins(a, b):
    sa, sb = app_sequence(a), app_sequence(b)
    print(f"-- twins {a} / {b} (application messages per stream and direction, from the .tshark.txt files)")
    for k in sorted(set(sa) | set(sb)):
        x, y = sa.get(k, []), sb.get(k, [])
        first = next((i for i, (p, q) in enumerate(zip(x, y)) if p != q), None)
        if x == y:
            verdict = "identical"
        elif first is None:
            verdict = f"same for the first {min(len(x), len(y))}, then only one side goes on"
        else:
            verdict = f"first difference at #{first}: {x[first]} / {y[first]}"
        print(f"   {k[0]} {k[1]}: {len(x)} / {len(y)} messages, {verdict}")


names = sys.argv[1:] or sorted(os.path.basename(p)[:-5] for p in glob.glob(os.path.join(here, "*.pcap")))
results = [check(n) for n in names]
for tls, plain in (("novnc-wss-tls13", "novnc-ws-plain"), ("novnc-wss-tls12", "novnc-ws-plain"),
                   ("novnc-wss-tls12-chacha", "novnc-ws-plain"), ("spice-tls", "spice-plain"),
                   ("spice-tls12", "spice-plain"), ("spice-tls13-resume", "spice-plain"),
                   ("spice-tls12-resume", "spice-plain"),
                   ("vencrypt-tls", "vnc-plain"), ("vencrypt-tls12", "vnc-plain"),
                   ("vencrypt-tls13-hrr-keyupdate", "vnc-plain")):
    if tls in names and plain in names:
        twins(tls, plain)
sys.exit(0 if all(results) else 1)
