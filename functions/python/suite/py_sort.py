"""py_sort: memory-bound kernel, sorts the lines of a text object (`reverse` false/true)."""
from faasload_store import param_choice, run_etl


def prepare(args):
    reverse = param_choice(args, "reverse", False, (False, True))

    def transform(data):
        lines = data.split(b"\n")
        lines.sort(reverse=reverse)
        return b"\n".join(lines)
    return transform


def main(args):
    return run_etl(args, "py_sort", prepare)
