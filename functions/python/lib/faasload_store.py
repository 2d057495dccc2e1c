"""Object store access and the ETL contract shared by the Python function suite.

Storage interface (one class per backend): ``get(container, name) -> bytes`` and
``put(container, name, data) -> int`` (bytes written). ``open_store(args)`` picks the
backend named by the ``FAASLOAD_STORE`` environment variable (default ``dir``).
The ``dir`` backend keeps each container in a sub-directory of a root directory, given
by the ``store_dir`` parameter or the ``FAASLOAD_STORE_DIR`` environment variable.
"""
import os
import time


class StoreError(Exception):
    """A missing object, a bad name or an unusable store."""


class DirStore:
    """Containers are sub-directories of ``root``; objects are files in them."""

    def __init__(self, root):
        if not root:
            raise StoreError("no object store: set the store_dir parameter or FAASLOAD_STORE_DIR")
        self.root = root

    def _path(self, container, name):
        for part in (container, name):
            if not part or part.startswith("/") or ".." in part.split("/"):
                raise StoreError("bad object name %r/%r" % (container, name))
        return os.path.join(self.root, container, name)

    def get(self, container, name):
        p = self._path(container, name)
        try:
            with open(p, "rb") as f:
                return f.read()
        except OSError as e:
            raise StoreError("cannot read object %s/%s: %s" % (container, name, e.strerror))

    def put(self, container, name, data):
        p = self._path(container, name)
        try:
            os.makedirs(os.path.dirname(p), exist_ok=True)
            tmp = p + ".tmp%d" % os.getpid()
            with open(tmp, "wb") as f:
                f.write(data)
            os.replace(tmp, p)
        except OSError as e:
            raise StoreError("cannot write object %s/%s: %s" % (container, name, e.strerror))
        return len(data)


BACKENDS = {"dir": lambda args: DirStore(args.get("store_dir") or os.environ.get("FAASLOAD_STORE_DIR"))}


def open_store(args):
    kind = os.environ.get("FAASLOAD_STORE", "dir")
    if kind not in BACKENDS:
        raise StoreError("unknown object store backend %r (FAASLOAD_STORE)" % kind)
    return BACKENDS[kind](args)


def input_location(args):
    """(container, name) of the input: ``incont``/``object``, or ``object`` = ``container/name``."""
    obj = args.get("object")
    if not isinstance(obj, str) or not obj:
        raise StoreError("missing parameter 'object'")
    incont = args.get("incont")
    if incont:
        return str(incont), obj
    if "/" not in obj:
        raise StoreError("object %r has no container: give 'incont' or 'container/name'" % obj)
    c, n = obj.split("/", 1)
    return c, n


def param_float(args, name, default, lo, hi):
    v = args.get(name, default)
    try:
        v = float(v)
    except (TypeError, ValueError):
        raise StoreError("parameter %r must be a number, got %r" % (name, args.get(name)))
    if not lo <= v <= hi:
        raise StoreError("parameter %r must be in %s..%s, got %s" % (name, lo, hi, v))
    return v


def param_int(args, name, default, lo, hi):
    v = param_float(args, name, default, lo, hi)
    if v != int(v):
        raise StoreError("parameter %r must be an integer, got %r" % (name, args.get(name)))
    return int(v)


def param_choice(args, name, default, values):
    v = args.get(name, default)
    s = str(v).lower() if isinstance(v, (str, bool)) else v
    for c in values:
        if s == c or str(s) == str(c).lower():
            return c
    raise StoreError("parameter %r must be one of %s, got %r" % (name, list(values), v))


def run_etl(args, function, prepare, out_name=None):
    """Extract the input, transform it, load the output; returns the contract's result.

    ``prepare(args)`` reads and checks the parameters (raising StoreError) before any
    work, and returns ``transform(data: bytes) -> bytes``. ``out_name(name) -> name``
    renames the output (a new extension).
    """
    def ms(a, b):
        return round((b - a) * 1000.0, 3)

    try:
        transform = prepare(args)
        store = open_store(args)
        incont, name = input_location(args)
        outcont = str(args.get("outcont") or "out-" + function)
        t0 = time.perf_counter()
        data = store.get(incont, name)
        t1 = time.perf_counter()
        out = transform(data)
        t2 = time.perf_counter()
        oname = out_name(name) if out_name else name
        size = store.put(outcont, oname, out)
        t3 = time.perf_counter()
    except StoreError as e:
        return {"error": str(e)}
    return {
        "outputsize": size,
        "times": {"extract": ms(t0, t1), "transform": ms(t1, t2), "load": ms(t2, t3)},
        "output": outcont + "/" + oname,
    }


def with_ext(ext):
    """An ``out_name`` that replaces the extension with ``ext``."""
    def rename(name):
        base = name.rsplit(".", 1)[0] if "." in name.rsplit("/", 1)[-1] else name
        return base + "." + ext
    return rename
