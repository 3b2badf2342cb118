#!/usr/bin/env python3
# portblock.py N -- print the first port of N consecutive free loopback
# TCP ports in 20000-31999 (below the ephemeral range), at a random
# multiple of the block's step so parallel runs rarely collide; exit 1
# if none is found.  Shared by test/regress/lib.sh and bench/run.sh.
import random
import socket
import sys

n = int(sys.argv[1])
step = max(100, (n + 99) // 100 * 100)
for _ in range(200):
    base = 20000 + random.randrange((32000 - 20000) // step) * step
    held = []
    try:
        for p in range(base, base + n):
            s = socket.socket()
            held.append(s)
            s.bind(("127.0.0.1", p))
        print(base)
        sys.exit(0)
    except OSError:
        pass
    finally:
        for s in held:
            s.close()
sys.exit(1)
