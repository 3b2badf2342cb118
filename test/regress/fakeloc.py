#!/usr/bin/env python3
# fakeloc.py -- a scripted stand-in for vlocator's push channel
# (docs/push.md), for the regress scenarios.
#
#   fakeloc.py --listen HOST:PORT --control FIFO --events FILE [--welcome]
#
# It accepts one relay connection at a time and writes what happens to
# FILE as JSON lines, keys sorted, no spaces:
#   {"ev":"accept","n":N}               connection N accepted
#   {"ev":"recv","msg":{...},"n":N}     a JSON line from the relay
#   {"ev":"raw","n":N,"raw":"..."}      a line that is not JSON
#   {"ev":"eof","n":N}                  the relay closed connection N
# With --welcome every HELLO is answered with a WELCOME (known true),
# followed by the "auto" line if one is set.  PINGs are answered with
# PONG unless "pong off".  Commands, one per line on the FIFO:
#   send LINE      send LINE and a newline on the current connection
#   big N          send N bytes of "x" and a newline
#   auto LINE      after each WELCOME also send LINE ("auto" alone: none)
#   pong on|off    answer the relay's PINGs or not
#   close          close the current connection
#   stop           close the connection and stop listening
#   listen         listen again
#   quit
import argparse
import json
import os
import selectors
import socket
import sys


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--listen", required=True)
    ap.add_argument("--control", required=True)
    ap.add_argument("--events", required=True)
    ap.add_argument("--welcome", action="store_true")
    a = ap.parse_args()
    host, port = a.listen.rsplit(":", 1)
    port = int(port)

    evf = open(a.events, "a", buffering=1)

    def ev(**kw):
        evf.write(json.dumps(kw, sort_keys=True, separators=(",", ":")) +
                  "\n")

    sel = selectors.DefaultSelector()
    ctl = os.open(a.control, os.O_RDWR | os.O_NONBLOCK)
    sel.register(ctl, selectors.EVENT_READ, "ctl")
    st = {"lsn": None, "conn": None, "n": 0, "buf": b"", "cbuf": b"",
          "auto": None, "pong": True}

    def listen():
        if st["lsn"] is not None:
            return
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((host, port))
        s.listen(4)
        st["lsn"] = s
        sel.register(s, selectors.EVENT_READ, "lsn")

    def close():
        c = st["conn"]
        if c is not None:
            sel.unregister(c)
            c.close()
            st["conn"] = None
            st["buf"] = b""

    def send(data):
        if st["conn"] is not None:
            try:
                st["conn"].sendall(data)
            except OSError:
                pass

    def command(line):
        cmd, _, arg = line.partition(" ")
        if cmd == "send":
            send(arg.encode() + b"\n")
        elif cmd == "big":
            send(b"x" * int(arg) + b"\n")
        elif cmd == "auto":
            st["auto"] = arg if arg else None
        elif cmd == "pong":
            st["pong"] = arg == "on"
        elif cmd == "close":
            close()
        elif cmd == "stop":
            close()
            if st["lsn"] is not None:
                sel.unregister(st["lsn"])
                st["lsn"].close()
                st["lsn"] = None
        elif cmd == "listen":
            listen()
        elif cmd == "quit":
            sys.exit(0)

    def got(line):
        try:
            m = json.loads(line)
        except ValueError:
            ev(ev="raw", n=st["n"], raw=line.decode("latin-1"))
            return
        ev(ev="recv", n=st["n"], msg=m)
        t = m.get("type") if isinstance(m, dict) else None
        if t == "hello" and a.welcome:
            send(b'{"type":"welcome","version":1,"known":true}\n')
            if st["auto"]:
                send(st["auto"].encode() + b"\n")
        elif t == "ping" and st["pong"]:
            send(b'{"type":"pong"}\n')

    listen()
    while True:
        for key, _ in sel.select():
            if key.data == "ctl":
                st["cbuf"] += os.read(ctl, 65536)
                while b"\n" in st["cbuf"]:
                    line, st["cbuf"] = st["cbuf"].split(b"\n", 1)
                    command(line.decode())
            elif key.data == "lsn":
                c, _ = st["lsn"].accept()
                close()
                st["conn"] = c
                st["n"] += 1
                sel.register(c, selectors.EVENT_READ, "conn")
                ev(ev="accept", n=st["n"])
            elif key.data == "conn":
                if key.fileobj is not st["conn"]:
                    continue        # closed earlier in this round
                try:
                    data = st["conn"].recv(65536)
                except OSError:
                    data = b""
                if not data:
                    ev(ev="eof", n=st["n"])
                    close()
                    continue
                st["buf"] += data
                while b"\n" in st["buf"]:
                    line, st["buf"] = st["buf"].split(b"\n", 1)
                    got(line)


if __name__ == "__main__":
    main()
