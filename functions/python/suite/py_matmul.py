"""py_matmul: CPU-bound kernel, C = A x A^T of a CSV matrix, `repeat` 1..3 times (C fed back)."""
from faasload_store import StoreError, param_int, run_etl


def parse(data):
    try:
        rows = [[float(x) for x in line.split(",")] for line in data.decode().splitlines() if line]
    except (UnicodeDecodeError, ValueError) as e:
        raise StoreError("input is not a CSV matrix: %s" % e)
    if not rows or any(len(r) != len(rows[0]) for r in rows):
        raise StoreError("input is not a rectangular CSV matrix")
    return rows


def prepare(args):
    repeat = param_int(args, "repeat", 1, 1, 3)

    def transform(data):
        a = parse(data)
        for _ in range(repeat):
            cols = a  # A^T's columns are A's rows
            a = [[sum(x * y for x, y in zip(r, c)) for c in cols] for r in a]
            m = max((abs(v) for r in a for v in r), default=1.0) or 1.0
            a = [[v / m for v in r] for r in a]
        return "".join(",".join("%.6g" % v for v in r) + "\n" for r in a).encode()
    return transform


def main(args):
    return run_etl(args, "py_matmul", prepare)
