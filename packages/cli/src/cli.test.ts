import { describe, expect, it, beforeAll } from "vitest";
import { execFileSync, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync, existsSync, readdirSync, rmSync, copyFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { Graph, Node, Tensor, readNpz, writeNpz } from "@q/ir";
import { readOnnx, writeOnnx } from "@q/frontends-onnx";
import { q } from "./test-helpers.js";
import { HAVE_SHARED, ONNX_MODELS, SKIP_SHARED_MSG, cosine } from "../../../tools/testing/shared-models.js";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../../..");
const TINY = join(ROOT, "test-models/tiny-cnn.onnx");
const TINY_IN = join(ROOT, "test-models/tiny-cnn_input.npz");


let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "q-cli-"));
});

describe("q info", () => {
  it("describes the bundled model: I/O, ops, parameters, MACs", async () => {
    const r = await q("info", TINY, "--json");
    expect(r.code).toBe(0);
    const info = JSON.parse(r.out);
    expect(info.inputs).toEqual([{ name: "image", dtype: "float32", shape: ["N", 3, 32, 32] }]);
    expect(info.outputs[0].name).toBe("probs");
    expect(info.ops.Conv).toBe(3);
    // parameters: conv1 8*27+8, bn 4*8, conv2 16*72+16, dw 16*9, fc 160+10
    expect(info.parameters).toBe(224 + 32 + 1168 + 144 + 170);
    // MACs (batch 1): conv1 32*32*8*27, conv2 16*16*16*72, dw 8*8*16*9, fc 16*10
    expect(info.macs.total).toBe(221184 + 294912 + 9216 + 160);
    const text = await q("info", TINY);
    expect(text.out).toMatch(/image\s+float32\s+\[N, 3, 32, 32\]/);
  });

  it.skipIf(!HAVE_SHARED)("works on every ONNX model in ../shared/test-models", async () => {
    for (const c of ONNX_MODELS) {
      const r = await q("info", c.path, "--json");
      expect(r.code, `${c.id}: ${r.err}`).toBe(0);
      const info = JSON.parse(r.out);
      expect(info.nodes).toBeGreaterThan(0);
      expect(Object.keys(info.opsets).length).toBeGreaterThan(0);
    }
  });

  it.skipIf(!HAVE_SHARED)("counts FastestDet's MACs as ONNX shape inference implies", async () => {
    const r = await q("info", ONNX_MODELS.find((m) => m.id === "fastestdet")!.path, "--json");
    const info = JSON.parse(r.out);
    expect(info.outputs[0].shape).toEqual([1, 85, 22, 22]);
    expect(info.macs.perOp.Conv).toBeGreaterThan(1e8);
  });
});

describe("q run", () => {
  it("writes outputs that numpy can read, equal between executors", async () => {
    const a = join(dir, "ort.npz"), b = join(dir, "ref.npz");
    expect((await q("run", TINY, "--input", TINY_IN, "-o", a)).code).toBe(0);
    expect((await q("run", TINY, "--input", TINY_IN, "-o", b, "--executor", "reference")).code).toBe(0);
    const x = (await readNpz(a)).get("probs")!, y = (await readNpz(b)).get("probs")!;
    expect(x.shape).toEqual([2, 10]);
    expect(cosine(x.toFloat32(), y.toFloat32())).toBeGreaterThan(0.99999);
    // rows are probabilities
    const p = x.toFloat32();
    expect(p.slice(0, 10).reduce((s, v) => s + v, 0)).toBeCloseTo(1, 5);
  });

  it("--dump-all writes every intermediate", async () => {
    const out = join(dir, "all.npz");
    expect((await q("run", TINY, "--input", TINY_IN, "-o", out, "--dump-all")).code).toBe(0);
    const m = await readNpz(out);
    for (const k of ["c1", "b1", "r1", "p1", "c2", "r2", "d", "h", "gp", "f", "logits", "probs", "image"]) expect(m.has(k), k).toBe(true);
    expect(m.get("p1")!.shape).toEqual([2, 8, 16, 16]);
    // numpy reads the same arrays
    const py = spawnSync("/usr/bin/python3", ["-c", "import sys, json, numpy; d = numpy.load(sys.argv[1]); print(json.dumps({k: [list(d[k].shape), str(d[k].dtype), float(d[k].astype('float64').sum())] for k in d.files}))", out], { encoding: "utf8" });
    if (py.status === 0) {
      const seen = JSON.parse(py.stdout) as Record<string, [number[], string, number]>;
      expect(Object.keys(seen).sort()).toEqual([...m.keys()].sort());
      for (const [k, [shape, dtype, sum]] of Object.entries(seen)) {
        const t = m.get(k)!;
        expect(shape, k).toEqual([...t.shape]);
        expect(dtype, k).toBe(t.dtype);
        expect(sum, k).toBeCloseTo(t.toNumbers().reduce((a, b) => a + b, 0), 2);
      }
    } else {
      console.warn("numpy not available (/usr/bin/python3 -c 'import numpy' failed): skipped the numpy read-back check");
    }
  });

  it("accepts a .npy for a one-input model", async () => {
    const npy = join(dir, "in.npy");
    const { writeNpy } = await import("@q/ir");
    await writeNpy(npy, Tensor.f32([1, 3, 32, 32]));
    const out = join(dir, "npy_out.npz");
    expect((await q("run", TINY, "--input", npy, "-o", out)).code).toBe(0);
    expect((await readNpz(out)).get("probs")!.shape).toEqual([1, 10]);
  });
});

describe("q convert", () => {
  it("writes an ONNX model that reads back with the same graph", async () => {
    const out = join(dir, "conv.onnx");
    const r = await q("convert", TINY, "-o", out);
    expect(r.code).toBe(0);
    const g = await readOnnx(out);
    expect(g.nodes.map((n) => n.opType)).toEqual((await readOnnx(TINY)).nodes.map((n) => n.opType));
  });
});

describe("bad input: one clear line, exit 2, nothing written", () => {
  const expectCleanFailure = (r: { code: number; err: string }, pattern: RegExp) => {
    expect(r.code).toBe(2);
    expect(r.err.trim().split("\n")).toHaveLength(1);
    expect(r.err).toMatch(/^error: /);
    expect(r.err).toMatch(pattern);
    expect(r.err).not.toMatch(/\n\s+at /);
  };

  it("truncated .onnx", async () => {
    const bytes = readFileSync(TINY);
    const f = join(dir, "truncated.onnx");
    writeFileSync(f, bytes.subarray(0, Math.floor(bytes.length / 2)));
    expectCleanFailure(await q("info", f), /truncated\.onnx.*(truncated|not a valid ONNX)/);
    const out = join(dir, "never.onnx");
    expectCleanFailure(await q("convert", f, "-o", out), /truncated\.onnx/);
    expect(existsSync(out)).toBe(false);
  });

  it("corrupt .onnx", async () => {
    const f = join(dir, "corrupt.onnx");
    writeFileSync(f, Buffer.from("this is not a protobuf at all, just some text\n".repeat(10)));
    expectCleanFailure(await q("info", f), /corrupt\.onnx/);
  });

  it("unknown op", async () => {
    const g = await readOnnx(TINY);
    g.nodes[2]!.opType = "Frobnicate";
    const f = join(dir, "unknown-op.onnx");
    writeOnnx(g, f);
    expectCleanFailure(await q("info", f), /unknown-op\.onnx.*relu1.*Frobnicate/);
  });

  it("missing external data file", async () => {
    const g = await readOnnx(TINY);
    const sub = join(dir, "ext");
    const f = join(sub, "model.onnx");
    writeOnnx(g, f, { externalData: "weights.bin", externalThreshold: 64 });
    expect((await q("info", f)).code).toBe(0);
    rmSync(join(sub, "weights.bin"));
    expectCleanFailure(await q("info", f), /weights\.bin.*not found/);
  });

  it("npz whose arrays do not match the model's inputs", async () => {
    const out = join(dir, "mismatch_out.npz");
    const wrongName = join(dir, "wrong-name.npz");
    await writeNpz(wrongName, { img: Tensor.f32([1, 3, 32, 32]), other: Tensor.f32([1]) });
    expectCleanFailure(await q("run", TINY, "--input", wrongName, "-o", out), /wrong-name\.npz.*'image'/);
    const wrongShape = join(dir, "wrong-shape.npz");
    await writeNpz(wrongShape, { image: Tensor.f32([1, 3, 28, 28]) });
    expectCleanFailure(await q("run", TINY, "--input", wrongShape, "-o", out), /wrong-shape\.npz.*\[1,3,28,28\].*\[N,3,32,32\]/);
    const wrongType = join(dir, "wrong-type.npz");
    await writeNpz(wrongType, { image: Tensor.zeros("int8", [1, 3, 32, 32]) });
    expectCleanFailure(await q("run", TINY, "--input", wrongType, "-o", out), /wrong-type\.npz.*int8/);
    expect(existsSync(out)).toBe(false);
    expect(readdirSync(dir).filter((n) => n.includes(".tmp"))).toEqual([]);
  });

  it("missing files and bad flags", async () => {
    expectCleanFailure(await q("info", join(dir, "nope.onnx")), /nope\.onnx.*not found/);
    expectCleanFailure(await q("run", TINY, "--input", join(dir, "nope.npz")), /nope\.npz/);
    expectCleanFailure(await q("run", TINY, "--input", TINY_IN, "--executor", "gpu"), /executor/);
    expectCleanFailure(await q("info", TINY, "--frobnicate"), /frobnicate/);
    expectCleanFailure(await q("convert", TINY, "-o", join(dir, "x.txt")), /\.onnx/);
  });
});

describe("the q binary", () => {
  const bin = join(ROOT, "packages/cli/bin/q.mjs");
  const built = existsSync(join(ROOT, "packages/cli/dist/index.js"));
  it.skipIf(!built)("runs as a process: exit 0 on success, 2 with one line on bad input", () => {
    const ok = spawnSync(process.execPath, [bin, "info", TINY], { encoding: "utf8" });
    expect(ok.status).toBe(0);
    expect(ok.stdout).toMatch(/MACs/);
    const bad = spawnSync(process.execPath, [bin, "info", join(dir, "missing.onnx")], { encoding: "utf8" });
    expect(bad.status).toBe(2);
    expect(bad.stderr.trim().split("\n")).toHaveLength(1);
  });
});
