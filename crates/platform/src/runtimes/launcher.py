"""faasload ActionLoop launcher for Python actions.

Reads one JSON line per message on stdin and answers one JSON line on fd 3. The first
message initialises: {"main", "binary", "file", "env"}; the code is in the working
directory (action.py, or action.zip with __main__.py and an optional virtualenv/).
Every later message is an activation: keys other than "value" become __OW_<KEY>.
"""
import glob
import importlib.util
import json
import os
import sys
import traceback
import zipfile

OUT = os.fdopen(3, "w", encoding="utf-8")


def reply(text):
    sys.stdout.flush()
    sys.stderr.flush()
    OUT.write(text + "\n")
    OUT.flush()


def load(init):
    main = init.get("main") or "main"
    path = init["file"]
    if init.get("binary"):
        with zipfile.ZipFile(path) as z:
            for n in z.namelist():
                if n.startswith("/") or ".." in n.split("/"):
                    raise ValueError("unsafe path in zip: " + n)
            z.extractall("action")
        venv = os.path.join("action", "virtualenv")
        if os.path.isdir(venv):
            for sp in glob.glob(os.path.join(venv, "lib", "python3*", "site-packages")):
                sys.path.insert(0, os.path.abspath(sp))
        sys.path.insert(0, os.path.abspath("action"))
        path = os.path.join("action", "__main__.py")
        if not os.path.exists(path):
            raise ValueError("Zip file does not include __main__.py")
    spec = importlib.util.spec_from_file_location("__action__", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    fn = getattr(mod, main, None)
    if not callable(fn):
        raise ValueError("action main function '%s' not found" % main)
    return fn


def serve():
    line = sys.stdin.readline()
    if not line:
        return
    init = json.loads(line)
    for k, v in (init.get("env") or {}).items():
        os.environ[k] = v if isinstance(v, str) else json.dumps(v)
    try:
        fn = load(init)
    except Exception as e:
        traceback.print_exc()
        reply(json.dumps({"error": "Cannot initialize the action: %s" % e}))
        return
    reply(json.dumps({"ok": True}))
    while True:
        line = sys.stdin.readline()
        if not line:
            return
        msg = json.loads(line)
        for k, v in msg.items():
            if k != "value":
                os.environ["__OW_" + k.upper()] = v if isinstance(v, str) else json.dumps(v)
        try:
            res = fn(msg.get("value") or {})
        except Exception as e:
            traceback.print_exc()
            res = {"error": str(e)}
        try:
            text = json.dumps(res, ensure_ascii=False)
        except Exception as e:
            print("result is not JSON serializable: %s" % e, file=sys.stderr)
            text = "null"
        reply(text)


serve()
