#!/usr/bin/env python3
"""soaploop.py -- a vSphere client that keeps calling, for the demo.

    soaploop.py HOST:PORT SECONDS

Calls RetrieveServiceContent, then CurrentTime, again and again for
SECONDS on one keep-alive HTTP/1.1 connection to HOST:PORT (vappliance's
--vmomi-listen: the vmomi agent behind the mesh), each answer read whole
before the next call, 20 ms apart.  Prints one JSON line at the end:
{"requests", "answered", "failed", "failures": [first 5], "max_ms"}.
Exit 0 when every call was answered by vCenter (HTTP 200 with the
method's Response element), 1 otherwise.
"""
import json
import socket
import sys
import time

CALLS = [
    ("RetrieveServiceContent", "ServiceInstance"),
    ("CurrentTime", "ServiceInstance"),
]


def envelope(method, this):
    return ('<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope '
            'xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" '
            'xmlns:vim25="urn:vim25"><soapenv:Body><vim25:%s>'
            '<vim25:_this type="%s">%s</vim25:_this></vim25:%s>'
            '</soapenv:Body></soapenv:Envelope>' %
            (method, this, this, method)).encode()


def answer(f):
    line = f.readline()
    if not line:
        raise EOFError("connection closed")
    status = int(line.split()[1])
    n = 0
    while True:
        h = f.readline().strip()
        if not h:
            break
        k, _, v = h.partition(b":")
        if k.strip().lower() == b"content-length":
            n = int(v)
    return status, f.read(n)


def main():
    host, _, port = sys.argv[1].rpartition(":")
    seconds = float(sys.argv[2])
    out = {"requests": 0, "answered": 0, "failed": 0, "failures": [],
           "max_ms": 0}
    s = socket.create_connection((host, int(port)))
    s.settimeout(60)
    f = s.makefile("rb")
    end = time.time() + seconds
    i = 0
    while time.time() < end:
        method, this = CALLS[i % len(CALLS)]
        body = envelope(method, this)
        req = (b"POST /sdk HTTP/1.1\r\nHost: vcenter\r\n"
               b"Content-Type: text/xml; charset=utf-8\r\n"
               b"SOAPAction: urn:vim25/7.0\r\nContent-Length: %d\r\n\r\n"
               % len(body)) + body
        t0 = time.time()
        out["requests"] += 1
        try:
            s.sendall(req)
            status, b = answer(f)
        except (OSError, EOFError, ValueError, IndexError) as e:
            out["failed"] += 1
            out["failures"].append(str(e))
            break
        ms = (time.time() - t0) * 1000
        out["max_ms"] = max(out["max_ms"], round(ms, 1))
        if status == 200 and (method + "Response").encode() in b:
            out["answered"] += 1
        else:
            out["failed"] += 1
            if len(out["failures"]) < 5:
                out["failures"].append("%s: HTTP %d %s" % (
                    method, status, b[:300].decode("utf-8", "replace")))
        i += 1
        time.sleep(0.02)
    print(json.dumps(out))
    return 0 if out["failed"] == 0 and out["answered"] > 0 else 1


if __name__ == "__main__":
    sys.exit(main())
