#!/usr/bin/env python3
# pipesim.py -- simulated pipe-backed serial ports (VM side) and the
# serial backend, for the vrelay pipe tests (test/regress/t-pipe.sh).
#
# ESX backs a VM's serial port with a "named pipe": a unix stream socket
# on the host.  The VM end is the server (we listen at a path, the relay
# connects; --pipe PATH=NAME or --pipe-dir) or the client (the relay
# listens, we connect; --pipe listen:PATH=NAME).  The same process is
# the backend vappliance dials with --proxy-v2: a TCP listener that
# reads each connection's PROXY v2 header, maps the connection to its VM
# by the VM name TLV (0xE5), and checks every byte:
#
#   pipesim(VM) -unix-> vrelay -mesh-> vappliance -PROXY v2-> pipesim(backend)
#
# Per VM two deterministic pseudo-random streams (VM->backend and
# backend->VM) come from the VM's name.  The backend must get exactly
# the VM's stream on ONE connection; the VM must get exactly the
# backend's stream (over all its pipe connections, in order).
#
# Scenarios (one JSON line on stdout; exit 0 pass, 1 fail):
#   normal  VMs in a directory (VM is the server) and VMs that connect
#           to a relay's listening pipe (VM is the client), both ways.
#   move    one VM moves from host A's directory to host C's: the first
#           half of its stream goes through A, then its socket goes from
#           A and appears in C, the second half goes through C.  The
#           backend pauses its stream across the move (it sends part 2
#           only once bytes sent from C have reached it), so the check is
#           exact: A got part 1 exactly, C got part 2 exactly.
#   retry   a socket with a bad name and a socket bound but not
#           listening (connects are refused); once the test touches the
#           --go file, the socket listens and the VM is checked as in
#           normal.
# --corrupt flips one byte of the first VM's outgoing stream (to show
# that the checks can fail).  Python 3 standard library only.
import argparse
import asyncio
import json
import os
import random
import socket
import struct
import sys
import time

PROXY_SIG = b"\r\n\r\n\x00\r\nQUIT\n"
TLV_NAME = {0xE0: "host", 0xE3: "service", 0xE5: "vm_name",
            0x05: "unique_id"}


def stream(name, direction, n):
    """N deterministic pseudo-random bytes for VM NAME's DIRECTION."""
    return random.Random("pipesim/%s/%s" % (name, direction)).randbytes(n)


def first_diff(a, b):
    """Index of the first differing byte, or None if A == B."""
    for i in range(min(len(a), len(b))):
        if a[i] != b[i]:
            return i
    return None if len(a) == len(b) else min(len(a), len(b))


def parse_proxy(hdr):
    """TLVs of a PROXY v2 header (the 16 fixed bytes + the rest)."""
    if hdr[:12] != PROXY_SIG:
        raise ValueError("no PROXY v2 signature")
    if hdr[12] != 0x21 or hdr[13] != 0x00:
        raise ValueError("PROXY v2 ver/cmd 0x%02x fam 0x%02x" %
                         (hdr[12], hdr[13]))
    rest, tl, i = hdr[16:], {}, 0
    while i < len(rest):
        t, ln = rest[i], struct.unpack(">H", rest[i + 1:i + 3])[0]
        v = rest[i + 3:i + 3 + ln]
        if len(v) != ln:
            raise ValueError("TLV 0x%02x overruns the header" % t)
        tl[TLV_NAME.get(t, "0x%02x" % t)] = v.decode("utf-8", "replace")
        i += 3 + ln
    return tl


class VM:
    """One VM: its streams and what each end received."""

    def __init__(self, name, nbytes):
        self.name = name
        self.n = nbytes
        self.out = stream(name, "vm", nbytes)       # VM -> backend
        self.back = stream(name, "backend", nbytes)  # backend -> VM
        self.sent = self.out                         # what the VM sends
        self.vm_rx = []         # per pipe connection, bytes received
        self.be_rx = bytearray()
        self.be_conns = []      # PROXY TLVs per backend connection
        self.be_writer = None
        self.be_sent = 0
        self.changed = asyncio.Event()

    def poke(self):
        self.changed.set()

    async def until(self, pred, timeout, what):
        end = time.monotonic() + timeout
        while not pred():
            left = end - time.monotonic()
            if left <= 0:
                raise TimeoutError("%s: %s" % (self.name, what))
            self.changed.clear()
            try:
                await asyncio.wait_for(self.changed.wait(), left)
            except asyncio.TimeoutError:
                pass


class Sim:
    def __init__(self, args):
        self.args = args
        self.vms = {}
        self.errors = []
        self.t0 = time.monotonic()

    def vm(self, name):
        v = VM(name, self.args.bytes)
        self.vms[name] = v
        return v

    # --- the backend ---------------------------------------------------

    async def backend_conn(self, reader, writer):
        try:
            hdr = await reader.readexactly(16)
            hdr += await reader.readexactly(struct.unpack(">H",
                                                          hdr[14:16])[0])
            tl = parse_proxy(hdr)
        except (ValueError, asyncio.IncompleteReadError) as e:
            self.errors.append("backend: bad PROXY header: %s" % e)
            writer.close()
            return
        vm = self.vms.get(tl.get("vm_name"))
        if vm is None:
            self.errors.append("backend: connection for unknown VM %r" %
                               tl.get("vm_name"))
            writer.close()
            return
        vm.be_conns.append(tl)
        vm.be_writer = writer
        vm.poke()
        if self.args.mode != "move":
            writer.write(vm.back)
            vm.be_sent = len(vm.back)
        try:
            while True:
                b = await reader.read(65536)
                if not b:
                    break
                vm.be_rx += b
                vm.poke()
        except ConnectionError:
            pass
        vm.poke()

    # --- VM side ---------------------------------------------------------

    async def pump(self, vm, reader, writer, data, want, rx):
        """Send DATA, receive until RX holds WANT bytes (no more)."""
        writer.write(data)
        await writer.drain()
        while len(rx) < want:
            b = await reader.read(65536)
            if not b:
                break
            rx += b
            vm.poke()

    async def serve_once(self, path, on_conn):
        """Listen at PATH (the VM is the server) until one connection
        is done with; then the socket goes before the connection."""
        done = asyncio.get_running_loop().create_future()

        async def cb(reader, writer):
            if done.done():
                writer.close()
                return
            try:
                await on_conn(reader, writer)
                if not done.done():
                    done.set_result(None)
            except Exception as e:      # noqa: BLE001 - reported
                if not done.done():
                    done.set_exception(e)
        srv = await asyncio.start_unix_server(cb, path)
        try:
            await asyncio.wait_for(done, self.args.timeout)
        finally:
            # As a VM that stops or leaves: the socket file goes first.
            os.unlink(path)
            srv.close()

    async def vm_server(self, vm, path):
        """A directory VM: serve its whole stream on one connection."""
        rx = bytearray()
        vm.vm_rx.append(rx)

        async def conn(reader, writer):
            await self.pump(vm, reader, writer, vm.sent, vm.n, rx)
            await vm.until(lambda: len(vm.be_rx) >= vm.n,
                           self.args.timeout, "backend got the stream")
            writer.close()
        await self.serve_once(path, conn)

    async def vm_client(self, vm, path):
        """A VM whose pipe connects to the relay's listening socket."""
        rx = bytearray()
        vm.vm_rx.append(rx)
        end = time.monotonic() + self.args.timeout
        while True:
            try:
                reader, writer = await asyncio.open_unix_connection(path)
                break
            except (FileNotFoundError, ConnectionRefusedError):
                if time.monotonic() > end:
                    raise
                await asyncio.sleep(0.05)
        await self.pump(vm, reader, writer, vm.sent, vm.n, rx)
        await vm.until(lambda: len(vm.be_rx) >= vm.n, self.args.timeout,
                       "backend got the stream")
        writer.close()

    # --- verdicts ----------------------------------------------------------

    def check(self, vm):
        """Both directions of VM, byte-exact, one backend connection."""
        errs = []
        got = bytes(vm.be_rx)
        if got != vm.out:
            errs.append("%s: backend got %d bytes, want %d, first "
                        "difference at %s" % (vm.name, len(got), vm.n,
                                              first_diff(got, vm.out)))
        if len(vm.be_conns) != 1:
            errs.append("%s: %d backend connections, want 1" %
                        (vm.name, len(vm.be_conns)))
        for tl in vm.be_conns:
            if tl.get("service") != "serial" or "unique_id" not in tl:
                errs.append("%s: PROXY TLVs %s" % (vm.name, tl))
        rx = b"".join(bytes(r) for r in vm.vm_rx)
        if rx != vm.back:
            errs.append("%s: VM got %d bytes, want %d, first difference "
                        "at %s" % (vm.name, len(rx), vm.n,
                                   first_diff(rx, vm.back)))
        return errs

    def report(self, extra=None):
        out = {"mode": self.args.mode, "ms": round(
            (time.monotonic() - self.t0) * 1000), "vms": {}}
        for v in self.vms.values():
            out["vms"][v.name] = {
                "to_backend": len(v.be_rx), "to_vm": [len(r)
                                                      for r in v.vm_rx],
                "backend_conns": len(v.be_conns),
                "host": [tl.get("host") for tl in v.be_conns]}
            self.errors += self.check(v)
        out.update(extra or {})
        out["errors"] = self.errors
        out["pass"] = not self.errors
        print(json.dumps(out))
        return 0 if not self.errors else 1


def corrupt(vm):
    """Flip one byte in the middle of what VM sends."""
    b = bytearray(vm.sent)
    b[len(b) // 2] ^= 0x40
    vm.sent = bytes(b)


async def run_normal(sim, args, srv):
    tasks = []
    for i, spec in enumerate(args.dir_vm + args.listen_vm):
        path, name = spec.split("=", 1)
        vm = sim.vm(name)
        if i == 0 and args.corrupt:
            corrupt(vm)
        if spec in args.dir_vm:
            tasks.append(sim.vm_server(vm, path))
        else:
            tasks.append(sim.vm_client(vm, path))
    await asyncio.gather(*tasks)
    return {}


async def run_move(sim, args, srv):
    """Part 1 via A, the socket moves, part 2 via C (see the top)."""
    vm = sim.vm(args.name)
    if args.corrupt:
        corrupt(vm)
    half = vm.n // 2
    rx_a, rx_c = bytearray(), bytearray()
    vm.vm_rx += [rx_a, rx_c]
    times = {}

    async def on_a(reader, writer):
        await vm.until(lambda: vm.be_writer is not None, args.timeout,
                       "backend connection")
        vm.be_writer.write(vm.back[:half])
        vm.be_sent = half
        await sim.pump(vm, reader, writer, vm.sent[:half], half, rx_a)
        if args.settle:
            # What a real move's seconds give: A's bytes have landed.
            await vm.until(lambda: len(vm.be_rx) >= half, args.timeout,
                           "first half at the backend")
        times["a_closed"] = time.monotonic()
        writer.close()

    async def on_c(reader, writer):
        times["c_connected"] = time.monotonic()
        writer.write(vm.sent[half:])
        await writer.drain()
        # Backend part 2 only once bytes from C have reached it: from
        # then on the appliance sends to C's session, never to A's.
        await vm.until(lambda: len(vm.be_rx) > half, args.timeout,
                       "bytes from C at the backend")
        vm.be_writer.write(vm.back[half:])
        vm.be_sent = vm.n
        while len(rx_c) < vm.n - half:
            b = await reader.read(65536)
            if not b:
                break
            rx_c.extend(b)
        await vm.until(lambda: len(vm.be_rx) >= vm.n, args.timeout,
                       "backend got the whole stream")
        writer.close()

    await sim.serve_once(args.path_a, on_a)
    await sim.serve_once(args.path_c, on_c)
    errs = []
    if bytes(rx_a) != vm.back[:half]:
        errs.append("VM on A got %d bytes, want exactly part 1 (%d)" %
                    (len(rx_a), half))
    if bytes(rx_c) != vm.back[half:]:
        errs.append("VM on C got %d bytes, want exactly part 2 (%d)" %
                    (len(rx_c), vm.n - half))
    sim.errors += errs
    return {"half": half, "move_ms": round(
        (times["c_connected"] - times["a_closed"]) * 1000)}


async def run_retry(sim, args, srv):
    """A bad name, and a socket that listens only after --go."""
    bad = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    bad.bind(args.bad)
    bad.listen(4)
    late = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    path, name = args.late.split("=", 1)
    late.bind(path)             # bound, not listening: refused
    vm = sim.vm(name)
    if args.corrupt:
        corrupt(vm)
    with open(args.ready, "w") as f:
        f.write("ready\n")
    end = time.monotonic() + args.timeout
    while not os.path.exists(args.go):
        if time.monotonic() > end:
            raise TimeoutError("no --go file")
        await asyncio.sleep(0.05)
    late.listen(4)
    late.setblocking(False)
    rx = bytearray()
    vm.vm_rx.append(rx)
    done = asyncio.get_running_loop().create_future()

    async def cb(reader, writer):
        if done.done():
            writer.close()
            return
        await sim.pump(vm, reader, writer, vm.sent, vm.n, rx)
        await vm.until(lambda: len(vm.be_rx) >= vm.n, args.timeout,
                       "backend got the stream")
        writer.close()
        done.set_result(time.monotonic())
    t_go = time.monotonic()
    srv2 = await asyncio.start_unix_server(cb, sock=late)
    t_done = await asyncio.wait_for(done, args.timeout)
    os.unlink(path)
    srv2.close()
    os.unlink(args.bad)
    bad.close()
    return {"after_go_ms": round((t_done - t_go) * 1000)}


async def main_async(args):
    sim = Sim(args)
    srv = await asyncio.start_server(sim.backend_conn, "127.0.0.1",
                                     args.backend_listen,
                                     reuse_address=True)
    run = {"normal": run_normal, "move": run_move,
           "retry": run_retry}[args.mode]
    try:
        extra = await asyncio.wait_for(run(sim, args, srv),
                                       args.timeout)
    except (Exception, asyncio.TimeoutError) as e:   # noqa: BLE001
        sim.errors.append("%s: %s" % (type(e).__name__, e))
        extra = {}
    srv.close()
    for v in sim.vms.values():
        if v.be_writer is not None:
            v.be_writer.close()
    await asyncio.sleep(0.05)   # let the backend's readers see the end
    return sim.report(extra)


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("mode", choices=["normal", "move", "retry"])
    ap.add_argument("--backend-listen", type=int, required=True,
                    metavar="PORT")
    ap.add_argument("--bytes", type=int, default=256 * 1024)
    ap.add_argument("--timeout", type=float, default=20)
    ap.add_argument("--dir-vm", action="append", default=[],
                    metavar="PATH=NAME", help="normal: a VM listening")
    ap.add_argument("--listen-vm", action="append", default=[],
                    metavar="PATH=NAME", help="normal: a VM connecting")
    ap.add_argument("--name", help="move: the VM")
    ap.add_argument("--path-a", help="move: its socket on host A")
    ap.add_argument("--path-c", help="move: its socket on host C")
    ap.add_argument("--settle", action="store_true",
                    help="move: close on A only once A's bytes landed")
    ap.add_argument("--bad", help="retry: a socket with a bad name")
    ap.add_argument("--late", metavar="PATH=NAME",
                    help="retry: a socket that listens after --go")
    ap.add_argument("--ready", help="retry: written once set up")
    ap.add_argument("--go", help="retry: listen once this exists")
    ap.add_argument("--corrupt", action="store_true",
                    help="flip one byte the first VM sends")
    args = ap.parse_args()
    sys.exit(asyncio.run(main_async(args)))


if __name__ == "__main__":
    main()
