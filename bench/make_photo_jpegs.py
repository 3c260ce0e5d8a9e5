"""Writes an ImageFolder tree of ImageNet-sized JPEGs (default 500x375, quality 90, the
median ImageNet size) for `pacer bench imagefolder-pipeline`: the Fashion-MNIST JPEGs are
28x28, so there the crop and resize dominate; here decoding does, as on ImageNet. The
content is photo-like (smooth colour fields, edges and fine texture) so the entropy coder
has real work; it is random, not a photograph.

  /usr/bin/python3 bench/make_photo_jpegs.py --out /tmp/photos --images 400
"""
import argparse
import os

import numpy as np
from PIL import Image


def photo(rng, h, w):
    # Low-frequency colour field (upsampled noise) + a few hard edges + fine grain.
    base = rng.random((h // 25 + 2, w // 25 + 2, 3)).astype(np.float32)
    field = np.array(Image.fromarray((base * 255).astype(np.uint8)).resize((w, h), Image.BICUBIC), np.float32)
    yy, xx = np.mgrid[0:h, 0:w]
    for _ in range(4):
        a, b, c = rng.normal(size=3)
        field[(a * xx + b * yy + c * 200) > 0] *= rng.uniform(0.6, 1.2)
    field += rng.normal(0, 12, size=field.shape)
    return Image.fromarray(np.clip(field, 0, 255).astype(np.uint8))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--out", required=True)
    p.add_argument("--images", type=int, default=400)
    p.add_argument("--classes", type=int, default=4)
    p.add_argument("--width", type=int, default=500)
    p.add_argument("--height", type=int, default=375)
    p.add_argument("--quality", type=int, default=90)
    a = p.parse_args()
    rng = np.random.default_rng(0)
    for i in range(a.images):
        d = os.path.join(a.out, f"c{i % a.classes}")
        os.makedirs(d, exist_ok=True)
        photo(rng, a.height, a.width).save(os.path.join(d, f"{i:05}.jpg"), quality=a.quality)


if __name__ == "__main__":
    main()
