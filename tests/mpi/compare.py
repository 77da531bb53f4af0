#!/usr/bin/env python3
"""Comparisons for the MPI tests (standard library only).

  compare.py reports A/report.json B/report.json
      every count, loss and calibration of the two reports equal; times,
      start dates, the device name and the configuration text (which
      names the output folder) may differ.
  compare.py weights A.safetensors B.safetensors TOL
      same tensors, and every float differs by at most
      TOL * max(1, largest |value| of that tensor); prints the largest
      difference found.
"""
import json
import struct
import sys


def strip(o):
    if isinstance(o, dict):
        return {k: strip(v) for k, v in o.items()
                if 'seconds' not in k and k not in ('started', 'device', 'config_path', 'config')}
    if isinstance(o, list):
        return [strip(x) for x in o]
    return o


def reports(a, b):
    ra, rb = (strip(json.load(open(p))) for p in (a, b))
    if ra != rb:
        for k in ra:
            if k != 'models' and ra[k] != rb.get(k):
                print(f"'{k}' differs: {ra[k]} / {rb.get(k)}")
        for ma, mb in zip(ra.get('models', []), rb.get('models', [])):
            for k in ma:
                if ma[k] != mb.get(k):
                    print(f"model {ma.get('name')}: '{k}' differs:\n  {ma[k]}\n  {mb.get(k)}")
        sys.exit(f"{a} and {b} differ")
    print(f"{a} and {b}: identical counts")


def read_st(path):
    with open(path, 'rb') as f:
        data = f.read()
    (n,) = struct.unpack('<Q', data[:8])
    header = json.loads(data[8:8 + n])
    body = data[8 + n:]
    out = {}
    for name, info in header.items():
        if name == '__metadata__':
            continue
        s, e = info['data_offsets']
        if info['dtype'] == 'F32':
            out[name] = struct.unpack(f'<{(e - s) // 4}f', body[s:e])
        else:
            out[name] = body[s:e]
    return out


def weights(a, b, tol):
    wa, wb = read_st(a), read_st(b)
    if sorted(wa) != sorted(wb):
        sys.exit(f"{a} and {b} hold different tensors")
    worst = 0.0
    for name in wa:
        x, y = wa[name], wb[name]
        if isinstance(x, bytes):
            if x != y:
                sys.exit(f"{name}: differs")
            continue
        scale = max(1.0, max(abs(v) for v in x))
        d = max(abs(p - q) for p, q in zip(x, y)) / scale
        worst = max(worst, d)
        if d > tol:
            sys.exit(f"{name}: differs by {d:.3g} (relative to max(1, |w|max)), more than {tol:g}")
    print(f"largest difference {worst:.3g} (tolerance {tol:g})")


if __name__ == '__main__':
    if len(sys.argv) == 4 and sys.argv[1] == 'reports':
        reports(sys.argv[2], sys.argv[3])
    elif len(sys.argv) == 5 and sys.argv[1] == 'weights':
        weights(sys.argv[2], sys.argv[3], float(sys.argv[4]))
    else:
        sys.exit(__doc__)
