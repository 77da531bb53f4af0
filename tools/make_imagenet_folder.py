#!/usr/bin/env python3
"""Make an ImageNet-layout image folder from Fashion-MNIST, for end-to-end
checks of `clasp attack --dataset imagenet` without ImageNet.

Writes OUT/val/<wnid>/ILSVRC2012_val_<8 digits>.JPEG (and OUT/train/...
with --train N): each 28x28 grey image upscaled (bicubic) to --size pixels
(default 256x320, landscape so Res256Crop224 both resizes and crops),
coloured (a per-class tint times the grey level plus a faint gradient, so
the three channels differ) and saved as JPEG (quality 90, 4:2:0). The ten
Fashion-MNIST classes map to the ten ImageNet classes nearest to them
(WordNet ids of ImageNet-1k, e.g. Sandal -> n04133789 "sandal"); --classes
K (<= 10) keeps the first K. Image numbers count up from 1 across classes,
so names never clash.

Needs numpy and PIL (python3-numpy, python3-pil); clasp's build and tests
do not use it.

Usage: make_imagenet_folder.py OUT [--source DIR] [--per-class N]
                               [--classes K] [--size WxH] [--train N]
"""
import argparse
import gzip
import os
import struct
import sys

import numpy as np
from PIL import Image

DEFAULT_SOURCE = "/usr/share/datasets/fashion-mnist"
# Fashion-MNIST label -> (ImageNet-1k WordNet id, its name), in label order.
WNIDS = [
    ("n04370456", "sweatshirt"),    # T-shirt/top
    ("n03594734", "jean"),          # Trouser
    ("n02963159", "cardigan"),      # Pullover
    ("n03450230", "gown"),          # Dress
    ("n04479046", "trench coat"),   # Coat
    ("n04133789", "sandal"),        # Sandal
    ("n03595614", "jersey"),        # Shirt
    ("n04120489", "running shoe"),  # Sneaker
    ("n04026417", "purse"),         # Bag
    ("n03124043", "cowboy boot"),   # Ankle boot
]


def read_idx(source, stem, magic):
    for name in (stem + ".gz", stem):
        path = os.path.join(source, name)
        if os.path.exists(path):
            op = gzip.open if name.endswith(".gz") else open
            with op(path, "rb") as f:
                data = f.read()
            break
    else:
        sys.exit("%s: not found in %s" % (stem, source))
    if len(data) < 8 or struct.unpack(">I", data[:4])[0] != magic:
        sys.exit("%s: not an IDX file of magic 0x%08x" % (path, magic))
    ndim = magic & 0xff
    dims = struct.unpack(">" + "I" * ndim, data[4:4 + 4 * ndim])
    body = np.frombuffer(data, np.uint8, offset=4 + 4 * ndim)
    if body.size != int(np.prod(dims)):
        sys.exit("%s: %d bytes of data, expected %d" % (path, body.size, int(np.prod(dims))))
    return body.reshape(dims)


def write_split(out, images, labels, per_class, classes, size, number):
    w, h = size
    tints = np.array([[1.0, 0.55, 0.35], [0.35, 0.55, 1.0], [0.6, 1.0, 0.45],
                      [1.0, 0.4, 0.8], [0.8, 0.8, 0.3], [0.3, 0.9, 0.9],
                      [0.9, 0.6, 0.2], [0.5, 0.4, 1.0], [1.0, 0.9, 0.7], [0.7, 0.7, 0.7]])
    gy, gx = np.mgrid[0:h, 0:w]
    grad = (gx / max(w - 1, 1) * 40 + gy / max(h - 1, 1) * 20)[..., None]
    counts = [0] * classes
    for img, lab in zip(images, labels):
        lab = int(lab)
        if lab >= classes or counts[lab] >= per_class:
            continue
        counts[lab] += 1
        number += 1
        grey = np.asarray(Image.fromarray(img).resize((w, h), Image.BICUBIC), np.float64)
        rgb = np.clip(grey[..., None] * tints[lab] + grad, 0, 255).astype(np.uint8)
        d = os.path.join(out, WNIDS[lab][0])
        os.makedirs(d, exist_ok=True)
        Image.fromarray(rgb).save(os.path.join(d, "ILSVRC2012_val_%08d.JPEG" % number),
                                  quality=90)
        if min(counts) >= per_class:
            break
    return number


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("out")
    ap.add_argument("--source", default=DEFAULT_SOURCE)
    ap.add_argument("--per-class", type=int, default=20)
    ap.add_argument("--classes", type=int, default=10)
    ap.add_argument("--size", default="320x256")
    ap.add_argument("--train", type=int, default=0, help="training images per class (0: none)")
    a = ap.parse_args()
    if not 1 <= a.classes <= len(WNIDS):
        sys.exit("--classes must be 1..%d" % len(WNIDS))
    size = tuple(int(v) for v in a.size.lower().split("x"))
    n = write_split(os.path.join(a.out, "val"), read_idx(a.source, "t10k-images-idx3-ubyte", 0x803),
                    read_idx(a.source, "t10k-labels-idx1-ubyte", 0x801), a.per_class, a.classes,
                    size, 0)
    if a.train:
        write_split(os.path.join(a.out, "train"),
                    read_idx(a.source, "train-images-idx3-ubyte", 0x803),
                    read_idx(a.source, "train-labels-idx1-ubyte", 0x801), a.train, a.classes,
                    size, n)
    for split in ("val", "train") if a.train else ("val",):
        with open(os.path.join(a.out, split, "classes.txt"), "w") as f:
            for wnid, name in WNIDS[:a.classes]:
                f.write("%s %s\n" % (wnid, name))


if __name__ == "__main__":
    main()
