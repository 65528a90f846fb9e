#!/usr/bin/env python3
"""Scripted RFB 3.8 client for vencrypt.sh: security None, or VeNCrypt
(type 19) version 0.2 with the X509None subtype (260), where the socket is
wrapped in TLS (Python ssl, keys logged with SSLContext.keylog_filename)
after the server accepts the subtype, and RFB carries on inside TLS.

usage: rfb_client.py PORT SECONDS [--truth FILE]
                    [--vencrypt CAFILE --keylog FILE [--tls-max 1.2|1.3] [--key-update]]

--truth FILE: at the end, what this client really sent and received from
  SecurityResult on (with VeNCrypt: exactly the bytes inside TLS): counts and
  sha256.
--key-update: (TLS 1.3) halfway through, the client calls OpenSSL's
  SSL_key_update(ssl, SSL_KEY_UPDATE_REQUESTED) on the Python SSLSocket's
  SSL* (through ctypes; Python has no API for it), so its next record is a
  KeyUpdate and the server answers with its own KeyUpdate.

After the handshake (SecurityResult, ClientInit shared, ServerInit):
SetPixelFormat 32bpp depth 24 true colour, SetEncodings [ZRLE, Raw,
DesktopSize], one full FramebufferUpdateRequest, then every 0.3 s an
incremental one (with a pointer move, and a key press/release every third
round) while the script redraws the screen; all the while server messages are
read. Each client message is its own TCP segment (TCP_NODELAY, 20 ms apart) so
tshark's VNC dissector, which reads one message per segment, sees all of them.
At the end: with TLS a close_notify (SSLSocket.unwrap()), then close.
"""
import socket
import ssl
import struct
import sys
import time

port, seconds = int(sys.argv[1]), float(sys.argv[2])
args = sys.argv[3:]
tls = "--vencrypt" in args
t0 = time.time()


def log(what):
    print(f"{time.time() - t0:7.3f} {what}", file=sys.stderr, flush=True)


s = socket.create_connection(("127.0.0.1", port))
s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


sent, got, tap = bytearray(), bytearray(), False


def recv(n):
    b = s.recv(n)
    if tap:
        got.extend(b)
    return b


def recv_exact(n):
    b = b""
    while len(b) < n:
        c = recv(n - len(b))
        if not c:
            raise SystemExit("server closed")
        b += c
    return b


def send(b):
    s.sendall(b)
    if tap:
        sent.extend(b)
    time.sleep(0.02)


def key_update(sock):
    import ctypes
    import _ssl
    # PySSLSocket (CPython 3.8-3.12): PyObject_HEAD, PyObject *Socket, SSL *ssl
    ssl_ptr = ctypes.c_void_p.from_address(id(sock._sslobj) + ctypes.sizeof(ctypes.c_void_p) * 3).value
    lib = ctypes.CDLL(_ssl.__file__)  # resolves SSL_key_update from the libssl _ssl uses
    lib.SSL_key_update.argtypes = [ctypes.c_void_p, ctypes.c_int]
    if lib.SSL_key_update(ssl_ptr, 1) != 1:  # SSL_KEY_UPDATE_REQUESTED
        raise SystemExit("SSL_key_update failed")


ver = recv_exact(12)
log(f"server version {ver!r}")
send(b"RFB 003.008\n")
n = recv_exact(1)[0]
types = list(recv_exact(n))
log(f"security types {types}")
if tls:
    assert 19 in types, types
    send(bytes([19]))
    major, minor = recv_exact(2)
    log(f"VeNCrypt server version {major}.{minor}")
    send(bytes([0, 2]))
    assert recv_exact(1) == b"\0", "VeNCrypt version refused"
    k = recv_exact(1)[0]
    subtypes = list(struct.unpack(f">{k}I", recv_exact(4 * k)))
    log(f"VeNCrypt subtypes {subtypes}")
    assert 260 in subtypes, subtypes
    send(struct.pack(">I", 260))  # X509None
    assert recv_exact(1) == b"\1", "subtype refused"
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(args[args.index("--vencrypt") + 1])
    ctx.check_hostname = False
    ctx.keylog_filename = args[args.index("--keylog") + 1]
    if "--tls-max" in args:
        v = args[args.index("--tls-max") + 1]
        ctx.maximum_version = {"1.2": ssl.TLSVersion.TLSv1_2, "1.3": ssl.TLSVersion.TLSv1_3}[v]
    s = ctx.wrap_socket(s, server_hostname="127.0.0.1")
    log(f"TLS {s.version()} {s.cipher()[0]}")
else:
    assert 1 in types, types
    send(bytes([1]))
tap = True
result = struct.unpack(">I", recv_exact(4))[0]
log(f"SecurityResult {result}")
assert result == 0
send(b"\1")  # ClientInit, shared
w, h = struct.unpack(">HH", recv_exact(4))
recv_exact(16)
name = recv_exact(struct.unpack(">I", recv_exact(4))[0])
log(f"ServerInit {w}x{h} {name!r}")
send(struct.pack(">BxxxBBBBHHHBBBxxx", 0, 32, 24, 0, 1, 255, 255, 255, 16, 8, 0))
encs = [16, 0, -223]
send(struct.pack(">BxH", 2, len(encs)) + b"".join(struct.pack(">i", e) for e in encs))
send(struct.pack(">BBHHHH", 3, 0, 0, 0, w, h))
s.settimeout(0.05)
nread = 0


def drain(t):
    global nread
    end = time.time() + t
    while time.time() < end:
        try:
            c = recv(65536)
            if not c:
                raise SystemExit("server closed")
            nread += len(c)
        except (socket.timeout, ssl.SSLWantReadError):
            pass


drain(0.5)
i = 0
end = t0 + seconds
updated = "--key-update" not in args
while time.time() < end:
    if not updated and time.time() > t0 + seconds / 2:
        key_update(s)
        log("SSL_key_update(REQUESTED) called; the next record carries KeyUpdate")
        updated = True
    send(struct.pack(">BBHH", 5, 0, 40 + i * 7 % 240, 30 + i * 5 % 180))
    if i % 3 == 0:
        send(struct.pack(">BBxxI", 4, 1, 0x61 + i % 26))
        send(struct.pack(">BBxxI", 4, 0, 0x61 + i % 26))
    send(struct.pack(">BBHHHH", 3, 1, 0, 0, w, h))
    drain(0.3)
    i += 1
log(f"read {nread} bytes of server messages after ServerInit")
if tls:
    try:
        s.settimeout(1.0)
        s = s.unwrap()
    except (OSError, ssl.SSLError) as e:
        log(f"unwrap: {e!r}")
s.close()
log("closed")
if "--truth" in args:
    import hashlib
    with open(args[args.index("--truth") + 1], "w") as f:
        f.write("# rfb_client.py: application bytes from SecurityResult on (with VeNCrypt: the bytes inside TLS)\n")
        f.write("# columns: sent_bytes sent_sha256 received_bytes received_sha256\n")
        f.write(f"{len(sent)}\t{hashlib.sha256(sent).hexdigest()}\t{len(got)}\t{hashlib.sha256(got).hexdigest()}\n")
