"""py_compress: CPU-bound kernel, zlib compression of an object at `level` 1..9 (output `.z`)."""
import zlib

from faasload_store import param_int, run_etl, with_ext


def prepare(args):
    level = param_int(args, "level", 6, 1, 9)
    return lambda data: zlib.compress(data, level)


def main(args):
    return run_etl(args, "py_compress", prepare, with_ext("z"))
