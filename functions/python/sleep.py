"""Sleeps `ms` milliseconds (default 1000)."""
import time


def main(args):
    ms = int(args.get("ms", 1000))
    time.sleep(ms / 1000.0)
    return {"slept_ms": ms}
