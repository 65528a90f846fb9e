#!/usr/bin/env python3
"""A TCP relay on 127.0.0.1 that delays every chunk it forwards, to give a
recording a slow path without touching the kernel's queueing.

Usage: delay-relay.py LISTEN_PORT UPSTREAM_PORT DELAY_MS JITTER_MS SEED

Each chunk read from one side is written to the other side at
read time + DELAY_MS + uniform(-JITTER_MS, +JITTER_MS) (never before the
previous chunk of the same direction: order is kept). An EOF is passed on
(half-close) after the chunks before it; when either side resets, both
sides of that pair are closed.
"""
import asyncio
import random
import sys

listen_port, upstream_port = int(sys.argv[1]), int(sys.argv[2])
delay, jitter = float(sys.argv[3]) / 1000, float(sys.argv[4]) / 1000
rng = random.Random(int(sys.argv[5]))


async def pump(reader, writer):
    loop = asyncio.get_running_loop()
    queue = asyncio.Queue()

    async def read_side():
        try:
            while True:
                data = await reader.read(65536)
                due = loop.time() + max(0.0, delay + rng.uniform(-jitter, jitter))
                await queue.put((due, data))
                if not data:
                    return
        except (ConnectionError, OSError):
            await queue.put((loop.time(), None))

    async def write_side():
        last = 0.0
        while True:
            due, data = await queue.get()
            due = max(due, last)
            last = due
            wait = due - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            if data is None:        # reset on the reading side
                writer.transport.abort()
                return
            if not data:            # EOF: pass the FIN on
                if writer.can_write_eof():
                    writer.write_eof()
                return
            writer.write(data)
            try:
                await writer.drain()
            except (ConnectionError, OSError):
                return

    await asyncio.gather(read_side(), write_side())


async def handle(c_reader, c_writer):
    try:
        s_reader, s_writer = await asyncio.open_connection("127.0.0.1", upstream_port)
    except OSError:
        c_writer.transport.abort()
        return
    await asyncio.gather(pump(c_reader, s_writer), pump(s_reader, c_writer))
    c_writer.close()
    s_writer.close()


async def main():
    server = await asyncio.start_server(handle, "127.0.0.1", listen_port)
    async with server:
        await server.serve_forever()


asyncio.run(main())
