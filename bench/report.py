#!/usr/bin/env python3
"""report.py -- bench/run.sh's tables and JSON document.

Reads the raw results (one JSON object per vload run, idle measurement
or relocate), takes medians over rounds, prints the tables and the
ratios vrelay/best-HAProxy and vrelay/direct, checks the issue's
targets, and writes everything as one JSON document.  With --smoke it
checks only that every cell holds a number (never its value).
"""
import argparse
import json
import statistics
import sys

# Table columns: (key, header, unit, higher is better, how to get it).
COLUMNS = [
    ("bulk_up_1", "up 1", "Gbit/s", True, ("bulk_up_1", "gbit_s")),
    ("bulk_down_1", "down 1", "Gbit/s", True, ("bulk_down_1", "gbit_s")),
    ("bulk_up_4", "up 4", "Gbit/s", True, ("bulk_up_4", "gbit_s")),
    ("bulk_down_4", "down 4", "Gbit/s", True, ("bulk_down_4", "gbit_s")),
    ("rtt_p50", "p50", "us", False, ("rtt", "p50_us")),
    ("rtt_p99", "p99", "us", False, ("rtt", "p99_us")),
    ("rtt_p999", "p99.9", "us", False, ("rtt", "p999_us")),
    ("setup", "setup", "/s", True, ("setup", "per_s")),
]
TOPOS = ["direct", "socat-1", "socat-2", "haproxy-1", "haproxy-tuned-1",
         "haproxy-2", "haproxy-tuned-2", "vrelay-local", "vrelay-2hop",
         "vrelay-2hop-tls", "vrelay-2hop-tls-shared"]


def median(v):
    return statistics.median(v) if v else None


def pct(v, q):
    """Nearest-rank percentile of a list."""
    if not v:
        return None
    s = sorted(v)
    i = max(1, min(len(s), -(-int(q * 1000) * len(s) // 100000)))
    return s[i - 1]


def fmt(x, unit=""):
    if x is None:
        return "-"
    if isinstance(x, str):
        return x
    if unit == "/s" or abs(x) >= 1000:
        return "%.0f" % x
    if abs(x) >= 100:
        return "%.0f" % x
    if abs(x) >= 10:
        return "%.1f" % x
    return "%.2f" % x


def table(rows, header):
    w = [max(len(str(r[i])) for r in [header] + rows)
         for i in range(len(header))]
    out = []
    for j, r in enumerate([header] + rows):
        out.append("  ".join(str(c).ljust(w[i]) if i == 0 else
                             str(c).rjust(w[i]) for i, c in enumerate(r)))
        if j == 0:
            out.append("  ".join("-" * x for x in w))
    return "\n".join(out)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--raw", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--smoke", action="store_true")
    ap.add_argument("--meta", action="append", default=[])
    a = ap.parse_args()

    meta = dict(m.split("=", 1) for m in a.meta)
    raw = [json.loads(l) for l in open(a.raw) if l.strip()]
    errors = [r for r in raw if "error" in r]

    # Throughput, RTT, setup: samples per (topology, column).
    topos = [t for t in TOPOS if any(r.get("topo") == t for r in raw)]
    topos += sorted({r["topo"] for r in raw if "topo" in r} - set(topos))
    samples = {}
    for r in raw:
        if "result" not in r or r.get("workload") in ("idle",):
            continue
        for key, _, _, _, (wl, field) in COLUMNS:
            if r.get("workload") == wl and field in r["result"]:
                samples.setdefault((r["topo"], key), []).append(
                    r["result"][field])
    med = {k: median(v) for k, v in samples.items()}
    setup_errors = {}
    for r in raw:
        if r.get("workload") == "setup" and "result" in r:
            setup_errors[r["topo"]] = setup_errors.get(r["topo"], 0) + \
                r["result"].get("errors", 0)

    # Idle memory: KiB per session of each measured process.
    idle = {}
    for r in raw:
        if r.get("workload") != "idle" or "procs" not in r:
            continue
        for p, m in r["procs"].items():
            if m["before_kb"] is None or m["after_kb"] is None:
                continue
            kib = (m["after_kb"] - m["before_kb"]) / r["sessions"]
            idle.setdefault((r["topo"], p, r["sessions"]), []).append(kib)
    idle_med = {k: median(v) for k, v in idle.items()}
    idle_counts = sorted({k[2] for k in idle} |
                         {r["sessions"] for r in raw
                          if r.get("workload") == "idle"})
    asked = {r["sessions"]: r.get("asked", r["sessions"]) for r in raw
             if r.get("workload") == "idle"}
    skipped = {(r["topo"], r["sessions"]): r["skipped"] for r in raw
               if r.get("workload") == "idle" and "skipped" in r}

    # Retarget: relocate command to the last relay's ACK.
    # "sim": "tick10" is the simulator with its 10 ms update tick
    # (obj/vcsimh-tick10), the rest the stock one (250 ms).
    ret, ret_tick = {}, {}
    for r in raw:
        if r.get("workload") == "retarget" and "result" in r:
            (ret_tick if r.get("sim") == "tick10" else ret).setdefault(
                r["relays"], []).append(r["result"])
    # Resume: per appliance move, every session's leg lost -> resumed.
    # Keyed by (sessions, pre-copy seconds, TLS): the pre-copy is how
    # long the relays have to pre-warm their legs before the switchover,
    # and with TLS each pre-warmed leg is a handshake.
    res = {}
    for r in raw:
        if r.get("workload") == "resume" and "result" in r:
            res.setdefault((r["sessions"], r.get("precopy_s", 0.3),
                            r.get("tls", True)), []).append(r["result"])
    res_sum = {}
    for n, v in sorted(res.items()):
        push = [x["hint_to_publish_ms"] for x in v
                if x.get("hint_to_publish_ms") is not None]
        res_sum[n] = {"moves": len(v),
                      "p50_ms": median([x["p50_ms"] for x in v]),
                      "p99_ms": max(x["p99_ms"] for x in v),
                      "max_ms": max(x["max_ms"] for x in v),
                      "hint_to_publish_p50_ms": median(push)}
    def ret_summary(ret):
        out = {}
        for n, v in sorted(ret.items()):
            tot = [x["total_ms"] for x in v]
            acks = [x["acks_ms"] for x in v]
            task = [x["relocate_task_ms"] for x in v
                    if x.get("relocate_task_ms") is not None]
            out[n] = {"moves": len(v), "p50_ms": median(tot),
                      "p99_ms": pct(tot, 99), "max_ms": max(tot),
                      "relocate_task_p50_ms": median(task),
                      "publish_to_last_ack_p50_ms": median(acks),
                      "publish_to_last_ack_p99_ms": pct(acks, 99)}
        return out
    ret_sum = ret_summary(ret)
    ret_tick_sum = ret_summary(ret_tick)

    def best_hap(key, hops, higher):
        c = [(med.get((t, key)), t) for t in
             ("haproxy-%d" % hops, "haproxy-tuned-%d" % hops)]
        c = [x for x in c if x[0] is not None]
        if not c:
            return None, None
        return (max(c) if higher else min(c))

    def ratio(x, y):
        return None if x is None or y in (None, 0) else x / y

    ratios = {}
    for name, vr, hops in (("vrelay-2hop", "vrelay-2hop", 2),
                           ("vrelay-2hop-tls", "vrelay-2hop-tls", 2),
                           ("vrelay-2hop-tls-shared", "vrelay-2hop-tls-shared",
                            2),
                           ("vrelay-local", "vrelay-local", 1)):
        for key, _, _, higher, _ in COLUMNS:
            hv, ht = best_hap(key, hops, higher)
            ratios.setdefault("%s/best-haproxy-%d" % (name, hops), {})[key] \
                = {"ratio": ratio(med.get((vr, key)), hv), "peer": ht}
            ratios.setdefault("%s/direct" % name, {})[key] = {
                "ratio": ratio(med.get((vr, key)), med.get(("direct", key)))}

    # --- print -----------------------------------------------------
    print()
    print("vrelay benchmarks: medians of %s rounds, %s s per bulk/setup "
          "run, RTT over %s pings pinned to CPU %s" %
          (meta.get("rounds"), meta.get("seconds_per_run"),
           meta.get("rtt_count"), meta.get("rtt_cpu")))
    print("machine: %s CPUs, %s, kernel %s; load %s at start, %s at end" %
          (meta.get("ncpu"), meta.get("cpu"), meta.get("kernel"),
           meta.get("load_start"), meta.get("load_end")))
    print()
    hdr = ["topology"] + ["%s %s" % (h, u) for _, h, u, _, _ in COLUMNS]
    rows = [[t] + [fmt(med.get((t, k)), u) for k, _, u, _, _ in COLUMNS]
            for t in topos]
    print("bulk = Gbit/s with 1 or 4 streams; RTT = 64 B ping-pong, us; "
          "setup = sessions/s (connect, 64 B echo, close)")
    print(table(rows, hdr))
    for t, e in setup_errors.items():
        if e:
            print("  note: %s: %d setup sessions failed" % (t, e))
    print()
    rows = []
    for name, d in ratios.items():
        row = [name]
        for k, _, _, _, _ in COLUMNS:
            x = d[k]["ratio"]
            row.append("-" if x is None else "%.2fx" % x)
        rows.append(row)
    print("ratios (bulk, setup: higher is better; RTT: lower is better; "
          "best HAProxy = the stronger of defaults and tuned, per column)")
    print(table(rows, ["ratio"] + [h for _, h, _, _, _ in COLUMNS]))
    print()
    if idle_counts:
        hdr = ["topology", "process"] + \
            ["KiB/sess @%d%s" % (n, "" if asked.get(n, n) == n else
                                 " (of %d asked)" % asked[n])
             for n in idle_counts]
        procs = []
        for (t, p, n) in idle:
            if (t, p) not in procs:
                procs.append((t, p))
        for r in raw:
            if r.get("workload") == "idle" and "error" in r:
                for t in [r["topo"]]:
                    if not any(x[0] == t for x in procs):
                        procs.append((t, "-"))
        rows = [[t, p] + ["skipped" if (t, n) in skipped else
                          fmt(idle_med.get((t, p, n))) for n in idle_counts]
                for t, p in procs]
        print("idle memory: RSS delta per held session (user space only; "
              "kernel socket buffers are not counted)")
        print(table(rows, hdr))
        for (t, n), why in sorted(skipped.items()):
            print("  skipped: %s @%d: %s" % (t, n, why))
        print()
    rows = [[sim, str(n), str(x["moves"]), fmt(x["p50_ms"]),
             fmt(x["p99_ms"]), fmt(x["relocate_task_p50_ms"]),
             fmt(x["publish_to_last_ack_p50_ms"]),
             fmt(x["publish_to_last_ack_p99_ms"])]
            for sim, rs in (("250 ms", ret_sum), ("10 ms", ret_tick_sum))
            for n, x in rs.items()]
    print("retarget (ms): relocate command -> last relay ACK; the "
          "simulator's task, and the locator's publish -> last ACK; "
          "tick: how often the simulator's WaitForUpdatesEx looks for "
          "changes (250 ms stock, 10 ms in obj/vcsimh-tick10)")
    print(table(rows, ["tick", "relays", "moves", "p50", "p99", "task p50",
                       "pub->ACK p50", "pub->ACK p99"]))
    print()
    rows = [[str(n), "%g" % pc, "yes" if tls else "no", str(x["moves"]),
             fmt(x["p50_ms"]), fmt(x["p99_ms"]), fmt(x["max_ms"]),
             fmt(x["hint_to_publish_p50_ms"])]
            for (n, pc, tls), x in res_sum.items()]
    print("resume after an appliance vMotion (ms): each session's leg lost "
          "-> resumed at its client end (p50: median over moves; p99 and "
          "max: worst move); pre-copy: hint -> switchover (s); hint -> the "
          "locator's publish of the move")
    print(table(rows, ["sessions", "pre-copy", "TLS", "moves", "p50", "p99",
                       "max", "hint->publish p50"]))

    # Targets from issue 8.
    def tget(ratio_name, key):
        return ratios.get(ratio_name, {}).get(key, {}).get("ratio")
    targets = []
    for k in ("bulk_up_1", "bulk_down_1", "bulk_up_4", "bulk_down_4"):
        targets.append(("%s vrelay-2hop >= 1.0x best HAProxy 2-hop" % k,
                        tget("vrelay-2hop/best-haproxy-2", k),
                        lambda x: x >= 1.0))
        targets.append(("%s vrelay-2hop >= 0.5x direct" % k,
                        tget("vrelay-2hop/direct", k), lambda x: x >= 0.5))
    for k in ("rtt_p50", "rtt_p99"):
        targets.append(("%s vrelay-2hop <= best HAProxy 2-hop" % k,
                        tget("vrelay-2hop/best-haproxy-2", k),
                        lambda x: x <= 1.0))
    targets.append(("setup vrelay-2hop >= 1.5x best HAProxy 2-hop",
                    tget("vrelay-2hop/best-haproxy-2", "setup"),
                    lambda x: x >= 1.5))
    big = max(idle_counts) if idle_counts else None
    for t in ("vrelay-2hop", "vrelay-local"):
        for (tt, p, n), v in idle_med.items():
            if tt == t and n == big and p.startswith("relay"):
                targets.append(("idle %s %s <= 2 KiB/session @%d" %
                                (t, p, n), v, lambda x: x <= 2.0))
        ok = any(tt == t and n == big for (tt, _, n) in idle_med)
        if big:
            targets.append(("%s holds %d idle sessions" % (t, big),
                            1.0 if ok else 0.0, lambda x: x == 1.0))
    if 64 in ret_sum:
        targets.append(("retarget p99 <= 50 ms with 64 relays",
                        ret_sum[64]["p99_ms"], lambda x: x <= 50))
        targets.append(("  (publish -> last ACK only, p99)",
                        ret_sum[64]["publish_to_last_ack_p99_ms"],
                        lambda x: x <= 50))
    if 64 in ret_tick_sum:
        targets.append(("  (simulator ticking every 10 ms, p99)",
                        ret_tick_sum[64]["p99_ms"], lambda x: x <= 50))
    for (n, pc, tls) in sorted(res_sum, key=lambda k: (-k[0], -k[2],
                                                     -k[1])):
        if n != max(k[0] for k in res_sum):
            continue
        targets.append(("resume p99 <= 100 ms, %d sessions, %g s pre-copy, "
                        "%s" % (n, pc, "TLS" if tls else "plaintext"),
                        res_sum[(n, pc, tls)]["p99_ms"], lambda x: x <= 100))
    verdicts = []
    for name, x, test in targets:
        verdicts.append({"target": name, "value": x,
                         "met": None if x is None else bool(test(x))})
    print()
    print("targets (issue 8)%s:" % (": not judged in a smoke run"
                                    if a.smoke else ""))
    for v in ([] if a.smoke else verdicts):
        x = v["value"]
        print("  %-52s %10s  %s" % (
            v["target"], "-" if x is None else "%.2f" % x,
            "n/a" if v["met"] is None else
            ("met" if v["met"] else "NOT met")))

    doc = {"machine": {k: meta.get(k) for k in
                       ("ncpu", "cpu", "kernel", "haproxy", "socat",
                        "libevent", "load_start", "load_end", "nofile")},
           "parameters": {k: v for k, v in meta.items() if k not in
                          ("ncpu", "cpu", "kernel", "haproxy", "socat",
                           "libevent", "load_start", "load_end")},
           "columns": {k: {"header": h, "unit": u, "higher_is_better": hb}
                       for k, h, u, hb, _ in COLUMNS},
           "medians": {t: {k: med.get((t, k)) for k, _, _, _, _ in COLUMNS}
                       for t in topos},
           "samples": {t: {k: samples.get((t, k), [])
                           for k, _, _, _, _ in COLUMNS} for t in topos},
           "setup_errors": setup_errors,
           "ratios": ratios,
           "idle_skipped": [{"topo": t, "sessions": n, "why": w}
                            for (t, n), w in skipped.items()],
           "idle_kib_per_session": [
               {"topo": t, "process": p, "sessions": n,
                "asked": asked.get(n, n), "median": idle_med[(t, p, n)],
                "samples": idle[(t, p, n)]} for (t, p, n) in idle],
           "retarget": {str(n): dict(s, samples=ret[n])
                        for n, s in ret_sum.items()},
           "retarget_tick10": {str(n): dict(s, samples=ret_tick[n])
                               for n, s in ret_tick_sum.items()},
           "resume": {"%d@%gs%s" % (n, pc, "-tls" if tls else ""):
                      dict(s, sessions=n, precopy_s=pc, tls=tls,
                           samples=res[(n, pc, tls)])
                      for (n, pc, tls), s in res_sum.items()},
           "targets": verdicts,
           "errors": errors,
           "raw": raw}
    with open(a.out, "w") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")
    print()
    print("JSON: %s" % a.out)

    rc = 0
    if errors:
        print("bench: %d runs failed (see \"errors\" in the JSON)" %
              len(errors), file=sys.stderr)
        rc = 1
    if a.smoke:
        missing = [(t, k) for t in TOPOS for k, _, _, _, _ in COLUMNS
                   if med.get((t, k)) is None]
        missing += [("idle", t) for t in ("haproxy-1", "haproxy-2",
                                          "vrelay-local", "vrelay-2hop")
                    if not any(x[0] == t for x in idle_med)]
        if not ret_sum:
            missing.append(("retarget", "-"))
        if not ret_tick_sum and any(r.get("sim") == "tick10"
                                    for r in raw):
            missing.append(("retarget", "tick10"))
        if not res_sum:
            missing.append(("resume", "-"))
        if missing:
            print("bench-smoke: no number for %s" % ", ".join(
                "%s %s" % m for m in missing), file=sys.stderr)
            rc = 1
        else:
            print("bench-smoke: every topology and workload produced a "
                  "number")
    return rc


if __name__ == "__main__":
    sys.exit(main())
