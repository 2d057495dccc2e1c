"""Probes its sandbox: every probe reports whether the forbidden operation succeeded.

Parameters: `read` (a root-only file), `write` (paths outside the working directory),
`signal` (pids to signal with 0), `marker` (a string to look for in other processes'
command lines).
"""
import os
import resource


def attempt(fn):
    try:
        fn()
        return "succeeded"
    except Exception as e:
        return type(e).__name__ + ": " + str(e)


def main(args):
    out = {"uid": os.getuid(), "euid": os.geteuid(), "pid": os.getpid(), "cwd": os.getcwd()}
    out["read"] = {p: attempt(lambda p=p: open(p).read()) for p in args.get("read", [])}
    out["write"] = {p: attempt(lambda p=p: open(p, "w").write("x")) for p in args.get("write", [])}
    out["signal"] = {str(p): attempt(lambda p=p: os.kill(int(p), 0)) for p in args.get("signal", [])}
    procs = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open("/proc/%s/cmdline" % d, "rb") as f:
                    procs.append(f.read().replace(b"\0", b" ").decode(errors="replace"))
            except OSError:
                pass
    out["procs"] = procs
    out["own_write"] = attempt(lambda: open("own.txt", "w").write("ok"))
    with open("/proc/self/status") as f:
        out["no_new_privs"] = [l.split()[1] for l in f if l.startswith("NoNewPrivs")][0]
    out["nofile"] = list(resource.getrlimit(resource.RLIMIT_NOFILE))
    return out
