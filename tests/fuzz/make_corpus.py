#!/usr/bin/env python3
"""Writes the seed corpus of the fuzz targets into tests/fuzz/corpus/.

Seeds are small valid files plus typical malformations, laid out the way
the cmocka tests make theirs, and framed the way each harness reads its
input (see the comment at the top of each fuzz_<target>.c). The output is
committed; run this again only to change the seeds.
"""
import gzip
import json
import os
import shutil
import struct
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.join(HERE, "corpus")


def put(target, name, data):
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(ROOT, target, name), "wb") as f:
        f.write(data)


# ---- plan: YAML experiment files ------------------------------------------

HEAD = "experiment:\n  name: t\n"
TRAIN = "train:\n  models:\n    - name: standard\n"
EVAL = "evaluate:\n  attacks:\n    - fgsm\n"

PLANS = {
    "minimal.yaml": HEAD + TRAIN + EVAL,
    "full.yaml": HEAD + "  seed: 7\n  device: cpu\n"
    "data: {dataset: mnist, path: data/mnist, val_size: 100, train_size: 500}\n"
    "model: {arch: 'conv3x3-8p1,relu,maxpool2,flatten,fc10'}\n"
    "train:\n  epochs: 4\n  batch: 32\n"
    "  optimiser: {name: sgd, lr: 0.1, momentum: 0, weight_decay: 0}\n"
    "  schedule: {name: step, milestones: [2, 3], gamma: 0.5}\n"
    "  val_eval_size: 0\n  models: [{name: plain}]\n"
    "evaluate: {test_size: 300, batch: 50, attacks: [pgd]}\n"
    "output: {dir: out}\n",
    "defenses.yaml": HEAD + "data: {dataset: cifar10, path: c10}\n"
    "train:\n  epochs: 2\n  schedule: cosine\n  models:\n"
    "    - name: standard\n"
    "    - name: pgd-at\n      defense:\n        name: pgd-at\n"
    "        attack: {name: pgd, params: &a {eps: 0.1, steps: 5, alpha: 0.04}}\n"
    "    - name: reweight\n      defense:\n        name: reweight\n"
    "        params: {strength: 2, momentum: 0.5}\n"
    "        inner: {name: pgd-at, attack: {name: pgd, params: *a}}\n"
    "    - name: cal\n      defense:\n        name: calibrate\n"
    "        params: {max_avg_drop: 0.02, fit_temperature: true}\n"
    "        attack: {name: pgd, params: *a}\n        inner: {name: pgd-at}\n"
    "    - defense: {name: trades, params: {beta: [1, 6], eps: 0.1}}\n"
    "evaluate:\n  attacks:\n    - {name: fgsm, params: {eps: [0.05, 0.1]}}\n"
    "    - {name: pgd, label: pgd-20, params: &p {eps: 0.1, steps: 20, alpha: 0}}\n"
    "    - {name: tpgd, params: {<<: *p, T: [0.5, 2]}}\n"
    "    - {name: cw, params: {binary_search_steps: 2, max_iterations: 30, initial_const: 1}}\n",
    "bad-key.yaml": HEAD + "trian:\n  models: [{name: a}]\n" + EVAL,
    "bad-param.yaml": HEAD + TRAIN + "evaluate:\n  attacks:\n    - name: pgd\n      params: {epss: 0.1, steps: 2.5}\n",
    "bad-syntax.yaml": HEAD + "train: {models: [{name: a}\n" + EVAL,
    "two-docs.yaml": HEAD + TRAIN + EVAL + "---\nexperiment: {name: u}\n",
    "merge-loop.yaml": "base: &b {x: 1}\n" + HEAD + TRAIN + "evaluate:\n  attacks:\n    - {<<: [*b, *b], name: fgsm}\n",
}

# ---- safetensors ----------------------------------------------------------


def safetensors(entries, meta=None, data=b"", pad=True, raw_header=None):
    hdr = {}
    if meta is not None:
        hdr["__metadata__"] = meta
    hdr.update(entries)
    text = raw_header if raw_header is not None else json.dumps(hdr, separators=(",", ":")).encode()
    if pad:
        text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + data


def f32(*v):
    return struct.pack("<%df" % len(v), *v)


def i32(*v):
    return struct.pack("<%di" % len(v), *v)


W = {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 16]}
B = {"dtype": "I32", "shape": [3], "data_offsets": [16, 28]}
E = {"dtype": "F32", "shape": [0, 5], "data_offsets": [28, 28]}
GOOD = f32(0.5, -1, 2, 3.25) + i32(1, -2, 3)

SAFETENSORS = {
    "good.safetensors": safetensors({"w": W, "b": B, "e": E},
                                    {"arch": "default", "input": "1,28,28"}, GOOD),
    "scalar.safetensors": safetensors({"s": {"dtype": "F32", "shape": [], "data_offsets": [0, 4]}},
                                      None, f32(1.5)),
    "empty.safetensors": safetensors({}, {}),
    "overlap.safetensors": safetensors({"w": W, "b": {"dtype": "I32", "shape": [3],
                                                      "data_offsets": [12, 24]}}, None, GOOD[:24]),
    "gap.safetensors": safetensors({"w": W}, None, GOOD),
    "dtype.safetensors": safetensors({"w": dict(W, dtype="F16")}, None, GOOD[:16]),
    "truncated.safetensors": safetensors({"w": W, "b": B}, None, GOOD)[:40],
    "badjson.safetensors": safetensors({}, raw_header=b'{"w": {"dtype": "F32", "shape": [1,'),
    "huge-len.safetensors": struct.pack("<Q", 1 << 40) + b"{}",
}

# ---- idx: [u16 label-file length][label file][image file] ------------------


def be32(*v):
    return struct.pack(">%dI" % len(v), *v)


def idx_images(n, rows, cols, keep=None):
    px = bytes((k * 7 + 3) & 255 for k in range(n * rows * cols))
    return be32(0x803, n, rows, cols) + px[: len(px) if keep is None else keep]


def idx_labels(labels, n=None):
    return be32(0x801, len(labels) if n is None else n) + bytes(labels)


def idx_input(labels, images):
    return struct.pack("<H", len(labels)) + labels + images


def gz(data):
    return gzip.compress(data, mtime=0)


IDX = {
    "raw": idx_input(idx_labels([1, 9, 0]), idx_images(3, 2, 3)),
    "gzip": idx_input(gz(idx_labels([1, 9, 0])), gz(idx_images(3, 2, 3))),
    "mixed": idx_input(idx_labels([4, 2]), gz(idx_images(2, 4, 4))),
    "truncated": idx_input(idx_labels([1, 9, 0]), idx_images(3, 2, 3, keep=10)),
    "count-mismatch": idx_input(idx_labels([1, 9]), idx_images(3, 2, 3)),
    "label-range": idx_input(idx_labels([1, 10, 0]), idx_images(3, 2, 3)),
    "swapped-magic": idx_input(idx_images(1, 1, 1), idx_labels([1])),
    "trailing": idx_input(idx_labels([3]), idx_images(1, 2, 2) + b"x"),
    "bad-dim": idx_input(idx_labels([3]), be32(0x803, 1, 5000, 1)),
    "corrupt-gzip": idx_input(idx_labels([1]), gz(idx_images(1, 2, 2))[:-6] + b"\xff" * 6),
}

# ---- cifar: [u16 meta length][batches.meta.txt][test_batch.bin] ------------

CLASSES = "airplane\nautomobile\nbird\ncat\ndeer\ndog\nfrog\nhorse\nship\ntruck\n"


def record(label, seed):
    return bytes([label]) + bytes((k * 13 + seed) & 255 for k in range(3072))


def cifar_input(meta, batch):
    meta = meta.encode()
    return struct.pack("<H", len(meta)) + meta + batch


CIFAR = {
    "one-record": cifar_input("", record(3, 1)),
    "with-meta": cifar_input(CLASSES, record(9, 5)),
    "bad-label": cifar_input("", record(10, 1)),
    "short-record": cifar_input("", record(1, 1)[:100]),
    "empty": cifar_input("", b""),
    "meta-eleven": cifar_input(CLASSES + "extra\n", b"\x02" * 3073),
}

# ---- cifar100: [u8 mode][u16 names length][names file][train.bin|test.bin] --
# mode bit 0: coarse labels (coarse_label_names.txt), bit 1: train.bin.


def record100(coarse, fine, seed):
    return bytes([coarse, fine]) + bytes((k * 11 + seed) & 255 for k in range(3072))


def cifar100_input(mode, names, records):
    names = names.encode()
    return struct.pack("<BH", mode, len(names)) + names + records


COARSE_NAMES = "".join("super%d\n" % k for k in range(20))
FINE_NAMES = "".join("class%d\n" % k for k in range(100))

CIFAR100 = {
    "fine": cifar100_input(0, "", record100(4, 99, 1) + record100(19, 0, 2)),
    "coarse-train": cifar100_input(3, "", record100(0, 7, 3)),
    "fine-names": cifar100_input(0, FINE_NAMES, record100(1, 42, 4)),
    "coarse-names": cifar100_input(1, COARSE_NAMES, record100(2, 5, 5)),
    "bad-fine": cifar100_input(1, "", record100(3, 100, 1)),
    "bad-coarse": cifar100_input(0, "", record100(20, 1, 1)),
    "short-record": cifar100_input(0, "", record100(1, 1, 1)[:3073]),
    "names-short": cifar100_input(1, "a\nb\n", record100(1, 1, 1)),
}

# ---- stl10: [u16 names length][u16 labels length][names][test_y][test_X] ---

STL_IMAGE = 3 * 96 * 96


def stl10_input(names, labels, images):
    names = names.encode()
    return struct.pack("<HH", len(names), len(labels)) + names + bytes(labels) + images


STL_NAMES = "airplane\nbird\ncar\ncat\ndeer\ndog\nhorse\nmonkey\nship\ntruck\n"
STL_X = bytes((k * 5 + k // 96) & 255 for k in range(STL_IMAGE))

STL10 = {
    "one-image": stl10_input("", [10], STL_X),
    "with-names": stl10_input(STL_NAMES, [1], STL_X),
    "label-zero": stl10_input("", [0], STL_X),
    "label-eleven": stl10_input("", [11], STL_X),
    "count-mismatch": stl10_input("", [1, 2], STL_X),
    "short-image": stl10_input("", [3], STL_X[:1000]),
    "names-eleven": stl10_input(STL_NAMES + "extra\n", [2], STL_X),
}

# ---- svhn: a MATLAB version 5 file (test_32x32.mat) -------------------------
# Written by hand (the format is tagged elements), so no extra Python package
# is needed: a 128-byte header, then one matrix element per variable,
# optionally zlib-compressed.

MI_INT8, MI_UINT8, MI_INT32, MI_UINT32, MI_DOUBLE, MI_MATRIX, MI_COMPRESSED = 1, 2, 5, 6, 9, 14, 15
MX_DOUBLE, MX_INT8, MX_UINT8 = 6, 8, 9


def mat_element(mtype, data):
    return struct.pack("<II", mtype, len(data)) + data + b"\0" * (-len(data) % 8)


def mat_var(name, mx, mtype, dims, data, compress=False):
    body = (mat_element(MI_UINT32, struct.pack("<II", mx, 0))
            + mat_element(MI_INT32, struct.pack("<%di" % len(dims), *dims))
            + mat_element(MI_INT8, name.encode())
            + mat_element(mtype, data))
    elem = struct.pack("<II", MI_MATRIX, len(body)) + body
    if compress:
        packed = zlib.compress(elem)
        return struct.pack("<II", MI_COMPRESSED, len(packed)) + packed
    return elem


def mat_file(*variables):
    text = b"MATLAB 5.0 MAT-file, written for the clasp fuzz seeds"
    head = text + b" " * (116 - len(text)) + b"\0" * 8 + struct.pack("<H", 0x0100) + b"IM"
    return head + b"".join(variables)


def svhn_x(n, dims=None, **kw):
    px = bytes((k * 3 + k // 1024) & 255 for k in range(n * 3072))
    return mat_var("X", MX_UINT8, MI_UINT8, dims or ([32, 32, 3, n] if n > 1 else [32, 32, 3]),
                   px, **kw)


def svhn_y(labels, dims=None, uint8=False, **kw):
    dims = dims or [len(labels), 1]
    if uint8:
        return mat_var("y", MX_UINT8, MI_UINT8, dims, bytes(labels), **kw)
    return mat_var("y", MX_DOUBLE, MI_DOUBLE, dims, struct.pack("<%dd" % len(labels), *labels), **kw)


SVHN = {
    "one-image.mat": mat_file(svhn_x(1), svhn_y([3])),
    "two-images.mat": mat_file(svhn_x(2), svhn_y([10, 1], dims=[1, 2], uint8=True)),
    "compressed.mat": mat_file(svhn_x(2, compress=True), svhn_y([7, 10], compress=True)),
    "y-first.mat": mat_file(svhn_y([5], compress=True), svhn_x(1)),
    "bad-label.mat": mat_file(svhn_x(1), svhn_y([11])),
    "fractional-label.mat": mat_file(svhn_x(1), svhn_y([2.5])),
    "no-y.mat": mat_file(svhn_x(1)),
    "grey.mat": mat_file(mat_var("X", MX_UINT8, MI_UINT8, [32, 32, 1, 3], bytes(3072)),
                         svhn_y([1, 2, 3])),
    "int8-x.mat": mat_file(mat_var("X", MX_INT8, MI_INT8, [32, 32, 3], bytes(3072)), svhn_y([1])),
    "count-mismatch.mat": mat_file(svhn_x(2), svhn_y([1])),
    "dims-beyond-data.mat": mat_file(svhn_x(1, dims=[32, 32, 3, 1000]), svhn_y([1] * 1000, uint8=True)),
    "truncated.mat": mat_file(svhn_x(1), svhn_y([3]))[:2000],
    "header-only.mat": mat_file(),
}

# ---- arch: architecture text (clasp_arch_parse), presets ---------------------

ARCH = {
    "default": "conv5x5-32p2,relu,maxpool2,flatten,fc1024,relu,fc10",
    "skip": "conv3x3-8p1:c,relu,conv3x3-8p1:d,add(c+d)",
    "block": "conv3x3-16p1nb:a,bn,relu,conv3x3-16s2p1nb(a),bn:b,conv1x1-16s2nb(a),add(in+b),"
             "avgpool2s1,maxpool3s2,flatten,fc10nb",
    "spaces": " relu , bn\t,fc3 ",
    "relabel": "relu:x,relu:x,add(x+x),relu(in)",
    "preset": "preact-resnet18-w16",
    "wrn": "wrn-34-10",
    "resnet": "resnet18",
    "bad-size": "conv3x3-0,fc10",
    "bad-input": "relu,add(a+b)",
    "three-inputs": "relu:a,add(a+a+a)",
    "bad-wrn": "wrn-33-10-w0",
}

# ---- groups: class -> group mapping files ----------------------------------
# Framed as the file itself (fuzz_groups.c resolves it on CIFAR-10's names
# and on 1000 classes named by digits, with WordNet ids).
GROUPS = {
    "cifar10": "# CIFAR-10\nairplane\tvehicles\nautomobile, vehicles\n8,vehicles\n"
               "truck\tvehicles\nbird,animals\n3\tanimals\n",
    "crlf-bom": "\ufeffcat\tpets\r\ndog\tpets\r\n\r\n# end\r\n",
    "imagenet": "n01440764\tfish\nn15075141\tpaper\n7,seven\ncrane,birds\n",
    "unicode": "cat,caf\u00e9 \u2713\ndog, \U0001f408 group, with commas\n",
    "duplicate": "cat,a\n3,b\n",
    "unknown": "zebra,stripes\n",
    "no-separator": "cat\n",
    "reserved": "cat,(unlisted)\n",
    "empty": "",
    "comments-only": "# nothing\n\n   \n",
    "long-class": "9" + "R" * 31 + ",a",
    "binary": b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR",
}


def main():
    shutil.rmtree(ROOT, ignore_errors=True)
    for target, seeds in (("plan", PLANS), ("safetensors", SAFETENSORS), ("idx", IDX),
                          ("cifar", CIFAR), ("cifar100", CIFAR100), ("stl10", STL10),
                          ("svhn", SVHN), ("arch", ARCH), ("groups", GROUPS)):
        os.makedirs(os.path.join(ROOT, target))
        for name, data in seeds.items():
            put(target, name, data)


if __name__ == "__main__":
    main()
