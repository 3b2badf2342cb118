#!/usr/bin/env python3
"""ftool.py -- the fault scenarios' probes and verdicts (test/faults).

    ftool.py verdict DIR --ok L,L.. [--fail L,L..]
        Judge the generators' reports DIR/run-L.jsonl against the
        backend's DIR/backend.jsonl.  Every session of an --ok label
        ended ok with every byte back and verified, and what it sent is
        what one backend connection received (SHA-256).  Every session
        of a --fail label ended not ok, and none ever saw a wrong byte
        (verified == received).  One JSON line per label on stdout;
        exit 1 with a line on stderr per violation.
    ftool.py rate DIR LABEL FROM_MS TO_MS
        From DIR/timeline.csv: the receive rate of each session of
        LABEL over [FROM_MS, TO_MS) (wall clock), as one JSON line
        {"sessions":N,"min":B/S,"mean":B/S}.
    ftool.py flood ADDR N MODE SECS [--vsock-dir D --vsock-cid C]
            [--bind SRC]
        Open N connections to ADDR (tcp://H:P, unix:PATH, or
        vsock://CID:PORT under emulation), each silent (MODE silent) or
        sending the first 20 bytes of a HELLO (MODE partial), hold them
        SECS seconds and print {"opened":N,"failed":N,"closed":N,
        "closed_ms_max":MS,"errors":{...}}: how many the far end
        closed, and the longest any of those lived (connect to close).
    ftool.py slow ADDR SECS RATE [--vsock-dir D --vsock-cid C]
        A slow consumer: sends a counter pattern as fast as the far end
        takes it, reads the echo at RATE bytes/s, checks every byte, and
        after SECS prints {"sent":N,"received":N,"verified":N}; exit 1
        on a wrong byte or an early end.
    ftool.py garbage ADDR [--vsock-dir D --vsock-cid C] [--bytes N]
            [--count K] [--line]
        K (1) times: connect, send 1 to N (4096) random bytes (and a
        newline with --line: a whole line for a line protocol), wait up to
        10 s for the far end to close; print {"conns":K,"closed":N,
        "closed_ms_max":MS,"answers":{first bytes answered: count}}.

Addresses use the daemons' syntax.  Under vsock emulation a connect
binds DIR/.c/CID.PORT.PID.SEQ first (docs/transports.md), so the
listener sees a vSocket peer.
"""
import argparse
import collections
import json
import os
import select
import socket
import sys
import threading
import time

SEQ = [0]


def connect(addr, vdir=None, vcid=None, timeout=5.0, bind=None):
    """A blocking socket connected to ADDR (see the module doc)."""
    if addr.startswith("tcp://"):
        host, port = addr[6:].rsplit(":", 1)
        s = socket.create_connection((host.strip("[]"), int(port)), timeout,
                                     (bind, 0) if bind else None)
    elif addr.startswith("unix:"):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(timeout)
        s.connect(addr[5:])
    elif addr.startswith("vsock://"):
        if vdir is None:
            raise ValueError("vsock needs --vsock-dir")
        cid, port = addr[8:].split(":")
        os.makedirs(os.path.join(vdir, ".c"), mode=0o700, exist_ok=True)
        me = 0x40000000 | (os.getpid() & 0x3fff) << 16 | (SEQ[0] & 0xffff)
        name = os.path.join(vdir, ".c", "%d.%d.%d.%d" %
                            (vcid, me, os.getpid(), SEQ[0]))
        SEQ[0] += 1
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(timeout)
        try:
            os.unlink(name)
        except FileNotFoundError:
            pass
        s.bind(name)
        try:
            s.connect(os.path.join(vdir, "%s.%s" % (cid, port)))
        finally:
            os.unlink(name)
    else:
        raise ValueError("bad address %r" % addr)
    s.settimeout(None)
    return s


def connect_retry(addr, vdir, vcid, bind=None):
    """connect(), again for 2 s while a unix listener's backlog is full."""
    for _ in range(200):
        try:
            return connect(addr, vdir, vcid, 2.0, bind)
        except BlockingIOError:
            time.sleep(0.01)
    return connect(addr, vdir, vcid, 2.0, bind)


def read_jsonl(path):
    out = []
    if not os.path.exists(path):
        return out
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line:
                out.append(json.loads(line))
    return out


def verdict(args):
    bad = []
    backend = collections.Counter(
        c.get("sha256_in") for c in read_jsonl(
            os.path.join(args.dir, "backend.jsonl")))
    for want, labels in (("ok", args.ok), ("fail", args.fail)):
        for label in filter(None, labels.split(",")):
            runs = read_jsonl(os.path.join(args.dir, "run-%s.jsonl" % label))
            errors = collections.Counter()
            ok = sent = 0
            if not runs:
                bad.append("%s: no session reports" % label)
            for r in runs:
                w = "%s session %s" % (label, r["session"])
                sent += r["bytes_sent"]
                if r["ok"]:
                    ok += 1
                else:
                    errors[str(r.get("error"))[:60]] += 1
                if r["bytes_verified"] != r["bytes_received"]:
                    bad.append("%s: a wrong byte: received %d, verified "
                               "%d" % (w, r["bytes_received"],
                                       r["bytes_verified"]))
                if want == "fail":
                    if r["ok"]:
                        bad.append("%s: ended ok, expected to fail" % w)
                    continue
                if not r["ok"]:
                    bad.append("%s: failed: %s" % (w, r.get("error")))
                    continue
                if r["bytes_sent"] != r["bytes_received"]:
                    bad.append("%s: sent %d, received %d" %
                               (w, r["bytes_sent"], r["bytes_received"]))
                if backend[r["sha256_sent"]] <= 0:
                    bad.append("%s: no backend connection received what "
                               "it sent" % w)
                backend[r["sha256_sent"]] -= 1
            print(json.dumps({"label": label, "expect": want,
                              "sessions": len(runs), "ok": ok,
                              "bytes_sent": sent, "errors": errors}))
    for b in bad:
        print("verdict: " + b, file=sys.stderr)
    return 1 if bad else 0


def rate(args):
    per = collections.defaultdict(int)
    seen = set()
    with open(os.path.join(args.dir, "timeline.csv")) as f:
        for line in f:
            p = line.strip().split(",")
            if len(p) != 4 or p[1] != args.label:
                continue
            t = int(p[0])
            if args.from_ms <= t < args.to_ms:
                seen.add(p[2])
                per[p[2]] += int(p[3])
    secs = max(1, args.to_ms - args.from_ms) / 1000.0
    r = [per[s] / secs for s in seen]
    print(json.dumps({"sessions": len(r), "min": int(min(r) if r else 0),
                      "mean": int(sum(r) / len(r) if r else 0)}))
    return 0


HELLO_PART = bytes([1, 0, 0, 0, 0, 0, 0, 48]) + b"VRLY" + \
    bytes([0, 2, 0, 2]) + b"\x11" * 4      # wire version 2, RESUME


def flood(args):
    socks, errors = [], collections.Counter()
    t0 = time.monotonic()
    for _ in range(args.n):
        try:
            s = connect_retry(args.addr, args.vsock_dir, args.vsock_cid,
                              args.bind)
            if args.mode == "partial":
                s.sendall(HELLO_PART)
            s.setblocking(False)
            socks.append((s, time.monotonic()))
        except OSError as e:
            errors[e.strerror or str(e)] += 1
    opened = len(socks)
    live = {s.fileno(): (s, t) for s, t in socks}
    closed, last = 0, 0
    end = t0 + args.secs
    poll = select.poll()
    for fd in live:
        poll.register(fd, select.POLLIN)
    while live and time.monotonic() < end:
        for fd, _ in poll.poll(100):
            if fd not in live:
                continue
            s, t = live[fd]
            try:
                data = s.recv(65536)
            except BlockingIOError:
                continue
            except OSError:
                data = b""
            if data:
                continue
            poll.unregister(fd)
            del live[fd]
            s.close()
            closed += 1
            last = max(last, int((time.monotonic() - t) * 1000))
    for s, _ in live.values():
        s.close()
    print(json.dumps({"opened": opened, "failed": args.n - opened,
                      "closed": closed, "closed_ms_max": last,
                      "errors": errors}))
    return 0


def pattern(off, n):
    """n bytes of the counter pattern starting at stream offset off."""
    return bytes((off + i) * 7 % 251 for i in range(n))


def slow(args):
    s = connect(args.addr, args.vsock_dir, args.vsock_cid)
    state = {"sent": 0, "err": None}
    stop = threading.Event()

    def writer():
        block = pattern(0, 251 * 64)
        try:
            while not stop.is_set():
                n = s.send(block[state["sent"] % 251:] +
                           block[:state["sent"] % 251])
                state["sent"] += n
        except OSError as e:
            if not stop.is_set():
                state["err"] = "send: %s" % e
    th = threading.Thread(target=writer, daemon=True)
    th.start()
    got = verified = 0
    t0 = time.monotonic()
    end = t0 + args.secs
    chunk = max(1, args.rate // 10)
    ok = True
    while time.monotonic() < end:
        data = s.recv(chunk)
        if not data:
            ok = False
            state["err"] = state["err"] or "echo ended early"
            break
        if data != pattern(got, len(data)):
            ok = False
            state["err"] = "wrong byte near offset %d" % got
            break
        got += len(data)
        verified = got
        # Pace to RATE bytes/s on average.
        ahead = got / args.rate - (time.monotonic() - t0)
        if ahead > 0:
            time.sleep(ahead)
    stop.set()
    s.close()
    print(json.dumps({"sent": state["sent"], "received": got,
                      "verified": verified, "error": state["err"]}))
    return 0 if ok else 1


def garbage(args):
    closed, slowest, answers = 0, 0, collections.Counter()
    for i in range(args.count):
        s = connect_retry(args.addr, args.vsock_dir, args.vsock_cid)
        t = time.monotonic()
        answer, gone = b"", False
        try:
            junk = os.urandom(1 + i * 7919 % args.bytes)
            if args.line:	# a whole line, never a blank one
                junk = b"\xff" + junk + b"\n"
            s.sendall(junk)
        except OSError:
            gone = True	# refused mid-send: closed all the same
        s.settimeout(10.0)
        try:
            while not gone:
                data = s.recv(4096)
                if not data:
                    gone = True
                elif len(answer) < 200:
                    answer += data[:200 - len(answer)]
        except socket.timeout:
            pass
        except OSError:
            gone = True
        s.close()
        if gone:
            closed += 1
            slowest = max(slowest, int((time.monotonic() - t) * 1000))
        text = "".join(c if 32 <= ord(c) < 127 else "?"
                       for c in answer.decode("latin-1"))
        answers[text[:100]] += 1
    print(json.dumps({"conns": args.count, "closed": closed,
                      "closed_ms_max": slowest,
                      "answers": dict(answers.most_common(3))}))
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("verdict")
    p.add_argument("dir")
    p.add_argument("--ok", default="")
    p.add_argument("--fail", default="")
    p.set_defaults(fn=verdict)
    p = sub.add_parser("rate")
    p.add_argument("dir")
    p.add_argument("label")
    p.add_argument("from_ms", type=int)
    p.add_argument("to_ms", type=int)
    p.set_defaults(fn=rate)
    for name, fn in (("flood", flood), ("slow", slow), ("garbage", garbage)):
        p = sub.add_parser(name)
        p.add_argument("addr")
        if name == "flood":
            p.add_argument("n", type=int)
            p.add_argument("mode", choices=("silent", "partial"))
            p.add_argument("secs", type=float)
            p.add_argument("--bind", help="tcp: the source address")
        if name == "slow":
            p.add_argument("secs", type=float)
            p.add_argument("rate", type=int)
        if name == "garbage":
            p.add_argument("--bytes", type=int, default=4096)
            p.add_argument("--count", type=int, default=1)
            p.add_argument("--line", action="store_true")
        p.add_argument("--vsock-dir")
        p.add_argument("--vsock-cid", type=int, default=5)
        p.set_defaults(fn=fn)
    args = ap.parse_args()
    return args.fn(args)


if __name__ == "__main__":
    sys.exit(main())
