"""wand_blur: Gaussian blur (separable) of an image with ImageMagick (Wand); `sigma` 0.3..100."""
from wand.image import Image

from faasload_store import param_float, run_etl


def prepare(args):
    sigma = param_float(args, "sigma", 2.0, 0.3, 100.0)

    def transform(data):
        with Image(blob=data) as img:
            img.blur(radius=0, sigma=sigma)
            return img.make_blob()
    return transform


def main(args):
    return run_etl(args, "wand_blur", prepare)
