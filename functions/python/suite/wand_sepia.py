"""wand_sepia: sepia toning of an image with ImageMagick (Wand); `threshold` 0.5..1.0."""
from wand.image import Image

from faasload_store import param_float, run_etl


def prepare(args):
    threshold = param_float(args, "threshold", 0.8, 0.5, 1.0)

    def transform(data):
        with Image(blob=data) as img:
            img.sepia_tone(threshold=threshold)
            return img.make_blob()
    return transform


def main(args):
    return run_etl(args, "wand_sepia", prepare)
