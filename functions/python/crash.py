"""Exits the process abruptly, without an answer."""
import os


def main(args):
    print("about to crash")
    os._exit(3)
