#!/usr/bin/python3
# scripts/lib/delay-relay.py: a TCP relay that adds a fixed one-way delay,
# a test tool for scripts/lib/netns-cluster (this kernel has no netem).
#
#   delay-relay.py --listen 127.0.0.1:23791 --to 10.77.0.11:2379 \
#       [--delay-ms 10] [--pidfile F]
#
# What it adds, exactly: every chunk of bytes read from one side (one
# recv() of up to 64 KiB, as the kernel hands it over) is stamped with the
# time it was read and written to the other side no earlier than that time
# plus --delay-ms, in both directions independently (so a request and its
# answer each wait --delay-ms: the round trip grows by 2 x delay).  The
# chunks of one direction leave in the order they came (a FIFO per
# direction: a chunk never overtakes the one before it), so the byte stream
# is unchanged; only time is added.  It does not limit bandwidth, does not
# drop or reorder, and the upstream connection is opened when the client's
# is accepted (the TCP handshake is not delayed, the first bytes are).
# Timers come from asyncio's loop (monotonic clock); the delay is accurate
# to about a millisecond on an idle machine and only ever longer.
#
# Partition, on signals (for the fault scripts):
#   SIGUSR1  cut: nothing is read or written any more on any connection
#            (bytes already queued wait), and new connections are accepted
#            but not connected upstream; as a pulled cable looks to both
#            ends: silence, no reset
#   SIGUSR2  heal: everything resumes (queued bytes whose time has passed
#            go at once)
#   SIGHUP   reset: close every connection now (both ends see EOF/RST);
#            the listener stays
# Standard library only.

import argparse
import asyncio
import collections
import os
import signal
import sys
import time

MAX_QUEUED = 8 << 20   # bytes in flight per direction before reading stops


def hostport(s):
    host, _, port = s.rpartition(':')
    return host.strip('[]'), int(port)


class Relay:
    def __init__(self, to, delay):
        self.to = to
        self.delay = delay
        self.open = asyncio.Event()
        self.open.set()
        self.conns = set()

    async def pipe(self, reader, writer, peer_writer):
        loop = asyncio.get_running_loop()
        q = collections.deque()
        queued = 0
        more = asyncio.Event()
        room = asyncio.Event()
        room.set()
        done = False

        async def pump_in():
            nonlocal queued, done
            try:
                while True:
                    await self.open.wait()
                    await room.wait()
                    data = await reader.read(65536)
                    q.append((loop.time() + self.delay, data))
                    queued += len(data)
                    if queued > MAX_QUEUED:
                        room.clear()
                    more.set()
                    if not data:
                        return
            except (ConnectionError, OSError, asyncio.CancelledError):
                q.append((loop.time(), b''))
                more.set()

        async def pump_out():
            nonlocal queued
            try:
                while True:
                    while not q:
                        more.clear()
                        await more.wait()
                    due, data = q[0]
                    wait = due - loop.time()
                    if wait > 0:
                        await asyncio.sleep(wait)
                    await self.open.wait()
                    q.popleft()
                    queued -= len(data)
                    if queued <= MAX_QUEUED:
                        room.set()
                    if not data:
                        if peer_writer.can_write_eof():
                            peer_writer.write_eof()
                        return
                    peer_writer.write(data)
                    await peer_writer.drain()
            except (ConnectionError, OSError):
                pass

        t_in = asyncio.ensure_future(pump_in())
        try:
            await pump_out()
        finally:
            t_in.cancel()

    async def handle(self, reader, writer):
        self.conns.add(writer)
        up_w = None
        try:
            await self.open.wait()
            try:
                up_r, up_w = await asyncio.open_connection(*self.to)
            except OSError:
                return
            self.conns.add(up_w)
            await asyncio.gather(self.pipe(reader, writer, up_w),
                                 self.pipe(up_r, up_w, writer),
                                 return_exceptions=True)
        finally:
            for w in (writer, up_w):
                if w is not None:
                    self.conns.discard(w)
                    w.close()

    def reset(self):
        for w in list(self.conns):
            try:
                w.transport.abort()
            except Exception:
                pass
        self.conns.clear()


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--listen', required=True)
    ap.add_argument('--to', required=True)
    ap.add_argument('--delay-ms', type=float, default=10.0)
    ap.add_argument('--pidfile')
    a = ap.parse_args()
    relay = Relay(hostport(a.to), a.delay_ms / 1000.0)
    host, port = hostport(a.listen)
    server = await asyncio.start_server(relay.handle, host, port,
                                        reuse_address=True)
    loop = asyncio.get_running_loop()

    def cut():
        relay.open.clear()
        print(f'{time.time():.3f} cut', file=sys.stderr, flush=True)

    def heal():
        relay.open.set()
        print(f'{time.time():.3f} heal', file=sys.stderr, flush=True)

    def reset():
        relay.reset()
        print(f'{time.time():.3f} reset', file=sys.stderr, flush=True)

    loop.add_signal_handler(signal.SIGUSR1, cut)
    loop.add_signal_handler(signal.SIGUSR2, heal)
    loop.add_signal_handler(signal.SIGHUP, reset)
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    if a.pidfile:
        with open(a.pidfile + '.tmp', 'w') as f:
            f.write(f'{os.getpid()}\n')
        os.rename(a.pidfile + '.tmp', a.pidfile)
    print(f'{time.time():.3f} relay {a.listen} -> {a.to}, '
          f'{a.delay_ms:g} ms each way', file=sys.stderr, flush=True)
    async with server:
        await stop.wait()


if __name__ == '__main__':
    asyncio.run(main())
