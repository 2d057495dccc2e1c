"""wand_denoise: noise reduction of an image with ImageMagick (Wand despeckle); `passes` 1..3."""
from wand.image import Image

from faasload_store import param_int, run_etl


def prepare(args):
    passes = param_int(args, "passes", 1, 1, 3)

    def transform(data):
        with Image(blob=data) as img:
            for _ in range(passes):
                img.despeckle()
            return img.make_blob()
    return transform


def main(args):
    return run_etl(args, "wand_denoise", prepare)
