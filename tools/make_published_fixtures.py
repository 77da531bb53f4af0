#!/usr/bin/env python3
"""Writes tests/fixtures/published/: state dicts of tests/fixtures/arch saved
the way published robust models are, with torch.save (run with Debian's
/usr/bin/python3, which has python3-torch):

  dm-wrn-10-1-swish-pad2.pt   zip format; the state dict under
                              'model_state_dict' with DataParallel's 'module.'
                              prefix, beside an epoch, an accuracy and an
                              SGD optimiser's state (as training scripts save)
  preact-resnet18-nobn-w4.pt  legacy format (_use_new_zipfile_serialization
                              = False), the bare state dict

The logits to expect are the arch fixtures' (.ref): test_zoo_arch loads
these files and compares.
"""

import json
import os
import struct
import sys

import torch

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
SRC = os.path.join(ROOT, "tests", "fixtures", "arch")
DST = os.path.join(ROOT, "tests", "fixtures", "published")


def read_safetensors(path):
    data = open(path, "rb").read()
    n = struct.unpack("<Q", data[:8])[0]
    head = json.loads(data[8:8 + n])
    out = {}
    for k, v in head.items():
        if k == "__metadata__":
            continue
        b, e = v["data_offsets"]
        dt = {"F32": torch.float32, "I64": torch.int64, "I32": torch.int32}[v["dtype"]]
        out[k] = torch.frombuffer(bytearray(data[8 + n + b:8 + n + e]), dtype=dt).view(v["shape"]).clone()
    return out


def main():
    os.makedirs(DST, exist_ok=True)
    sd = read_safetensors(os.path.join(SRC, "dm-wrn-10-1-swish-pad2.safetensors"))
    params = [torch.nn.Parameter(t) for t in sd.values() if t.dtype == torch.float32]
    opt = torch.optim.SGD(params, lr=0.1, momentum=0.9)
    wrapped = {"epoch": 37, "best_acc": 0.6125,
               "model_state_dict": {"module." + k: v for k, v in sd.items()},
               "optimizer_state_dict": opt.state_dict()}
    torch.save(wrapped, os.path.join(DST, "dm-wrn-10-1-swish-pad2.pt"))
    sd = read_safetensors(os.path.join(SRC, "preact-resnet18-nobn-w4.safetensors"))
    torch.save(sd, os.path.join(DST, "preact-resnet18-nobn-w4.pt"),
               _use_new_zipfile_serialization=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
