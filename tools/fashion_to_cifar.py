#!/usr/bin/env python3
"""Convert Fashion-MNIST's IDX files into CIFAR-10's binary layout.

Writes data_batch_1.bin .. data_batch_5.bin (the training images split into
five nearly equal parts), test_batch.bin and batches.meta.txt (the ten
Fashion-MNIST class names) into the output folder. Each 28x28 grey image is
padded with zeros to 32x32 (2 pixels on each side) and copied into all three
colour planes, so `clasp --dataset cifar10 --data OUT` and models built for
CIFAR-10's 3x32x32 input can run without CIFAR-10 itself.

Standard library only. Reads the IDX files raw or gzip-compressed.
"""

import argparse
import gzip
import os
import struct
import sys
import zlib

DEFAULT_SOURCE = "/usr/share/datasets/fashion-mnist"
CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
           "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
SIDE = 32
TRAIN_BATCHES = 5


class ConvertError(Exception):
    pass


def find(source, stem):
    """The .gz file when present, else the raw one."""
    for name in (stem + ".gz", stem):
        path = os.path.join(source, name)
        if os.path.exists(path):
            return path
    raise ConvertError("%s: not found in %s (tried %s.gz and %s)" % (stem, source, stem, stem))


def read_idx(path, magic, ndim, limit):
    """The dimensions and the first `limit` items' bytes of one IDX file."""
    with open(path, "rb") as f:
        gz = f.read(2) == b"\x1f\x8b"
    opener = gzip.open if gz else open
    with opener(path, "rb") as f:
        head = f.read(4 + 4 * ndim)
        if len(head) < 4 + 4 * ndim:
            raise ConvertError("%s: truncated at byte %d, expected a %d-byte header"
                               % (path, len(head), 4 + 4 * ndim))
        found = struct.unpack(">I", head[:4])[0]
        if found != magic:
            raise ConvertError("%s: wrong magic 0x%08x at byte 0, expected 0x%08x"
                               % (path, found, magic))
        dims = list(struct.unpack(">%dI" % ndim, head[4:]))
        count = dims[0] if limit is None else min(dims[0], limit)
        item = 1
        for d in dims[1:]:
            item *= d
        data = f.read(count * item)
        if len(data) != count * item:
            raise ConvertError("%s: truncated at byte %d, expected %d bytes"
                               % (path, len(head) + len(data), len(head) + count * item))
    dims[0] = count
    return dims, data


def load_split(source, prefix, limit):
    """Images and labels of one split, checked against each other."""
    ipath = find(source, prefix + "-images-idx3-ubyte")
    lpath = find(source, prefix + "-labels-idx1-ubyte")
    (n, rows, cols), pixels = read_idx(ipath, 0x00000803, 3, limit)
    (nl,), labels = read_idx(lpath, 0x00000801, 1, limit)
    if n != nl:
        raise ConvertError("%s: %d labels, but %s has %d images" % (lpath, nl, ipath, n))
    if rows > SIDE or cols > SIDE:
        raise ConvertError("%s: images of %dx%d do not fit in %dx%d"
                           % (ipath, rows, cols, SIDE, SIDE))
    for i, y in enumerate(labels):
        if y >= len(CLASSES):
            raise ConvertError("%s: label %d at byte %d is out of range, expected < %d"
                               % (lpath, y, 8 + i, len(CLASSES)))
    return n, rows, cols, pixels, labels


def record(image, rows, cols, label):
    """One CIFAR-10 record: the label, then the padded plane three times."""
    top, left = (SIDE - rows) // 2, (SIDE - cols) // 2
    plane = bytearray(SIDE * SIDE)
    for r in range(rows):
        start = (top + r) * SIDE + left
        plane[start:start + cols] = image[r * cols:(r + 1) * cols]
    return bytes([label]) + bytes(plane) * 3


def write_batch(path, n_from, n_to, split):
    n, rows, cols, pixels, labels = split
    size = rows * cols
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        for i in range(n_from, n_to):
            f.write(record(pixels[i * size:(i + 1) * size], rows, cols, labels[i]))
    os.replace(tmp, path)


def main(argv=None):
    ap = argparse.ArgumentParser(
        description="Convert Fashion-MNIST IDX files into CIFAR-10's binary layout "
                    "(3x32x32: zero-padded, grey copied to all three channels).")
    ap.add_argument("out", help="output folder (created if missing)")
    ap.add_argument("--source", default=DEFAULT_SOURCE,
                    help="folder with the Fashion-MNIST IDX files, raw or .gz "
                         "(default: %(default)s)")
    ap.add_argument("--limit", type=int, default=None, metavar="N",
                    help="convert at most the first N training and N test images "
                         "(at least %d: one per training batch)" % TRAIN_BATCHES)
    args = ap.parse_args(argv)
    if args.limit is not None and args.limit < TRAIN_BATCHES:
        ap.error("--limit must be at least %d (one image per training batch)" % TRAIN_BATCHES)
    try:
        train = load_split(args.source, "train", args.limit)
        test = load_split(args.source, "t10k", args.limit)
        if train[0] < TRAIN_BATCHES:
            raise ConvertError("%s: %d training images, need at least %d"
                               % (args.source, train[0], TRAIN_BATCHES))
        os.makedirs(args.out, exist_ok=True)
        n = train[0]
        start = 0
        for b in range(TRAIN_BATCHES):
            size = n // TRAIN_BATCHES + (1 if b < n % TRAIN_BATCHES else 0)
            write_batch(os.path.join(args.out, "data_batch_%d.bin" % (b + 1)),
                        start, start + size, train)
            start += size
        write_batch(os.path.join(args.out, "test_batch.bin"), 0, test[0], test)
        with open(os.path.join(args.out, "batches.meta.txt"), "w") as f:
            f.write("".join(name + "\n" for name in CLASSES))
    except (ConvertError, OSError, EOFError, zlib.error) as e:
        print("fashion_to_cifar: %s" % e, file=sys.stderr)
        return 1
    print("fashion_to_cifar: %d training and %d test images written to %s"
          % (train[0], test[0], args.out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
