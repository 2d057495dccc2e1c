"""Allocates and touches `mb` megabytes (default 64), keeping them until it returns."""


def main(args):
    mb = int(args.get("mb", 64))
    chunks = []
    for _ in range(mb):
        chunks.append(bytearray(b"x" * (1024 * 1024)))
    return {"allocated_mb": len(chunks)}
