"""Greets `name`; logs to stdout and stderr; returns the activation id."""
import os
import sys


def main(args):
    name = args.get("name", "stranger")
    print("hello from python:", name)
    print("a line on stderr", file=sys.stderr)
    return {
        "greeting": "Hello " + name + "!",
        "activation_id": os.environ.get("__OW_ACTIVATION_ID"),
        "action_name": os.environ.get("__OW_ACTION_NAME"),
        "params": args,
    }
