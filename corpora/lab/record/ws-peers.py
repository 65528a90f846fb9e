#!/usr/bin/env python3
"""Plain WebSocket peers for ws.sh (a recording tool, not project code).

Uses the `websockets` library (asyncio API), pip package websockets 17.

  ws-peers.py server PORT [--ping I T] [--quiet]
      Listens on 127.0.0.1:PORT. Per connection: echoes every message and,
      unless --quiet, sends "tick N" every 1 s.
  ws-peers.py client URL [--ping I T] [--quiet] [--duration S]
      Connects, sends "msg N" every 2 s (none with --quiet); after S seconds
      (if given) or on SIGUSR1 closes with 1000 "bye"; else runs until the
      connection ends.

--ping I T sets the library's keepalive: a ping every I s, the connection
failed (close 1011 "keepalive ping timeout") when no pong comes within T s.
Without --ping, keepalive is off (ping_interval=None). Both peers print what
happened (with close codes) for the script's log.
"""

import argparse
import asyncio
import signal
import time

from websockets.asyncio.client import connect
from websockets.asyncio.server import serve
from websockets.exceptions import ConnectionClosed

T0 = time.time()


def log(who, msg):
    print(f"[{time.time():.3f} +{time.time() - T0:7.3f}] {who}: {msg}", flush=True)


def closed_info(ws):
    return (
        f"rcvd={ws.close_code} {ws.close_reason!r} "
        f"(protocol rcvd={ws.protocol.close_rcvd} sent={ws.protocol.close_sent} "
        f"rcvd_then_sent={ws.protocol.close_rcvd_then_sent})"
    )


async def ticker(ws, who):
    n = 0
    try:
        while True:
            await asyncio.sleep(1.0)
            n += 1
            await ws.send(f"tick {n}")
    except ConnectionClosed:
        pass


async def server_main(port, ping, quiet):
    async def handler(ws):
        peer = ws.remote_address
        log("server", f"session from {peer}")
        task = None if quiet else asyncio.create_task(ticker(ws, "server"))
        try:
            async for msg in ws:
                await ws.send(msg)
        except ConnectionClosed:
            pass
        finally:
            if task:
                task.cancel()
            log("server", f"session from {peer} ended: {closed_info(ws)}")

    kw = dict(ping_interval=None, ping_timeout=None)
    if ping:
        kw = dict(ping_interval=ping[0], ping_timeout=ping[1])
    async with serve(handler, "127.0.0.1", port, **kw) as srv:
        log("server", f"listening on 127.0.0.1:{port} {kw}")
        await srv.serve_forever()


async def client_main(url, ping, quiet, duration):
    kw = dict(ping_interval=None, ping_timeout=None)
    if ping:
        kw = dict(ping_interval=ping[0], ping_timeout=ping[1])
    async with connect(url, **kw) as ws:
        log("client", f"connected from {ws.local_address} {kw}")

        async def sender():
            n = 0
            while True:
                if not quiet:
                    n += 1
                    await ws.send(f"msg {n}")
                await asyncio.sleep(2.0)

        async def reader():
            async for _ in ws:
                pass

        send_task = asyncio.create_task(sender())
        read_task = asyncio.create_task(reader())
        tasks = {send_task, read_task}
        usr1 = asyncio.Event()
        asyncio.get_running_loop().add_signal_handler(signal.SIGUSR1, usr1.set)
        tasks.add(asyncio.create_task(usr1.wait()))
        if duration is not None:
            tasks.add(asyncio.create_task(asyncio.sleep(duration)))
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for t in done:
            if t.exception() and not isinstance(t.exception(), ConnectionClosed):
                log("client", f"task failed: {t.exception()!r}")
        if not read_task.done():
            log("client", "closing with 1000")
            try:
                await ws.close(1000, "bye")
            except ConnectionClosed:
                pass
        send_task.cancel()
        read_task.cancel()
        log("client", f"ended: {closed_info(ws)}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("role", choices=["server", "client"])
    ap.add_argument("where")
    ap.add_argument("--ping", nargs=2, type=float)
    ap.add_argument("--quiet", action="store_true")
    ap.add_argument("--duration", type=float)
    a = ap.parse_args()
    if a.role == "server":
        asyncio.run(server_main(int(a.where), a.ping, a.quiet))
    else:
        asyncio.run(client_main(a.where, a.ping, a.quiet, a.duration))


if __name__ == "__main__":
    main()
