#!/usr/bin/env python3
"""vreport.py -- judge and plot a vMotion run (the demo and the tests).

    vreport.py summary --runs F... --backend F... --status F... --events F
                       [--plot PNG --timeline CSV [--title T]]
    vreport.py plot --timeline CSV --events F --out PNG [--title T]

summary prints exactly one JSON line on stdout, keys in this order:

    {"sessions":N,"migrations":N,"bytes_sent":N,"bytes_verified":N,
     "bytes_lost":N,"duplicates":N,"max_resume_ms":N,"plot":PATH|null}

sessions counts the run-report lines; migrations the events of kind
"appliance" or "cvm"; a session's bytes lost are max(0, sent - received)
plus what came back but was not verified, max(0, min(sent, received) -
verified); duplicates are max(0, received - sent); max_resume_ms is the
largest sessions.resume_ms_max over the status dumps.  It exits 1, with
one stderr line per bad session or connection, if any session is not
ok, if any byte was lost or duplicated, or if the multiset of the
sessions' sha256_sent differs from the multiset of the backend's
sha256_in (the two ends must agree on every byte); 0 otherwise.  With
--plot it draws the plot first, as the plot subcommand does.

plot draws with gnuplot (pngcairo, else png): x is seconds since the
first timeline sample, one thin line per session (its receive rate in
MB/s, 10^6 bytes, over 250 ms bins, left axis), a bold total (right
axis), vertical lines at appliance and containerVM migrations, the
appliance host of each new epoch at the top ("e:h3", or "e=N" if the
event names no host), and relay/locator down/up marks at the bottom.

Exit status 2: bad usage or input (the message names file and line),
or gnuplot missing or failing.

Inputs (JSON lines: one object a line, blank lines skipped):
  --runs     vtraffic run --report, one line per containerVM session:
             {"session":I,"label":L,"ok":bool,"error":null|str,
              "bytes_sent":N,"sha256_sent":hex,"bytes_received":N,
              "sha256_received":hex,"bytes_verified":N,
              "start_ms":WALL|null,"end_ms":WALL}
  --backend  vtraffic serve --report, one line per connection:
             {"conn":N,"peer":..,"bytes_in":N,"bytes_out":N,
              "sha256_in":hex,...,"error":optional}
  --status   one JSON object per file (a daemon's status answer), which
             may hold "sessions": {"resumes":N,"resume_ms_max":N,
             "replayed_bytes":N,...}; a missing key counts as 0
  --events   {"t_ms":WALL,"kind":K,"name":str,"from":str,"to":str,
              "epoch":N}, K one of appliance, cvm, epoch, relay-down,
             relay-up, locator-down, locator-up; only t_ms and kind
             are required
  --timeline vtraffic run --timeline CSV, "t_ms,label,session,rx_bytes"
             (bytes received in a 250 ms interval)
"""
import argparse
import collections
import json
import os
import shutil
import subprocess
import sys
import tempfile

BIN_MS = 250
MIGRATION_KINDS = ("appliance", "cvm")
EVENT_KINDS = MIGRATION_KINDS + ("epoch", "relay-down", "relay-up",
                                 "locator-down", "locator-up")
# Per-session lines: muted colours, cycled, so the total and the
# migration lines stand out.
SESSION_COLOURS = ("#9ecae1", "#a1d99b", "#fdae6b", "#bcbddc", "#fc9fb5",
                   "#c7e9c0", "#fdd0a2", "#9ebcda", "#d9d9d9", "#e5c494")
COLOUR = {"total": "#000000", "appliance": "#d62728", "cvm": "#1f77b4",
          "epoch": "#2ca02c", "mark": "#7f7f7f"}


class InputError(Exception):
    """Bad input; the message names the file and line."""



def epoch_label(e):
    """A published epoch's label: where it sends legs (epochs are
    wall-clock ms, too long to read on a plot)."""
    return "e:%s" % e["name"] if e.get("name") else "e=%s" % e.get("epoch", "?")

def die(status, msg):
    """Print msg on stderr and exit with status."""
    print("vreport: " + msg, file=sys.stderr)
    sys.exit(status)


def input_lines(path):
    """Yield (line number, line) of path; a file that cannot be read is
    an InputError naming it."""
    try:
        f = open(path, encoding="utf-8")
    except OSError as e:
        raise InputError("%s: %s" % (path, e.strerror))
    with f:
        for n, line in enumerate(f, 1):
            yield n, line


def read_jsonl(path):
    """Yield (line number, object) for each non-blank line of path."""
    for n, line in input_lines(path):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except ValueError as e:
            raise InputError("%s:%d: bad JSON: %s" % (path, n, e))
        if not isinstance(obj, dict):
            raise InputError("%s:%d: not a JSON object" % (path, n))
        yield n, obj


def field(obj, key, kind, where, default=None):
    """obj[key] checked to be of type kind (default when absent or null
    and a default is given)."""
    v = obj.get(key)
    if v is None and default is not None:
        return default
    # bool is an int subclass: a count of true is an error, not 1.
    if not isinstance(v, kind) or (kind is int and isinstance(v, bool)):
        raise InputError("%s: %r: want %s, got %r" %
                         (where, key, kind.__name__, v))
    return v


def load_runs(paths):
    """The run-report sessions, each a dict with a printable "name"."""
    out = []
    for path in paths:
        for n, o in read_jsonl(path):
            w = "%s:%d" % (path, n)
            s = {
                "name": "session %s/%s" % (o.get("label", "?"),
                                           o.get("session", "?")),
                "where": w,
                "ok": field(o, "ok", bool, w),
                "error": o.get("error"),
                "sent": field(o, "bytes_sent", int, w),
                "received": field(o, "bytes_received", int, w),
                "verified": field(o, "bytes_verified", int, w),
                "sha": field(o, "sha256_sent", str, w).lower(),
            }
            out.append(s)
    return out


def load_backend(paths):
    """The backend connections: (where, sha256_in, bytes_in).

    A connection that received nothing is left out: it is the backend
    side of a session whose WELCOME was lost to a reset during setup
    (the client opened again under a fresh id, see docs/protocol.md),
    and an empty stream cannot hide a lost byte.
    """
    out = []
    for path in paths:
        for n, o in read_jsonl(path):
            w = "%s:%d" % (path, n)
            if field(o, "bytes_in", int, w) == 0:
                continue
            out.append((w, field(o, "sha256_in", str, w).lower(),
                        field(o, "bytes_in", int, w)))
    return out


def load_status(paths):
    """Largest sessions.resume_ms_max over the status dumps."""
    best = 0
    for path in paths:
        try:
            with open(path, encoding="utf-8") as f:
                obj = json.load(f)
        except OSError as e:
            raise InputError("%s: %s" % (path, e.strerror))
        except ValueError as e:
            raise InputError("%s: bad JSON: %s" % (path, e))
        if not isinstance(obj, dict):
            raise InputError("%s: not a JSON object" % path)
        sess = obj.get("sessions")
        if not isinstance(sess, dict):
            continue        # no counters: all 0
        best = max(best, field(sess, "resume_ms_max", int,
                               path + ": sessions", 0))
    return best


def load_events(path):
    """The events, sorted by time, each a dict with at least t_ms, kind."""
    out = []
    for n, o in read_jsonl(path):
        w = "%s:%d" % (path, n)
        field(o, "t_ms", int, w)
        if field(o, "kind", str, w) not in EVENT_KINDS:
            raise InputError("%s: unknown kind %r (want one of %s)" %
                             (w, o["kind"], ", ".join(EVENT_KINDS)))
        out.append(o)
    out.sort(key=lambda e: e["t_ms"])
    return out


def load_timeline(path):
    """The timeline as a list of (t_ms, (label, session), rx_bytes)."""
    out = []
    for n, line in input_lines(path):
        line = line.strip()
        if not line:
            continue
        parts = line.split(",")
        try:
            if len(parts) != 4:
                raise ValueError
            t, rx = int(parts[0]), int(parts[3])
        except ValueError:
            raise InputError("%s:%d: want t_ms,label,session,rx_bytes:"
                             " %r" % (path, n, line))
        out.append((t, (parts[1], parts[2]), rx))
    return out


def gp_str(s):
    """s as a gnuplot single-quoted string ('' is a quote in one)."""
    return "'" + str(s).replace("'", "''") + "'"


def gp_terminal():
    """pngcairo if this gnuplot has it, else png."""
    r = subprocess.run(["gnuplot", "-e", "set terminal pngcairo"],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return "pngcairo" if r.returncode == 0 else "png"


def event_text(e):
    """A short label for a relay/locator event: "relay-down A"."""
    name = e.get("name")
    return e["kind"] + (" " + str(name) if name else "")


def plot(timeline_path, events_path, out, title=None):
    """Draw the run's timeline and events into PNG out with gnuplot."""
    if shutil.which("gnuplot") is None:
        die(2, "gnuplot not found: install it (Debian: apt-get install "
            "gnuplot-nox) or drop --plot")
    samples = load_timeline(timeline_path)
    events = load_events(events_path)
    if not samples:
        raise InputError("%s: no timeline samples" % timeline_path)

    # Bins are counted from the first sample.  A run's ticks wander a few
    # ms around 250 (and runs sharing the file tick at other phases), so
    # plain floor((t - t0) / 250) leaves some bins empty and others
    # double.  Each session's samples are instead rounded onto the grid
    # from its own first sample, whose place on the global grid is rounded
    # once.
    t0 = min(t for t, _, _ in samples)
    first = {}
    for t, key, _ in samples:
        first[key] = min(t, first.get(key, t))
    per = collections.defaultdict(lambda: collections.defaultdict(int))
    for t, key, rx in samples:
        b = (round((first[key] - t0) / BIN_MS) +
             round((t - first[key]) / BIN_MS))
        per[key][b] += rx
    nbins = max(max(bins) for bins in per.values()) + 1
    total = [0] * nbins
    for bins in per.values():
        for b, rx in bins.items():
            total[b] += rx
    scale = 1000.0 / BIN_MS / 1e6   # bytes per bin -> MB/s

    def x(t_ms):
        return (t_ms - t0) / 1000.0

    xs = [0.0, (nbins - 1) * BIN_MS / 1000.0]
    xs += [x(e["t_ms"]) for e in events]
    xmin, xmax = min(xs), max(xs)
    pad = max(0.5, (xmax - xmin) * 0.02)
    if title is None:
        nmig = sum(1 for e in events if e["kind"] in MIGRATION_KINDS)
        title = "%d sessions, %d migrations" % (len(per), nmig)

    with tempfile.TemporaryDirectory(prefix="vreport.") as tmp:
        sess_dat = os.path.join(tmp, "sessions.dat")
        total_dat = os.path.join(tmp, "total.dat")
        # By label, then session number (numerically).
        keys = sorted(per, key=lambda k: (k[0], not k[1].isdigit(),
                                          int(k[1]) if k[1].isdigit() else 0,
                                          k[1]))
        with open(sess_dat, "w") as f:
            for k in keys:
                # One gnuplot data set (index) per session.
                f.write("# %s/%s\n" % k)
                for b in sorted(per[k]):
                    f.write("%.3f %.6f\n" % (b * BIN_MS / 1000.0,
                                             per[k][b] * scale))
                f.write("\n\n")
        with open(total_dat, "w") as f:
            for b, v in enumerate(total):
                f.write("%.3f %.6f\n" % (b * BIN_MS / 1000.0, v * scale))

        gp = [
            "set terminal %s noenhanced size 1280,720 font ',10'"
            % gp_terminal(),
            "set output %s" % gp_str(os.path.abspath(out)),
            "set title %s offset 0,1.5" % gp_str(title),
            "set xlabel 'seconds since the first sample'",
            "set ylabel 'per session, MB/s'",
            "set y2label 'total, MB/s'",
            "set xrange [%.3f:%.3f]" % (xmin - pad, xmax + pad),
            "set yrange [0:*]",
            "set y2range [0:*]",
            "set ytics nomirror",
            "set y2tics",
            "set grid xtics ytics lc rgb '#e0e0e0'",
            # Room above the plot for the epoch labels, below for the key.
            "set tmargin 6",
            "set bmargin 6",
            "set key at screen 0.5, screen 0.02 center bottom horizontal",
        ]
        kinds = set()
        stagger = 0
        for e in events:
            k, ex = e["kind"], x(e["t_ms"])
            if k in MIGRATION_KINDS:
                kinds.add(k)
                gp.append("set arrow from first %.3f, graph 0 to first %.3f,"
                          " graph 1 nohead lc rgb '%s' lw 2%s"
                          % (ex, ex, COLOUR[k],
                             " dt 2" if k == "cvm" else ""))
            elif k == "epoch":
                # Alternate two rows so close epochs stay readable.
                gp.append("set label %s at first %.3f, graph 1 offset 0,%s"
                          " center tc rgb '%s' front"
                          % (gp_str(epoch_label(e)), ex,
                             "1.8" if stagger % 2 else "0.7",
                             COLOUR["epoch"]))
                stagger += 1
            else:
                gp.append("set label %s at first %.3f, graph 0.02 rotate"
                          " left font ',8' tc rgb '%s' front"
                          % (gp_str(event_text(e)), ex, COLOUR["mark"]))
        plots = []
        if keys:
            plots.append(
                "for [i=0:%d] %s index i using 1:2 axes x1y1 with lines"
                " lw 1 lc rgb word(colours, i %% %d + 1) notitle"
                % (len(keys) - 1, gp_str(sess_dat), len(SESSION_COLOURS)))
        plots.append("%s using 1:2 axes x1y2 with lines lw 3 lc rgb '%s'"
                     " title 'total (right axis)'"
                     % (gp_str(total_dat), COLOUR["total"]))
        if "appliance" in kinds:
            plots.append("keyentry with lines lw 2 lc rgb '%s'"
                         " title 'appliance migration'" % COLOUR["appliance"])
        if "cvm" in kinds:
            plots.append("keyentry with lines lw 2 dt 2 lc rgb '%s'"
                         " title 'containerVM migration'" % COLOUR["cvm"])
        gp.append("colours = %s" % gp_str(" ".join(SESSION_COLOURS)))
        gp.append("plot " + ", \\\n     ".join(plots))
        script = os.path.join(tmp, "plot.gp")
        with open(script, "w") as f:
            f.write("\n".join(gp) + "\n")
        r = subprocess.run(["gnuplot", script], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, universal_newlines=True)
        if r.returncode != 0:
            die(2, "gnuplot failed (status %d):\n%s"
                % (r.returncode, r.stderr.strip()))
    return out


def summary(args):
    """The summary subcommand; returns the exit status."""
    if args.plot is not None:
        if args.timeline is None:
            die(2, "summary --plot needs --timeline")
        plot(args.timeline, args.events, args.plot, args.title)
    runs = load_runs(args.runs)
    backend = load_backend(args.backend)
    max_resume = load_status(args.status)
    events = load_events(args.events)

    bad = []
    lost = dups = 0
    for s in runs:
        s_lost = (max(0, s["sent"] - s["received"]) +
                  max(0, min(s["sent"], s["received"]) - s["verified"]))
        s_dup = max(0, s["received"] - s["sent"])
        lost += s_lost
        dups += s_dup
        why = []
        if not s["ok"]:
            why.append("not ok: %s" % (s["error"] or "no error given"))
        if s_lost:
            why.append("%d bytes lost" % s_lost)
        if s_dup:
            why.append("%d bytes duplicated" % s_dup)
        if why:
            bad.append("%s (%s): %s" % (s["name"], s["where"],
                                         "; ".join(why)))

    # Each session's sent stream must be one backend connection's input.
    sent = collections.Counter(s["sha"] for s in runs)
    got = collections.Counter(sha for _, sha, _ in backend)
    if sent != got:
        extra_sent = sent - got
        for s in runs:
            if extra_sent[s["sha"]] > 0:
                extra_sent[s["sha"]] -= 1
                bad.append("%s (%s): sha256_sent %s (%d bytes) matches no "
                           "backend connection's sha256_in"
                           % (s["name"], s["where"], s["sha"], s["sent"]))
        extra_got = got - sent
        for w, sha, n in backend:
            if extra_got[sha] > 0:
                extra_got[sha] -= 1
                bad.append("backend connection (%s): sha256_in %s (%d "
                           "bytes) matches no session's sha256_sent"
                           % (w, sha, n))

    out = collections.OrderedDict([
        ("sessions", len(runs)),
        ("migrations", sum(1 for e in events
                           if e["kind"] in MIGRATION_KINDS)),
        ("bytes_sent", sum(s["sent"] for s in runs)),
        ("bytes_verified", sum(s["verified"] for s in runs)),
        ("bytes_lost", lost),
        ("duplicates", dups),
        ("max_resume_ms", max_resume),
        ("plot", args.plot),
    ])
    print(json.dumps(out, separators=(",", ":")))
    sys.stdout.flush()
    for line in bad:
        print("vreport: FAIL " + line, file=sys.stderr)
    return 1 if bad else 0


def main():
    """Parse the command line and run a subcommand."""
    ap = argparse.ArgumentParser(
        description="Judge and plot a vMotion run (see the docstring).")
    sub = ap.add_subparsers(dest="cmd", metavar="summary|plot")
    sub.required = True
    s = sub.add_parser("summary", help="one JSON line; exit 1 on any loss")
    s.add_argument("--runs", nargs="+", required=True, metavar="F")
    s.add_argument("--backend", nargs="+", required=True, metavar="F")
    s.add_argument("--status", nargs="+", required=True, metavar="F")
    s.add_argument("--events", required=True, metavar="F")
    s.add_argument("--plot", metavar="PNG")
    s.add_argument("--timeline", metavar="CSV")
    s.add_argument("--title", metavar="T")
    p = sub.add_parser("plot", help="draw the timeline with gnuplot")
    p.add_argument("--timeline", required=True, metavar="CSV")
    p.add_argument("--events", required=True, metavar="F")
    p.add_argument("--out", required=True, metavar="PNG")
    p.add_argument("--title", metavar="T")
    args = ap.parse_args()
    try:
        if args.cmd == "summary":
            return summary(args)
        plot(args.timeline, args.events, args.out, args.title)
        return 0
    except InputError as e:
        die(2, str(e))


if __name__ == "__main__":
    sys.exit(main())
