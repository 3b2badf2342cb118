#!/usr/bin/env python3
"""gen_hs_corpus.py -- write the seed scripts for hs_fuzz.c.

Run once by hand when the script format in hs_fuzz.c changes; the
output is committed:

	python3 test/fuzz/gen_hs_corpus.py test/fuzz/corpus/hs

One byte per step: the low nibble is the step, the high nibble its
argument (see fz_step() in hs_fuzz.c).  Each seed plays one scenario
from docs/protocol.md: an open, a resume, the previous secret, the
refusals, the limits, a vMotion reset, an operator's close,
backpressure, and the frame seeds written raw.
"""
import os
import sys

NEWLEG, SELECT, RAW, HNEW, HRES, PROOF, DATA, ACK, FIN, PING, ERRCL, \
    SHUT, BACKEND, MISC = range(14)


def op(o, arg=0, *extra):
    return bytes([(arg << 4) | o]) + bytes(extra)


def hello_new(sidx, nonce=1, port=7):
    return op(HNEW, sidx, nonce, port)


def hello_new_as(sidx, host, service, name, nonce=1, port=7):
    """HELLO NEW with the host, service and VM name given (bytes)."""
    return (op(HNEW, 4 | sidx, nonce, port, len(host)) + host +
            bytes([service, len(name)]) + name)


def hello_resume(sidx, nonce=2):
    return op(HRES, sidx, nonce)


def hello_resume_proof(sidx, nonce=2, prev=False):
    """HELLO RESUME_PROOF (version 3): the proof over the ticket."""
    return op(HRES, 4 | (8 if prev else 0) | sidx, nonce)


def data(n, choice=0):
    return op(DATA, choice, n)


def be_write(sidx, n):
    return op(BACKEND, sidx, n)


def open_with_traffic(sidx=0):
    return (op(NEWLEG) + hello_new(sidx) + data(100) + be_write(sidx, 60) +
            op(ACK) + data(50) + be_write(sidx, 200))


SEEDS = {
    "open": open_with_traffic(),
    "open-fin-done": (open_with_traffic() + op(ACK) + op(FIN) +
                      op(BACKEND, 4) + op(ACK) + op(ACK)),
    # The session ends, vappliance releases the leg (RELEASE) and the
    # next session opens on it; then a resume of the finished one.
    "open-done-reuse": (open_with_traffic() + op(ACK) + op(FIN) +
                        op(BACKEND, 4) + op(ACK) + op(ACK) + hello_new(1) +
                        data(40) + be_write(1, 30) + op(ACK)),
    "open-done-idle-resume": (open_with_traffic() + op(ACK) + op(FIN) +
                              op(BACKEND, 4) + op(ACK) + op(ACK) +
                              hello_resume(0) + op(PROOF)),
    "resume": (open_with_traffic() + op(NEWLEG) + hello_resume(0) +
               op(PROOF) + data(30) + be_write(0, 20) + op(ACK)),
    "resume-preamble": (open_with_traffic(1) + op(NEWLEG) + hello_resume(1) +
                        op(PROOF) + data(30) + op(ACK)),
    "resume-prev-secret": (open_with_traffic() + op(NEWLEG) +
                           hello_resume(0) + op(PROOF) + op(NEWLEG) +
                           hello_resume(0, 3) + op(PROOF, 4) + data(10) +
                           op(ACK)),
    "resume-bad-proof": (open_with_traffic() + op(NEWLEG) + hello_resume(0) +
                         op(PROOF, 8, 5)),
    "resume-too-far": (open_with_traffic() + op(NEWLEG) + hello_resume(0) +
                       op(PROOF, 2, 0, 0, 0, 0, 0, 1, 0, 0)),
    "resume-unknown": op(NEWLEG) + hello_resume(3) + op(PROOF),
    # Version 3: resumes in one trip; the ticket of a rotated-away
    # secret gets a CHALLENGE, and the PROOF with "prev" after it.
    "resume-one-trip": (open_with_traffic() + op(NEWLEG) +
                        hello_resume_proof(0) + data(30) + be_write(0, 20) +
                        op(ACK) + op(NEWLEG) + hello_resume_proof(0, 3) +
                        data(5)),
    "resume-one-trip-prev": (open_with_traffic() + op(NEWLEG) +
                             hello_resume_proof(0) + op(NEWLEG) +
                             hello_resume_proof(0, 3, prev=True) +
                             op(PROOF, 4) + data(10) + op(ACK)),
    "resume-one-trip-unknown": op(NEWLEG) + hello_resume_proof(3),
    "resume-done": (open_with_traffic() + op(FIN) + op(BACKEND, 4) +
                    op(ACK) + op(NEWLEG) + hello_resume(0) + op(PROOF)),
    "exists": (op(NEWLEG) + hello_new(0) + op(NEWLEG) + hello_new(0)),
    "session-limit": b"".join(op(NEWLEG) + hello_new(i) for i in range(4)),
    "handshake-limit": b"".join(op(NEWLEG) for i in range(5)),
    "vmotion-reset": (open_with_traffic() + op(MISC, 2) + op(NEWLEG) +
                      hello_resume(0) + op(PROOF) + data(20)),
    "operator-close": open_with_traffic() + op(MISC, 3, 0) + op(MISC, 4),
    "backend-reset": open_with_traffic() + op(BACKEND, 8),
    "backend-refused": op(MISC, 1) + op(NEWLEG) + hello_new(2),
    "backpressure": (op(NEWLEG) + hello_new(0) + op(MISC, 0) +
                     b"".join(be_write(0, 255) for i in range(12)) +
                     op(MISC, 0) + op(ACK) + be_write(0, 255)),
    "data-dup-gap": (op(NEWLEG) + hello_new(0) + data(40) + data(40, 1) +
                     op(DATA, 1, 5, 40) + data(3, 2)),
    "data-empty": op(NEWLEG) + hello_new(0) + data(0),
    "ack-lies": (op(NEWLEG) + hello_new(0) + be_write(0, 10) + op(ACK, 1) +
                 op(ACK, 2, 0, 0, 0, 0, 0, 0, 1, 0)),
    "fin-wrong": op(NEWLEG) + hello_new(0) + data(5) + op(FIN, 1, *[0] * 8),
    "close-from-client": (open_with_traffic() + op(ERRCL, 1, 10, 9) +
                          b"guest rst"),
    "error-from-client": (open_with_traffic() + op(ERRCL, 0, 2, 5) + b"oops"),
    "ping-pong": op(NEWLEG) + hello_new(0) + op(PING, 0, 9) + op(PING, 1, 9),
    "low-order-key": op(NEWLEG) + op(HNEW, 8, 1, 1),
    "bad-host": op(NEWLEG) + op(HNEW, 4, 1, 1, 5) + b"a b\x01c",
    # Wire version 2: a service and a VM name in HELLO NEW, then status.
    "service-name": (op(NEWLEG) +
                     hello_new_as(0, b"esx01", 2, "vm-01 caf\u00e9".encode()) +
                     data(50) + be_write(0, 40) + op(ACK) + op(MISC, 4)),
    "name-max": (op(NEWLEG) + hello_new_as(1, b"h", 1, b"n" * 160) +
                 data(10) + op(MISC, 4)),
    "bad-name": op(NEWLEG) + hello_new_as(0, b"h", 0, b"vm\x01"),
    "leg-eof-then-resume": (open_with_traffic() + op(SHUT) + op(NEWLEG) +
                            hello_resume(0) + op(PROOF)),
    "leg-close": open_with_traffic() + op(SHUT, 1),
    "unexpected-in-handshake": op(NEWLEG) + data(5) + op(NEWLEG) + op(ACK),
    # A DATA header of 65544 bytes in the handshake, then 1 KB more: the
    # server must refuse it from the header (it spun at the read mark).
    "oversized-handshake-header": (op(NEWLEG) + op(RAW, 0, 255) +
                                   bytes([16, 0, 0, 0, 0, 1, 0, 8]) +
                                   bytes(247) +
                                   b"".join(op(RAW, 0, 255) + bytes(255)
                                            for i in range(4))),
    "two-legs-select": (op(NEWLEG) + hello_new(0) + op(NEWLEG) +
                        hello_new(1) + op(SELECT, 0) + data(9) +
                        op(SELECT, 1) + data(9)),
}


def frame_seeds(root):
    """The frame corpus written raw on a fresh leg (255 bytes at most)."""
    out = {}
    d = os.path.join(root, "frame")
    if not os.path.isdir(d):
        return out
    for name in sorted(os.listdir(d)):
        with open(os.path.join(d, name), "rb") as f:
            b = f.read()[:255]
        out["raw-" + name] = op(NEWLEG) + op(RAW, 0, len(b)) + b
    return out


def main():
    dest = sys.argv[1]
    os.makedirs(dest, exist_ok=True)
    seeds = dict(SEEDS)
    seeds.update(frame_seeds(os.path.dirname(os.path.abspath(dest))))
    for name, b in seeds.items():
        with open(os.path.join(dest, name), "wb") as f:
            f.write(b)


if __name__ == "__main__":
    main()
