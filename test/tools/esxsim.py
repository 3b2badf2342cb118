#!/usr/bin/env python3
# esxsim.py -- simulated ESX host network serial port peer (and backend)
# for the vrelay vSPC tests.
#
# It plays what the vmx does for a VM whose network serial port is in
# client mode and points at a vSPC: TELNET with VMware's extension option
# VMWARE-TELNET-EXT (232), per VMware's published proxy protocol
# (docs: "Establish a VMware Telnet Extension Session" and the vMotion
# sequence; summarised in shared/reference/vic.md section 3).  The same
# program is the backend the vSPC dials (one TCP connection per VM,
# starting with a HAProxy PROXY v2 header whose TLVs name the VM), so it
# verifies every byte end to end:
#
#   esxsim(ESX) -telnet-> vrelay -mesh-> vappliance(vSPC) -> esxsim(backend)
#
# Per VM two deterministic pseudo-random streams (VM->backend and
# backend->VM) are generated from the VM's name; about 1/16 of the bytes
# are 0xFF (IAC escaping) and CR NUL / CR LF pairs are sprinkled in.  The
# backend must get exactly the VM's stream; the VM (all of its telnet
# connections in order: source then destination) must get exactly the
# backend's stream.
#
# Scenarios: normal, vmotion, abort, wrong-cookie, late-peer, malformed,
# and selftest (all of them against an in-process fake vSPC, plus broken
# fakes that the tool must fail).  Each scenario prints one JSON line and
# exits 0 on pass, 1 on fail.  Python 3 standard library only.
import argparse
import asyncio
import hashlib
import json
import os
import random
import struct
import sys
import time

# --- Telnet constants (RFC 854/856/858/857) ---------------------------------

IAC, DONT, DO, WONT, WILL, SB, SE = 255, 254, 253, 252, 251, 250, 240
BINARY, ECHO, SGA = 0, 1, 3
VMWARE_EXT = 232                # VMWARE-TELNET-EXT
VERB_NAME = {DONT: "DONT", DO: "DO", WONT: "WONT", WILL: "WILL"}
OPT_NAME = {BINARY: "BINARY", ECHO: "ECHO", SGA: "SGA",
            VMWARE_EXT: "VMWARE-EXT"}


class EXT:
    """VMWARE-TELNET-EXT sub-commands, named as in vic.md 3.1 ('-' -> '_')."""
    KNOWN_SUBOPTIONS_1 = 0          # VM -> proxy: list of codes
    KNOWN_SUBOPTIONS_2 = 1          # proxy -> VM: list of codes
    UNKNOWN_SUBOPTION_RCVD_1 = 2    # VM -> proxy: unknown code
    UNKNOWN_SUBOPTION_RCVD_2 = 3    # proxy -> VM: unknown code
    VMOTION_BEGIN = 40              # source -> proxy: seq
    VMOTION_GOAHEAD = 41            # proxy -> source: seq + secret
    VMOTION_NOTNOW = 43             # proxy -> source: seq
    VMOTION_PEER = 44               # target -> proxy: seq + secret
    VMOTION_PEER_OK = 45            # proxy -> target: seq (+ secret)
    VMOTION_COMPLETE = 46           # target -> proxy: seq
    VMOTION_ABORT = 48              # source -> proxy: none
    DO_PROXY = 70                   # VM -> proxy: dir 'C'/'S' + serviceURI
    WILL_PROXY = 71                 # proxy -> VM
    WONT_PROXY = 73                 # proxy -> VM
    VM_VC_UUID = 80                 # VM -> proxy
    GET_VM_VC_UUID = 81             # proxy -> VM
    VM_NAME = 82                    # VM -> proxy
    GET_VM_NAME = 83                # proxy -> VM
    VM_BIOS_UUID = 84               # VM -> proxy
    GET_VM_BIOS_UUID = 85           # proxy -> VM
    VM_LOCATION_UUID = 86           # VM -> proxy
    GET_VM_LOCATION_UUID = 87       # proxy -> VM


EXT_NAME = {v: k.replace("_", "-") for k, v in vars(EXT).items()
            if not k.startswith("_")}
# What ESX lists in KNOWN-SUBOPTIONS-1.
ESX_KNOWN = bytes([0, 1, 2, 3, 40, 41, 43, 44, 45, 46, 48, 70, 71, 73,
                   80, 81, 82, 83, 84, 85, 86, 87])
# Sub-commands a proxy may send to the VM; anything else gets
# UNKNOWN-SUBOPTION-RCVD-1 from the ESX side.
PROXY_TO_VM = {EXT.KNOWN_SUBOPTIONS_2, EXT.UNKNOWN_SUBOPTION_RCVD_2,
               EXT.VMOTION_GOAHEAD, EXT.VMOTION_NOTNOW, EXT.VMOTION_PEER_OK,
               EXT.WILL_PROXY, EXT.WONT_PROXY, EXT.GET_VM_VC_UUID,
               EXT.GET_VM_NAME, EXT.GET_VM_BIOS_UUID,
               EXT.GET_VM_LOCATION_UUID}
# What the ESX side accepts: DO (we enable) and WILL (peer enables).
ESX_ACCEPT_DO = {BINARY, SGA, VMWARE_EXT}
ESX_ACCEPT_WILL = {BINARY, SGA, ECHO}

PROXY_SIG = b"\r\n\r\n\x00\r\nQUIT\n"
TLV_NAME = {0xE0: "host", 0xE1: "cid", 0xE2: "port", 0x05: "unique_id",
            0xE3: "service", 0xE4: "vc_uuid", 0xE5: "vm_name",
            0xE6: "bios_uuid"}

GOAHEAD_LIMIT = 5.0     # ESX default serialN.vmotionLimit (5000 ms)
HS_TIMEOUT = 10.0       # establishment / "answered or closed" limit
VERBOSE = False


def trace(label, msg):
    """Print one protocol trace line to stderr when -v is on."""
    if VERBOSE:
        sys.stderr.write("%9.3f %-14s %s\n" % (time.monotonic() % 1e5,
                                               label, msg))


def now_ms(t0):
    """Milliseconds since t0 (monotonic)."""
    return round((time.monotonic() - t0) * 1000.0, 1)


# --- Telnet encoding ---------------------------------------------------------

def iac_escape(data):
    """Double every 0xFF so it travels as data (RFC 854)."""
    return bytes(data).replace(b"\xff", b"\xff\xff")


def enc_opt(verb, opt):
    """IAC verb opt."""
    return bytes([IAC, verb, opt])


def enc_sb(cmd, params=b"", opt=VMWARE_EXT):
    """IAC SB opt <cmd params, IAC-escaped> IAC SE."""
    return (bytes([IAC, SB, opt]) + iac_escape(bytes([cmd]) + bytes(params))
            + bytes([IAC, SE]))


def desc_sb(opt, payload):
    """Human text for a subnegotiation, for traces and reports."""
    if opt != VMWARE_EXT or not payload:
        return "SB %d %s" % (opt, payload.hex())
    cmd, p = payload[0], payload[1:]
    name = EXT_NAME.get(cmd, "cmd-%d" % cmd)
    if cmd in (EXT.KNOWN_SUBOPTIONS_1, EXT.KNOWN_SUBOPTIONS_2):
        ps = " ".join(str(c) for c in p)
    elif cmd in (EXT.DO_PROXY, EXT.VM_VC_UUID, EXT.VM_NAME, EXT.VM_BIOS_UUID,
                 EXT.VM_LOCATION_UUID):
        ps = repr(p[:80].decode("utf-8", "replace")) + \
            ("...(%d)" % len(p) if len(p) > 80 else "")
    else:
        ps = p.hex()
    return "SB %s %s" % (name, ps)


class TelnetDecoder:
    """Incremental telnet parser.

    feed() returns events: ("data", bytes), ("opt", verb, opt),
    ("cmd", byte), ("sb", opt, payload) and ("error", text).  After an
    error the decoder stays broken (callers close the connection).
    """
    S_DATA, S_IAC, S_OPT, S_SBOPT, S_SB, S_SBIAC = range(6)

    def __init__(self, sb_cap=65536):
        self.state = self.S_DATA
        self.sb_cap = sb_cap
        self.verb = 0
        self.sbopt = 0
        self.sbbuf = bytearray()
        self.broken = None

    def feed(self, data):
        ev = []
        if self.broken:
            return ev
        i, n = 0, len(data)
        out = bytearray()
        while i < n:
            st = self.state
            if st == self.S_DATA:
                j = data.find(b"\xff", i)
                if j < 0:
                    out += data[i:]
                    break
                out += data[i:j]
                i = j + 1
                self.state = self.S_IAC
                continue
            c = data[i]
            i += 1
            if st == self.S_IAC:
                if c == IAC:
                    out.append(IAC)
                    self.state = self.S_DATA
                elif c in (DO, DONT, WILL, WONT):
                    self.verb = c
                    self.state = self.S_OPT
                elif c == SB:
                    self.state = self.S_SBOPT
                else:
                    if out:
                        ev.append(("data", bytes(out)))
                        out = bytearray()
                    ev.append(("cmd", c))
                    self.state = self.S_DATA
            elif st == self.S_OPT:
                if out:
                    ev.append(("data", bytes(out)))
                    out = bytearray()
                ev.append(("opt", self.verb, c))
                self.state = self.S_DATA
            elif st == self.S_SBOPT:
                self.sbopt = c
                self.sbbuf = bytearray()
                self.state = self.S_SB
            elif st == self.S_SB:
                if c == IAC:
                    self.state = self.S_SBIAC
                else:
                    self.sbbuf.append(c)
                    if len(self.sbbuf) > self.sb_cap:
                        return self._fail(ev, out, "subnegotiation longer "
                                          "than %d bytes" % self.sb_cap)
            elif st == self.S_SBIAC:
                if c == IAC:
                    self.sbbuf.append(IAC)
                    self.state = self.S_SB
                elif c == SE:
                    if out:
                        ev.append(("data", bytes(out)))
                        out = bytearray()
                    ev.append(("sb", self.sbopt, bytes(self.sbbuf)))
                    self.state = self.S_DATA
                else:
                    return self._fail(ev, out, "IAC %d inside subnegotiation"
                                      % c)
        if out:
            ev.append(("data", bytes(out)))
        return ev

    def _fail(self, ev, out, why):
        if out:
            ev.append(("data", bytes(out)))
        self.broken = why
        ev.append(("error", why))
        return ev


# --- Streams and VMs ---------------------------------------------------------

def make_stream(tag, n):
    """Deterministic test bytes: ~1/16 0xFF, CR NUL / CR LF pairs."""
    rng = random.Random(tag)
    b = bytearray(rng.randbytes(n))
    r = rng.randbytes(n // 16 + 1)
    for k in range(n // 16):
        b[k * 16 + (r[k] & 15)] = 0xFF
    for k in range(0, n // 16 - 1, 4):
        p = k * 16 + 3 + (r[k + 1] & 7)
        if p + 1 < n:
            b[p] = 0x0D
            b[p + 1] = 0x00 if r[k] & 16 else 0x0A
    return bytes(b)


def vmware_uuid(tag):
    """A VMware-style UUID string: '42 0f ... 6f-70 81 ... e7'."""
    h = hashlib.md5(tag.encode()).digest()
    h = b"\x42" + h[1:]
    return " ".join("%02x" % x for x in h[:8]) + "-" + \
        " ".join("%02x" % x for x in h[8:])


def first_diff(a, b):
    """Index of the first differing byte of a and b (up to min length)."""
    m = min(len(a), len(b))
    if a[:m] == b[:m]:
        return None
    lo, hi = 0, m
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if a[lo:mid] != b[lo:mid]:
            hi = mid
        else:
            lo = mid
    return lo


class Vm:
    """One simulated VM: identity, its two streams, its connections."""

    def __init__(self, name, nonce, nbytes, kind="data"):
        self.name = name
        self.kind = kind                # "data" (verified) or "bad"
        self.vc_uuid = vmware_uuid("vc/" + nonce + "/" + name)
        self.bios_uuid = vmware_uuid("bios/" + nonce + "/" + name)
        self.loc_uuid = vmware_uuid("loc/" + nonce + "/" + name)
        self.n = nbytes
        self.tx = make_stream(name + "/vm->backend", nbytes) if kind == \
            "data" else b""
        self.bx = make_stream(name + "/backend->vm", nbytes) if kind == \
            "data" else b""
        self.tx_off = 0                 # VM->backend bytes handed to telnet
        self.rx_conns = []              # conns whose rx makes the VM's rx
        self.backend = None             # BackendConn
        self.backend_conns = 0
        self.backend_ready = asyncio.Event()
        self.errors = []

    def vm_rx(self):
        return b"".join(bytes(c.rx) for c in self.rx_conns)

    async def send_until(self, conn, upto, opts):
        """Send VM->backend bytes [tx_off, upto) through conn, paced."""
        pacer = Pacer(opts.rate)
        while self.tx_off < upto:
            if conn.closed:
                raise Fail("%s: connection closed by peer while sending "
                           "(VM->backend offset %d)" % (conn.label,
                                                       self.tx_off))
            k = min(opts.chunk, upto - self.tx_off)
            await pacer.wait(k)
            conn.send_data(self.tx[self.tx_off:self.tx_off + k])
            self.tx_off += k
            await conn.drain()

    def report(self):
        rx = self.vm_rx()
        brx = bytes(self.backend.rx) if self.backend else b""
        r = {"vm": self.name, "vc_uuid": self.vc_uuid,
             "vm_to_backend": {"sent": self.tx_off, "got": len(brx)},
             "backend_to_vm": {"sent": self.backend.tx_off
                               if self.backend else 0, "got": len(rx)},
             "backend_conns": self.backend_conns}
        if self.backend:
            r["tlvs"] = self.backend.tlvs
        return r

    def check(self, final):
        """Return None if the streams are right so far (final: complete)."""
        if self.errors:
            return self.errors[0]
        if self.backend_conns > 1:
            return "%s: %d backend connections (must stay one)" % (
                self.name, self.backend_conns)
        brx = bytes(self.backend.rx) if self.backend else b""
        d = first_diff(brx, self.tx)
        if d is not None or len(brx) > len(self.tx):
            return "%s: backend got wrong VM->backend bytes at offset %s " \
                "(got %d bytes)" % (self.name, d, len(brx))
        rx = self.vm_rx()
        d = first_diff(rx, self.bx)
        if d is not None or len(rx) > len(self.bx):
            return "%s: VM got wrong backend->VM bytes at offset %s " \
                "(got %d bytes)" % (self.name, d, len(rx))
        if final:
            if len(brx) != self.n:
                return "%s: backend got %d of %d VM->backend bytes" % (
                    self.name, len(brx), self.n)
            if len(rx) != self.n:
                return "%s: VM got %d of %d backend->VM bytes" % (
                    self.name, len(rx), self.n)
        return None

    def complete(self):
        return (self.backend is not None and len(self.backend.rx) >= self.n
                and len(self.vm_rx()) >= self.n)


class Fail(Exception):
    """A scenario verdict of fail with a reason."""


class Pacer:
    """Rate limiter: wait(k) returns when k more bytes fit the rate."""

    def __init__(self, rate):
        self.rate = rate
        self.t0 = time.monotonic()
        self.sent = 0

    async def wait(self, k):
        if self.rate > 0:
            due = self.t0 + self.sent / self.rate
            d = due - time.monotonic()
            if d > 0:
                await asyncio.sleep(d)
        self.sent += k


class Waitable:
    """Wake-all change notification for poll-style waits."""

    def __init__(self):
        self._ev = asyncio.Event()

    def changed(self):
        ev, self._ev = self._ev, asyncio.Event()
        ev.set()

    async def wait_for(self, pred, timeout):
        """Wait until pred() is true; return False on timeout."""
        end = time.monotonic() + timeout
        while True:
            ev = self._ev
            if pred():
                return True
            left = end - time.monotonic()
            if left <= 0:
                return False
            try:
                await asyncio.wait_for(ev.wait(), left)
            except asyncio.TimeoutError:
                return bool(pred())


# --- The ESX side: one telnet connection -------------------------------------

class EsxConn(Waitable):
    """The ESX (vmx) end of one telnet connection to the vSPC."""

    def __init__(self, label, vm, opts, addr):
        super().__init__()
        self.label = label
        self.vm = vm
        self.opts = opts
        self.addr = addr
        self.dec = TelnetDecoder()
        self.rx = bytearray()           # backend->VM bytes on this conn
        self.rx_after_goahead = 0
        self.goahead_seen = False
        self.local = {}                 # opt -> "wantyes"/"yes"/"no"
        self.remote = {}
        self.refused_sent = set()
        self.ext_refused = False
        self.ks1_sent = False
        self.established = False
        self.ks2 = None
        self.sbs = []                   # (t, cmd, params) from the proxy
        self.asked = []                 # GET-* names the proxy asked
        self.proxy_answer = None        # "WILL-PROXY"/"WONT-PROXY"
        self.closed = False
        self.closed_at = None
        self.proto_error = None
        self.events_in = 0              # commands/SBs received (any)
        self.t0 = time.monotonic()
        self.reader = self.writer = None
        self.task = None

    async def connect(self):
        host, port = self.addr
        try:
            self.reader, self.writer = await asyncio.wait_for(
                asyncio.open_connection(host, port), HS_TIMEOUT)
        except (OSError, asyncio.TimeoutError) as e:
            raise Fail("%s: connect to %s:%d: %s" % (self.label, host, port,
                                                    e))
        self.t0 = time.monotonic()
        trace(self.label, "connected to %s:%d" % (host, port))
        self.task = asyncio.ensure_future(self._read_loop())

    # -- output
    def _write(self, b):
        if self.closed or self.writer is None:
            return
        try:
            self.writer.write(b)
        except (OSError, RuntimeError):
            pass

    async def drain(self):
        try:
            await self.writer.drain()
        except (OSError, ConnectionError, RuntimeError):
            pass

    def send_opt(self, verb, opt):
        trace(self.label, "> %s %s" % (VERB_NAME[verb],
                                      OPT_NAME.get(opt, opt)))
        self._write(enc_opt(verb, opt))

    def send_sb(self, cmd, params=b""):
        trace(self.label, "> " + desc_sb(VMWARE_EXT, bytes([cmd]) +
                                         bytes(params)))
        self._write(enc_sb(cmd, params))

    def send_raw(self, b, what):
        trace(self.label, "> raw %s (%d bytes)" % (what, len(b)))
        self._write(b)

    def send_data(self, b):
        self._write(iac_escape(b))

    async def close(self):
        if self.writer and not self.closed:
            trace(self.label, "closing")
            self.closed = True
            self.closed_at = now_ms(self.t0)
            try:
                self.writer.close()
            except (OSError, RuntimeError):
                pass
            self.changed()
        if self.task:
            self.task.cancel()

    # -- input
    async def _read_loop(self):
        try:
            while True:
                b = await self.reader.read(65536)
                if not b:
                    break
                for e in self.dec.feed(b):
                    self._event(e)
                self.changed()
                if self.dec.broken:
                    break
        except (OSError, ConnectionError):
            pass
        except asyncio.CancelledError:
            return
        if not self.closed:
            trace(self.label, "< closed by peer")
            self.closed = True
            self.closed_at = now_ms(self.t0)
            try:
                self.writer.close()
            except (OSError, RuntimeError):
                pass
        self.changed()

    def _event(self, e):
        kind = e[0]
        if kind == "data":
            self.rx += e[1]
            if self.goahead_seen:
                self.rx_after_goahead += len(e[1])
            return
        self.events_in += 1
        if kind == "error":
            self.proto_error = e[1]
            trace(self.label, "< PROTOCOL ERROR " + e[1])
        elif kind == "cmd":
            trace(self.label, "< IAC %d" % e[1])
        elif kind == "opt":
            self._negotiate(e[1], e[2])
        elif kind == "sb":
            trace(self.label, "< " + desc_sb(e[1], e[2]))
            if e[1] == VMWARE_EXT and e[2]:
                self._ext(e[2][0], e[2][1:])

    def _negotiate(self, verb, opt):
        """Answer DO/DONT/WILL/WONT (RFC 1143 style, no loops)."""
        trace(self.label, "< %s %s" % (VERB_NAME[verb],
                                      OPT_NAME.get(opt, opt)))
        if verb in (DO, DONT):
            st, ok, yes, no = self.local, ESX_ACCEPT_DO, WILL, WONT
        else:
            st, ok, yes, no = self.remote, ESX_ACCEPT_WILL, DO, DONT
        cur = st.get(opt, "no")
        if verb in (DO, WILL):
            if opt in ok:
                if cur == "no":
                    self.send_opt(yes, opt)
                st[opt] = "yes"
            elif (verb, opt) not in self.refused_sent:
                self.refused_sent.add((verb, opt))
                self.send_opt(no, opt)
        else:
            if cur == "yes":
                self.send_opt(no, opt)
            st[opt] = "no"
            if verb == DONT and opt == VMWARE_EXT:
                self.ext_refused = True
        if verb == DO and opt == VMWARE_EXT and not self.ks1_sent:
            # vic.md 3.2 step 2: after DO 232, KNOWN-SUBOPTIONS-1.
            self.ks1_sent = True
            self.send_sb(EXT.KNOWN_SUBOPTIONS_1, ESX_KNOWN)

    def _ext(self, cmd, p):
        """Handle one VMWARE-EXT subnegotiation from the proxy."""
        self.sbs.append((now_ms(self.t0), cmd, p))
        if cmd == EXT.VMOTION_GOAHEAD:
            self.goahead_seen = True
        h = ESX_EXT_HANDLERS.get(cmd)
        if h is not None:
            h(self, p)
        elif cmd not in PROXY_TO_VM:
            self.send_sb(EXT.UNKNOWN_SUBOPTION_RCVD_1, bytes([cmd]))

    def _on_ks2(self, p):
        self.ks2 = list(p)

    def _on_proxy(self, cmd):
        if self.proxy_answer is None:
            self.proxy_answer = EXT_NAME[cmd]

    def _answer(self, what, reply, value):
        self.asked.append(what)
        self.send_sb(reply, value)

    # -- waits
    def find_sb(self, codes, start=0):
        for i in range(start, len(self.sbs)):
            if self.sbs[i][1] in codes:
                return i
        return None

    async def expect_sb(self, codes, timeout, start=0):
        """Wait for a sub-command in codes; None on close/timeout."""
        await self.wait_for(lambda: self.find_sb(codes, start) is not None
                            or self.closed, timeout)
        i = self.find_sb(codes, start)
        return None if i is None else self.sbs[i]

    async def establish(self, need_ident=True):
        """vic.md 3.2: WILL 232 (+BINARY/SGA), KNOWN-SUBOPTIONS-1 after
        DO 232, DO-PROXY 'C'+uri, then (need_ident) wait for the proxy's
        GET-VM-VC-UUID or GET-VM-NAME to have been answered."""
        if self.established:
            return
        if self.writer is None:
            await self.connect()
        for verb, opt in ((WILL, VMWARE_EXT), (WILL, BINARY), (DO, BINARY),
                          (WILL, SGA), (DO, SGA)):
            st = self.local if verb == WILL else self.remote
            if st.get(opt) != "yes":    # the vSPC may have asked first
                st[opt] = "wantyes"
                self.send_opt(verb, opt)
        ok = await self.wait_for(lambda: self.ks1_sent or self.ext_refused
                                 or self.closed, HS_TIMEOUT)
        if self.closed:
            raise Fail("%s: closed by vSPC during negotiation" % self.label)
        if self.ext_refused:
            raise Fail("%s: vSPC refused VMWARE-EXT (DONT 232)" % self.label)
        if not ok:
            raise Fail("%s: no DO 232 within %gs" % (self.label, HS_TIMEOUT))
        self.send_sb(EXT.DO_PROXY, b"C" + self.opts.service_uri.encode())
        ok = await self.wait_for(lambda: self.proxy_answer or self.closed,
                                 HS_TIMEOUT)
        if self.proxy_answer == "WONT-PROXY":
            raise Fail("%s: vSPC answered WONT-PROXY" % self.label)
        if not self.proxy_answer:
            raise Fail("%s: %s waiting for WILL-PROXY" % (
                self.label, "closed" if self.closed else "timeout"))
        if need_ident:
            ok = await self.wait_for(
                lambda: self.closed or "GET-VM-VC-UUID" in self.asked,
                HS_TIMEOUT)
            if self.closed:
                raise Fail("%s: closed by vSPC during identification"
                           % self.label)
            if not ok and "GET-VM-NAME" not in self.asked:
                raise Fail("%s: vSPC never asked GET-VM-VC-UUID or "
                           "GET-VM-NAME" % self.label)
        if self.ks2 is None:
            await self.wait_for(lambda: self.ks2 is not None, 1.0)
            if self.ks2 is None:
                raise Fail("%s: no KNOWN-SUBOPTIONS-2 from the vSPC"
                           % self.label)
        self.established = True
        trace(self.label, "established in %s ms" % now_ms(self.t0))

ESX_EXT_HANDLERS = {
    EXT.KNOWN_SUBOPTIONS_2: EsxConn._on_ks2,
    EXT.WILL_PROXY: lambda c, p: c._on_proxy(EXT.WILL_PROXY),
    EXT.WONT_PROXY: lambda c, p: c._on_proxy(EXT.WONT_PROXY),
    EXT.GET_VM_VC_UUID: lambda c, p: c._answer(
        "GET-VM-VC-UUID", EXT.VM_VC_UUID, c.vm.vc_uuid.encode()),
    EXT.GET_VM_NAME: lambda c, p: c._answer(
        "GET-VM-NAME", EXT.VM_NAME, c.vm.name.encode()),
    EXT.GET_VM_BIOS_UUID: lambda c, p: c._answer(
        "GET-VM-BIOS-UUID", EXT.VM_BIOS_UUID, c.vm.bios_uuid.encode()),
    EXT.GET_VM_LOCATION_UUID: lambda c, p: c._answer(
        "GET-VM-LOCATION-UUID", EXT.VM_LOCATION_UUID, c.vm.loc_uuid.encode()),
}


# --- The backend -------------------------------------------------------------

def parse_proxy_v2(hdr16, rest):
    """Parse a PROXY v2 header; return (tlvs dict, error or None)."""
    if hdr16[:12] != PROXY_SIG:
        return {}, "no PROXY v2 signature (got %s)" % hdr16[:12].hex()
    if hdr16[12] != 0x21:
        return {}, "PROXY v2 ver/cmd byte 0x%02x, want 0x21" % hdr16[12]
    fam = hdr16[13]
    skip = {0x00: 0, 0x11: 12, 0x12: 12, 0x21: 36, 0x22: 36,
            0x31: 216, 0x32: 216}.get(fam)
    if skip is None or skip > len(rest):
        return {}, "PROXY v2 family byte 0x%02x" % fam
    tl = {}
    i = skip
    while i < len(rest):
        if i + 3 > len(rest):
            return tl, "truncated TLV at %d" % i
        t, ln = rest[i], struct.unpack(">H", rest[i + 1:i + 3])[0]
        v = rest[i + 3:i + 3 + ln]
        if len(v) != ln:
            return tl, "TLV 0x%02x overruns header" % t
        key = TLV_NAME.get(t, "0x%02x" % t)
        if t in (0xE1, 0xE2) and ln == 4:
            tl[key] = struct.unpack(">I", v)[0]
        else:
            tl[key] = v.decode("utf-8", "replace")
        i += 3 + ln
    return tl, None


class BackendConn:
    """One connection the vSPC opened to the backend (one per VM)."""

    def __init__(self, sim, reader, writer):
        self.sim = sim
        self.reader, self.writer = reader, writer
        self.vm = None
        self.tlvs = {}
        self.rx = bytearray()
        self.tx_off = 0
        self.eof = False
        self.reading = asyncio.Event()  # cleared: the backend reads none
        self.reading.set()

    async def run(self):
        try:
            hdr = await asyncio.wait_for(self.reader.readexactly(16),
                                         HS_TIMEOUT)
            ln = struct.unpack(">H", hdr[14:16])[0]
            rest = await self.reader.readexactly(ln) if hdr[:12] == \
                PROXY_SIG else b""
        except (asyncio.IncompleteReadError, asyncio.TimeoutError,
                OSError) as e:
            self.sim.errors.append("backend: bad/short PROXY v2 header: %r"
                                   % (e,))
            self.writer.close()
            return
        self.tlvs, err = parse_proxy_v2(hdr, rest)
        if err:
            self.sim.errors.append("backend: " + err)
            self.writer.close()
            return
        vm = self.sim.find_vm(self.tlvs)
        trace("backend", "connection: %s -> %s" % (
            self.tlvs, vm.name if vm else "UNKNOWN VM"))
        if vm is None:
            self.sim.stray.append(self.tlvs)
            await self._drain_only()
            return
        self.vm = vm
        vm.backend_conns += 1
        if vm.backend is not None:
            vm.errors.append("%s: second backend connection (TLVs %s)"
                             % (vm.name, self.tlvs))
            await self._drain_only()
            return
        vm.backend = self
        self._check_tlvs(vm)
        vm.backend_ready.set()
        sender = None
        if vm.kind == "data":
            sender = asyncio.ensure_future(self._send(vm))
        try:
            while True:
                await self.reading.wait()
                b = await self.reader.read(65536)
                if not b:
                    break
                self.rx += b
        except (OSError, ConnectionError):
            pass
        self.eof = True
        trace("backend", "%s: EOF after %d bytes" % (vm.name, len(self.rx)))
        if sender:
            sender.cancel()

    def _check_tlvs(self, vm):
        want = {"vc_uuid": vm.vc_uuid.replace(" ", ""), "vm_name": vm.name}
        for k, v in want.items():
            if k in self.tlvs and self.tlvs[k] != v:
                vm.errors.append("%s: TLV %s is %r, want %r" % (
                    vm.name, k, self.tlvs[k], v))
        b = self.tlvs.get("bios_uuid")
        if b is not None and b not in (vm.bios_uuid,
                                       vm.bios_uuid.replace(" ", "")):
            vm.errors.append("%s: TLV bios_uuid is %r, want %r" % (
                vm.name, b, vm.bios_uuid))
        svc = self.tlvs.get("service")
        if svc is not None and svc not in ("vspc", "serial"):
            vm.errors.append("%s: TLV service is %r" % (vm.name, svc))

    async def _send(self, vm):
        pacer = Pacer(self.sim.opts.rate)
        try:
            while self.tx_off < vm.n:
                k = min(self.sim.opts.chunk, vm.n - self.tx_off)
                await pacer.wait(k)
                self.writer.write(vm.bx[self.tx_off:self.tx_off + k])
                self.tx_off += k
                await self.writer.drain()
        except (OSError, ConnectionError):
            pass

    async def _drain_only(self):
        try:
            while await self.reader.read(65536):
                pass
        except (OSError, ConnectionError):
            pass


class Sim:
    """Per-run state: options, the VMs, the backend listener."""

    def __init__(self, opts):
        self.opts = opts
        self.vms = []
        self.errors = []
        self.stray = []
        self.server = None
        self.tasks = set()
        self.nonce = ("%08x" % opts.seed) if opts.seed_given else \
            os.urandom(4).hex()

    def new_vm(self, tag, kind="data", utf8=False):
        name = "esxsim-%s-%s%s" % (self.nonce, tag, "-\u00e9" if utf8 else "")
        vm = Vm(name, self.nonce, self.opts.bytes if kind == "data" else 0,
                kind)
        self.vms.append(vm)
        return vm

    def find_vm(self, tl):
        u = tl.get("vc_uuid")
        for vm in self.vms:
            if u is not None and u == vm.vc_uuid.replace(" ", ""):
                return vm
        if u is None:
            for vm in self.vms:
                if tl.get("vm_name") == vm.name:
                    return vm
        return None

    async def start_backend(self):
        async def accept(r, w):
            t = asyncio.ensure_future(BackendConn(self, r, w).run())
            self.tasks.add(t)
            t.add_done_callback(self.tasks.discard)
        self.server = await asyncio.start_server(accept, "127.0.0.1",
                                                 self.opts.backend_listen)
        return self.server.sockets[0].getsockname()[1]

    async def stop(self):
        if self.server:
            self.server.close()
        for t in list(self.tasks):
            t.cancel()

    def conn(self, vm, label, which=1):
        addr = self.opts.vspc if which == 1 else self.opts.vspc2
        if addr is None:
            raise Fail("--vspc%s is required" % ("" if which == 1 else "2"))
        return EsxConn(label, vm, self.opts, addr)

    async def finish(self, vms, timeout):
        """Wait for every VM's streams to complete; raise Fail if wrong."""
        end = time.monotonic() + timeout
        while True:
            for vm in vms:
                err = vm.check(False)
                if err:
                    raise Fail(err)
            if self.errors:
                raise Fail(self.errors[0])
            if all(vm.complete() for vm in vms):
                break
            if time.monotonic() > end:
                for vm in vms:
                    err = vm.check(True)
                    if err:
                        raise Fail(err + " (timeout)")
                raise Fail("timeout")
            await asyncio.sleep(0.05)
        for vm in vms:
            err = vm.check(True)
            if err:
                raise Fail(err)


# --- Scenarios ---------------------------------------------------------------

async def run_plain_vm(sim, vm, label):
    """A VM that stays on one host: establish, stream everything."""
    c = sim.conn(vm, label)
    vm.rx_conns = [c]
    await c.establish()
    await vm.send_until(c, vm.n, sim.opts)
    return c


async def sc_normal(sim, res):
    vms = [sim.new_vm("vm%d" % (i + 1), utf8=(i % 2 == 1))
           for i in range(sim.opts.vms)]
    conns = await asyncio.gather(*[run_plain_vm(sim, vm, "vm%d" % (i + 1))
                                   for i, vm in enumerate(vms)])
    await sim.finish(vms, sim.remaining())
    res["ks2"] = conns[0].ks2
    res["asked"] = conns[0].asked
    for c in conns:
        await c.close()


async def begin_goahead(sim, vm, src, res, seq):
    """Source: VMOTION-BEGIN seq, wait GOAHEAD seq+secret (5 s)."""
    try:
        await asyncio.wait_for(vm.backend_ready.wait(), HS_TIMEOUT)
    except asyncio.TimeoutError:
        raise Fail("%s: no backend connection from the vSPC within %g s"
                   % (vm.name, HS_TIMEOUT))
    mark = len(src.sbs)
    t = time.monotonic()
    src.send_sb(EXT.VMOTION_BEGIN, seq)
    r = await src.expect_sb({EXT.VMOTION_GOAHEAD, EXT.VMOTION_NOTNOW,
                             EXT.UNKNOWN_SUBOPTION_RCVD_2}, GOAHEAD_LIMIT,
                            mark)
    res["goahead_ms"] = round((time.monotonic() - t) * 1000.0, 1)
    if r is None:
        raise Fail("no VMOTION-GOAHEAD within %d ms (%s)" % (
            GOAHEAD_LIMIT * 1000, "source closed" if src.closed else
            "timeout"))
    if r[1] != EXT.VMOTION_GOAHEAD:
        raise Fail("BEGIN answered with %s %s" % (EXT_NAME[r[1]], r[2].hex()))
    p = r[2]
    if p[:len(seq)] != seq:
        raise Fail("GOAHEAD seq %s != BEGIN seq %s" % (p[:len(seq)].hex(),
                                                       seq.hex()))
    secret = p[len(seq):]
    if not secret:
        raise Fail("GOAHEAD carries no secret")
    res["secret_len"] = len(secret)
    res["goahead_rx_offset"] = len(src.rx)
    return secret


async def dest_peer(sim, vm, dst, cookie, res):
    """Destination: establish (GETs optional), VMOTION-PEER cookie.
    Returns "peer-ok", "rejected-unknown-suboption", "closed" or
    "no-answer"."""
    try:
        await dst.establish(need_ident=False)
    except Fail as e:
        if dst.closed:
            res["dest_establish"] = str(e)
            return "closed"
        raise
    mark = len(dst.sbs)
    t = time.monotonic()
    dst.send_sb(EXT.VMOTION_PEER, cookie)
    while True:
        r = await dst.expect_sb({EXT.VMOTION_PEER_OK,
                                 EXT.UNKNOWN_SUBOPTION_RCVD_2}, GOAHEAD_LIMIT,
                                mark)
        res["peer_answer_ms"] = round((time.monotonic() - t) * 1000.0, 1)
        if r is None:
            return "closed" if dst.closed else "no-answer"
        mark = dst.sbs.index(r) + 1
        if r[1] == EXT.VMOTION_PEER_OK:
            res["peer_ok_payload_is_cookie"] = (r[2] == cookie)
            if r[2][:4] != cookie[:4]:
                raise Fail("PEER-OK seq %s != %s" % (r[2].hex(),
                                                     cookie[:4].hex()))
            return "peer-ok"
        if r[2][:1] == bytes([EXT.VMOTION_PEER]):
            return "rejected-unknown-suboption"


async def sc_vmotion(sim, res):
    o = sim.opts
    vm = sim.new_vm("mover")
    by = sim.new_vm("bystander", utf8=True)
    bytask = asyncio.ensure_future(run_plain_vm(sim, by, "bystander"))
    src = sim.conn(vm, "src")
    dst = sim.conn(vm, "dst", 2)
    vm.rx_conns = [src, dst]
    await src.establish()
    await vm.send_until(src, vm.n // 4, o)
    seq = b"\x01\xff\x02\x03"
    secret = await begin_goahead(sim, vm, src, res, seq)

    async def keep_streaming():
        await vm.send_until(src, vm.n // 2, o)
    st, _ = await asyncio.gather(dest_peer(sim, vm, dst, seq + secret, res),
                                 keep_streaming())
    if st != "peer-ok":
        raise Fail("destination PEER: %s (want VMOTION-PEER-OK)" % st)
    # Switchover: the VM is paused on the source, resumes on the target.
    res["src_stop_offset"] = vm.tx_off
    await asyncio.sleep(o.switch_gap)
    dst.send_sb(EXT.VMOTION_COMPLETE, seq)
    await asyncio.sleep(o.close_delay)
    res["src_rx_after_goahead"] = src.rx_after_goahead
    await src.close()
    await vm.send_until(dst, vm.n, o)
    await bytask
    await sim.finish([vm, by], sim.remaining())
    res["src_rx"], res["dst_rx"] = len(src.rx), len(dst.rx)
    if src.rx_after_goahead:
        raise Fail("source got %d backend bytes after GOAHEAD"
                   % src.rx_after_goahead)
    res["ks2"] = src.ks2
    res["dst_asked"] = dst.asked
    await dst.close()


async def failed_vmotion(sim, res, how):
    """abort / wrong-cookie / late-peer: the VM stays on the source."""
    o = sim.opts
    vm = sim.new_vm("stayer")
    by = sim.new_vm("bystander", utf8=True)
    bytask = asyncio.ensure_future(run_plain_vm(sim, by, "bystander"))
    src = sim.conn(vm, "src")
    dst = sim.conn(vm, "dst", 2)
    vm.rx_conns = [src]
    await src.establish()
    await vm.send_until(src, vm.n // 4, o)
    seq = b"\x01\xff\x02\x03"
    secret = await begin_goahead(sim, vm, src, res, seq)
    t_ga = time.monotonic()
    cookie = seq + secret
    if how == "wrong-cookie":
        cookie = seq + bytes([secret[0] ^ 0x01]) + secret[1:]

    async def dest():
        if how == "late-peer":
            await dst.establish(need_ident=False)
            left = o.late - (time.monotonic() - t_ga)
            if left > 0:
                await asyncio.sleep(left)
        return await dest_peer(sim, vm, dst, cookie, res)

    async def keep_streaming():
        await vm.send_until(src, vm.n // 2, o)
    st, _ = await asyncio.gather(dest(), keep_streaming())
    res["peer_result"] = st
    if how == "abort":
        if st != "peer-ok":
            raise Fail("destination PEER: %s (want VMOTION-PEER-OK)" % st)
    elif st == "peer-ok":
        raise Fail("vSPC accepted a %s PEER with VMOTION-PEER-OK" % (
            "wrong-cookie" if how == "wrong-cookie" else "late"))
    elif st == "no-answer":
        raise Fail("no answer to the %s PEER within %g s" % (how,
                                                             GOAHEAD_LIMIT))
    # vMotion failed: the source sends ABORT (it sent BEGIN), ESX drops
    # the destination connection, the source carries on.
    mark = len(src.sbs)
    src.send_sb(EXT.VMOTION_ABORT)
    await dst.close()
    await vm.send_until(src, vm.n, o)
    await bytask
    await sim.finish([vm, by], sim.remaining())
    ans = src.find_sb({EXT.UNKNOWN_SUBOPTION_RCVD_2}, mark)
    res["abort_answer"] = None if ans is None else desc_sb(
        VMWARE_EXT, bytes([src.sbs[ans][1]]) + src.sbs[ans][2])
    res["src_rx"], res["dst_rx"] = len(src.rx), len(dst.rx)
    if dst.rx:
        raise Fail("aborted destination got %d backend bytes" % len(dst.rx))
    await src.close()


async def sc_abort(sim, res):
    await failed_vmotion(sim, res, "abort")


async def sc_wrong_cookie(sim, res):
    await failed_vmotion(sim, res, "wrong-cookie")


async def sc_late_peer(sim, res):
    await failed_vmotion(sim, res, "late-peer")


PROBE = 99      # an unassigned sub-command: the vSPC MUST answer UNKNOWN-2


async def outcome(c, mark, probe):
    """Wait up to HS_TIMEOUT for the vSPC to close c or answer; with probe,
    send an unknown sub-command and wait for its UNKNOWN-SUBOPTION-RCVD-2."""
    t = time.monotonic()
    if probe and not c.closed:
        c.send_sb(PROBE)

    def answered():
        if probe:
            return any(s[1] == EXT.UNKNOWN_SUBOPTION_RCVD_2 and
                       s[2][:1] == bytes([PROBE]) for s in c.sbs[mark:])
        return c.events_in > mark
    await c.wait_for(lambda: c.closed or answered(), HS_TIMEOUT)
    ms = round((time.monotonic() - t) * 1000.0, 1)
    if c.closed:
        return "closed", ms
    if answered():
        return "answered", ms
    return "hang", ms


async def bad_case(sim, kind):
    """One malformed connection; returns its report dict."""
    vm = sim.new_vm("bad-" + kind, kind="bad")
    c = sim.conn(vm, "bad-" + kind)
    r = {"case": kind}
    try:
        if kind == "uuid-4k":
            vm.vc_uuid = ("%02x " % 0x42) * 1365 + "4"     # 4096 chars
            vm.vc_uuid = vm.vc_uuid[:4096]
        if kind == "data-first":
            await c.connect()
            c.send_raw(iac_escape(make_stream("junk", 1024)),
                       "data before negotiation")
            await asyncio.sleep(0.1)
            mark = c.events_in
            try:
                await c.establish(need_ident=False)
                r["result"], r["ms"] = "answered", now_ms(c.t0)
                r["detail"] = "handshake completed"
            except Fail as e:
                r["result"] = "closed" if c.closed else "hang"
                r["ms"] = now_ms(c.t0)
                r["detail"] = str(e)
            return r
        await c.establish(need_ident=(kind == "uuid-4k"))
        mark = len(c.sbs)
        evmark = c.events_in
        if kind == "sb-unterminated":
            c.send_raw(bytes([IAC, SB, VMWARE_EXT, EXT.VM_NAME]) +
                       b"A" * 5120, "IAC SB 232 82 'A'*5120, no IAC SE")
            res, ms = await outcome(c, evmark, False)
        elif kind == "unknown-subcmd":
            res, ms = await outcome(c, mark, True)
            got = [s for s in c.sbs[mark:]
                   if s[1] == EXT.UNKNOWN_SUBOPTION_RCVD_2]
            r["expected"] = bool(got and got[0][2][:1] == bytes([PROBE]))
            if not c.closed:
                await asyncio.sleep(0.5)
                r["stays_open"] = not c.closed
        elif kind == "sb-bad-iac":
            c.send_raw(bytes([IAC, SB, VMWARE_EXT, EXT.VM_NAME]) + b"ab" +
                       bytes([IAC, 0x41]) + b"cd" + bytes([IAC, SE]),
                       "IAC SB 232 82 'ab' IAC 0x41 'cd' IAC SE")
            res, ms = await outcome(c, mark, True)
        else:   # uuid-4k: sent as the answer to GET-VM-VC-UUID
            res, ms = await outcome(c, mark, True)
        r["result"], r["ms"] = res, ms
    except Fail as e:
        r["result"] = "closed" if c.closed else "error"
        r["ms"] = now_ms(c.t0)
        r["detail"] = str(e)
    finally:
        await c.close()
    return r


BAD_CASES = ("sb-unterminated", "unknown-subcmd", "sb-bad-iac", "data-first",
             "uuid-4k")


async def sc_malformed(sim, res):
    vm = sim.new_vm("normal")
    main = asyncio.ensure_future(run_plain_vm(sim, vm, "normal"))

    async def staggered(i, kind):
        await asyncio.sleep(0.05 * (i + 1))
        return await bad_case(sim, kind)
    cases = await asyncio.gather(*[staggered(i, k)
                                   for i, k in enumerate(BAD_CASES)])
    res["cases"] = cases
    c = await main
    await sim.finish([vm], sim.remaining())
    await c.close()
    bad = [x for x in cases if x["result"] not in ("closed", "answered")]
    if bad:
        raise Fail("malformed case %s: %s" % (bad[0]["case"],
                                              bad[0]["result"]))


async def sc_replaced_vmotion(sim, res):
    """A VM reconnects (its second connection replaces the first, which
    retires for up to 2 s), then moves at once from the second: the
    first, still retiring, is closed at COMPLETE (a vSPC that forgot it
    there kept a connection pointing at its VM for good), and every byte
    still arrives once, in order."""
    o = sim.opts
    vm = sim.new_vm("replaced")
    first = sim.conn(vm, "first")
    src = sim.conn(vm, "second")
    dst = sim.conn(vm, "dst", 2)
    vm.rx_conns = [first, src, dst]
    await first.establish()
    await vm.send_until(first, vm.n // 4, o)
    await src.establish()
    await vm.send_until(src, vm.n // 2, o)
    seq = b"\x07\x00\x00\x01"
    secret = await begin_goahead(sim, vm, src, res, seq)
    st = await dest_peer(sim, vm, dst, seq + secret, res)
    if st != "peer-ok":
        raise Fail("destination PEER: %s (want VMOTION-PEER-OK)" % st)
    dst.send_sb(EXT.VMOTION_COMPLETE, seq)
    t = time.monotonic()
    if not await first.wait_for(lambda: first.closed, 1.5):
        raise Fail("the first connection, still retiring, was not closed "
                   "at COMPLETE")
    res["first_closed_ms"] = round((time.monotonic() - t) * 1000.0, 1)
    await asyncio.sleep(o.close_delay)
    await src.close()
    await vm.send_until(dst, vm.n, o)
    await sim.finish([vm], sim.remaining())
    await dst.close()


async def sc_replaced_ends(sim, res):
    """A VM reconnects (the first connection retires), then both end,
    the new one first: with no VM side left the vSPC holds the VM for
    --serial-hold (--hold here) and then closes its backend connection.
    A vSPC whose one timer the first one's end disarmed kept the VM and
    its backend connection for good."""
    o = sim.opts
    vm = sim.new_vm("orphan")
    first = sim.conn(vm, "first")
    second = sim.conn(vm, "second")
    vm.rx_conns = [first, second]
    await first.establish()
    await vm.send_until(first, vm.n // 2, o)
    await second.establish()
    await vm.send_until(second, vm.n, o)
    await second.close()
    await asyncio.sleep(0.2)
    await first.close()
    t = time.monotonic()
    deadline = o.hold + 3.0
    while not vm.backend.eof and time.monotonic() - t < deadline:
        await asyncio.sleep(0.05)
    if not vm.backend.eof:
        raise Fail("the VM's backend connection was still open %.1f s "
                   "after its last connection ended (hold %.1f s)"
                   % (deadline, o.hold))
    res["backend_closed_ms"] = round((time.monotonic() - t) * 1000.0, 1)
    # All the VM sent arrived, once (what the backend sent may be held).
    brx = bytes(vm.backend.rx)
    if brx != vm.tx:
        raise Fail("backend got %d of %d VM bytes, first wrong at %s"
                   % (len(brx), len(vm.tx), first_diff(brx, vm.tx)))


async def sc_replaced_slow(sim, res):
    """A VM reconnects while its backend reads nothing: the first
    connection's last bytes (acknowledged to the VM side: they reached
    the vSPC) wait behind the backend past the 2 s a retiring connection
    gets.  They are its bytes still, not dropped: when the backend reads
    again they arrive, then the second connection's, once, in order (a
    vSPC that closed the first at 2 s lost them)."""
    o = sim.opts
    vm = sim.new_vm("slowbe")
    first = sim.conn(vm, "first")
    second = sim.conn(vm, "second")
    vm.rx_conns = [first, second]
    await first.establish()
    try:
        await asyncio.wait_for(vm.backend_ready.wait(), 5.0)
    except asyncio.TimeoutError:
        raise Fail("no backend connection")
    vm.backend.reading.clear()
    await vm.send_until(first, vm.n // 2, o)
    await second.establish()
    await asyncio.sleep(3.0)        # the first retires for 2 s
    vm.backend.reading.set()
    await vm.send_until(second, vm.n, o)
    await sim.finish([vm], sim.remaining())
    await first.close()
    await second.close()


SCENARIOS = {"normal": sc_normal, "vmotion": sc_vmotion, "abort": sc_abort,
             "wrong-cookie": sc_wrong_cookie, "late-peer": sc_late_peer,
             "malformed": sc_malformed,
             "replaced-vmotion": sc_replaced_vmotion,
             "replaced-ends": sc_replaced_ends,
             "replaced-slow": sc_replaced_slow}


async def run_scenario(name, opts):
    """Run one scenario; return its result dict (result: pass/fail)."""
    sim = Sim(opts)
    res = {"scenario": name, "result": "fail", "bytes": opts.bytes}
    t0 = time.monotonic()
    end = t0 + opts.timeout
    sim.remaining = lambda: max(0.1, end - time.monotonic())
    try:
        await sim.start_backend()
        await asyncio.wait_for(SCENARIOS[name](sim, res), opts.timeout)
        res["result"] = "pass"
    except Fail as e:
        res["reason"] = str(e)
    except asyncio.TimeoutError:
        res["reason"] = "scenario timeout after %g s" % opts.timeout
    except OSError as e:
        res["reason"] = "OS error: %s" % e
    res["elapsed_ms"] = now_ms(t0)
    res["vms"] = [vm.report() for vm in sim.vms if vm.kind == "data"]
    if sim.stray:
        res["stray_backend_conns"] = sim.stray[:8]
    await sim.stop()
    return res


# --- Fake vSPC (selftest only) -----------------------------------------------

FAKE_KNOWN = bytes([0, 1, 2, 3, 40, 41, 43, 44, 45, 46, 48, 70, 71, 73,
                    80, 81, 82, 83, 84, 85, 86, 87])


class FakeRec:
    """Fake vSPC state for one VM (keyed by VC UUID)."""

    def __init__(self, uuid):
        self.uuid = uuid
        self.cur = self.peer = self.old = None
        self.bw = None
        self.buffering = False
        self.buf = bytearray()
        self.cookie = None
        self.timer = None
        self.hold = False
        self.held = bytearray()
        self.fwd = 0


class FakeConn:
    """Fake vSPC end of one telnet connection."""

    def __init__(self, fake, r, w, n):
        self.fake, self.r, self.w = fake, r, w
        self.label = "fake%d" % n
        self.dec = TelnetDecoder(sb_cap=4096)
        self.rec = None
        self.name = self.bios = None
        self.pending = bytearray()
        self.answered = set()

    def sb(self, cmd, p=b""):
        trace(self.label, "> " + desc_sb(VMWARE_EXT, bytes([cmd]) + p))
        self.w.write(enc_sb(cmd, p))

    def data(self, b):
        self.w.write(iac_escape(b))


class FakeVspc:
    """A minimal in-process vSPC for the selftest.  bug names a deliberate
    fault: drop-byte, no-goahead, accept-any-cookie, no-flush-abort."""

    def __init__(self, backend_port, bug=None, deadline=1.0):
        self.bport = backend_port
        self.bug = bug
        self.deadline = deadline
        self.recs = {}
        self.servers = []
        self.nconn = 0
        self.dropped = False
        self.tasks = set()

    async def start(self):
        ports = []
        for _ in range(2):
            s = await asyncio.start_server(self._accept, "127.0.0.1", 0)
            self.servers.append(s)
            ports.append(s.sockets[0].getsockname()[1])
        return ports

    async def stop(self):
        for s in self.servers:
            s.close()
        for t in list(self.tasks):
            t.cancel()

    def _spawn(self, coro):
        t = asyncio.ensure_future(coro)
        self.tasks.add(t)
        t.add_done_callback(self.tasks.discard)

    async def _accept(self, r, w):
        self.nconn += 1
        c = FakeConn(self, r, w, self.nconn)
        try:
            while True:
                b = await r.read(65536)
                if not b:
                    break
                for e in c.dec.feed(b):
                    if e[0] == "error":
                        trace(c.label, "protocol error: %s; closing" % e[1])
                        w.close()
                        self._gone(c)
                        return
                    self._event(c, e)
        except (OSError, ConnectionError):
            pass
        except asyncio.CancelledError:
            w.close()
            return
        trace(c.label, "closed by ESX")
        self._gone(c)
        w.close()

    def _event(self, c, e):
        if e[0] == "data":
            self._vm_data(c, e[1])
        elif e[0] == "opt":
            verb, opt = e[1], e[2]
            if (verb, opt) in c.answered:
                return
            c.answered.add((verb, opt))
            if verb == WILL:
                ok = opt in (VMWARE_EXT, BINARY, SGA)
                c.w.write(enc_opt(DO if ok else DONT, opt))
            elif verb == DO:
                ok = opt in (BINARY, SGA, ECHO)
                c.w.write(enc_opt(WILL if ok else WONT, opt))
        elif e[0] == "sb" and e[1] == VMWARE_EXT and e[2]:
            trace(c.label, "< " + desc_sb(e[1], e[2]))
            self._ext(c, e[2][0], e[2][1:])

    def _ext(self, c, cmd, p):
        if cmd == EXT.KNOWN_SUBOPTIONS_1:
            c.sb(EXT.KNOWN_SUBOPTIONS_2, FAKE_KNOWN)
        elif cmd == EXT.DO_PROXY:
            c.sb(EXT.WILL_PROXY)
            c.sb(EXT.GET_VM_NAME)
            c.sb(EXT.GET_VM_BIOS_UUID)
            c.sb(EXT.GET_VM_VC_UUID)
        elif cmd == EXT.VM_NAME:
            c.name = p
        elif cmd == EXT.VM_BIOS_UUID:
            c.bios = p
        elif cmd == EXT.VM_VC_UUID:
            self._ident(c, p.replace(b" ", b"").decode("ascii", "replace"))
        elif cmd == EXT.VMOTION_BEGIN and c.rec and c.rec.cur is c:
            self._begin(c.rec, p)
        elif cmd == EXT.VMOTION_PEER:
            self._peer(c, p)
        elif cmd == EXT.VMOTION_COMPLETE and c.rec and c.rec.peer is c:
            self._complete(c.rec, c)
        elif cmd == EXT.VMOTION_ABORT and c.rec and c.rec.cur is c:
            self._abort(c.rec)
        elif cmd in (EXT.UNKNOWN_SUBOPTION_RCVD_1, EXT.VM_LOCATION_UUID):
            pass
        elif cmd not in (EXT.VMOTION_BEGIN, EXT.VMOTION_COMPLETE,
                         EXT.VMOTION_ABORT):
            c.sb(EXT.UNKNOWN_SUBOPTION_RCVD_2, bytes([cmd]))

    def _ident(self, c, uuid):
        rec = self.recs.get(uuid)
        if rec is not None and rec.cookie is not None:
            c.uuid = uuid       # a vMotion target: bound on PEER
            return
        if rec is None:
            rec = self.recs[uuid] = FakeRec(uuid)
            self._spawn(self._backend(rec, c))
        rec.cur = c
        c.rec = rec
        if c.pending:
            self._to_backend(rec, bytes(c.pending))
            c.pending = bytearray()

    async def _backend(self, rec, c):
        r, w = await asyncio.open_connection("127.0.0.1", self.bport)
        tl = b""
        for t, v in ((0xE3, b"vspc"), (0xE4, rec.uuid.encode()),
                     (0xE5, c.name), (0xE6, c.bios)):
            if v is not None:
                tl += struct.pack(">BH", t, len(v)) + v
        w.write(PROXY_SIG + b"\x21\x00" + struct.pack(">H", len(tl)) + tl)
        rec.bw = w
        if rec.buf and not rec.buffering:
            w.write(bytes(rec.buf))
        try:
            while True:
                b = await r.read(65536)
                if not b:
                    break
                if rec.buffering:
                    rec.buf += b
                elif rec.cur:
                    rec.cur.data(b)
        except (OSError, ConnectionError, asyncio.CancelledError):
            pass
        if rec.cur:
            rec.cur.w.close()

    def _vm_data(self, c, b):
        rec = c.rec
        if rec is None:
            c.pending += b
            return
        if rec.hold and c is rec.cur:
            rec.held += b       # target data waits for the source's EOF
            return
        self._to_backend(rec, b)

    def _to_backend(self, rec, b):
        if self.bug == "drop-byte" and not self.dropped and \
                rec.fwd + len(b) > 50000:
            self.dropped = True
            b = b[1:]
        rec.fwd += len(b)
        if rec.bw is None:
            rec.pre = getattr(rec, "pre", b"") + b
            return
        pre = getattr(rec, "pre", b"")
        if pre:
            rec.bw.write(pre)
            rec.pre = b""
        rec.bw.write(b)

    def _begin(self, rec, seq):
        if self.bug == "no-goahead":
            return
        secret = b"\xff" + os.urandom(3)
        rec.cookie = seq + secret
        rec.buffering = True
        rec.cur.sb(EXT.VMOTION_GOAHEAD, seq + secret)
        rec.timer = asyncio.get_running_loop().call_later(
            self.deadline, self._expire, rec)

    def _expire(self, rec):
        trace("fake", "vMotion deadline for %s" % rec.uuid)
        if rec.peer is None:
            self._abort(rec)

    def _peer(self, c, p):
        rec = None
        for r in self.recs.values():
            if r.cookie is not None and (r.cookie == p or (
                    self.bug == "accept-any-cookie" and
                    getattr(c, "uuid", None) == r.uuid)):
                rec = r
        if rec is None:
            c.sb(EXT.UNKNOWN_SUBOPTION_RCVD_2, bytes([EXT.VMOTION_PEER]))
            return
        rec.timer.cancel()
        rec.peer = c
        c.rec = rec
        c.sb(EXT.VMOTION_PEER_OK, p)

    def _complete(self, rec, c):
        rec.old, rec.cur, rec.peer = rec.cur, c, None
        rec.cookie = None
        rec.buffering = False
        rec.hold = True
        c.data(bytes(rec.buf))
        rec.buf = bytearray()

    def _abort(self, rec):
        if rec.timer:
            rec.timer.cancel()
        rec.cookie = None
        rec.buffering = False
        if rec.peer:
            rec.peer.rec = None
        rec.peer = None
        if self.bug != "no-flush-abort":
            rec.cur.data(bytes(rec.buf))
        rec.buf = bytearray()

    def _gone(self, c):
        rec = c.rec
        if rec is None:
            return
        if c is rec.old:
            rec.old = None
            rec.hold = False
            if rec.held:
                self._to_backend(rec, bytes(rec.held))
                rec.held = bytearray()
        elif c is rec.cur and rec.cookie is None:
            if rec.bw:
                rec.bw.close()
            self.recs.pop(rec.uuid, None)


SELFTEST = [
    # (scenario, fake bug, expected verdict)
    ("normal", None, "pass"),
    ("vmotion", None, "pass"),
    ("abort", None, "pass"),
    ("wrong-cookie", None, "pass"),
    ("late-peer", None, "pass"),
    ("malformed", None, "pass"),
    ("normal", "drop-byte", "fail"),
    ("vmotion", "no-goahead", "fail"),
    ("wrong-cookie", "accept-any-cookie", "fail"),
    ("abort", "no-flush-abort", "fail"),
]


async def selftest_one(scen, bug, opts):
    o = argparse.Namespace(**vars(opts))
    sim_probe = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    bport = sim_probe.sockets[0].getsockname()[1]
    sim_probe.close()
    await sim_probe.wait_closed()
    o.backend_listen = bport
    fake = FakeVspc(bport, bug, deadline=1.0)
    p1, p2 = await fake.start()
    o.vspc, o.vspc2 = ("127.0.0.1", p1), ("127.0.0.1", p2)
    o.late = 1.5
    try:
        return await run_scenario(scen, o)
    finally:
        await fake.stop()


async def fake_main(opts):
    """Run the fake vSPC standalone (for testing esxsim's CLI path)."""
    fake = FakeVspc(opts.backend_listen, opts.fake_bug, opts.fake_deadline)
    for addr in (opts.vspc, opts.vspc2):
        s = await asyncio.start_server(fake._accept, addr[0], addr[1])
        fake.servers.append(s)
    print("fake vSPC on %s:%d and %s:%d, backend 127.0.0.1:%d" % (
        opts.vspc + opts.vspc2 + (opts.backend_listen,)), file=sys.stderr)
    await asyncio.Event().wait()


def selftest(opts):
    ok = True
    for scen, bug, want in SELFTEST:
        res = asyncio.run(selftest_one(scen, bug, opts))
        res["fake_bug"] = bug
        got = res["result"]
        print(json.dumps(res, ensure_ascii=False, separators=(",", ":")))
        line = "selftest %-13s fake=%-17s want=%s got=%s %s" % (
            scen, bug or "-", want, got, "OK" if got == want else "WRONG")
        if got != want:
            ok = False
        print(line, file=sys.stderr)
        sys.stdout.flush()
    print("selftest: %s" % ("all as expected" if ok else "FAILED"),
          file=sys.stderr)
    return 0 if ok else 1


# --- CLI ---------------------------------------------------------------------

def size_arg(s):
    """'1M', '64K', '1000' -> bytes."""
    m = {"k": 1024, "m": 1024 * 1024, "g": 1024 ** 3}
    s = s.strip()
    if s and s[-1].lower() in m:
        return int(float(s[:-1]) * m[s[-1].lower()])
    return int(s)


def addr_arg(s):
    """'tcp://H:P' -> (H, P)."""
    if s.startswith("tcp://"):
        s = s[6:]
    h, _, p = s.rpartition(":")
    if not h or not p.isdigit():
        raise argparse.ArgumentTypeError("want tcp://HOST:PORT, got %r" % s)
    return (h.strip("[]"), int(p))


def main(argv):
    global VERBOSE
    ap = argparse.ArgumentParser(
        prog="esxsim.py",
        description="Simulated ESX network serial port (vSPC client) and "
        "backend for the vrelay vSPC tests.")
    ap.add_argument("scenario",
                    choices=sorted(SCENARIOS) + ["selftest", "fake-vspc"])
    ap.add_argument("--vspc", type=addr_arg, help="tcp://H:P (relay A)")
    ap.add_argument("--vspc2", type=addr_arg,
                    help="tcp://H:P (relay C, the vMotion target host)")
    ap.add_argument("--backend-listen", type=int, default=0,
                    help="backend listener port on 127.0.0.1")
    ap.add_argument("--vms", type=int, default=2)
    ap.add_argument("--bytes", type=size_arg, default=1024 * 1024,
                    help="bytes per direction per VM (K/M suffix)")
    ap.add_argument("--rate", type=size_arg, default=512 * 1024,
                    help="bytes/s per direction per VM (0: unlimited)")
    ap.add_argument("--chunk", type=size_arg, default=64 * 1024)
    ap.add_argument("--timeout", type=float, default=60.0)
    ap.add_argument("--hold", type=float, default=2.0,
                    help="replaced-ends: the vSPC's --serial-hold, s")
    ap.add_argument("--late", type=float, default=1.5,
                    help="late-peer: seconds from GOAHEAD to PEER")
    ap.add_argument("--switch-gap", type=float, default=0.2,
                    help="vmotion: s between source stop and COMPLETE")
    ap.add_argument("--close-delay", type=float, default=0.2,
                    help="vmotion: s between COMPLETE and source close")
    ap.add_argument("--service-uri", default="telnet://vspc.example:13370",
                    help="DO-PROXY serviceURI (sent after direction 'C')")
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--fake-bug", default=None,
                    choices=("drop-byte", "no-goahead", "accept-any-cookie",
                             "no-flush-abort"),
                    help="fake-vspc: deliberate fault")
    ap.add_argument("--fake-deadline", type=float, default=1.0,
                    help="fake-vspc: vMotion deadline (s)")
    ap.add_argument("-v", action="store_true", help="trace telnet to stderr")
    o = ap.parse_args(argv)
    VERBOSE = o.v
    o.seed_given = o.seed is not None
    o.seed = o.seed or 0
    if o.scenario == "selftest":
        if o.bytes == 1024 * 1024:
            o.bytes = 256 * 1024
        if o.rate == 512 * 1024:
            o.rate = 1024 * 1024
        o.chunk = min(o.chunk, 16 * 1024)
        return selftest(o)
    if o.scenario == "fake-vspc":
        if not (o.vspc and o.vspc2 and o.backend_listen):
            ap.error("fake-vspc needs --vspc, --vspc2, --backend-listen")
        try:
            asyncio.run(fake_main(o))
        except KeyboardInterrupt:
            pass
        return 0
    if o.scenario != "normal" and o.scenario != "malformed" and \
            o.vspc2 is None:
        ap.error("%s needs --vspc2" % o.scenario)
    if o.vspc is None:
        ap.error("--vspc is required")
    if o.backend_listen == 0:
        ap.error("--backend-listen is required")
    res = asyncio.run(run_scenario(o.scenario, o))
    print(json.dumps(res, ensure_ascii=False, separators=(",", ":")))
    return 0 if res["result"] == "pass" else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
