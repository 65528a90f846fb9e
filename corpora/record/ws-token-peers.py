#!/usr/bin/env python3
"""Test peers for ws-stale-token.sh (a recording tool, not project code).

Python 3 standard library only. Two roles:

  ws-token-peers.py server PORT [DROP_AFTER]
  ws-token-peers.py client PORT stale|fresh

Server, on 127.0.0.1:PORT:
  GET /token          200, body = a token valid for TOKEN_TTL (3) seconds.
  GET /ws?token=T     with Upgrade: websocket: 101 and a WebSocket session if
                      T is well signed and not expired; otherwise
                      `HTTP/1.1 401 Unauthorized`, body "token expired" (or
                      "bad token" for a bad signature), and the server closes.
  In a session the server pings every second (payload "ping N"), echoes text
  and binary messages, answers pings with pongs and close with close.
  DROP_AFTER seconds (default 3.75, between the client's sends) after the
  first session opens the server "restarts": it closes every open session's
  socket with no close frame (the peer sees a FIN). This happens once; later sessions are not dropped.

Token format (what a decoder can read from the upgrade URL):
  token=<exp>.<sig>
  exp  expiry as decimal unix seconds: ceil(issue time + 3)
  sig  the first 16 hex digits of HMAC-SHA256(key=b"tether-test-secret",
       msg=<exp as ASCII>)
  A token is valid while the server's clock is < exp.

Client (masked frames per RFC 6455):
  fetches a token, opens /ws with it, sends "msg N" about every 0.5 s and
  answers each server ping with a pong carrying the same payload, until the
  server drops the connection; then it closes its side (FIN), waits 1 s and
  reconnects:
    stale  reusing the old token (now past its expiry): gets 401.
    fresh  after fetching a new token: gets 101, sends two messages, answers
           the next ping, then closes with 1000 "bye" and waits for the
           server's close frame and FIN.
The client prints what it did, with times, for the script's log.
"""

import base64
import hashlib
import hmac
import math
import os
import select
import socket
import struct
import sys
import threading
import time

SECRET = b"tether-test-secret"
TOKEN_TTL = 3
GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def sign(exp):
    return hmac.new(SECRET, str(exp).encode(), hashlib.sha256).hexdigest()[:16]


def issue_token(now):
    exp = math.ceil(now + TOKEN_TTL)
    return f"{exp}.{sign(exp)}"


def check_token(token, now):
    """None if valid, else the refusal body."""
    exp_s, _, sig = token.partition(".")
    if not exp_s.isdigit() or not hmac.compare_digest(sig, sign(int(exp_s))):
        return "bad token"
    if now >= int(exp_s):
        return "token expired"
    return None


def read_head(sock):
    """Reads an HTTP head (up to the blank line); returns (head, rest)."""
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(4096)
        if not chunk:
            return None, b""
        buf += chunk
        if len(buf) > 16384:
            return None, b""
    head, _, rest = buf.partition(b"\r\n\r\n")
    return head.decode("latin-1"), rest


def parse_head(head):
    lines = head.split("\r\n")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return lines[0], headers


def frame(opcode, payload, mask):
    """One FIN frame; masked with a random key when `mask` (client side)."""
    head = bytes([0x80 | opcode])
    n = len(payload)
    mbit = 0x80 if mask else 0
    if n < 126:
        head += bytes([mbit | n])
    elif n < 65536:
        head += bytes([mbit | 126]) + struct.pack("!H", n)
    else:
        head += bytes([mbit | 127]) + struct.pack("!Q", n)
    if mask:
        key = os.urandom(4)
        payload = bytes(b ^ key[i % 4] for i, b in enumerate(payload))
        head += key
    return head + payload


class FrameReader:
    """Parses frames from a byte stream (unfragmented messages are enough)."""

    def __init__(self, initial=b""):
        self.buf = initial

    def feed(self, data):
        self.buf += data

    def next(self):
        b = self.buf
        if len(b) < 2:
            return None
        opcode = b[0] & 0x0F
        masked = b[1] & 0x80
        n = b[1] & 0x7F
        pos = 2
        if n == 126:
            if len(b) < 4:
                return None
            n = struct.unpack("!H", b[2:4])[0]
            pos = 4
        elif n == 127:
            if len(b) < 10:
                return None
            n = struct.unpack("!Q", b[2:10])[0]
            pos = 10
        key = b""
        if masked:
            if len(b) < pos + 4:
                return None
            key = b[pos : pos + 4]
            pos += 4
        if len(b) < pos + n:
            return None
        payload = b[pos : pos + n]
        if masked:
            payload = bytes(x ^ key[i % 4] for i, x in enumerate(payload))
        self.buf = b[pos + n :]
        return opcode, payload


# ---------------------------------------------------------------- server

drop_lock = threading.Lock()
drop_at = None  # monotonic time of the one "restart"
drop_after = 4.0


def respond(sock, status, body):
    body = body.encode()
    sock.sendall(
        (
            f"HTTP/1.1 {status}\r\nContent-Type: text/plain\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
        ).encode()
        + body
    )


def serve_session(sock, rest):
    global drop_at
    with drop_lock:
        if drop_at is None:
            drop_at = time.monotonic() + drop_after
        my_drop = drop_at if time.monotonic() < drop_at else None
    reader = FrameReader(rest)
    next_ping = time.monotonic() + 1.0
    pings = 0
    while True:
        now = time.monotonic()
        if my_drop is not None and now >= my_drop:
            # The "restart": the socket goes away with no close frame.
            # What the client sent is read first, so the kernel sends a FIN,
            # not the RST that unread data would cause.
            sock.setblocking(False)
            try:
                while sock.recv(65536):
                    pass
            except OSError:
                pass
            sock.close()
            return
        deadline = min(next_ping, my_drop or next_ping)
        ready, _, _ = select.select([sock], [], [], max(0.0, deadline - now))
        if not ready:
            if time.monotonic() >= next_ping:
                pings += 1
                sock.sendall(frame(0x9, f"ping {pings}".encode(), False))
                next_ping += 1.0
            continue
        data = sock.recv(65536)
        if not data:
            sock.close()
            return
        reader.feed(data)
        while (f := reader.next()) is not None:
            opcode, payload = f
            if opcode in (0x1, 0x2):
                sock.sendall(frame(opcode, payload, False))
            elif opcode == 0x9:
                sock.sendall(frame(0xA, payload, False))
            elif opcode == 0x8:
                # Echo the close, then the server closes TCP first.
                sock.sendall(frame(0x8, payload[:2], False))
                sock.close()
                return


def serve_conn(sock):
    try:
        head, rest = read_head(sock)
        if head is None:
            sock.close()
            return
        request, headers = parse_head(head)
        parts = request.split(" ")
        target = parts[1] if len(parts) > 1 else ""
        path, _, query = target.partition("?")
        if path == "/token":
            respond(sock, "200 OK", issue_token(time.time()))
            sock.close()
            return
        if path == "/ws" and headers.get("upgrade", "").lower() == "websocket":
            token = ""
            for kv in query.split("&"):
                k, _, v = kv.partition("=")
                if k == "token":
                    token = v
            refusal = check_token(token, time.time())
            if refusal is not None:
                respond(sock, "401 Unauthorized", refusal)
                sock.close()
                return
            key = headers.get("sec-websocket-key", "").encode()
            accept = base64.b64encode(hashlib.sha1(key + GUID).digest()).decode()
            sock.sendall(
                (
                    "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                    f"Connection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\r\n"
                ).encode()
            )
            serve_session(sock, rest)
            return
        respond(sock, "404 Not Found", "not found")
        sock.close()
    except OSError:
        sock.close()


def server(port, after):
    global drop_after
    drop_after = after
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("127.0.0.1", port))
    ls.listen(8)
    print(f"listening on 127.0.0.1:{port}", flush=True)
    while True:
        conn, _ = ls.accept()
        threading.Thread(target=serve_conn, args=(conn,), daemon=True).start()


# ---------------------------------------------------------------- client

T0 = time.time()


def log(msg):
    print(f"[{time.time() - T0:7.3f}] {msg}", flush=True)


def fetch_token(port):
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(
        f"GET /token HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n".encode()
    )
    data = b""
    while chunk := s.recv(4096):
        data += chunk
    s.close()
    token = data.partition(b"\r\n\r\n")[2].decode()
    log(f"token {token}")
    return token


def upgrade(port, token):
    """Returns (socket, status, leftover bytes)."""
    s = socket.create_connection(("127.0.0.1", port))
    key = base64.b64encode(os.urandom(16)).decode()
    s.sendall(
        (
            f"GET /ws?token={token} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            "Upgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
    )
    head, rest = read_head(s)
    status = int(head.split(" ")[1]) if head else 0
    log(f"upgrade with token {token}: {status}")
    return s, status, rest


def talk(s, rest, until_messages=None):
    """Sends "msg N" every 0.5 s and answers pings.

    Ends when the server closes (returns "dropped"), or after
    `until_messages` echoes and one answered ping (returns "done").
    """
    reader = FrameReader(rest)
    sent = echoes = pongs = 0
    next_send = time.monotonic()
    while True:
        if until_messages is not None and echoes >= until_messages and pongs >= 1:
            return "done"
        now = time.monotonic()
        if now >= next_send and (until_messages is None or sent < until_messages):
            sent += 1
            s.sendall(frame(0x1, f"msg {sent}".encode(), True))
            next_send = now + 0.5
        wait = 0.5
        if until_messages is None or sent < until_messages:
            wait = max(0.0, next_send - time.monotonic())
        ready, _, _ = select.select([s], [], [], wait)
        if not ready:
            continue
        try:
            data = s.recv(65536)
        except ConnectionResetError:
            log(f"server reset the connection after {echoes} echoes")
            return "dropped"
        if not data:
            log(f"server closed the connection (no close frame) after {echoes} echoes")
            return "dropped"
        reader.feed(data)
        while (f := reader.next()) is not None:
            opcode, payload = f
            if opcode == 0x9:
                s.sendall(frame(0xA, payload, True))
                pongs += 1
            elif opcode in (0x1, 0x2):
                echoes += 1


def client(port, mode):
    token = fetch_token(port)
    s, status, rest = upgrade(port, token)
    assert status == 101, status
    talk(s, rest)
    s.close()
    time.sleep(1.0)
    if mode == "fresh":
        token = fetch_token(port)
    s, status, rest = upgrade(port, token)
    if status != 101:
        body = rest
        while chunk := s.recv(4096):
            body += chunk
        log(f"refused: {body.decode(errors='replace')!r}")
        s.close()
        return
    talk(s, rest, until_messages=2)
    s.sendall(frame(0x8, struct.pack("!H", 1000) + b"bye", True))
    reader = FrameReader()
    while data := s.recv(65536):
        reader.feed(data)
        while (f := reader.next()) is not None:
            if f[0] == 0x8:
                log(f"server close {struct.unpack('!H', f[1][:2])[0]}")
    log("server closed TCP")
    s.close()


if __name__ == "__main__":
    role, port = sys.argv[1], int(sys.argv[2])
    if role == "server":
        server(port, float(sys.argv[3]) if len(sys.argv) > 3 else 3.75)
    else:
        client(port, sys.argv[3])
