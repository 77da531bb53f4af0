#!/usr/bin/env python3
"""Reference logits of torchvision's ImageNet ResNets (and RobustBench's
CIFAR ResNet-50), for clasp's tv-* and resnetD presets.

usage: make_torchvision_fixtures.py [--robustbench CHECKOUT] [OUT_DIR]

torchvision's ResNets cannot be built narrow (their stage widths are fixed),
and full-width weights are far too large to commit. So every parameter and
buffer is filled from a small integer hash of (tensor index, element index)
that tests/test_zoo_arch.c computes the same way, and the fixture holds only
what the hash cannot give: the tensor names and shapes in state-dict order
and the logits PyTorch computes in eval mode on a hashed input batch.

For each model, OUT_DIR (default tests/fixtures/torchvision) gets NAME.txt:
    preset NAME
    input N C H W
    classes K
    tensor INDEX NAME DIM0,DIM1,...      (state-dict order)
    logits v v v ...                     (N*K values, row-major)
    wrapped v v v ...                    (optional: the same model inside
                                          RobustBench's normalize_model with
                                          ImageNet's mean and std)

The filling, for tensor t (its index in the state dict) and element i:
    h = hash32(i, t); u = (h >> 8) / 2^24  in [0, 1)
    conv / linear weight:  (2u - 1) * sqrt(6 / fan_in)
    linear bias:           0.1 * (2u - 1)
    BatchNorm weight:      0.5 + 0.5u      bias: 0.2 * (2u - 1)
    running_mean:          0.2 * (2u - 1)  running_var: 0.5 + u
    num_batches_tracked:   0
    input x:               u of tensor index 1000000
each computed in double and rounded to float32 once.

The CIFAR ResNet-50 comes from RobustBench's resnet.py, imported by path from
a RobustBench source checkout when --robustbench is given (it is not part of
clasp).
"""
import importlib.util
import math
import os
import sys

import torch
import torchvision

MASK = 0xFFFFFFFF


def hash32(i, t):
    """The integer hash of element indices i (an int64 tensor) of tensor t,
    in uint32 arithmetic: every product is taken modulo 2^32 (int64 wraps
    in two's complement, and the mask keeps the low 32 bits)."""
    h = (i * 2654435761 + ((t * 2246822519 + 374761393) & MASK)) & MASK
    h ^= h >> 15
    h = (h * 2246822519) & MASK
    h ^= h >> 13
    h = (h * 3266489917) & MASK
    h ^= h >> 16
    return h


def unit(n, t):
    i = torch.arange(n, dtype=torch.int64)
    return (hash32(i, t) >> 8).double() / float(1 << 24)


def fill(name, shape, t):
    n = math.prod(shape) if shape else 1
    u = unit(n, t)
    leaf = name.rsplit(".", 1)[-1]
    if leaf == "num_batches_tracked":
        return torch.zeros(shape, dtype=torch.int64)
    if leaf == "weight" and len(shape) >= 2:
        fan_in = n // shape[0]
        v = (2 * u - 1) * math.sqrt(6.0 / fan_in)
    elif leaf == "bias" and name.split(".")[-2] in ("fc", "linear"):
        v = 0.1 * (2 * u - 1)
    elif leaf == "weight":
        v = 0.5 + 0.5 * u
    elif leaf == "bias":
        v = 0.2 * (2 * u - 1)
    elif leaf == "running_mean":
        v = 0.2 * (2 * u - 1)
    elif leaf == "running_var":
        v = 0.5 + u
    else:
        raise ValueError(name)
    return v.float().reshape(shape)


class Normalized(torch.nn.Module):
    """RobustBench's normalize_model, written here: (x - mean) / std, then the model."""

    def __init__(self, model, mean, std):
        super().__init__()
        self.mean = torch.tensor(mean).view(1, 3, 1, 1)
        self.std = torch.tensor(std).view(1, 3, 1, 1)
        self.model = model

    def forward(self, x):
        return self.model((x - self.mean) / self.std)


def write(out_dir, preset, model, shape, wrap):
    sd = model.state_dict()
    new = {}
    lines = [f"preset {preset}", "input " + " ".join(map(str, shape))]
    for t, (name, v) in enumerate(sd.items()):
        new[name] = fill(name, list(v.shape), t)
        lines.append(f"tensor {t} {name} " + ",".join(map(str, v.shape)))
    model.load_state_dict(new)
    model.eval()
    x = unit(math.prod(shape), 1000000).float().reshape(shape)
    with torch.no_grad():
        z = model(x)
        lines.insert(2, f"classes {z.shape[1]}")
        lines.append("logits " + " ".join("%.9g" % v for v in z.flatten().tolist()))
        if wrap:
            w = Normalized(model, (0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
            zw = w(x)
            lines.append("wrapped " + " ".join("%.9g" % v for v in zw.flatten().tolist()))
    path = os.path.join(out_dir, preset + ".txt")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    print(f"{path}: {len(sd)} tensors, |logits| <= {z.abs().max().item():.3g}")


def main():
    args = sys.argv[1:]
    rb = None
    if args[:1] == ["--robustbench"]:
        rb, args = args[1], args[2:]
    out_dir = args[0] if args else "tests/fixtures/torchvision"
    os.makedirs(out_dir, exist_ok=True)
    torch.manual_seed(0)
    m = torchvision.models
    write(out_dir, "tv-resnet18", m.resnet18(num_classes=100), (2, 3, 61, 61), False)
    write(out_dir, "tv-resnet50", m.resnet50(num_classes=1000), (2, 3, 61, 61), True)
    write(out_dir, "tv-wide-resnet50-2", m.wide_resnet50_2(num_classes=100), (1, 3, 45, 45),
          False)
    if rb:
        path = os.path.join(rb, "robustbench", "model_zoo", "architectures", "resnet.py")
        spec = importlib.util.spec_from_file_location("rb_resnet", path)
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        net = mod.ResNet(mod.Bottleneck, [3, 4, 6, 3], num_classes=10)
        write(out_dir, "resnet50", net, (2, 3, 32, 32), False)


if __name__ == "__main__":
    main()
