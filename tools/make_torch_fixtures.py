#!/usr/bin/env python3
"""Writes the PyTorch checkpoint fixtures of tests/test_torchfile.c.

Run with a Python that has torch:  python3 tools/make_torch_fixtures.py
Writes tests/fixtures/torch/*.pt (a few KB each) and expected.json, which
lists for every readable file its format, entry, prefix and tensors (name,
dtype, shape, all values as float32 or int64), so the C test compares
values exactly. The malicious pickles are assembled from opcodes and never
loaded here."""
import io
import json
import os
import pickle
import struct
import sys
import zipfile

import torch

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures", "torch")
expected = {}


class Tiny(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(1, 2, 3)
        self.bn = torch.nn.BatchNorm2d(2)
        self.fc = torch.nn.Linear(8, 3)


def tiny_state():
    torch.manual_seed(1)
    m = Tiny()
    with torch.no_grad():
        m.bn.running_mean.uniform_(-1, 1)
        m.bn.running_var.uniform_(0.5, 2)
        m.bn.num_batches_tracked.fill_(7)
    return m, m.state_dict()


def describe(sd):
    out = []
    for k, v in sd.items():
        v = v.detach()
        if v.is_floating_point():
            dt, vals = "F32", [float(x) for x in v.to(torch.float32).flatten().tolist()]
        else:
            dt, vals = "I64", [int(x) for x in v.to(torch.int64).flatten().tolist()]
        out.append({"name": k, "dtype": dt, "shape": list(v.shape), "values": vals})
    return out


def save(name, obj, sd, fmt, entry="", prefix="", legacy=False):
    path = os.path.join(OUT, name)
    torch.save(obj, path, _use_new_zipfile_serialization=not legacy)
    strip = {k[len(prefix):]: v for k, v in sd.items()}
    expected[name] = {"format": fmt, "entry": entry, "prefix": prefix, "tensors": describe(strip)}
    return path


def main():
    os.makedirs(OUT, exist_ok=True)
    m, sd = tiny_state()
    for legacy, fmt, tag in ((False, "pytorch-zip", "zip"), (True, "pytorch-legacy", "legacy")):
        save(f"state_{tag}.pt", sd, sd, fmt, legacy=legacy)
        for dt, dn in ((torch.float16, "f16"), (torch.bfloat16, "bf16"), (torch.float64, "f64")):
            d = {k: (v.to(dt) if v.is_floating_point() else v) for k, v in sd.items()}
            save(f"{dn}_{tag}.pt", d, d, fmt, legacy=legacy)
        # Views: an offset into a shared storage, a transposed weight, two
        # tensors over one storage, a strided slice, other integer dtypes.
        base = torch.arange(24, dtype=torch.float32) / 4 - 2
        views = {
            "offset": base[5:11].view(2, 3),
            "transposed": base[:12].view(3, 4).t(),
            "shared": base[:12].view(3, 4),
            "strided": base.view(4, 6)[:, ::2],
            "scalar": torch.tensor(2.5),
            "empty": torch.zeros(0, 3),
            "i32": torch.tensor([[-3, 4], [5, -6]], dtype=torch.int32),
            "u8": torch.tensor([0, 200, 255], dtype=torch.uint8),
            "flag": torch.tensor([True, False, True]),
        }
        save(f"views_{tag}.pt", views, views, fmt, legacy=legacy)
        opt = torch.optim.SGD(m.parameters(), lr=0.1, momentum=0.9)
        m(torch.ones(1, 1, 4, 4)).sum() if False else None
        for p in m.parameters():
            p.grad = torch.ones_like(p)
        opt.step()
        for key in ("state_dict", "model", "model_state_dict", "net"):
            obj = {"epoch": 12, key: sd, "optimizer": opt.state_dict(), "best_acc": 91.5,
                   "arch": "tiny", "history": [1.0, 2.0, (3, "x")], "flag": None}
            save(f"wrap_{key}_{tag}.pt", obj, sd, fmt, entry=key, legacy=legacy)
        other = {"epoch": 3, "weights": sd, "opt": opt.state_dict()}
        save(f"wrap_other_{tag}.pt", other, sd, fmt, entry="weights", legacy=legacy)
        mod = {"module." + k: v for k, v in sd.items()}
        save(f"prefix_module_{tag}.pt", {"state_dict": mod}, mod, fmt, entry="state_dict",
             prefix="module.", legacy=legacy)
        comp = {"_orig_mod." + k: v for k, v in sd.items()}
        save(f"prefix_orig_mod_{tag}.pt", comp, comp, fmt, prefix="_orig_mod.", legacy=legacy)
        both = {"module._orig_mod." + k: v for k, v in sd.items()}
        save(f"prefix_both_{tag}.pt", both, both, fmt, prefix="module._orig_mod.", legacy=legacy)
        # Parameters (not just tensors) are pickled with _rebuild_parameter.
        params = dict(m.named_parameters())
        save(f"params_{tag}.pt", params, params, fmt, legacy=legacy)

    write_malicious()
    write_broken()
    with open(os.path.join(OUT, "expected.json"), "w") as f:
        json.dump(expected, f, indent=0, sort_keys=True)
        f.write("\n")


def zip_with_pickle(name, pkl, storages=()):
    """A zip container like torch.save's, holding a hand-made data.pkl."""
    path = os.path.join(OUT, name)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as z:
        z.writestr("archive/data.pkl", pkl)
        z.writestr("archive/byteorder", "little")
        for k, b in storages:
            z.writestr(f"archive/data/{k}", b)
        z.writestr("archive/version", "3\n")


def write_malicious():
    # {'w': <tensor>, 'x': os.system('touch MARKER')} as opcodes: the global
    # comes after a real tensor, so a reader must refuse it at its opcode.
    marker = "torch_fixture_pwned"
    tensor = (b"\x80\x02}q\x00(X\x01\x00\x00\x00wctorch._utils\n_rebuild_tensor_v2\n"
              b"((X\x07\x00\x00\x00storagectorch\nFloatStorage\nX\x01\x00\x00\x000X\x03\x00\x00\x00cpu"
              b"K\x02tQK\x00K\x02\x85K\x01\x85\x89ccollections\nOrderedDict\n)RtR")
    payload = tensor + b"X\x01\x00\x00\x00xcos\nsystem\nX" + struct.pack(
        "<I", len("touch " + marker)) + ("touch " + marker).encode() + b"\x85Ru."
    zip_with_pickle("evil_os_system.pt", payload, [("0", struct.pack("<2f", 1, 2))])
    # builtins.eval through STACK_GLOBAL (protocol 4), at the top.
    code = "open('%s','w').write('x')" % marker
    ev = (b"\x80\x04\x8c\x08builtins\x94\x8c\x04eval\x94\x93\x94\x8c" + bytes([len(code)]) +
          code.encode() + b"\x94\x85\x94R\x94.")
    zip_with_pickle("evil_builtins_eval.pt", ev)
    # Legacy container with posix.system in its main pickle.
    buf = io.BytesIO()
    for v in (0x1950a86a20f9469cfc6c, 1001, {"protocol_version": 1001, "little_endian": True}):
        pickle.dump(v, buf, protocol=2)
    buf.write(b"\x80\x02cposix\nsystem\nX\x05\x00\x00\x00touch\x85R.")
    with open(os.path.join(OUT, "evil_legacy_posix.pt"), "wb") as f:
        f.write(buf.getvalue())
    # An argparse Namespace next to the state dict: refused, by name.
    buf = io.BytesIO()
    with zipfile.ZipFile(os.path.join(OUT, "evil_namespace.pt"), "w") as z:
        z.writestr("archive/data.pkl", b"\x80\x02}q\x00X\x04\x00\x00\x00argsq\x01cargparse\n"
                                       b"Namespace\nq\x02)\x81q\x03}q\x04bs.")
    expected["_marker"] = marker


def write_broken():
    src = os.path.join(OUT, "state_zip.pt")
    data = open(src, "rb").read()
    open(os.path.join(OUT, "trunc_zip.pt"), "wb").write(data[: len(data) // 2])
    leg = open(os.path.join(OUT, "state_legacy.pt"), "rb").read()
    open(os.path.join(OUT, "trunc_legacy.pt"), "wb").write(leg[: len(leg) - 10])
    open(os.path.join(OUT, "trunc_legacy_pickle.pt"), "wb").write(leg[:200])
    # A data.pkl cut short, and one whose tensor reaches past its storage.
    with zipfile.ZipFile(src) as z:
        name = [n for n in z.namelist() if n.endswith("data.pkl")][0]
        pkl = z.read(name)
        stor = [(n.split("/data/")[1], z.read(n)) for n in z.namelist() if "/data/" in n]
    zip_with_pickle("trunc_pickle_zip.pt", pkl[: len(pkl) - 20], stor)
    short = [(k, b[: len(b) // 2]) for k, b in stor]
    zip_with_pickle("short_storage_zip.pt", pkl, short)
    # Flip bytes inside a stored storage: the zip CRC no longer matches.
    bad = bytearray(data)
    off = data.find(stor[0][1][:8])
    bad[off] ^= 0xFF
    open(os.path.join(OUT, "corrupt_crc_zip.pt"), "wb").write(bytes(bad))
    # A tensor view beyond its storage: size 100 on a 2-element storage.
    over = (b"\x80\x02}(X\x01\x00\x00\x00wctorch._utils\n_rebuild_tensor_v2\n"
            b"((X\x07\x00\x00\x00storagectorch\nFloatStorage\nX\x01\x00\x00\x000X\x03\x00\x00\x00cpu"
            b"K\x02tQK\x00Kd\x85K\x01\x85\x89ccollections\nOrderedDict\n)RtRu.")
    zip_with_pickle("view_overflow_zip.pt", over, [("0", struct.pack("<2f", 1, 2))])
    open(os.path.join(OUT, "not_a_model.pt"), "wb").write(b"hello, not a checkpoint\n")


if __name__ == "__main__":
    sys.exit(main())
