"""wand_resize: resizes an image to `width` (100..1920) pixels, keeping its aspect ratio (Wand)."""
from wand.image import Image

from faasload_store import param_int, run_etl


def prepare(args):
    width = param_int(args, "width", 640, 100, 1920)

    def transform(data):
        with Image(blob=data) as img:
            height = max(1, int(img.height * width / img.width + 0.5))
            img.resize(width, height)
            return img.make_blob()
    return transform


def main(args):
    return run_etl(args, "wand_resize", prepare)
