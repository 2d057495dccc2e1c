"""wand_rotate: rotates an image by `angle` degrees, one of 90, 180, 270 (Wand)."""
from wand.image import Image

from faasload_store import param_choice, run_etl


def prepare(args):
    angle = param_choice(args, "angle", 90, (90, 180, 270))

    def transform(data):
        with Image(blob=data) as img:
            img.rotate(angle)
            return img.make_blob()
    return transform


def main(args):
    return run_etl(args, "wand_rotate", prepare)
