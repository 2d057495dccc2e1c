"""Does nothing: the warm round-trip benchmark's action."""


def main(args):
    return {}
