#!/usr/bin/env python3
"""The PyTorch side of `tests/bench/compare.sh`: the same workloads as
`clasp bench` (a model, batch 128, synthetic data) with the same output
lines, so the two can be compared in one run on one machine.

The models are written here from their descriptions (see clasp's
src/nn/presets.c): the default CNN, ResNet-18, PreAct ResNet-18 and
WideResNet-D-W, with the module names the robust-model zoos use."""
import argparse
import os
import re
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


def conv3(cin, cout, stride=1):
    return nn.Conv2d(cin, cout, 3, stride, 1, bias=False)


class Basic(nn.Module):
    """ResNet's block: relu(bn2(conv2(relu(bn1(conv1 x)))) + shortcut x)."""

    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1, self.bn1 = conv3(cin, cout, stride), nn.BatchNorm2d(cout)
        self.conv2, self.bn2 = conv3(cout, cout), nn.BatchNorm2d(cout)
        self.shortcut = nn.Sequential()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(out)) + self.shortcut(x))


class PreAct(nn.Module):
    """Pre-activation block (PreAct ResNet and, with convShortcut, WRN)."""

    def __init__(self, cin, cout, stride, sc_name="shortcut"):
        super().__init__()
        self.bn1, self.conv1 = nn.BatchNorm2d(cin), conv3(cin, cout, stride)
        self.bn2, self.conv2 = nn.BatchNorm2d(cout), conv3(cout, cout)
        self.sc_name = sc_name
        if stride != 1 or cin != cout:
            sc = nn.Conv2d(cin, cout, 1, stride, bias=False)
            setattr(self, sc_name, nn.Sequential(sc) if sc_name == "shortcut" else sc)

    def forward(self, x):
        a = F.relu(self.bn1(x))
        sc = getattr(self, self.sc_name)(a) if hasattr(self, self.sc_name) else x
        return self.conv2(F.relu(self.bn2(self.conv1(a)))) + sc


class ResNet18(nn.Module):
    def __init__(self, preact, base=64, classes=10):
        super().__init__()
        self.preact = preact
        self.conv1 = conv3(3, base)
        if not preact:
            self.bn1 = nn.BatchNorm2d(base)
        cin = base
        for i in range(4):
            cout = base << i
            blocks = []
            for j in range(2):
                stride = 2 if i > 0 and j == 0 else 1
                blocks.append(PreAct(cin, cout, stride) if preact else Basic(cin, cout, stride))
                cin = cout
            setattr(self, "layer%d" % (i + 1), nn.Sequential(*blocks))
        if preact:
            self.bn = nn.BatchNorm2d(cin)
        self.linear = nn.Linear(cin, classes)

    def forward(self, x):
        out = self.conv1(x)
        if not self.preact:
            out = F.relu(self.bn1(out))
        for i in range(4):
            out = getattr(self, "layer%d" % (i + 1))(out)
        if self.preact:
            out = F.relu(self.bn(out))
        return self.linear(F.avg_pool2d(out, out.shape[-1]).flatten(1))


class Group(nn.Module):
    def __init__(self, n, cin, cout, stride):
        super().__init__()
        self.layer = nn.Sequential(*[PreAct(cin if i == 0 else cout, cout, stride if i == 0 else 1,
                                            "convShortcut") for i in range(n)])

    def forward(self, x):
        return self.layer(x)


class WRN(nn.Module):
    def __init__(self, depth, width, base=16, classes=10):
        super().__init__()
        n = (depth - 4) // 6
        self.conv1 = conv3(3, base)
        self.block1 = Group(n, base, 16 * width, 1)
        self.block2 = Group(n, 16 * width, 32 * width, 2)
        self.block3 = Group(n, 32 * width, 64 * width, 2)
        self.bn1, self.fc = nn.BatchNorm2d(64 * width), nn.Linear(64 * width, classes)

    def forward(self, x):
        out = self.block3(self.block2(self.block1(self.conv1(x))))
        out = F.relu(self.bn1(out))
        return self.fc(F.avg_pool2d(out, out.shape[-1]).flatten(1))


class DMBlock(nn.Module):
    """DeepMind's WideResNet block as clasp's dm-wrn preset computes it:
    pre-activation; where the channels change, the shortcut (1x1, strided)
    reads the activated input; a stride-2 3x3 convolution pads only
    right and bottom."""

    def __init__(self, cin, cout, stride, act):
        super().__init__()
        self.stride, self.act = stride, act
        self.batchnorm_0, self.batchnorm_1 = nn.BatchNorm2d(cin), nn.BatchNorm2d(cout)
        self.conv_0 = nn.Conv2d(cin, cout, 3, stride, 0, bias=False)
        self.conv_1 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.shortcut = nn.Conv2d(cin, cout, 1, stride, 0, bias=False) if cin != cout else None

    def forward(self, x):
        a = self.act(self.batchnorm_0(x))
        pad = (1, 1, 1, 1) if self.stride == 1 else (0, 1, 0, 1)
        out = self.conv_1(self.act(self.batchnorm_1(self.conv_0(F.pad(a, pad)))))
        return out + (self.shortcut(a) if self.shortcut is not None else x)


class DMWRN(nn.Module):
    def __init__(self, depth, width, act, classes=10):
        super().__init__()
        n = (depth - 4) // 6
        chans = [16, 16 * width, 32 * width, 64 * width]
        self.act = act
        self.init_conv = conv3(3, 16)
        blocks = []
        for g in range(3):
            for i in range(n):
                blocks.append(DMBlock(chans[g] if i == 0 else chans[g + 1], chans[g + 1],
                                      (1 if g == 0 else 2) if i == 0 else 1, act))
        self.blocks = nn.Sequential(*blocks)
        self.batchnorm, self.logits = nn.BatchNorm2d(chans[3]), nn.Linear(chans[3], classes)

    def forward(self, x):
        out = self.act(self.batchnorm(self.blocks(self.init_conv(x))))
        return self.logits(F.avg_pool2d(out, out.shape[-1]).flatten(1))


def build(arch, classes):
    """(model, input shape) for clasp's architecture names."""
    tv = re.fullmatch(r"tv-(resnet\d+|wide-resnet\d+-2)", arch)
    if tv:
        import torchvision
        name = tv.group(1).replace("wide-resnet", "wide_resnet").replace("-2", "_2")
        return getattr(torchvision.models, name)(num_classes=classes), (3, 224, 224)
    d = re.fullmatch(r"dm-wrn-(\d+)-(\d+)(-swish)?", arch)
    if d:
        act = F.silu if d.group(3) else F.relu
        return DMWRN(int(d.group(1)), int(d.group(2)), act, classes), (3, 32, 32)
    m = re.fullmatch(r"(resnet18|preact-resnet18|wrn-(\d+)-(\d+))(?:-w(\d+))?", arch)
    if arch == "default":
        return MadryCNN(classes), (1, 28, 28)
    if not m:
        raise SystemExit("torch_bench: unknown --arch %s" % arch)
    base = int(m.group(4)) if m.group(4) else None
    if m.group(2):
        return WRN(int(m.group(2)), int(m.group(3)), base or 16, classes), (3, 32, 32)
    return ResNet18(arch.startswith("preact"), base or 64, classes), (3, 32, 32)


def measure(step, batch, warmup, min_iters, seconds, sync):
    for _ in range(warmup):
        step()
    sync()
    iters, t0 = 0, time.perf_counter()
    while True:
        step()
        sync()
        iters += 1
        t = time.perf_counter() - t0
        if iters >= min_iters and t >= seconds:
            return iters * batch / t


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--arch", default="default")
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--seconds", type=float, default=5)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--device", default="cpu", help="cpu or cuda")
    ap.add_argument("--only", default=None)
    ap.add_argument("--input", default=None, help="CxHxW (default: by architecture)")
    ap.add_argument("--classes", type=int, default=10)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(1)
    dev = torch.device(a.device)
    model, shape = build(a.arch, a.classes)
    if a.input:
        shape = tuple(int(v) for v in a.input.split("x"))
    model = model.to(dev)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    x = torch.rand(a.batch, *shape, device=dev)
    y = (torch.arange(a.batch) % a.classes).to(dev)
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)

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

    def pgd10(eps, alpha):
        model.eval()
        xa = (x + torch.empty_like(x).uniform_(-eps, eps)).clamp(0, 1)
        for _ in range(10):
            xa.requires_grad_(True)
            loss = F.cross_entropy(model(xa), y)
            g, = torch.autograd.grad(loss, xa)
            xa = torch.min(torch.max(xa.detach() + alpha * g.sign(), x - eps), x + eps).clamp(0, 1)
        return xa

    def pgd10_at():
        train_on(pgd10(0.1, 0.025))

    def pgd10_attack():
        pgd10(8 / 255, 2 / 255)

    where = "CUDA %s" % torch.cuda.get_device_name() if dev.type == "cuda" else "CPU, %d threads" % a.threads
    print("device     %s (PyTorch %s)" % (where, torch.__version__))
    print("model      %s (%d parameters) on %s, batch %d" %
          ("default CNN" if a.arch == "default" else a.arch, sum(p.numel() for p in model.parameters()),
           "x".join(map(str, shape)), a.batch), flush=True)
    for name, step, warm, mins in (("inference", inference, 3, 10), ("train", train, 2, 5),
                                   ("pgd10-at", pgd10_at, 1, 3), ("pgd10-attack", pgd10_attack, 1, 3)):
        if a.only and a.only != name:
            continue
        print("%-12s images/s  %.1f" % (name, measure(step, a.batch, warm, mins, a.seconds, sync)), flush=True)
    if dev.type == "cuda":
        print("%-12s MiB       %.1f" % ("peak-memory", torch.cuda.max_memory_allocated() / 2**20))


if __name__ == "__main__":
    main()
