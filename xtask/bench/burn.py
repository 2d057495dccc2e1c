"""Fixed units of CPU work for `cargo xtask bench monitor-overhead`.

Prints "ready", then on "run <bursts> <iterations> <sleep_us>" works in a loop until the
next line arrives on stdin: one unit of work is <bursts> times a loop of <iterations>
additions followed by a sleep of <sleep_us> µs (so that many such processes switch
often). For every unit it records its start and end on the monotonic clock, the CPU
time this thread spent on it (CLOCK_THREAD_CPUTIME_ID, which includes the kernel's work
done on the thread's behalf: its syscalls and the scheduler's programs charged to it),
and the CPU time of its fastest loop (the loop alone, without the sleep: usually one that
ran without being switched out or interrupted, so a measure of how fast the machine runs
plain code at that moment), all in ns. Nothing is written while it works. On the next
line ("dump") it prints one line "<start> <end> <cpu> <fastest loop>" per unit, then
"end", and waits for the next command; EOF or "quit" ends it. The work is a fixed number
of iterations, not a CPU-time budget, so any time taken from it shows up as more CPU per
unit.
"""
import array
import select
import sys
import time


def work(bursts, iters, sleep_s):
    rec = array.array("q")
    mono = time.monotonic_ns
    cpu = time.thread_time_ns
    stdin = [sys.stdin]
    while True:
        t0 = mono()
        c0 = cpu()
        fastest = 1 << 62
        for _ in range(bursts):
            x = 0
            l0 = cpu()
            for i in range(iters):
                x += i
            loop = cpu() - l0
            if loop < fastest:
                fastest = loop
            if sleep_s:
                time.sleep(sleep_s)
        c1 = cpu()
        t1 = mono()
        rec.append(t0)
        rec.append(t1)
        rec.append(c1 - c0)
        rec.append(fastest)
        if select.select(stdin, [], [], 0)[0]:
            return rec


def main():
    print("ready", flush=True)
    while True:
        line = sys.stdin.readline()
        parts = line.split()
        if not parts or parts[0] == "quit":
            return
        if parts[0] != "run" or len(parts) != 4:
            print(f"error: unknown command {line.strip()!r}", flush=True)
            return
        rec = work(int(parts[1]), int(parts[2]), int(parts[3]) / 1e6)
        if sys.stdin.readline().split() != ["dump"]:
            print("error: expected dump", flush=True)
            return
        out = [" ".join(map(str, rec[i : i + 4])) for i in range(0, len(rec), 4)]
        out.append("end")
        sys.stdout.write("\n".join(out) + "\n")
        sys.stdout.flush()


main()
