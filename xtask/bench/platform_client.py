#!/usr/bin/env python3
"""Client of `cargo xtask bench platform` (standard library only).

Deploys no-op actions on a running faasload platform through its OpenWhisk REST API,
exactly as a client would, then measures on ONE keep-alive connection per server, with
a monotonic clock (time.perf_counter_ns):

- warm blocking invokes: R repetitions of N sequential requests after a warm-up, the
  round trip of each, the action's `duration` from each returned record, and the
  platform overhead = round trip - duration;
- cold starts: C times, update the action (new code => new revision) then invoke it;
  round trip, `initTime`, `waitTime`;
- the HTTP floor: the same requests, same client, against a trivial loopback server
  answering a fixed activation record (run by xtask), interleaved with the platform
  repetitions so both see the same machine noise.

Prints a table on stdout and writes the Markdown results (tables, raw per-repetition
numbers, a reading) to --out-md. Exits non-zero on any failed request.
"""

import argparse
import base64
import http.client
import json
import statistics
import sys
import time


def pct(sorted_xs, p):
    """Nearest-rank percentile of an already sorted list."""
    if not sorted_xs:
        raise ValueError("no samples")
    k = max(0, min(len(sorted_xs) - 1, int(-(-p * len(sorted_xs) // 100)) - 1))
    return sorted_xs[k]


def us(ns):
    return ns / 1000.0


class Client:
    """One keep-alive HTTP/1.1 connection with Basic auth."""

    def __init__(self, hostport, auth):
        host, port = hostport.rsplit(":", 1)
        self.conn = http.client.HTTPConnection(host, int(port), timeout=120)
        token = base64.b64encode(auth.encode()).decode()
        self.headers = {
            "Authorization": "Basic " + token,
            "Content-Type": "application/json",
            "Accept": "application/json",
        }
        self.connects = 0

    def request(self, method, path, body):
        """Returns (status, body bytes, round trip ns)."""
        if self.conn.sock is None:
            self.connects += 1
        t0 = time.perf_counter_ns()
        self.conn.request(method, path, body=body, headers=self.headers)
        resp = self.conn.getresponse()
        data = resp.read()
        t1 = time.perf_counter_ns()
        if resp.will_close:
            self.conn.close()
        return resp.status, data, t1 - t0


def annotation(record, key):
    for a in record.get("annotations", []):
        if a.get("key") == key:
            return a.get("value")
    return None


def invoke(client, action):
    path = "/api/v1/namespaces/_/actions/%s?blocking=true" % action
    status, data, rt = client.request("POST", path, b"{}")
    if status != 200:
        raise SystemExit("invoke %s: HTTP %d: %s" % (action, status, data[:300]))
    return rt, data


def check_record(action, data):
    rec = json.loads(data)
    if not rec.get("response", {}).get("success", False):
        raise SystemExit("invoke %s: not a success: %s" % (action, data[:300]))
    return rec


def deploy(client, action, kind, code, memory):
    body = json.dumps(
        {"exec": {"kind": kind, "code": code}, "limits": {"memory": memory}}
    ).encode()
    path = "/api/v1/namespaces/_/actions/%s?overwrite=true" % action
    status, data, _ = client.request("PUT", path, body)
    if status != 200:
        raise SystemExit("deploy %s: HTTP %d: %s" % (action, status, data[:300]))


UNEXPECTED_COLD = {}


def warm_rep(client, action, n):
    """n sequential invokes; returns lists of round trips and durations (ns).

    The record is parsed after the clock stopped; an invoke that was not warm (has
    initTime) is counted in UNEXPECTED_COLD and reported."""
    rts, durs = [], []
    for _ in range(n):
        rt, data = invoke(client, action)
        rts.append(rt)
        rec = check_record(action, data)
        durs.append(int(rec["duration"]) * 1_000_000)
        if annotation(rec, "initTime") is not None:
            UNEXPECTED_COLD[action] = UNEXPECTED_COLD.get(action, 0) + 1
    return rts, durs


def summarize(xs):
    s = sorted(xs)
    return {
        "p50": pct(s, 50),
        "p99": pct(s, 99),
        "max": s[-1],
        "mean": statistics.fmean(s),
    }


def spread(vals):
    """'median (min..max)' in microseconds."""
    return "%.0f (%.0f..%.0f)" % (
        us(statistics.median(vals)),
        us(min(vals)),
        us(max(vals)),
    )


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--platform", required=True, help="host:port of the platform")
    ap.add_argument("--floor", required=True, help="host:port of the HTTP floor server")
    ap.add_argument("--auth", required=True, help="uuid:key")
    ap.add_argument(
        "--action",
        action="append",
        required=True,
        help="name=kind=file (repeatable; one row each)",
    )
    ap.add_argument("--memory", type=int, default=128)
    ap.add_argument("-n", type=int, required=True, help="invokes per repetition")
    ap.add_argument("-r", type=int, required=True, help="repetitions")
    ap.add_argument("--warmup", type=int, required=True)
    ap.add_argument("--cold", type=int, required=True, help="cold starts per action")
    ap.add_argument("--out-md", required=True)
    a = ap.parse_args()

    actions = []
    for spec in a.action:
        name, kind, path = spec.split("=", 2)
        with open(path) as f:
            actions.append((name, kind, path, f.read()))

    plat = Client(a.platform, a.auth)
    floor = Client(a.floor, a.auth)

    for name, kind, _, code in actions:
        deploy(plat, name, kind, code, a.memory)

    # Cold starts: each update is a new revision, whose first invoke cannot reuse a
    # container of the previous one. The PUT is not timed.
    comment = {"python:3": "# ", "nodejs:20": "// "}
    cold = {}
    for name, kind, _, code in actions:
        rows = []
        for i in range(a.cold):
            new = code + "\n%sbench revision %d\n" % (comment.get(kind, "# "), i)
            deploy(plat, name, kind, new, a.memory)
            rt, data = invoke(plat, name)
            rec = check_record(name, data)
            init = annotation(rec, "initTime")
            if init is None:
                raise SystemExit(
                    "cold invoke of %s after an update has no initTime: %s"
                    % (name, data[:300])
                )
            rows.append(
                (rt, int(init) * 1_000_000, int(annotation(rec, "waitTime") or 0) * 1_000_000,
                 int(rec["duration"]) * 1_000_000)
            )
        cold[name] = rows
        # Back to the original code for the warm runs (one more cold start, untimed).
        deploy(plat, name, kind, code, a.memory)

    # Warm-up: the first invoke after the last update is cold; then warm.
    for name, _, _, _ in actions:
        warm_rep(plat, name, a.warmup)
    warm_rep(floor, "noop", a.warmup)
    UNEXPECTED_COLD.clear()

    # Repetitions, interleaved: floor, then each action.
    reps = {"floor": []}
    for name, _, _, _ in actions:
        reps[name] = []
    for r in range(a.r):
        rts, durs = warm_rep(floor, "noop", a.n)
        reps["floor"].append((rts, durs))
        for name, _, _, _ in actions:
            rts, durs = warm_rep(plat, name, a.n)
            reps[name].append((rts, durs))
        print(
            "  repetition %d/%d done" % (r + 1, a.r), file=sys.stderr, flush=True
        )

    if plat.connects != 1 or floor.connects != 1:
        raise SystemExit(
            "the keep-alive connection was not reused (platform: %d connects, floor: %d)"
            % (plat.connects, floor.connects)
        )

    # Per-row statistics.
    labels = [("floor", "HTTP floor (loopback server, fixed record)")]
    labels += [(n, "platform %s (%s)" % (n, k)) for n, k, _, _ in actions]
    stats = {}
    for key, label in labels:
        rt_s, dur_s, ovh_s, all_rt = [], [], [], []
        for rts, durs in reps[key]:
            rt_s.append(summarize(rts))
            dur_s.append(summarize(durs))
            ovh_s.append(summarize([x - d for x, d in zip(rts, durs)]))
            all_rt.extend(rts)
        stats[key] = (label, rt_s, dur_s, ovh_s, all_rt)

    def med(summaries, field):
        return statistics.median(s[field] for s in summaries)

    floor_p50 = med(stats["floor"][1], "p50")
    floor_p99 = med(stats["floor"][1], "p99")

    # ---- stdout table ----
    out = []
    out.append(
        "warm blocking invoke, %d reps x %d sequential requests (after %d warm-up), one keep-alive connection; "
        "us, median of per-rep values (min..max)" % (a.r, a.n, a.warmup)
    )
    hdr = "%-44s %-22s %-22s %-10s %-10s %-14s %-14s %s" % (
        "row", "p50", "p99", "max", "mean", "duration p50", "overhead p50", "overhead p99"
    )
    out.append(hdr)
    for key, _ in labels:
        label, rt_s, dur_s, ovh_s, all_rt = stats[key]
        split = ("-", "-", "-") if key == "floor" else (
            "%.0f" % us(med(dur_s, "p50")),
            "%.0f" % us(med(ovh_s, "p50")),
            "%.0f" % us(med(ovh_s, "p99")),
        )
        out.append(
            "%-44s %-22s %-22s %-10.0f %-10.0f %-14s %-14s %s"
            % (
                (
                    label,
                    spread([s["p50"] for s in rt_s]),
                    spread([s["p99"] for s in rt_s]),
                    us(max(all_rt)),
                    us(med(rt_s, "mean")),
                )
                + split
            )
        )
    for name, _, _, _ in actions:
        rt_s = stats[name][1]
        out.append(
            "ratio platform %s / floor: p50 %.1fx, p99 %.1fx"
            % (name, med(rt_s, "p50") / floor_p50, med(rt_s, "p99") / floor_p99)
        )
    out.append("cold start (update, then invoke), %d per action; ms, median (min..max)" % a.cold)
    for name, kind, _, _ in actions:
        rows_c = cold[name]
        def ms_spread(i):
            v = [r[i] / 1e6 for r in rows_c]
            return "%.1f (%.1f..%.1f)" % (statistics.median(v), min(v), max(v))
        out.append(
            "  %-10s round trip %-22s initTime %-22s waitTime %-22s duration %s"
            % (name, ms_spread(0), ms_spread(1), ms_spread(2), ms_spread(3))
        )
    cold_note = "cold starts inside the warm repetitions: %s" % (
        ", ".join("%s %d" % kv for kv in sorted(UNEXPECTED_COLD.items())) or "none"
    )
    out.append(cold_note)
    print("\n".join(out), flush=True)

    # ---- Markdown ----
    md = []
    md.append("### Warm blocking invoke (no-op action)\n")
    md.append(
        "%d repetitions x %d sequential `POST .../actions/<name>?blocking=true` on one "
        "keep-alive connection, after %d warm-up invokes; the floor and the platform rows "
        "are interleaved repetition by repetition. Values in µs: median of the per-repetition "
        "values, (min..max) across repetitions; `max` is over all samples. `duration` is the "
        "action's own time from each activation record (OpenWhisk records it in whole "
        "milliseconds), overhead = round trip − duration per request.\n" % (a.r, a.n, a.warmup)
    )
    md.append(
        "| row | p50 | p99 | max | mean | duration p50 | overhead p50 | overhead p99 | p50 / floor | p99 / floor |"
    )
    md.append("|---|---|---|---|---|---|---|---|---|---|")
    for key, _ in labels:
        label, rt_s, dur_s, ovh_s, all_rt = stats[key]
        if key == "floor":
            split = "– | – | –"
        else:
            split = "%.0f | %.0f | %.0f" % (
                us(med(dur_s, "p50")),
                us(med(ovh_s, "p50")),
                us(med(ovh_s, "p99")),
            )
        md.append(
            "| %s | %s | %s | %.0f | %.0f | %s | %.1f× | %.1f× |"
            % (
                label,
                spread([s["p50"] for s in rt_s]),
                spread([s["p99"] for s in rt_s]),
                us(max(all_rt)),
                us(med(rt_s, "mean")),
                split,
                med(rt_s, "p50") / floor_p50,
                med(rt_s, "p99") / floor_p99,
            )
        )
    md.append("")
    md.append("%s (an invoke with `initTime` in a warm repetition would be one).\n" % cold_note.capitalize())
    md.append("Raw per-repetition round trips (µs: p50 / p99 / max / mean):\n")
    md.append("| row | " + " | ".join("rep %d" % (i + 1) for i in range(a.r)) + " |")
    md.append("|---|" + "---|" * a.r)
    for key, _ in labels:
        label, rt_s, _, _, _ = stats[key]
        md.append(
            "| %s | " % label
            + " | ".join(
                "%.0f / %.0f / %.0f / %.0f" % (us(s["p50"]), us(s["p99"]), us(s["max"]), us(s["mean"]))
                for s in rt_s
            )
            + " |"
        )
    md.append("")
    md.append("### Cold start (new revision, then invoke)\n")
    md.append(
        "%d times per action: update the action (`PUT ?overwrite=true` with changed code, "
        "not timed), then one blocking invoke. Medians in ms (min..max); `initTime` and "
        "`waitTime` from the record's annotations.\n" % a.cold
    )
    md.append("| action | round trip | initTime | waitTime | duration (incl. init) | raw round trips (ms) |")
    md.append("|---|---|---|---|---|---|")
    for name, kind, _, _ in actions:
        rows_c = cold[name]
        def cell(i):
            v = [r[i] / 1e6 for r in rows_c]
            return "%.1f (%.1f..%.1f)" % (statistics.median(v), min(v), max(v))
        md.append(
            "| %s (%s) | %s | %s | %s | %s | %s |"
            % (name, kind, cell(0), cell(1), cell(2), cell(3),
               ", ".join("%.1f" % (r[0] / 1e6) for r in rows_c))
        )
    md.append("")

    # ---- Reading (every number below comes from this run) ----
    first = actions[0][0]
    _, rt_s, dur_s, ovh_s, _ = stats[first]
    p50 = med(rt_s, "p50")
    p99 = med(rt_s, "p99")
    spread_p50 = (max(s["p50"] for s in rt_s) - min(s["p50"] for s in rt_s)) / p50 * 100
    parts = []
    parts.append(
        "A warm blocking invoke of the Python no-op through the embedded platform takes "
        "%.0f µs at the median and %.0f µs at p99 (median over repetitions; the per-repetition "
        "p50 varies by %.0f %% from best to worst, so smaller differences are noise). "
        % (us(p50), us(p99), spread_p50)
    )
    dur50 = med(dur_s, "p50")
    parts.append(
        "The action's own recorded `duration` is %.0f ms at the median (whole milliseconds, "
        "so %s), hence round trip − duration is %.0f µs at p50 and %.0f µs at p99. That "
        "difference still contains the client and HTTP: the same Python client against a "
        "loopback server that only answers a fixed record takes %.0f µs (p99 %.0f µs), "
        "about %.0f %% of the platform's median. What the platform itself adds above that "
        "floor (REST, auth, pool, the ActionLoop exchange with the runtime process, the "
        "record) is about %.0f µs at p50 and %.0f µs at p99, i.e. the platform row is "
        "%.1f× the floor at p50 and %.1f× at p99. "
        % (
            dur50 / 1e6,
            "under 1 ms: the split is only as exact as that" if dur50 == 0
            else "the split is only as exact as 1 ms",
            us(med(ovh_s, "p50")),
            us(med(ovh_s, "p99")),
            us(floor_p50),
            us(floor_p99),
            floor_p50 / p50 * 100,
            us(p50 - floor_p50),
            us(p99 - floor_p99),
            p50 / floor_p50,
            p99 / floor_p99,
        )
    )
    if len(actions) > 1:
        second = actions[1][0]
        parts.append(
            "The Node.js no-op is %.0f µs at p50 (%.1f× the floor). "
            % (us(med(stats[second][1], "p50")), med(stats[second][1], "p50") / floor_p50)
        )
    cold_bits = []
    for name, _, _, _ in actions:
        rows_c = cold[name]
        cold_bits.append(
            "%s %.0f ms round trip with %.0f ms initTime"
            % (
                name,
                statistics.median(r[0] for r in rows_c) / 1e6,
                statistics.median(r[1] for r in rows_c) / 1e6,
            )
        )
    parts.append(
        "A cold start (median of %d) costs %s; these are process-backend cold starts "
        "(a cgroup, a sandboxed process, the runtime's start-up), not Docker ones, so they "
        "say nothing about a real OpenWhisk deployment's cold starts. "
        % (a.cold, "; ".join(cold_bits))
    )
    parts.append(
        "Sequential requests on one connection measure latency, not throughput; the "
        "numbers hold for this machine and this run only."
    )
    md.append("### Reading\n")
    md.append("".join(parts))
    md.append("")

    with open(a.out_md, "w") as f:
        f.write("\n".join(md))


if __name__ == "__main__":
    main()
