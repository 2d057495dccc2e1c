"""py_json: JSON round trip, parses an object, re-serialises it with sorted keys and `indent` 0/2/4."""
import json

from faasload_store import StoreError, param_choice, run_etl


def prepare(args):
    indent = param_choice(args, "indent", 0, (0, 2, 4))

    def transform(data):
        try:
            doc = json.loads(data)
        except ValueError as e:
            raise StoreError("input is not JSON: %s" % e)
        return json.dumps(doc, sort_keys=True, indent=indent or None).encode()
    return transform


def main(args):
    return run_etl(args, "py_json", prepare)
