"""wand_edge: edge detection on an image with ImageMagick (Wand); `radius` 0.5..5."""
from wand.image import Image

from faasload_store import param_float, run_etl


def prepare(args):
    radius = param_float(args, "radius", 1.0, 0.5, 5.0)

    def transform(data):
        with Image(blob=data) as img:
            img.edge(radius=radius)
            return img.make_blob()
    return transform


def main(args):
    return run_etl(args, "wand_edge", prepare)
