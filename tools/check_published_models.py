#!/usr/bin/env python3
"""Checks clasp against PyTorch on RobustBench's own model definitions.

For each architecture family of RobustBench's CIFAR-10 zoo, builds the model
with RobustBench's definition (imported from a RobustBench checkout given on
the command line; nothing of it is copied here), gives it random weights and
random BatchNorm statistics, saves it with torch.save as a published
checkpoint would be, then runs

    clasp attack --zoo NAME --model FILE.pt --dataset cifar10 --data DIR
                 --attack ATTACK --samples N --save-adv ADV

and compares clasp's clean predictions with PyTorch's on the same images,
and PyTorch's predictions on clasp's adversarial images with clasp's.

Needs Debian's python3-torch (run it with /usr/bin/python3) and a CIFAR-10
binary folder (tools/fashion_to_cifar.py makes one from Fashion-MNIST).

    /usr/bin/python3 tools/check_published_models.py ROBUSTBENCH_DIR CIFAR_DIR \\
        [--clasp build/src/cli/clasp] [--samples 16] [--only NAME]
"""

import argparse
import importlib.util
import json
import os
import struct
import subprocess
import sys
import tempfile
import time

import torch

# (zoo name, how to build it with RobustBench's classes, attack, samples)
FAMILIES = [
    ("Rebuffi2021Fixing_28_10_cutmix_ddpm",
     lambda a: a["dm"].DMWideResNet(num_classes=10, depth=28, width=10,
                                    activation_fn=a["dm"].Swish,
                                    mean=a["dm"].CIFAR10_MEAN,
                                    std=a["dm"].CIFAR10_STD),
     "autoattack --set version=fast"),
    ("Rebuffi2021Fixing_R18_ddpm",
     lambda a: a["dm"].DMPreActResNet(num_classes=10, depth=18, width=0,
                                      activation_fn=a["dm"].Swish,
                                      mean=a["dm"].CIFAR10_MEAN,
                                      std=a["dm"].CIFAR10_STD),
     "apgd"),
    ("Carmon2019Unlabeled",
     lambda a: a["wrn"].WideResNet(depth=28, widen_factor=10, sub_block1=True),
     "apgd"),
    ("Andriushchenko2020Understanding",
     lambda a: a["rn"].PreActResNet(a["rn"].PreActBlock, [2, 2, 2, 2]),
     "apgd"),
    ("Addepalli2021Towards_RN18", lambda a: a["rn"].ResNet18(), "apgd"),
]


def load_module(path, name):
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def randomise(model, seed):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.1)
                m.running_var.copy_(torch.rand(m.num_features, generator=g) * 0.5 + 0.75)
                m.weight.copy_(torch.rand(m.num_features, generator=g) * 0.5 + 0.75)
                m.bias.copy_(torch.randn(m.num_features, generator=g) * 0.1)
    model.eval()


def read_cifar_test(folder, n):
    raw = open(os.path.join(folder, "test_batch.bin"), "rb").read()
    rec = 1 + 3 * 32 * 32
    n = min(n, len(raw) // rec)
    xs, ys = [], []
    for i in range(n):
        r = raw[i * rec:(i + 1) * rec]
        ys.append(r[0])
        xs.append(torch.tensor(list(r[1:]), dtype=torch.float32).view(3, 32, 32) / 255.0)
    return torch.stack(xs), torch.tensor(ys)


def read_safetensors(path):
    data = open(path, "rb").read()
    hl = struct.unpack("<Q", data[:8])[0]
    head = json.loads(data[8:8 + hl])
    out = {}
    base = 8 + hl
    for k, v in head.items():
        if k == "__metadata__":
            continue
        b, e = v["data_offsets"]
        dt = {"F32": torch.float32, "I32": torch.int32, "I64": torch.int64}[v["dtype"]]
        t = torch.frombuffer(bytearray(data[base + b:base + e]), dtype=dt)
        out[k] = t.view(v["shape"])
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("robustbench")
    ap.add_argument("cifar")
    ap.add_argument("--clasp", default="build/src/cli/clasp")
    ap.add_argument("--samples", type=int, default=16)
    ap.add_argument("--only")
    ap.add_argument("--keep", help="folder to keep the .pt files in")
    args = ap.parse_args()
    arch = os.path.join(args.robustbench, "robustbench", "model_zoo", "architectures")
    mods = {"dm": load_module(os.path.join(arch, "dm_wide_resnet.py"), "rb_dm"),
            "wrn": load_module(os.path.join(arch, "wide_resnet.py"), "rb_wrn"),
            "rn": load_module(os.path.join(arch, "resnet.py"), "rb_rn")}
    x, y = read_cifar_test(args.cifar, args.samples)
    work = args.keep or tempfile.mkdtemp(prefix="clasp-zoo-")
    os.makedirs(work, exist_ok=True)
    failed = 0
    for seed, (name, build, attack) in enumerate(FAMILIES):
        if args.only and args.only != name:
            continue
        torch.manual_seed(seed)
        model = build(mods)
        randomise(model, seed)
        pt = os.path.join(work, name + ".pt")
        torch.save(model.state_dict(), pt)
        adv = os.path.join(work, name + ".adv.safetensors")
        cmd = [args.clasp, "attack", "--zoo", name, "--threat", "Linf", "--model", pt,
               "--dataset", "cifar10",
               "--data", args.cifar, "--attack"] + attack.split() + ["--set", "eps=0.0313725",
               "--samples", str(args.samples), "--save-adv", adv]
        t0 = time.time()
        r = subprocess.run(cmd, capture_output=True, text=True)
        secs = time.time() - t0
        if r.returncode != 0:
            print("%s: clasp failed (%d):\n%s" % (name, r.returncode, r.stderr[-2000:]))
            failed += 1
            continue
        saved = read_safetensors(adv)
        with torch.no_grad():
            logits = model(x)
            adv_logits = model(saved["x_adv"])
        clean_pt = logits.argmax(1)
        adv_pt = adv_logits.argmax(1)
        same_clean = int((clean_pt == saved["clean_pred"].long()).sum())
        same_adv = int((adv_pt == saved["adv_pred"].long()).sum())
        # Where PyTorch's top two logits are within float noise, either
        # answer is right: count those apart.
        top2 = adv_logits.topk(2, dim=1).values
        close = int(((top2[:, 0] - top2[:, 1]).abs() < 1e-4).sum())
        n = len(y)
        ok = same_clean == n and same_adv + close >= n
        failed += not ok
        print("%-38s clean predictions equal %d/%d, adversarial %d/%d (%d near ties), "
              "clasp %.1f s, %s" % (name, same_clean, n, same_adv, n, close, secs,
                                     "ok" if ok else "DIFFERENT"))
    print("%d passed, %d failed" % (len([f for f in FAMILIES if not args.only or f[0] == args.only])
                                     - failed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
