#!/usr/bin/env python3
"""Record draws from numpy's legacy RandomState for the Swift NumpyRandomState tests.

Pinned reference: numpy==2.4.6 (Python 3.11); the legacy RandomState stream is frozen by numpy's
compatibility policy, so any numpy >= 1.17 should write the same file. Run from the repository root:

    python3 -m venv .venv-minatar
    .venv-minatar/bin/pip install minatar==1.0.15 numpy==2.4.6
    .venv-minatar/bin/python scripts/reference/numpy_random_fixture.py

It rewrites Tests/EnvsTests/Fixtures/numpy_random.json: cases, each a seed (an integer, which numpy
feeds to init_genrand, or an array, which it feeds to init_by_array) followed by operations run in
order on that one generator, with the values numpy returned. Doubles are stored as the hexadecimal
bit pattern of the IEEE 754 value so the comparison is exact.
"""
import json
import os
import struct

import numpy as np

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "Tests", "EnvsTests", "Fixtures",
                   "numpy_random.json")


def bits(x):
    return "%016x" % struct.unpack("<Q", struct.pack("<d", float(x)))[0]


def run(seed, operations):
    rs = np.random.RandomState(seed)
    key = rs.get_state()[1]
    case = {"seed": seed if isinstance(seed, int) else None,
            "seedArray": None if isinstance(seed, int) else list(seed),
            "stateHead": [int(v) for v in key[:4]], "stateTail": int(key[623]), "operations": []}
    for op in operations:
        kind = op[0]
        if kind == "uint32":  # range exactly 2**32: numpy returns raw 32-bit outputs
            values = [int(v) for v in rs.randint(0, 2**32, size=op[1], dtype=np.uint64)]
            case["operations"].append({"kind": kind, "count": op[1], "values": values})
        elif kind == "randomSample":
            values = [bits(rs.rand()) for _ in range(op[1])]
            case["operations"].append({"kind": kind, "count": op[1], "doubles": values})
        elif kind == "randomSampleArray":  # rand(n): one call, n values
            values = [bits(v) for v in rs.rand(op[1])]
            case["operations"].append({"kind": kind, "count": op[1], "doubles": values})
        elif kind == "randomInteger":  # scalar randint(low, high), one call per value
            low, high, count = op[1], op[2], op[3]
            values = [int(rs.randint(low, high)) for _ in range(count)]
            case["operations"].append({"kind": kind, "low": low, "high": high, "count": count, "values": values})
        elif kind == "randomIntegerArray":  # randint(low, high, size=n): one call, n values
            low, high, count = op[1], op[2], op[3]
            values = [int(v) for v in rs.randint(low, high, count)]
            case["operations"].append({"kind": kind, "low": low, "high": high, "count": count, "values": values})
        elif kind == "choiceCount":  # choice(n)
            n, count = op[1], op[2]
            values = [int(rs.choice(n)) for _ in range(count)]
            case["operations"].append({"kind": kind, "high": n, "count": count, "values": values})
        else:
            raise ValueError(kind)
    return case


def main():
    mixed = [("randomSample", 5), ("randomInteger", 0, 2, 10), ("randomInteger", 1, 9, 10),
             ("randomInteger", 0, 1, 5), ("randomSample", 3), ("randomInteger", 0, 7, 10),
             ("randomIntegerArray", 1, 6, 8), ("randomSampleArray", 8), ("randomInteger", -5, 5, 10),
             ("randomInteger", 0, 1000, 10), ("randomInteger", 0, 2**40, 10), ("randomInteger", -2**62, 2**62, 5),
             ("randomInteger", 0, 2**32 + 1, 5), ("choiceCount", 7, 10)]
    # Long runs cross MT19937's 624-word regeneration several times.
    long = mixed + [("uint32", 700), ("randomSample", 700), ("randomInteger", 0, 6, 700)]
    cases = [run(seed, long if seed == 42 else mixed) for seed in (0, 1, 42, 123456789, 4294967295)]
    cases.append(run([5, 6], long))
    cases.append(run([0], [("uint32", 10)]))
    cases.append(run([1, 2, 3, 4, 5, 6, 7, 8], [("uint32", 10), ("randomSample", 10)]))
    document = {"numpy": np.__version__, "cases": cases}
    with open(OUT, "w") as handle:
        json.dump(document, handle, separators=(",", ":"))
        handle.write("\n")
    print(OUT, os.path.getsize(OUT), "bytes")


if __name__ == "__main__":
    main()
