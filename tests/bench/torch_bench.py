#!/usr/bin/env python3
"""The PyTorch side of `tests/bench/compare.sh`: the same workloads as
`clasp bench` (default CNN, batch 128, synthetic data) with the same output
lines, so the two can be compared in one run on one machine."""
import argparse
import os
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class MadryCNN(nn.Module):
    def __init__(self, classes=10):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, 5, padding=2)
        self.conv2 = nn.Conv2d(32, 64, 5, padding=2)
        self.fc1 = nn.Linear(64 * 7 * 7, 1024)
        self.fc2 = nn.Linear(1024, classes)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        x = F.relu(self.fc1(x.flatten(1)))
        return self.fc2(x)


def measure(step, batch, warmup, min_iters, seconds):
    for _ in range(warmup):
        step()
    iters, t0 = 0, time.perf_counter()
    while True:
        step()
        iters += 1
        t = time.perf_counter() - t0
        if iters >= min_iters and t >= seconds:
            return iters * batch / t


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--seconds", type=float, default=5)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--only", default=None)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(1)
    model = MadryCNN()
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    x = torch.rand(a.batch, 1, 28, 28)
    y = torch.arange(a.batch) % 10
    eps, alpha = 0.1, 0.025

    def inference():
        model.eval()
        with torch.no_grad():
            model(x).argmax(1)

    def train_on(inp):
        model.train()
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(model(inp), y).backward()
        opt.step()

    def train():
        train_on(x)

    def pgd10_at():
        model.eval()
        xa = (x + torch.empty_like(x).uniform_(-eps, eps)).clamp(0, 1)
        for _ in range(10):
            xa.requires_grad_(True)
            loss = F.cross_entropy(model(xa), y)
            g, = torch.autograd.grad(loss, xa)
            xa = torch.min(torch.max(xa.detach() + alpha * g.sign(), x - eps), x + eps).clamp(0, 1)
        train_on(xa)

    print("device     %s (PyTorch %s, %d threads)" % ("CPU", torch.__version__, a.threads))
    print("model      default CNN (%d parameters), batch %d" %
          (sum(p.numel() for p in model.parameters()), a.batch), flush=True)
    for name, step, warm, mins in (("inference", inference, 3, 10), ("train", train, 2, 5),
                                   ("pgd10-at", pgd10_at, 1, 3)):
        if a.only and a.only != name:
            continue
        print("%-10s images/s  %.1f" % (name, measure(step, a.batch, warm, mins, a.seconds)), flush=True)


if __name__ == "__main__":
    main()
