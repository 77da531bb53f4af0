#!/usr/bin/env python3
"""End-to-end check of clasp on an ImageNet-layout folder against PyTorch and
torchvision: the same files, the same model, the same predictions.

usage: check_imagenet_model.py FOLDER [--clasp PATH] [--zoo NAME]
                               [--arch resnet50|resnet18|wide_resnet50_2]
                               [--work DIR] [--samples N] [--workers N]

FOLDER is an ImageNet-layout folder (FOLDER/val/<wnid>/<image>; e.g. made by
tools/make_imagenet_folder.py). The script
  1. builds torchvision's model inside RobustBench's wrapper (normalize with
     ImageNet's mean and std, then the model), with random weights whose
     BatchNorm statistics are then measured on the folder's images, so the
     predictions differ from image to image; saves its state dict with
     torch.save (normalize.mean, normalize.std, model.conv1.weight, ...);
  2. runs `clasp attack --zoo NAME --model that.pt --dataset imagenet
     --attack fgsm --set eps=0 --save-adv ...`: the saved x_adv is clasp's
     preprocessed input and clean_pred its predictions;
  3. reads the folder with torchvision's ImageFolder and RobustBench's
     Res256Crop224 (Resize(256), CenterCrop(224), ToTensor), or Crop288
     (CenterCrop(288), ToTensor) for Wong2020Fast, and runs the model;
and prints how many pixels agree within 1/255, the largest difference, and
how many predictions agree. Exit status 1 when fewer than 99.9% of the
pixels or not every prediction agree.

Needs python3-torch, python3-torchvision and python3-pil; clasp's build and
tests do not use it.
"""
import argparse
import json
import os
import struct
import subprocess
import sys

import torch
import torchvision
from torchvision import transforms

MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


class Normalized(torch.nn.Module):
    """RobustBench's normalize_model, written here: buffers mean and std
    ([1, 3, 1, 1]), then the model; state-dict names normalize.* and model.*."""

    def __init__(self, model):
        super().__init__()
        self.normalize = torch.nn.Module()
        self.normalize.register_buffer("mean", torch.tensor(MEAN).view(1, 3, 1, 1))
        self.normalize.register_buffer("std", torch.tensor(STD).view(1, 3, 1, 1))
        self.model = model

    def forward(self, x):
        return self.model((x - self.normalize.mean) / self.normalize.std)


def read_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, h in header.items():
        if name == "__metadata__":
            continue
        a, b = h["data_offsets"]
        dt = {"F32": torch.float32, "I32": torch.int32, "I64": torch.int64}[h["dtype"]]
        out[name] = torch.frombuffer(bytearray(data[a:b]), dtype=dt).reshape(h["shape"])
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("folder")
    ap.add_argument("--clasp", default="build/src/cli/clasp")
    ap.add_argument("--zoo", default="Salman2020Do_R50")
    ap.add_argument("--arch", default="resnet50")
    ap.add_argument("--work", default="/tmp/clasp-imagenet-check")
    ap.add_argument("--samples", type=int, default=0, help="first N images (0: all)")
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--batch", type=int, default=16)
    a = ap.parse_args()
    os.makedirs(a.work, exist_ok=True)
    torch.manual_seed(0)
    crop288 = a.zoo == "Wong2020Fast"
    tf = (transforms.Compose([transforms.CenterCrop(288), transforms.ToTensor()]) if crop288 else
          transforms.Compose([transforms.Resize(256), transforms.CenterCrop(224),
                              transforms.ToTensor()]))
    val = os.path.join(a.folder, "val")
    ds = torchvision.datasets.ImageFolder(val if os.path.isdir(val) else a.folder, transform=tf)
    n = len(ds) if a.samples <= 0 else min(a.samples, len(ds))
    xs = torch.stack([ds[i][0] for i in range(n)])

    model = Normalized(getattr(torchvision.models, a.arch)(num_classes=1000))
    # BatchNorm statistics of the folder's images (a cumulative average).
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.momentum = None
    model.train()
    with torch.no_grad():
        for i in range(0, n, 32):
            model(xs[i:i + 32])
    model.eval()
    pt = os.path.join(a.work, "model.pt")
    torch.save(model.state_dict(), pt)
    with torch.no_grad():
        ref = torch.cat([model(xs[i:i + 32]) for i in range(0, n, 32)]).argmax(1)

    adv = os.path.join(a.work, "adv.safetensors")
    cmd = [a.clasp, "attack", "--zoo", a.zoo, "--model", pt, "--dataset", "imagenet", "--data",
           a.folder, "--attack", "fgsm", "--set", "eps=0", "--samples", str(n), "--batch",
           str(a.batch), "--workers", str(a.workers), "--save-adv", adv]
    print("$", " ".join(cmd), flush=True)
    r = subprocess.run(cmd)
    if r.returncode:
        sys.exit(f"clasp attack failed ({r.returncode})")
    got = read_safetensors(adv)
    cx, cp = got["x_adv"].reshape(xs.shape), got["clean_pred"].long()
    d = (cx - xs).abs()
    close = (d <= 1 / 255 + 1e-6).float().mean().item()
    same = (cp == ref).sum().item()
    print(f"images {n}, input {tuple(xs.shape[1:])}, model {a.arch} in RobustBench's wrapper")
    print(f"pixels within 1/255 of torchvision's: {100 * close:.4f}%  "
          f"max |diff| {d.max().item() * 255:.2f}/255  mean |diff| {d.mean().item() * 255:.4f}/255")
    print(f"predictions equal to PyTorch's: {same} of {n}; "
          f"distinct predicted classes: {len(set(ref.tolist()))}")
    sys.exit(0 if close >= 0.999 and same == n else 1)


if __name__ == "__main__":
    main()
