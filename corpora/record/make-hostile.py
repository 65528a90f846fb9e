#!/usr/bin/env python3
"""Writes the capture-layer files of corpora/hostile/ from one small, valid
TCP conversation, each damaged in one precise way. Deterministic: run it
again and the bytes are the same. Standard library only."""
import os
import struct

HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "hostile")


def csum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def frame(src, dst, sport, dport, seq, ack, flags, payload=b""):
    tcp = struct.pack("!HHIIBBHHH", sport, dport, seq, ack, 5 << 4, flags, 65535, 0, 0) + payload
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp), 0, 0x4000, 64, 6, 0, bytes(src), bytes(dst))
    ip = ip[:10] + struct.pack("!H", csum(ip)) + ip[12:]
    return b"\x02\0\0\0\0\x02\x02\0\0\0\0\x01\x08\x00" + ip + tcp


C, S = [10, 0, 0, 1], [10, 0, 0, 2]
SYN, ACK, PSH, FIN, RST = 0x02, 0x10, 0x08, 0x01, 0x04
CONV = [
    frame(C, S, 40000, 5900, 100, 0, SYN),
    frame(S, C, 5900, 40000, 500, 101, SYN | ACK),
    frame(C, S, 40000, 5900, 101, 501, ACK),
    frame(S, C, 5900, 40000, 501, 101, PSH | ACK, b"RFB 003.008\n"),
    frame(C, S, 40000, 5900, 101, 513, PSH | ACK, b"RFB 003.008\n"),
    frame(S, C, 5900, 40000, 513, 113, PSH | ACK, b"\x01\x01"),
    frame(C, S, 40000, 5900, 113, 515, FIN | ACK),
    frame(S, C, 5900, 40000, 515, 114, FIN | ACK),
]


def pcap(frames, header=None, records=None):
    out = header if header is not None else struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, 1)
    for i, f in enumerate(frames):
        rec = records(i, f) if records else None
        out += rec if rec is not None else struct.pack("<IIII", 1700000000 + i, 0, len(f), len(f)) + f
    return out


def write(name, data):
    with open(os.path.join(HERE, name), "wb") as fh:
        fh.write(data)


def main():
    os.makedirs(HERE, exist_ok=True)
    good = pcap(CONV)
    write("truncated-last-record.pcap", good[:-7])
    write("truncated-file-header.pcap", good[:13])
    write("bad-magic.pcap", b"\xde\xad\xbe\xef" + good[4:])
    write("empty.pcap", b"")
    write("header-only.pcap", good[:24])
    # Record 4's captured length claims 2 GiB.
    write("corrupt-record-length.pcap", pcap(CONV, records=lambda i, f: struct.pack("<IIII", 1700000000 + i, 0, 0x7FFFFFFF, len(f)) + f if i == 3 else None))
    # Record 5's microseconds field is out of range.
    write("corrupt-record-usec.pcap", pcap(CONV, records=lambda i, f: struct.pack("<IIII", 1700000000 + i, 5000000, len(f), len(f)) + f if i == 4 else None))
    # A zero-length record between valid ones.
    write("zero-length-record.pcap", pcap(CONV, records=lambda i, f: struct.pack("<IIII", 1700000000 + i, 0, 0, 0) + struct.pack("<IIII", 1700000000 + i, 1, len(f), len(f)) + f if i == 2 else None))
    # A record larger than any snap length.
    big = b"\0" * (20 << 20)
    write("oversize-record-header.pcap", pcap(CONV[:3], records=lambda i, f: struct.pack("<IIII", 1700000000 + i, 0, len(big), len(big)) if i == 2 else None))
    # A snapped frame: 6 bytes of payload missing from the capture.
    write("snapped-payload.pcap", pcap(CONV, records=lambda i, f: struct.pack("<IIII", 1700000000 + i, 0, len(f) - 6, len(f)) + f[:-6] if i == 3 else None))
    # Retransmission of the client's version string with different bytes.
    lie = frame(C, S, 40000, 5900, 101, 513, PSH | ACK, b"RFB 003.003\n")
    write("retransmission-different-bytes.pcap", pcap(CONV[:5] + [lie] + CONV[5:]))
    # Unknown link type 147 (user-defined).
    write("unknown-linktype.pcap", pcap(CONV, header=struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, 147)))
    # pcapng whose second block claims an impossible length.
    shb = struct.pack("<IIIHHq", 0x0A0D0D0A, 28, 0x1A2B3C4D, 1, 0, -1) + struct.pack("<I", 28)
    idb = struct.pack("<IIHHI", 1, 20, 1, 0, 262144) + struct.pack("<I", 20)
    def epb(ts, f):
        pad = (-len(f)) % 4
        n = 32 + len(f) + pad
        return struct.pack("<IIIIIII", 6, n, 0, ts >> 32, ts & 0xFFFFFFFF, len(f), len(f)) + f + b"\0" * pad + struct.pack("<I", n)
    blocks = [epb((1700000000 + i) * 1000000, f) for i, f in enumerate(CONV)]
    bad = bytearray(blocks[2])
    bad[4:8] = struct.pack("<I", 0x7FFFFFF0)
    write("pcapng-corrupt-block-length.pcapng", shb + idb + b"".join(blocks[:2]) + bytes(bad) + b"".join(blocks[3:]))
    write("pcapng-truncated.pcapng", (shb + idb + b"".join(blocks))[:-9])
    write("pcapng-packet-before-interface.pcapng", shb + b"".join(blocks))


if __name__ == "__main__":
    main()
