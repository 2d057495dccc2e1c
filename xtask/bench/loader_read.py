#!/usr/bin/env python3
"""Reader of `cargo xtask bench loader` (standard library only).

    loader_read.py db  <results.db>   one faasload load's rows in its SQLite store
    loader_read.py oha <oha.json>     one oha run's JSON output

Prints one line of `key=value` pairs (integers in ns, rates in /s) for xtask to parse:

- db: rows, errors (class != 'success'), send lag (`lag_ns` = sent - intended) p50/p99/max,
  latency (`latency_ns` = answered - intended) p50/p99, first and last send instants
  (`sent_epoch_ns`) and the achieved rate = (rows - 1) / (last sent - first sent).
- oha: requests, errors (non-2xx answers + client errors), latency p50/p99 (oha's
  percentiles; from the intended send instant when run with --latency-correction) and
  its requests per second.

Percentiles are nearest-rank on the exact values (no histogram rounding).
"""

import json
import math
import sqlite3
import sys


def pct(sorted_xs, p):
    if not sorted_xs:
        return -1
    k = max(0, min(len(sorted_xs) - 1, math.ceil(p / 100.0 * len(sorted_xs)) - 1))
    return sorted_xs[k]


def db(path):
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    rows = con.execute("SELECT class, lag_ns, latency_ns, sent_epoch_ns FROM runs").fetchall()
    con.close()
    errors = sum(1 for r in rows if r[0] != "success")
    lags = sorted(r[1] for r in rows if r[1] is not None)
    lats = sorted(r[2] for r in rows if r[2] is not None)
    sent = [r[3] for r in rows if r[3] is not None]
    first, last = (min(sent), max(sent)) if sent else (0, 0)
    rate = (len(sent) - 1) / ((last - first) / 1e9) if last > first else 0.0
    out = {
        "rows": len(rows),
        "errors": errors,
        "lag_p50": pct(lags, 50),
        "lag_p99": pct(lags, 99),
        "lag_max": lags[-1] if lags else -1,
        "lat_p50": pct(lats, 50),
        "lat_p99": pct(lats, 99),
        "first_sent": first,
        "last_sent": last,
        "rate": f"{rate:.1f}",
    }
    print(" ".join(f"{k}={v}" for k, v in out.items()))


def oha(path):
    with open(path) as f:
        d = json.load(f)
    codes = d.get("statusCodeDistribution") or {}
    ok = sum(v for k, v in codes.items() if str(k).startswith("2"))
    bad = sum(v for k, v in codes.items() if not str(k).startswith("2"))
    client_errors = sum((d.get("errorDistribution") or {}).values())
    lp = d.get("latencyPercentiles") or {}

    def ns(v):
        return -1 if v is None else int(round(float(v) * 1e9))

    out = {
        "requests": ok + bad + client_errors,
        "errors": bad + client_errors,
        "lat_p50": ns(lp.get("p50")),
        "lat_p99": ns(lp.get("p99")),
        "rate": f"{float(d['summary']['requestsPerSec']):.1f}",
    }
    print(" ".join(f"{k}={v}" for k, v in out.items()))


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] not in ("db", "oha"):
        sys.exit(__doc__)
    {"db": db, "oha": oha}[sys.argv[1]](sys.argv[2])
