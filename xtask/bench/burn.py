"""Fixed CPU work for `cargo xtask bench monitor-overhead`.

Prints "ready", then for each line "go <bursts> <iterations> <sleep_us>" on stdin runs
<bursts> times a loop of <iterations> additions followed by a sleep of <sleep_us> µs
(so that many such processes switch often), and prints the elapsed wall time in ns
(monotonic clock). The work is a fixed number of iterations, not a CPU-time budget, so
any time taken from it (a monitor's kernel programs, its sampling) shows up as slowdown.
"""
import sys
import time

print("ready", flush=True)
for line in sys.stdin:
    parts = line.split()
    if not parts or parts[0] != "go":
        break
    bursts, iters, sleep_s = int(parts[1]), int(parts[2]), int(parts[3]) / 1e6
    t0 = time.perf_counter_ns()
    for _ in range(bursts):
        x = 0
        for i in range(iters):
            x += i
        if sleep_s:
            time.sleep(sleep_s)
    print(time.perf_counter_ns() - t0, flush=True)
