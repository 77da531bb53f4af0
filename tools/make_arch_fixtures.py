#!/usr/bin/env python3
"""Reference logits of RobustBench's own model definitions, for clasp's presets.

usage: make_arch_fixtures.py ROBUSTBENCH_CHECKOUT [OUT_DIR]

Imports the architecture files of a RobustBench source checkout by path (they
are not part of clasp), builds small instances of each family with random
weights and random BatchNorm statistics, and writes for each, into OUT_DIR
(default tests/fixtures/arch): NAME.safetensors, the state dict as PyTorch
names it (plus the clasp.classes / clasp.normalize metadata that a zoo entry
supplies from outside the state dict), and NAME.ref, a small input batch and
the logits in eval mode. tests/test_zoo_arch.c loads each file with the
preset it names and compares.
"""
import importlib.util
import json
import os
import struct
import sys

import torch
import torch.nn as nn


def load_module(root, name):
    path = os.path.join(root, "robustbench", "model_zoo", "architectures", name + ".py")
    spec = importlib.util.spec_from_file_location("rb_" + name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def save_safetensors(path, tensors, meta):
    """The safetensors layout: u64 header size, JSON header, raw data."""
    header, blobs, off = {"__metadata__": meta}, [], 0
    for name, t in tensors.items():
        t = t.detach().contiguous().cpu()
        if t.dtype == torch.float32:
            dt, raw = "F32", t.numpy().tobytes()
        elif t.dtype == torch.int64:
            dt, raw = "I64", t.numpy().tobytes()
        else:
            raise ValueError(f"{name}: dtype {t.dtype}")
        header[name] = {"dtype": dt, "shape": list(t.shape), "data_offsets": [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def randomise(model, gen):
    """Random BatchNorm affine parameters and running statistics, and conv /
    linear weights large enough that the logits are not all near zero."""
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            c = m.num_features
            m.weight.data = torch.rand(c, generator=gen) * 1.0 + 0.5
            m.bias.data = torch.randn(c, generator=gen) * 0.2
            m.running_mean.data = torch.randn(c, generator=gen) * 0.2
            m.running_var.data = torch.rand(c, generator=gen) * 1.5 + 0.5
            m.num_batches_tracked.data = torch.tensor(7, dtype=torch.int64)
        elif isinstance(m, (nn.Conv2d, nn.Linear)):
            fan_in = m.weight[0].numel()
            m.weight.data = torch.randn(m.weight.shape, generator=gen) * (2.0 / fan_in) ** 0.5
            if m.bias is not None:
                m.bias.data = torch.randn(m.bias.shape, generator=gen) * 0.1


def narrow_dm_preact(mod, model, base, act):
    """DMPreActResNet has fixed widths 64..512: the same class with its
    stages rebuilt by its own _make_layer at base, 2*base, 4*base, 8*base."""
    model.conv_2d = nn.Conv2d(3, base, 3, 1, 1, bias=False)
    w = [base, 2 * base, 4 * base, 8 * base]
    model.layer_0 = model._make_layer(w[0], w[0], 2, 1, act)
    model.layer_1 = model._make_layer(w[0], w[1], 2, 2, act)
    model.layer_2 = model._make_layer(w[1], w[2], 2, 2, act)
    model.layer_3 = model._make_layer(w[2], w[3], 2, 2, act)
    model.batchnorm = nn.BatchNorm2d(w[3])
    model.logits = nn.Linear(w[3], model.logits.out_features)
    return model


def narrow_resnet(model, block, base, resnet):
    """RobustBench's ResNet / PreActResNet start at 64 channels: the same
    class with conv1, its stages (its own _make_layer) and the head at base."""
    model.in_planes = base
    model.conv1 = nn.Conv2d(3, base, 3, 1, 1, bias=False)
    if resnet:
        model.bn1 = nn.BatchNorm2d(base)
    for i in range(4):
        setattr(model, f"layer{i + 1}", model._make_layer(block, base << i, 2, 1 if i == 0 else 2))
    if getattr(model, "bn_before_fc", False):
        model.bn = nn.BatchNorm2d(8 * base)
    model.linear = nn.Linear(8 * base, model.linear.out_features)
    return model


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    root = sys.argv[1]
    out = sys.argv[2] if len(sys.argv) > 2 else os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures", "arch")
    os.makedirs(out, exist_ok=True)
    dm = load_module(root, "dm_wide_resnet")
    rn = load_module(root, "resnet")
    wr = load_module(root, "wide_resnet")
    c10 = (dm.CIFAR10_MEAN, dm.CIFAR10_STD)
    c100 = (dm.CIFAR100_MEAN, dm.CIFAR100_STD)

    # (file name, clasp preset, model builder, classes, normalisation or None)
    cases = [
        ("dm-wrn-10-1", "dm-wrn-10-1", lambda: dm.DMWideResNet(10, 10, 1, nn.ReLU, *c10), 10, c10),
        ("dm-wrn-10-1-swish-pad2", "dm-wrn-10-1-swish-pad2",
         lambda: dm.DMWideResNet(100, 10, 1, dm.Swish, *c100, padding=2), 100, c100),
        ("dm-preact-resnet18-w4", "dm-preact-resnet18-w4",
         lambda: narrow_dm_preact(dm, dm.DMPreActResNet(10, 18, 0, nn.ReLU, *c10, use_cuda=False),
                                  4, nn.ReLU), 10, c10),
        ("dm-preact-resnet18-w4-swish", "dm-preact-resnet18-w4-swish",
         lambda: narrow_dm_preact(dm, dm.DMPreActResNet(10, 18, 0, dm.Swish, *c10, use_cuda=False),
                                  4, dm.Swish), 10, c10),
        ("preact-resnet18-nobn-w4", "preact-resnet18-nobn-w4",
         lambda: narrow_resnet(rn.PreActResNet(rn.PreActBlock, [2, 2, 2, 2]), rn.PreActBlock, 4,
                               False), 10, None),
        ("preact-resnet18-w4", "preact-resnet18-w4",
         lambda: narrow_resnet(rn.PreActResNet(rn.PreActBlock, [2, 2, 2, 2], bn_before_fc=True,
                                               out_shortcut=True), rn.PreActBlock, 4, False),
         10, None),
        ("resnet18-w4", "resnet18-w4",
         lambda: narrow_resnet(rn.ResNet18(), rn.BasicBlock, 4, True), 10, None),
        ("wrn-10-1", "wrn-10-1", lambda: wr.WideResNet(depth=10, widen_factor=1), 10, None),
    ]
    gen = torch.Generator().manual_seed(20261207)
    for fname, preset, build, classes, norm in cases:
        model = build()
        randomise(model, gen)
        model.eval()
        x = torch.rand(2, 3, 32, 32, generator=gen)
        with torch.no_grad():
            logits = model(x)
        meta = {"format": "pt", "clasp.classes": str(classes)}
        if norm:
            meta["clasp.normalize"] = ",".join(f"{v:.9g}" for v in norm[0]) + "/" + ",".join(
                f"{v:.9g}" for v in norm[1])
        save_safetensors(os.path.join(out, fname + ".safetensors"), model.state_dict(), meta)
        # The .ref file: one JSON line for the test to read shapes from, then
        # the input and the logits as little-endian float32.
        ref = {"preset": preset, "input": list(x.shape), "logits": list(logits.shape)}
        with open(os.path.join(out, fname + ".ref"), "wb") as f:
            f.write((json.dumps(ref) + "\n").encode())
            f.write(x.numpy().astype("<f4").tobytes())
            f.write(logits.numpy().astype("<f4").tobytes())
        n = sum(t.numel() for t in model.state_dict().values())
        print(f"{fname}: {n} values, logits |max| {logits.abs().max():.3f}")


if __name__ == "__main__":
    main()
