"""Burns `ms` milliseconds of CPU (default 100) while holding `mb` megabytes (default 32)."""
import time


def main(args):
    ms = int(args.get("ms", 100))
    mb = int(args.get("mb", 32))
    hold = bytearray(b"x" * (mb * 1024 * 1024))
    end = time.process_time() + ms / 1000.0
    n = 0
    while time.process_time() < end:
        n += 1
    return {"iterations": n, "held_mb": len(hold) // (1024 * 1024)}
