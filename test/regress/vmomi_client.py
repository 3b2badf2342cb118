#!/usr/bin/env python3
"""vmomi_client.py -- a minimal vSphere SOAP client for the agent tests.

    vmomi_client.py HOST:PORT [--attest 'host=H cid=N'] ITEM...

Sends each ITEM on one keep-alive HTTP/1.1 connection, in order, and
prints one JSON line per answer: status, content type, the Body's first
element, the faultstring and detail type of a fault, Set-Cookie, length.
An ITEM is a file holding a SOAP envelope (POSTed to /sdk with
Content-Length), or raw:FILE (bytes sent as they are, e.g. a malformed
request), or big:N (a POST declaring N bytes of body, of which only the
headers are sent).  When the server closes, the remaining items are
reported as {"closed": true}.  --attest first writes the relay's
"VRELAY-CALLER 1 ... port=1" line (talking straight to an agent).
"""
import json
import socket
import sys
import xml.etree.ElementTree as ET

ENV = "{http://schemas.xmlsoap.org/soap/envelope/}"


def read_answer(f):
    line = f.readline()
    if not line:
        return None
    parts = line.decode("latin-1").split(" ", 2)
    status = int(parts[1])
    hdrs = {}
    while True:
        h = f.readline().decode("latin-1")
        if h in ("\r\n", "\n", ""):
            break
        k, _, v = h.partition(":")
        hdrs[k.strip().lower()] = v.strip()
    if status == 100:
        return read_answer(f)
    body = f.read(int(hdrs.get("content-length", "0")))
    out = {"status": status, "ctype": hdrs.get("content-type"),
           "len": len(body), "close": hdrs.get("connection") == "close"}
    if "set-cookie" in hdrs:
        out["set_cookie"] = hdrs["set-cookie"]
    try:
        root = ET.fromstring(body)
        first = list(root.find(ENV + "Body"))[0]
        out["element"] = first.tag.split("}")[-1]
        if first.tag == ENV + "Fault":
            out["faultstring"] = first.findtext("faultstring")
            det = first.find("detail")
            if det is not None and len(det):
                d = det[0]
                out["fault"] = d.get(
                    "{http://www.w3.org/2001/XMLSchema-instance}type",
                    d.tag.split("}")[-1])
                obj = d.find("{urn:vim25}object")
                if obj is not None:
                    out["object"] = obj.text
        else:
            out["text"] = "".join(first.itertext())[:200]
    except Exception as e:  # not SOAP: say so, keep going
        out["element"] = None
        out["parse_error"] = str(e)[:100]
    return out


def main():
    args = sys.argv[1:]
    host, _, port = args.pop(0).rpartition(":")
    attest = None
    if args and args[0] == "--attest":
        args.pop(0)
        attest = args.pop(0)
    s = socket.create_connection((host, int(port)), timeout=30)
    f = s.makefile("rb")
    if attest:
        s.sendall(("VRELAY-CALLER 1 %s port=1\r\n" % attest).encode())
    closed = False
    for item in args:
        if closed:
            print(json.dumps({"closed": True}))
            continue
        if item.startswith("raw:"):
            data = open(item[4:], "rb").read()
        elif item.startswith("big:"):
            data = ("POST /sdk HTTP/1.1\r\nHost: vcenter\r\n"
                    "Content-Type: text/xml\r\nContent-Length: %s\r\n\r\n"
                    % item[4:]).encode()
        else:
            body = open(item, "rb").read()
            data = ("POST /sdk HTTP/1.1\r\nHost: vcenter\r\n"
                    "Content-Type: text/xml; charset=utf-8\r\n"
                    "SOAPAction: \"urn:vim25/6.5\"\r\n"
                    "Content-Length: %d\r\n\r\n" % len(body)).encode() + body
        try:
            s.sendall(data)
            ans = read_answer(f)
        except OSError as e:
            ans = None
        if ans is None:
            closed = True
            print(json.dumps({"closed": True}))
            continue
        print(json.dumps(ans, sort_keys=True))
        sys.stdout.flush()
        if ans["close"]:
            closed = True


if __name__ == "__main__":
    main()
