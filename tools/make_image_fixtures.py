#!/usr/bin/env python3
"""Writes tests/fixtures/images/: small inputs and what PIL and torchvision
make of them, for tests/test_imagefolder.c.

  in.png   170x130 RGB (a smooth pattern with noise, seeded)
  in.jpg   the same as JPEG (quality 85, 4:2:0)
  in_cmyk.jpg  the same converted to CMYK by PIL, as JPEG
  dec_jpg.png, dec_cmyk.png   Image.open(...).convert("RGB") of the JPEGs
  res256crop224.png, crop288.png, res224.png, bicubicres256crop224.png:
           RobustBench's preprocessings (torchvision transforms on PIL
           images) of in.png, before ToTensor
  down_bilinear.png (41x29), down_bicubic.png (41x29), up_bilinear.png
           (203x151): PIL's Image.resize of in.png

Needs numpy, PIL and torchvision (never CI); the output is committed.
Usage: make_image_fixtures.py OUT_DIR
"""
import os
import sys

import numpy as np
from PIL import Image
import torchvision.transforms as T


def pattern(w, h, seed):
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    a = np.stack([128 + 100 * np.sin(x / 9.0 + c) * np.cos(y / 13.0 - c) for c in range(3)], -1)
    a += rng.normal(0, 3, a.shape)
    return np.clip(a, 0, 255).astype(np.uint8)


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    im = Image.fromarray(pattern(170, 130, 19))
    im.save(os.path.join(out, 'in.png'))
    im.save(os.path.join(out, 'in.jpg'), quality=85, subsampling=2)
    im.convert('CMYK').save(os.path.join(out, 'in_cmyk.jpg'), quality=85)
    for src, dst in [('in.jpg', 'dec_jpg.png'), ('in_cmyk.jpg', 'dec_cmyk.png')]:
        Image.open(os.path.join(out, src)).convert('RGB').save(os.path.join(out, dst))
    src = Image.open(os.path.join(out, 'in.png')).convert('RGB')
    bicubic = T.InterpolationMode.BICUBIC
    preps = {
        'res256crop224': T.Compose([T.Resize(256), T.CenterCrop(224)]),
        'crop288': T.CenterCrop(288),
        'res224': T.Resize([224, 224]),
        'bicubicres256crop224': T.Compose([T.Resize(256, interpolation=bicubic), T.CenterCrop(224)]),
    }
    for name, t in preps.items():
        t(src).save(os.path.join(out, name + '.png'))
    src.resize((41, 29), Image.BILINEAR).save(os.path.join(out, 'down_bilinear.png'))
    src.resize((41, 29), Image.BICUBIC).save(os.path.join(out, 'down_bicubic.png'))
    src.resize((203, 151), Image.BILINEAR).save(os.path.join(out, 'up_bilinear.png'))


if __name__ == '__main__':
    main()
