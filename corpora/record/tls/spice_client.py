#!/usr/bin/env python3
"""Scripted SPICE client for spice.sh: links main (and display, inputs),
answers what the server asks for, reads for a few seconds, then closes.

usage: spice_client.py PORT SECONDS [--truth FILE]
                      [--tls CAFILE --keylog FILE [--tls-max 1.2|1.3] [--resume]]
                      [--freeze SECS]

--truth FILE: at the end, per connection, what this client really sent and
  received above TLS (or TCP): byte counts and sha256, one line each.
--resume: display and inputs resume the main channel's TLS session (the
  session ticket main got), so their handshakes are PSK resumptions.
--freeze SECS: after SECONDS the client stops reading and answering (a hung
  process: its kernel still ACKs until the receive buffer fills) for SECS,
  then exits without closing anything itself (the kernel closes its sockets).

Per channel (one TCP connection each, TLS from the first byte with --tls):
  link: SpiceLinkHeader (REDQ 2.2) + SpiceLinkMess, caps: common
        AUTH_SELECTION|AUTH_SPICE|MINI_HEADER (0x0B), main NAME_AND_UUID (0x02);
        reads SpiceLinkReply; sends SpiceLinkAuthMechanism 1 (AUTH_SPICE) when
        the server has AUTH_SELECTION; sends the 128-byte RSA-OAEP (SHA-1)
        encryption of the empty password (one NUL byte) under the reply's key;
        reads the u32 link result (must be 0).
  data: mini headers (u16 type, u32 size). SET_ACK -> ACK_SYNC(generation),
        then an ACK every `window` messages; PING -> PONG(id, timestamp).
  main: after MAIN_INIT sends ATTACH_CHANNELS; links display 0 and inputs 0
        with the session id from MAIN_INIT; display sends DISPLAY_INIT.
  end:  after SECONDS, display and inputs, then main, are closed: with TLS a
        close_notify is sent first (SSLSocket.unwrap(), not waiting for the
        server's), then the TCP connection is closed.
Prints one line per message to stderr: time, channel, direction, type, size.
"""
import socket
import ssl
import struct
import sys
import threading
import time

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding

port, seconds = int(sys.argv[1]), float(sys.argv[2])
args = sys.argv[3:]
ctx = None
if "--tls" in args:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(args[args.index("--tls") + 1])
    ctx.check_hostname = False  # the cert names IP 127.0.0.1; no SNI for an IP anyway
    ctx.keylog_filename = args[args.index("--keylog") + 1]
    if "--tls-max" in args:
        v = args[args.index("--tls-max") + 1]
        ctx.maximum_version = {"1.2": ssl.TLSVersion.TLSv1_2, "1.3": ssl.TLSVersion.TLSv1_3}[v]
t0 = time.time()
truth = []  # Tap objects, one per connection


class Tap:
    """A socket (plain or SSL) that keeps the application bytes it moves."""

    def __init__(self, sock, name):
        self.sock, self.name, self.sent, self.got = sock, name, bytearray(), bytearray()
        self.port = sock.getsockname()[1]
        truth.append(self)

    def sendall(self, b):
        self.sock.sendall(b)
        self.sent += b

    def recv(self, n):
        b = self.sock.recv(n)
        self.got += b
        return b

    def __getattr__(self, a):
        return getattr(self.sock, a)


NAMES = {1: "main", 2: "display", 3: "inputs", 4: "cursor"}
stop = threading.Event()
lock = threading.Lock()


def log(chan, what):
    with lock:
        print(f"{time.time() - t0:7.3f} {chan:8} {what}", file=sys.stderr, flush=True)


def recv_exact(s, n):
    b = b""
    while len(b) < n:
        c = s.recv(n - len(b))
        if not c:
            raise EOFError("server closed")
        b += c
    return b


def link(ctype, conn_id, channel_caps, session=None):
    raw = socket.create_connection(("127.0.0.1", port))
    raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    s = ctx.wrap_socket(raw, server_hostname="127.0.0.1", session=session) if ctx else raw
    name = NAMES[ctype]
    if ctx:
        log(name, f"TLS {s.version()} {s.cipher()[0]} resumed={s.session_reused}")
    s = Tap(s, name)
    mess = struct.pack("<IBBIII", conn_id, ctype, 0, 1, 1, 18) + struct.pack("<II", 0x0B, channel_caps)
    s.sendall(b"REDQ" + struct.pack("<III", 2, 2, len(mess)) + mess)
    magic, major, minor, size = struct.unpack("<4sIII", recv_exact(s, 16))
    assert magic == b"REDQ" and major == 2, (magic, major, minor)
    reply = recv_exact(s, size)
    err = struct.unpack_from("<I", reply)[0]
    assert err == 0, f"link error {err}"
    pub = serialization.load_der_public_key(reply[4:166])
    ncommon, nchan, off = struct.unpack_from("<III", reply, 166)
    common = struct.unpack_from("<I", reply, off)[0] if ncommon else 0
    log(name, f"link reply: server common caps {common:#x}, {nchan} channel cap words")
    if common & 1:
        s.sendall(struct.pack("<I", 1))
    ticket = pub.encrypt(b"\0", padding.OAEP(mgf=padding.MGF1(hashes.SHA1()),
                                             algorithm=hashes.SHA1(), label=None))
    assert len(ticket) == 128
    s.sendall(ticket)
    result = struct.unpack("<I", recv_exact(s, 4))[0]
    log(name, f"link result {result}")
    assert result == 0
    assert common & 8, "server without MINI_HEADER"
    return s


def run(s, ctype, on_msg=None):
    name = NAMES[ctype]
    window, count = 0, 0
    s.settimeout(0.2)
    buf = b""
    while not stop.is_set():
        try:
            c = s.recv(65536)
        except (socket.timeout, ssl.SSLWantReadError):
            continue
        except (OSError, ssl.SSLError) as e:
            log(name, f"recv error {e!r}")
            return
        if not c:
            log(name, "server closed")
            return
        buf += c
        while len(buf) >= 6:
            mtype, size = struct.unpack_from("<HI", buf)
            if len(buf) < 6 + size:
                break
            body, buf = buf[6:6 + size], buf[6 + size:]
            log(name, f"S>C type {mtype} size {size}")
            count += 1
            if mtype == 3:  # SET_ACK
                gen, window = struct.unpack_from("<II", body)
                s.sendall(struct.pack("<HII", 1, 4, gen))
                log(name, f"C>S ACK_SYNC generation {gen} (window {window})")
                count = 0
            elif mtype == 4:  # PING
                pid, ts = struct.unpack_from("<IQ", body)
                s.sendall(struct.pack("<HIIQ", 3, 12, pid, ts))
                log(name, f"C>S PONG id {pid}")
            if window and count >= window:
                s.sendall(struct.pack("<HI", 2, 0))
                log(name, "C>S ACK")
                count = 0
            if on_msg:
                on_msg(mtype, body)


def close(s, ctype):
    if ctx:
        try:
            s.settimeout(1.0)
            # Sends close_notify; with TLS 1.3 OpenSSL returns once it is sent
            # and the socket is then closed without waiting for the server's.
            s.sock.unwrap()
        except (OSError, ssl.SSLError) as e:
            log(NAMES[ctype], f"unwrap: {e!r}")
    s.close()
    log(NAMES[ctype], "closed")


main = link(1, 0, 0x02)
others = []
threads = []


def on_main(mtype, body):
    if mtype == 103:  # MAIN_INIT
        session_id = struct.unpack_from("<I", body)[0]
        log("main", f"MAIN_INIT session {session_id:#x}")
        main.sendall(struct.pack("<HI", 104, 0))  # ATTACH_CHANNELS
        log("main", "C>S ATTACH_CHANNELS")

        def start():
            sess = main.sock.session if ctx and "--resume" in args else None
            d = link(2, session_id, 0, sess)
            # DISPLAY_INIT: pixmap cache id 1, size, glz dictionary id 1, window
            d.sendall(struct.pack("<HI", 101, 14) + struct.pack("<BqBi", 1, 20 * 1024 * 1024, 1, 2 * 1024 * 1024))
            log("display", "C>S DISPLAY_INIT")
            i = link(3, session_id, 0, sess)
            others.extend([(d, 2), (i, 3)])
            for s, ct in ((d, 2), (i, 3)):
                t = threading.Thread(target=run, args=(s, ct), daemon=True)
                t.start()
                threads.append(t)
        threading.Thread(target=start, daemon=True).start()


mt = threading.Thread(target=run, args=(main, 1, on_main), daemon=True)
mt.start()
time.sleep(seconds)
stop.set()
mt.join(2)
for t in threads:
    t.join(2)
freeze = float(args[args.index("--freeze") + 1]) if "--freeze" in args else 0
if freeze:
    log("client", f"frozen: nothing read or sent for {freeze:.0f} s")
    time.sleep(freeze)
else:
    for s, ct in others:
        close(s, ct)
    close(main, 1)
if "--truth" in args:
    import hashlib
    with open(args[args.index("--truth") + 1], "w") as f:
        f.write("# spice_client.py: application bytes per connection (above TLS when TLS is used)\n")
        f.write("# columns: channel client_port sent_bytes sent_sha256 received_bytes received_sha256\n")
        for t in truth:
            f.write(f"{t.name}\t{t.port}\t{len(t.sent)}\t{hashlib.sha256(t.sent).hexdigest()}\t"
                    f"{len(t.got)}\t{hashlib.sha256(t.got).hexdigest()}\n")
if freeze:
    log("client", "exits without closing")
    sys.stdout.flush()
    import os
    os._exit(0)
