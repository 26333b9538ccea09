import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync, mkdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { HAVE_NUMPY, PY } from "../../../tools/testing/shared-models.js";
import { MissingFileError, ModelFormatError, QError } from "./errors.js";
import { encodeNpy, parseNpy, readNpy, writeFileAtomic, writeNpy } from "./npy.js";
import { Tensor } from "./tensor.js";
import type { DType } from "./dtype.js";

const SCRIPT = resolve(__dirname, "../../../tools/make_npz_fixtures.py");
const NO_NUMPY = !HAVE_NUMPY;
if (NO_NUMPY) console.warn(`npy.test: ${PY} with numpy is not available; numpy-compatibility tests are skipped`);

interface Described {
  dtype: string;
  byteorder: string;
  shape: number[];
  fortran: boolean;
  values: (string | number)[];
}

/** Values of a tensor in the same exact form make_npz_fixtures.py writes (float bits, int strings). */
function exactValues(t: Tensor): (string | number)[] {
  const d = t.data;
  if (Array.isArray(d)) throw new Error("string tensor");
  const bytes = new Uint8Array(d.buffer, d.byteOffset, d.byteLength).slice();
  switch (t.dtype) {
    case "float16": return Array.from(new Uint16Array(bytes.buffer), String);
    case "float32": return Array.from(new Uint32Array(bytes.buffer), String);
    case "float64": return Array.from(new BigUint64Array(bytes.buffer), String);
    case "bool": return Array.from(d as Uint8Array);
    default: return Array.from(d as ArrayLike<number | bigint>, String);
  }
}

function expectMatches(t: Tensor, e: Described, label: string): void {
  expect(t.dtype, label).toBe(e.dtype);
  expect([...t.shape], label).toEqual(e.shape);
  expect(exactValues(t), label).toEqual(e.values);
}

function python(args: string[]): string {
  const r = spawnSync(PY, [SCRIPT, ...args], { encoding: "utf8", maxBuffer: 256 << 20 });
  if (r.status !== 0) throw new Error(`python ${args.join(" ")} failed: ${r.stderr}`);
  return r.stdout;
}

async function expectError<T extends new (...a: never[]) => Error>(
  p: Promise<unknown> | (() => unknown),
  cls: T,
  ...fragments: string[]
): Promise<void> {
  let err: unknown;
  try {
    await (typeof p === "function" ? p() : p);
  } catch (e) {
    err = e;
  }
  expect(err, "expected an error").toBeInstanceOf(cls);
  for (const f of fragments) expect((err as Error).message).toContain(f);
}

let dir = "";
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "q-npy-test-"));
});
afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe("npy files made by numpy", () => {
  let fx = "";
  let expected: { npy: Record<string, Described> } = { npy: {} };
  beforeAll(() => {
    if (NO_NUMPY) return;
    fx = join(dir, "fixtures");
    python(["make", fx]);
    expected = JSON.parse(readFileSync(join(fx, "expected.json"), "utf8"));
  });

  it.skipIf(NO_NUMPY)("reads every dtype, Fortran order, big-endian, 0-d, empty, format 2.0/3.0", async () => {
    const names = Object.keys(expected.npy);
    for (const want of [
      "float32", "float16", "float64", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
      "bool", "fortran_f32", "fortran_i64", "fortran_u8", "fortran_f16", "bigendian_f32", "bigendian_i64",
      "bigendian_u16", "bigendian_f16", "bigendian_fortran_f64", "scalar_f32", "scalar_i64", "empty_f32", "v2", "v3",
    ]) {
      expect(names).toContain(want);
    }
    for (const [name, e] of Object.entries(expected.npy)) {
      const path = join(fx, `${name}.npy`);
      expectMatches(await readNpy(path), e, name);
      expectMatches(parseNpy(new Uint8Array(readFileSync(path)), path), e, `${name} (parseNpy)`);
    }
  });

  it.skipIf(NO_NUMPY)("spot-checks decoded numbers", async () => {
    const f = await readNpy(join(fx, "fortran_f32.npy"));
    expect(Array.from(f.toNumbers())).toEqual(Array.from({ length: 24 }, (_, i) => i * 1.5));
    const s = await readNpy(join(fx, "scalar_f32.npy"));
    expect(s.shape).toEqual([]);
    expect(s.scalar()).toBe(3.25);
    const b = await readNpy(join(fx, "bigendian_i64.npy"));
    expect(Array.from(b.data as BigInt64Array)).toEqual([-(2n ** 62n), -1n, 0n, 1n, 2n ** 62n + 7n]);
    const h = await readNpy(join(fx, "bigendian_f16.npy"));
    expect(h.toArray().slice(0, 3)).toEqual([1.5, -2.25, 65504]);
  });

  it.skipIf(NO_NUMPY)("rejects string, object, complex and structured arrays", async () => {
    for (const [name, what] of [
      ["unsupported_str", "string"],
      ["unsupported_obj", "object"],
      ["unsupported_complex", "complex"],
      ["unsupported_struct", "structured"],
    ] as const) {
      const path = join(fx, `${name}.npy`);
      await expectError(readNpy(path), ModelFormatError, path, what, "not supported");
    }
  });

  it.skipIf(NO_NUMPY)("writes files numpy reads back exactly", async () => {
    const cases: [string, Tensor][] = [];
    const dtypes: DType[] = ["float32", "float16", "float64", "int8", "int16", "int32", "int64",
      "uint8", "uint16", "uint32", "uint64", "bool"];
    for (const dt of dtypes) {
      const vals = Array.from({ length: 12 }, (_, i) => (dt === "bool" ? i % 3 === 0 ? 1 : 0 : dt.startsWith("u") ? i * 7 : i * 7 - 40) / (dt.startsWith("float") ? 4 : 1));
      cases.push([dt, Tensor.fromNumbers(dt, [3, 4], vals)]);
    }
    // Extremes that must survive bit-exactly.
    cases.push(["i64_extremes", new Tensor("int64", [3], BigInt64Array.of(-(2n ** 63n), 2n ** 63n - 1n, -5n))]);
    cases.push(["u64_extremes", new Tensor("uint64", [2], BigUint64Array.of(2n ** 64n - 1n, 3n))]);
    cases.push(["f32_special", Tensor.f32([4], [Infinity, -Infinity, NaN, -0])]);
    cases.push(["scalar", Tensor.f32([], [2.5])]);
    cases.push(["empty", Tensor.zeros("int32", [0, 3])]);
    cases.push(["rank1", Tensor.fromNumbers("int16", [5], [1, -2, 3, -4, 5])]);
    cases.push(["rank5", Tensor.fromNumbers("uint8", [1, 2, 1, 3, 2], Array.from({ length: 12 }, (_, i) => i))]);
    const paths = cases.map(([name]) => join(dir, `ours_${name}.npy`));
    await Promise.all(cases.map(([, t], i) => writeNpy(paths[i]!, t)));
    const summary = JSON.parse(python(["summarize", ...paths])) as Record<string, Described>;
    cases.forEach(([name, t], i) => {
      const s = summary[paths[i]!]!;
      expect(s.fortran, name).toBe(false);
      expectMatches(t, s, name);
    });
  });

  it.skipIf(NO_NUMPY)("writes bfloat16 as float32 and int4 as int8", async () => {
    const bf = Tensor.fromNumbers("bfloat16", [2, 2], [1.5, -3, 0.0078125, 1e30]);
    const i4 = Tensor.fromNumbers("int4", [3], [-8, 0, 7]);
    const pb = join(dir, "bf16.npy");
    const pi = join(dir, "i4.npy");
    await writeNpy(pb, bf);
    await writeNpy(pi, i4);
    const s = JSON.parse(python(["summarize", pb, pi])) as Record<string, Described>;
    expect(s[pb]!.dtype).toBe("float32");
    expect(s[pb]!.shape).toEqual([2, 2]);
    const back = await readNpy(pb);
    expect(back.dtype).toBe("float32");
    expect(Array.from(back.toNumbers())).toEqual(Array.from(bf.toNumbers()));
    expect(s[pi]).toMatchObject({ dtype: "int8", shape: [3], values: ["-8", "0", "7"] });
  });
});

describe("npy round trip (no numpy)", () => {
  it("encodes and parses every numeric dtype with 64-byte aligned data", () => {
    const dtypes: DType[] = ["float32", "float16", "float64", "int8", "int16", "int32", "int64",
      "uint8", "uint16", "uint32", "uint64", "bool"];
    for (const dt of dtypes) {
      for (const shape of [[2, 3], [], [0, 3], [7]]) {
        const n = shape.reduce((a, b) => a * b, 1);
        const t = Tensor.fromNumbers(dt, shape, Array.from({ length: n }, (_, i) => (i % 2) * 3 + i));
        const bytes = encodeNpy(t);
        const hlen = bytes[8]! | (bytes[9]! << 8);
        expect((10 + hlen) % 64).toBe(0);
        expect(bytes[10 + hlen - 1]).toBe(0x0a);
        const back = parseNpy(bytes);
        expect(back.dtype).toBe(dt);
        expect([...back.shape]).toEqual(shape);
        expect(exactValues(back)).toEqual(exactValues(t));
      }
    }
  });

  it("does not alias the input bytes and accepts unaligned input", () => {
    const t = Tensor.f32([3], [1, 2, 3]);
    const enc = encodeNpy(t);
    const shifted = new Uint8Array(enc.length + 1);
    shifted.set(enc, 1);
    const view = shifted.subarray(1);
    const back = parseNpy(view);
    expect(Array.from(back.data as Float32Array)).toEqual([1, 2, 3]);
    view.fill(0, 64);
    expect(Array.from(back.data as Float32Array)).toEqual([1, 2, 3]);
  });

  it("parses headers in the older and alternative spellings numpy accepts", () => {
    const make = (header: string, data: Uint8Array, version = 1): Uint8Array => {
      const h = new TextEncoder().encode(header);
      const pre = version === 1 ? 10 : 12;
      const out = new Uint8Array(pre + h.length + data.length);
      out.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, version, 0], 0);
      new DataView(out.buffer).setUint32(8, h.length, true);
      if (version === 1) new DataView(out.buffer).setUint16(8, h.length, true);
      out.set(h, pre);
      out.set(data, pre + h.length);
      return out;
    };
    const data = new Uint8Array(Int32Array.of(1, 2, 3, 4, 5, 6).buffer);
    const a = parseNpy(make(`{"shape": (2L, 3L), "fortran_order": False, "descr": "<i4"}\n`, data));
    expect(a.shape).toEqual([2, 3]);
    expect(a.toArray()).toEqual([1, 2, 3, 4, 5, 6]);
    const f = parseNpy(make(`{'descr':'<i4','fortran_order':True,'shape':(2,3)}`, data, 2));
    expect(f.toArray()).toEqual([1, 3, 5, 2, 4, 6]);
    // Trailing bytes after the data are ignored, as numpy does.
    const extra = parseNpy(make(`{'descr': '<i4', 'fortran_order': False, 'shape': (2,), }`, data));
    expect(extra.toArray()).toEqual([1, 2]);
  });

  it("reads a 100 MB float32 file quickly (one copy, no per-element work)", async () => {
    const n = 25 * 1024 * 1024;
    const t = new Tensor("float32", [n], new Float32Array(n));
    const d = t.data as Float32Array;
    d[0] = 1.5;
    d[n - 1] = -2;
    const path = join(dir, "big.npy");
    await writeNpy(path, t);
    const bytes = new Uint8Array(readFileSync(path));
    const t0 = performance.now();
    const back = parseNpy(bytes, path);
    const ms = performance.now() - t0;
    const t1 = performance.now();
    const back2 = await readNpy(path);
    const ms2 = performance.now() - t1;
    console.log(`parseNpy 100 MB: ${ms.toFixed(1)} ms; readNpy 100 MB (incl. disk): ${ms2.toFixed(1)} ms`);
    expect(back.size).toBe(n);
    expect((back.data as Float32Array)[0]).toBe(1.5);
    expect((back2.data as Float32Array)[n - 1]).toBe(-2);
    expect(ms).toBeLessThan(1500);
  });
});

describe("npy errors", () => {
  const good = () => encodeNpy(Tensor.f32([2, 3], [1, 2, 3, 4, 5, 6]));

  it("missing file → MissingFileError naming the file", async () => {
    const path = join(dir, "nope", "missing.npy");
    await expectError(readNpy(path), MissingFileError, path);
  });

  it("bad magic → ModelFormatError", async () => {
    const path = join(dir, "bad_magic.npy");
    writeFileSync(path, "hello world, not numpy at all");
    await expectError(readNpy(path), ModelFormatError, path, "bad magic");
    writeFileSync(path, new Uint8Array(0));
    await expectError(readNpy(path), ModelFormatError, path, "empty");
    writeFileSync(path, Uint8Array.of(0x50, 0x4b, 3, 4, 0, 0));
    await expectError(readNpy(path), ModelFormatError, path, "zip");
  });

  it("truncated data, header or preamble → ModelFormatError", async () => {
    const path = join(dir, "trunc.npy");
    const g = good();
    writeFileSync(path, g.subarray(0, g.length - 3));
    await expectError(readNpy(path), ModelFormatError, path, "truncated", "needs 24 bytes", "21");
    writeFileSync(path, g.subarray(0, 40));
    await expectError(readNpy(path), ModelFormatError, path, "truncated", "header");
    writeFileSync(path, g.subarray(0, 8));
    await expectError(readNpy(path), ModelFormatError, path, "truncated");
  });

  it("unparseable or incomplete header → ModelFormatError", () => {
    const g = good();
    const bad = g.slice();
    bad[10] = 0x21; // replace the opening brace of the dict
    expect(() => parseNpy(bad, "x.npy")).toThrow(ModelFormatError);
    expect(() => parseNpy(bad, "x.npy")).toThrow(/x\.npy: .*header is not parseable/);
    const noShape = g.slice();
    const text = new TextDecoder("latin1").decode(noShape.subarray(10, 74)).replace("'shape'", "'shapf'");
    noShape.set(new TextEncoder().encode(text), 10);
    expect(() => parseNpy(noShape, "y.npy")).toThrow(/y\.npy: .*lacks/);
    const v9 = g.slice();
    v9[6] = 9;
    expect(() => parseNpy(v9, "z.npy")).toThrow(/z\.npy: unsupported .npy format version 9.0/);
  });

  it("errors are QErrors with a code, not raw exceptions", () => {
    try {
      parseNpy(Uint8Array.of(1, 2, 3), "f.npy");
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(QError);
      expect((e as QError).code).toBe("E_FORMAT");
      expect((e as QError).file).toBe("f.npy");
    }
  });

  it("cannot write string tensors", () => {
    expect(() => encodeNpy(new Tensor("string", [1], ["a"]), "s.npy")).toThrow(ModelFormatError);
  });
});

describe("writeFileAtomic", () => {
  it("replaces the file and leaves no temp file", async () => {
    const sub = join(dir, "atomic");
    mkdirSync(sub);
    const path = join(sub, "out.bin");
    writeFileSync(path, "old");
    await writeFileAtomic(path, new TextEncoder().encode("new contents"));
    expect(readFileSync(path, "utf8")).toBe("new contents");
    expect(readdirSync(sub)).toEqual(["out.bin"]);
  });

  it("missing directory → MissingFileError; target is a directory → QError; temp removed", async () => {
    const missing = join(dir, "no-such-dir", "out.npy");
    await expectError(writeNpy(missing, Tensor.f32([1], [1])), MissingFileError, join(dir, "no-such-dir"));
    const sub = join(dir, "atomic2");
    mkdirSync(join(sub, "target.npy"), { recursive: true });
    await expectError(writeNpy(join(sub, "target.npy"), Tensor.f32([1], [1])), QError, join(sub, "target.npy"));
    expect(readdirSync(sub)).toEqual(["target.npy"]);
  });
});
