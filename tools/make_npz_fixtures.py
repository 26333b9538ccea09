#!/usr/bin/env python3
"""Fixtures for packages/ir/src/npy.test.ts and npz.test.ts, made with numpy.

  make_npz_fixtures.py make OUTDIR
      Writes .npy/.npz files into OUTDIR plus OUTDIR/expected.json describing them.
  make_npz_fixtures.py summarize FILE...
      Loads each .npy/.npz with numpy and prints a JSON summary (dtype, shape, fortran flag,
      values) so the tests can check files written by q.

Values are written as exact JSON: integers as decimal strings (64-bit safe), floats as their
raw bit patterns (as decimal strings of the unsigned integer view), bools as 0/1.
"""
import json
import os
import sys

import numpy as np


def values_of(a):
    # Native byte order first, so that the bit-pattern view below reads the right bits.
    a = np.ascontiguousarray(a.astype(a.dtype.newbyteorder("="), copy=False)).reshape(-1)
    if a.dtype.kind == "f":
        bits = a.view({2: np.uint16, 4: np.uint32, 8: np.uint64}[a.dtype.itemsize])
        return [str(int(v)) for v in bits]
    if a.dtype.kind == "b":
        return [int(v) for v in a]
    return [str(int(v)) for v in a]


def describe(a):
    return {
        "dtype": a.dtype.name,
        "byteorder": a.dtype.str[0],
        "shape": list(a.shape),
        "fortran": bool(a.flags["F_CONTIGUOUS"] and not a.flags["C_CONTIGUOUS"]),
        "values": values_of(a),
    }


def arrays():
    rng = np.random.default_rng(1234)
    out = {}
    f32 = rng.standard_normal((2, 3, 4)).astype(np.float32)
    f32[0, 0, :4] = [np.inf, -np.inf, np.nan, -0.0]
    out["float32"] = f32
    f16 = rng.standard_normal((5, 7)).astype(np.float16)
    f16[0, :5] = [np.inf, -np.inf, np.nan, 6.1e-5, 65504]
    out["float16"] = f16
    f64 = rng.standard_normal(9)
    f64[:3] = [1e300, -5e-324, np.pi]
    out["float64"] = f64
    for dt in [np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32, np.uint64]:
        info = np.iinfo(dt)
        a = rng.integers(info.min, info.max, size=(3, 4), dtype=dt, endpoint=True)
        a.flat[0] = info.min
        a.flat[1] = info.max
        out[np.dtype(dt).name] = a
    out["bool"] = rng.random((4, 5)) > 0.5
    out["fortran_f32"] = np.asfortranarray(np.arange(24, dtype=np.float32).reshape(2, 3, 4) * 1.5)
    out["fortran_i64"] = np.asfortranarray(np.arange(-12, 12, dtype=np.int64).reshape(4, 6))
    out["fortran_u8"] = np.asfortranarray(np.arange(30, dtype=np.uint8).reshape(5, 6))
    out["fortran_f16"] = np.asfortranarray(np.arange(12, dtype=np.float16).reshape(3, 4))
    out["bigendian_f32"] = (np.arange(-6, 6).reshape(3, 4) / 3).astype(">f4")
    out["bigendian_i64"] = np.array([-(2**62), -1, 0, 1, 2**62 + 7], dtype=">i8")
    out["bigendian_u16"] = np.arange(0, 65535, 4099, dtype=">u2")
    out["bigendian_f16"] = np.array([1.5, -2.25, 65504, 6e-8], dtype=">f2")
    out["bigendian_fortran_f64"] = np.asfortranarray((np.arange(6).reshape(2, 3) + 0.25).astype(">f8"))
    out["scalar_f32"] = np.array(3.25, dtype=np.float32)
    out["scalar_i64"] = np.array(-42, dtype=np.int64)
    out["empty_f32"] = np.zeros((0, 3), dtype=np.float32)
    return out


def make(outdir):
    os.makedirs(outdir, exist_ok=True)
    arrs = arrays()
    expected = {"npy": {}, "npz": {}}
    for name, a in arrs.items():
        np.save(os.path.join(outdir, name + ".npy"), a)
        expected["npy"][name] = describe(a)
    # A format 2.0 file (4-byte header length) and a 3.0 one (UTF-8 header).
    from numpy.lib import format as fmt
    v2 = np.arange(10, dtype=np.int32).reshape(2, 5)
    with open(os.path.join(outdir, "v2.npy"), "wb") as f:
        fmt.write_array(f, v2, version=(2, 0))
    expected["npy"]["v2"] = describe(v2)
    with open(os.path.join(outdir, "v3.npy"), "wb") as f:
        fmt.write_array(f, v2, version=(3, 0))
    expected["npy"]["v3"] = describe(v2)
    # Unsupported dtypes.
    np.save(os.path.join(outdir, "unsupported_str.npy"), np.array(["ab", "cde"]))
    np.save(os.path.join(outdir, "unsupported_obj.npy"), np.array([{"a": 1}, None], dtype=object), allow_pickle=True)
    np.save(os.path.join(outdir, "unsupported_complex.npy"), np.array([1 + 2j]))
    np.save(os.path.join(outdir, "unsupported_struct.npy"), np.zeros(2, dtype=[("x", "<f4"), ("y", "<i4")]))

    npz = {
        "a": arrs["float32"],
        "b": arrs["int64"],
        "c": arrs["bool"],
        "dir/sub": arrs["uint16"],
        "fort": arrs["fortran_f32"],
        "be": arrs["bigendian_f32"],
        "s": arrs["scalar_f32"],
        "e": arrs["empty_f32"],
        "h": arrs["float16"],
    }
    np.savez(os.path.join(outdir, "plain.npz"), **npz)
    np.savez_compressed(os.path.join(outdir, "compressed.npz"), **npz)
    np.savez(os.path.join(outdir, "empty.npz"))
    expected["npz"] = {k: describe(v) for k, v in npz.items()}
    for name, d in expected["npy"].items():
        if name.startswith("bigendian") and d["byteorder"] != ">":
            raise SystemExit(f"fixture {name} is not big-endian")
        if name.startswith("fortran") and not d["fortran"]:
            raise SystemExit(f"fixture {name} is not in Fortran order")
    expected["numpy_version"] = np.__version__
    with open(os.path.join(outdir, "expected.json"), "w") as f:
        json.dump(expected, f)


def summarize(paths):
    out = {}
    for p in paths:
        if p.endswith(".npz"):
            with np.load(p) as z:
                out[p] = {k: describe(z[k]) for k in z.files}
        else:
            out[p] = describe(np.load(p))
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    if len(sys.argv) >= 3 and sys.argv[1] == "make":
        make(sys.argv[2])
    elif len(sys.argv) >= 2 and sys.argv[1] == "summarize":
        summarize(sys.argv[2:])
    else:
        sys.exit(__doc__)
