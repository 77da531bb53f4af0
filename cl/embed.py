#!/usr/bin/env python3
"""Turns OpenCL C files into a C table of (name, source) strings.

Usage: embed.py OUTPUT.c FILE.cl...   The name is the file's stem."""
import os
import sys


def c_string(text):
    out = []
    for line in text.splitlines(True):
        esc = line.replace('\\', '\\\\').replace('"', '\\"').replace('\n', '\\n')
        out.append('    "' + esc + '"')
    return '\n'.join(out) if out else '    ""'


def main():
    output, inputs = sys.argv[1], sys.argv[2:]
    parts = ['/* Generated from the cl folder by cl/embed.py. Do not edit. */',
             '#include <stddef.h>',
             '#include "runtime/cl_sources.h"', '']
    entries = []
    for i, path in enumerate(inputs):
        name = os.path.splitext(os.path.basename(path))[0]
        with open(path, encoding='utf-8') as f:
            src = f.read()
        parts.append('static const char src_%d[] =\n%s;\n' % (i, c_string(src)))
        entries.append('    {"%s", src_%d},' % (name, i))
    parts.append('const clasp_cl_source clasp_cl_sources[] = {')
    parts.extend(entries)
    parts.append('    {NULL, NULL},')
    parts.append('};')
    with open(output, 'w', encoding='utf-8') as f:
        f.write('\n'.join(parts) + '\n')


if __name__ == '__main__':
    main()
