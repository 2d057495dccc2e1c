"""faasload action proxy for the python runtime image (OpenWhisk-compatible).

An HTTP server on port 8080 speaking OpenWhisk's container protocol:
  POST /init {"value": {"name", "main", "code", "binary", "env"}} -> {"ok": true} or 502 {"error"}
  POST /run  {"value": {...}, "activation_id", "namespace", "action_name", "deadline",
              "api_key"?, "transaction_id"}                      -> the action's result
Like OpenWhisk's ActionLoop proxy, it runs the action in a separate process (the
launcher, /proxy/launcher.py) that reads one JSON line per message on stdin and answers
one JSON line on fd 3; every key but "value" becomes an env var __OW_<KEY>. The action's
stdout/stderr are the container's, and after each activation (and after a failed init)
the proxy writes the sentinel XXX_THE_END_OF_A_WHISK_ACTIVATION_XXX to both. When the
action process dies without answering (crash, OOM kill) the proxy exits at once without
answering, so the container stops and its state (OOMKilled) tells the invoker why.
"""
import base64
import json
import os
import subprocess
import sys
from http.server import BaseHTTPRequestHandler, HTTPServer

SENTINEL = "XXX_THE_END_OF_A_WHISK_ACTIVATION_XXX"
WORK = "/action"
LAUNCHER = [sys.executable, "-u", "-B", "/proxy/launcher.py"]
CODE_FILE = "action.py"


class Runner:
    proc = None
    answers = None


def sentinels():
    sys.stdout.write(SENTINEL + "\n")
    sys.stdout.flush()
    sys.stderr.write(SENTINEL + "\n")
    sys.stderr.flush()


def die():
    sentinels()
    os._exit(1)


def exchange(msg):
    """Sends one message to the launcher and returns its answer line (dies on EOF)."""
    try:
        Runner.proc.stdin.write((json.dumps(msg) + "\n").encode())
        Runner.proc.stdin.flush()
    except (BrokenPipeError, OSError):
        die()
    line = Runner.answers.readline()
    if not line:
        die()
    return line.decode("utf-8", "replace").strip()


def start(value):
    os.makedirs(WORK, exist_ok=True)
    binary = bool(value.get("binary"))
    code = value.get("code") or ""
    name = "action.zip" if binary else CODE_FILE
    data = base64.b64decode(code) if binary else code.encode()
    with open(os.path.join(WORK, name), "wb") as f:
        f.write(data)
    r, w = os.pipe()
    # The answer pipe becomes fd 3 of the launcher only (fd 3 here may be the listening socket).
    shell = ['exec "$0" "$@" 3>&%d %d>&-' % (w, w)] + LAUNCHER
    Runner.proc = subprocess.Popen(["/bin/sh", "-c"] + shell, cwd=WORK, stdin=subprocess.PIPE, pass_fds=(w,))
    os.close(w)
    Runner.answers = os.fdopen(r, "rb")
    env = value.get("env") or {}
    return exchange({"main": value.get("main") or "main", "binary": binary, "file": name, "env": env})


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def answer(self, status, text):
        body = text.encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        self.wfile.flush()

    def do_POST(self):
        n = int(self.headers.get("Content-Length") or 0)
        try:
            msg = json.loads(self.rfile.read(n) or b"{}")
        except ValueError:
            self.answer(400, json.dumps({"error": "request is not JSON"}))
            return
        if self.path == "/init":
            if Runner.proc is not None:
                self.answer(403, json.dumps({"error": "Cannot initialize the action more than once."}))
                return
            try:
                line = start(msg.get("value") or {})
            except Exception as e:
                sentinels()
                self.answer(502, json.dumps({"error": "Cannot initialize the action: %s" % e}))
                return
            ok = False
            try:
                ok = json.loads(line).get("ok") is True
            except (ValueError, AttributeError):
                pass
            if ok:
                self.answer(200, json.dumps({"ok": True}))
            else:
                sentinels()
                self.answer(502, line)
        elif self.path == "/run":
            if Runner.proc is None:
                self.answer(502, json.dumps({"error": "The action was not initialized."}))
                return
            line = exchange(msg)
            sentinels()
            self.answer(200, line)
        else:
            self.answer(404, json.dumps({"error": "not found"}))


if __name__ == "__main__":
    # Block in select() until a request comes: the default 0.5 s poll wakes an idle
    # container twice a second (~0.2 ms of CPU/s), which the monitor would count as busy.
    HTTPServer(("0.0.0.0", 8080), Handler).serve_forever(poll_interval=None)
