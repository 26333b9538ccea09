import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { zipSync } from "fflate";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { HAVE_NUMPY, PY, SHARED } from "../../../tools/testing/shared-models.js";
import { MissingFileError, ModelFormatError } from "./errors.js";
import { encodeNpy, readNpy } from "./npy.js";
import { encodeNpz, parseNpz, readArrays, readNpz, writeNpz } from "./npz.js";
import { Tensor } from "./tensor.js";

const SCRIPT = resolve(__dirname, "../../../tools/make_npz_fixtures.py");
const NO_NUMPY = !HAVE_NUMPY;
if (NO_NUMPY) console.warn(`npz.test: ${PY} with numpy is not available; numpy-compatibility tests are skipped`);

const BLAZE = join(SHARED, "onnx/blazeface");
const BLAZE_NPZ = join(BLAZE, "blazeface_in.npz");
const BLAZE_REF = join(BLAZE, "ref", "input_x.1.npy");
const NO_BLAZE = !existsSync(BLAZE_NPZ) || !existsSync(BLAZE_REF);
if (NO_BLAZE) console.warn(`npz.test: ${BLAZE_NPZ} not found; the real-file test is skipped`);

interface Described {
  dtype: string;
  shape: number[];
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

function expectMatches(t: Tensor | undefined, e: Described, label: string): void {
  expect(t, label).toBeDefined();
  expect(t!.dtype, label).toBe(e.dtype);
  expect([...t!.shape], label).toEqual(e.shape);
  expect(exactValues(t!), label).toEqual(e.values);
}

function python(args: string[]): string {
  const r = spawnSync(PY, [SCRIPT, ...args], { encoding: "utf8", maxBuffer: 256 << 20 });
  if (r.status !== 0) throw new Error(`python ${args.join(" ")} failed: ${r.stderr}`);
  return r.stdout;
}

async function expectError(p: Promise<unknown> | (() => unknown), cls: abstract new (...a: never[]) => Error, ...fragments: string[]) {
  let err: unknown;
  try {
    await (typeof p === "function" ? p() : p);
  } catch (e) {
    err = e;
  }
  expect(err, "expected an error").toBeInstanceOf(cls);
  for (const f of fragments) expect((err as Error).message).toContain(f);
}

function sample(): Map<string, Tensor> {
  return new Map<string, Tensor>([
    ["x", Tensor.f32([2, 3], [0.5, -1, 2, 3.25, 1e-8, -0])],
    ["ids", Tensor.i64([4], [1, -2, 3, 2 ** 40])],
    ["mask", Tensor.fromNumbers("bool", [3], [1, 0, 1])],
    ["half", Tensor.fromNumbers("float16", [2], [1.5, -65504])],
    ["model/layer.0/w", Tensor.fromNumbers("int8", [2, 2], [-128, 127, 0, 5])],
    ["scalar", Tensor.f32([], [7])],
    ["empty", Tensor.zeros("uint16", [0, 3])],
    ["named ünïcode", Tensor.fromNumbers("uint32", [1], [4294967295])],
  ]);
}

let dir = "";
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "q-npz-test-"));
});
afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe("npz files made by numpy", () => {
  let fx = "";
  let expected: { npz: Record<string, Described> } = { npz: {} };
  beforeAll(() => {
    if (NO_NUMPY) return;
    fx = join(dir, "fixtures");
    python(["make", fx]);
    expected = JSON.parse(readFileSync(join(fx, "expected.json"), "utf8"));
  });

  for (const kind of ["plain", "compressed"]) {
    it.skipIf(NO_NUMPY)(`reads np.${kind === "plain" ? "savez" : "savez_compressed"} archives`, async () => {
      const path = join(fx, `${kind}.npz`);
      const m = await readNpz(path);
      expect([...m.keys()].sort()).toEqual(Object.keys(expected.npz).sort());
      expect(m.has("dir/sub")).toBe(true);
      for (const [k, e] of Object.entries(expected.npz)) expectMatches(m.get(k), e, `${kind}:${k}`);
      const viaArrays = await readArrays(path);
      expect([...viaArrays.keys()]).toEqual([...m.keys()]);
    });
  }

  it.skipIf(NO_NUMPY)("reads an empty np.savez archive", async () => {
    expect((await readNpz(join(fx, "empty.npz"))).size).toBe(0);
  });

  it.skipIf(NO_NUMPY)("writes archives numpy reads back exactly (stored and deflated, names with '/')", async () => {
    const tensors = sample();
    const plain = join(dir, "ours_plain.npz");
    const comp = join(dir, "ours_comp.npz");
    await writeNpz(plain, tensors);
    await writeNpz(comp, Object.fromEntries(tensors), { compress: true });
    const summary = JSON.parse(python(["summarize", plain, comp])) as Record<string, Record<string, Described>>;
    for (const p of [plain, comp]) {
      const s = summary[p]!;
      expect(Object.keys(s).sort()).toEqual([...tensors.keys()].sort());
      for (const [k, t] of tensors) expectMatches(t, s[k]!, `${p}:${k}`);
    }
    const check = spawnSync(PY, ["-c", `import zipfile,sys
for p in sys.argv[1:]:
    z = zipfile.ZipFile(p)
    assert z.testzip() is None
    print(sorted({i.compress_type for i in z.infolist()}))`, plain, comp], { encoding: "utf8" });
    expect(check.status, check.stderr).toBe(0);
    expect(check.stdout.trim().split("\n")).toEqual(["[0]", "[8]"]);
  });
});

describe("real numpy-made file", () => {
  it.skipIf(NO_BLAZE)("blazeface_in.npz holds x.1 float32 [1,3,128,128] equal to ref/input_x.1.npy", async () => {
    const m = await readNpz(BLAZE_NPZ);
    expect([...m.keys()]).toEqual(["x.1"]);
    const x = m.get("x.1")!;
    expect(x.dtype).toBe("float32");
    expect(x.shape).toEqual([1, 3, 128, 128]);
    const ref = await readNpy(BLAZE_REF);
    expect(ref.dtype).toBe("float32");
    expect(ref.shape).toEqual([1, 3, 128, 128]);
    const a = x.data as Float32Array;
    const b = ref.data as Float32Array;
    let diff = 0;
    for (let i = 0; i < a.length; i++) if (!Object.is(a[i], b[i])) diff++;
    expect(diff).toBe(0);
    const r = await readArrays(BLAZE_REF);
    expect([...r.keys()]).toEqual(["input_x.1"]);
  });
});

describe("npz round trip (no numpy)", () => {
  it("stored and deflated archives round-trip, keys in order", () => {
    const tensors = sample();
    for (const compress of [false, true]) {
      const back = parseNpz(encodeNpz(tensors, { compress }));
      expect([...back.keys()]).toEqual([...tensors.keys()]);
      for (const [k, t] of tensors) {
        const b = back.get(k)!;
        expect(b.dtype, k).toBe(t.dtype);
        expect([...b.shape], k).toEqual([...t.shape]);
        expect(exactValues(b), k).toEqual(exactValues(t));
      }
    }
  });

  it("is reproducible and compresses", () => {
    const t = { z: Tensor.zeros("float32", [1000]) };
    expect(encodeNpz(t)).toEqual(encodeNpz(t));
    expect(encodeNpz(t, { compress: true }).length).toBeLessThan(encodeNpz(t).length / 10);
  });

  it("readArrays on a .npy keys the array by the base name", async () => {
    const p = join(dir, "input_x.1.npy");
    writeFileSync(p, encodeNpy(Tensor.f32([2], [1, 2])));
    const m = await readArrays(p);
    expect([...m.keys()]).toEqual(["input_x.1"]);
    expect(m.get("input_x.1")!.toArray()).toEqual([1, 2]);
  });

  it("ignores directory entries and non-array members, like np.load's keys", () => {
    const zip = zipSync({
      "a.npy": encodeNpy(Tensor.f32([1], [1])),
      "meta.txt": new TextEncoder().encode("hello"),
      "sub": { "b.npy": encodeNpy(Tensor.f32([1], [2])) },
    });
    const m = parseNpz(zip, "mixed.npz");
    expect([...m.keys()]).toEqual(["a", "sub/b"]);
  });

  it("writes atomically, leaving no temp file", async () => {
    const sub = join(dir, "npzatomic");
    mkdirSync(sub);
    await writeNpz(join(sub, "a.npz"), sample(), { compress: true });
    expect(readdirSync(sub)).toEqual(["a.npz"]);
    expect((await readNpz(join(sub, "a.npz"))).size).toBe(8);
  });
});

describe("npz errors", () => {
  const good = () => encodeNpz(sample());

  it("missing file → MissingFileError naming the file", async () => {
    const p = join(dir, "missing.npz");
    await expectError(readNpz(p), MissingFileError, p);
    await expectError(readArrays(p), MissingFileError, p);
  });

  it("not a zip → ModelFormatError", async () => {
    const p = join(dir, "notzip.npz");
    writeFileSync(p, "this is plain text, long enough to scan for a zip trailer ...");
    await expectError(readNpz(p), ModelFormatError, p, "not a zip archive");
    await expectError(readArrays(p), ModelFormatError, p, "not an .npy or .npz");
    writeFileSync(p, encodeNpy(Tensor.f32([1], [1])));
    await expectError(readNpz(p), ModelFormatError, p, ".npy");
  });

  it("truncated archive → ModelFormatError", async () => {
    const p = join(dir, "trunc.npz");
    const g = good();
    for (const cut of [g.length - 10, Math.floor(g.length / 2), 30]) {
      writeFileSync(p, g.subarray(0, cut));
      await expectError(readNpz(p), ModelFormatError, p);
    }
  });

  it("corrupt member data → ModelFormatError (CRC / deflate)", async () => {
    const p = join(dir, "corrupt.npz");
    const g = good();
    const flipped = g.slice();
    const npyStart = 30 + "x.npy".length; // after the first local header and member name
    expect(flipped[npyStart]).toBe(0x93);
    const at = npyStart + 64 + 5; // inside x's element data
    flipped[at] = flipped[at]! ^ 0xff;
    writeFileSync(p, flipped);
    await expectError(readNpz(p), ModelFormatError, p, "CRC");
    const c = encodeNpz({ big: Tensor.fromNumbers("float32", [4096], Array.from({ length: 4096 }, (_, i) => Math.sin(i))) }, { compress: true });
    const cc = c.slice();
    for (let i = 60; i < 90; i++) cc[i] = 0xff; // damage the deflate stream
    writeFileSync(p, cc);
    await expectError(readNpz(p), ModelFormatError, p, "member 'big.npy'");
  });

  it("corrupt central directory → ModelFormatError", () => {
    const g = good();
    const bad = g.slice();
    // Point the end-of-central-directory record's directory offset past the end of the file.
    new DataView(bad.buffer).setUint32(bad.length - 22 + 16, 0x7fffffff, true);
    expect(() => parseNpz(bad, "cd.npz")).toThrow(ModelFormatError);
    expect(() => parseNpz(bad, "cd.npz")).toThrow(/cd\.npz: .*central directory/);
  });

  it("a member that is not a valid .npy → ModelFormatError naming file and member", () => {
    const zip = zipSync({ "w.npy": new TextEncoder().encode("garbage") });
    expect(() => parseNpz(zip, "m.npz")).toThrow(/m\.npz: member 'w\.npy': not an \.npy file/);
  });
});
