#!/usr/bin/env python3
"""images/s of torchvision's data path alone: ImageFolder + DataLoader with
RobustBench's Res256Crop224 (Resize(256), CenterCrop(224), ToTensor), the
counterpart of `clasp bench --loader-only`. A benchmark, not a test.

usage: torch_loader.py DIR [--samples N] [--batch N] [--workers N ...]
"""
import argparse
import os
import time

import torch
import torchvision
from torchvision import transforms


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dir")
    ap.add_argument("--samples", type=int, default=1000)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    a = ap.parse_args()
    val = os.path.join(a.dir, "val")
    root = val if os.path.isdir(val) else a.dir
    tf = transforms.Compose([transforms.Resize(256), transforms.CenterCrop(224),
                             transforms.ToTensor()])
    ds = torchvision.datasets.ImageFolder(root, transform=tf)
    n = min(a.samples, len(ds))
    sub = torch.utils.data.Subset(ds, range(n))
    torch.set_num_threads(1)
    for w in a.workers:
        dl = torch.utils.data.DataLoader(sub, batch_size=a.batch, num_workers=w)
        t0, seen = time.perf_counter(), 0
        for x, _ in dl:
            seen += x.shape[0]
        dt = time.perf_counter() - t0
        print("torchvision loader, %d worker%s: %d images in %.2f s, %.1f images/s"
              % (w, "" if w == 1 else "s", seen, dt, seen / dt), flush=True)


if __name__ == "__main__":
    main()
