import { describe, expect, it, beforeAll } from "vitest";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { readOnnx } from "@q/frontends-onnx";
import { GraphBuilder, Tensor, readNpy, split0, writeNpy, type Feeds, type Graph } from "@q/ir";
import { calibrate, type CaliEntry } from "./calibrate.js";
import { fakeQuantInto, fakeQuantPerChannel, tuneDistances, tuneThresholds } from "./tune.js";
import { HAVE_SHARED, SHARED, SKIP_SHARED_MSG } from "../../../tools/testing/shared-models.js";

/** Deterministic pseudo-random numbers in [0, 1). */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

describe("fake quantization", () => {
  it("rounds half away from zero and clips to [-128, 127]", () => {
    const x = Float32Array.of(0.5, -0.5, 1.5, 200, -200, 0.25);
    const q = fakeQuantInto(x, 127, new Float32Array(6));
    expect([...q]).toEqual([1, -1, 2, 127, -128, 0]);
  });
  it("quantizes weights per output channel", () => {
    const w = new Tensor("float32", [2, 2], Float32Array.of(1, 0.3, 0.01, 0.004));
    const q = fakeQuantPerChannel(w, 0).data as Float32Array;
    expect(q[0]).toBeCloseTo(1, 6);
    expect(q[1]).toBeCloseTo(Math.round(0.3 * 127) / 127, 6);
    expect(q[2]).toBeCloseTo(0.01, 6);
    expect(q[3]).toBeCloseTo((Math.round((0.004 * 127) / 0.01) * 0.01) / 127, 6);
  });
});

describe("tuneThresholds on a synthetic Conv", () => {
  // x [1,1,8,8]: mostly in [-1, 1] plus a few large outliers; 1x1 Conv with 2 output channels whose
  // weights (1 and 0.5) are exact in int8, so y_q = conv(fq(x)) and the best threshold is computable.
  const build = (): Graph => {
    const b = new GraphBuilder({ opsets: { "": 13 } });
    const x = b.input("x", "float32", [1, 1, 8, 8]);
    const w = b.initializer("w", new Tensor("float32", [2, 1, 1, 1], Float32Array.of(1, 0.5)));
    const [y] = b.op("Conv", [x, w], {}, { outputs: ["y"] });
    b.output(y!, "float32");
    return b.build();
  };
  const sample = (seed: number): Feeds => {
    const r = rng(seed);
    const d = new Float32Array(64);
    for (let i = 0; i < 64; i++) d[i] = r() * 2 - 1;
    d[5] = 8;
    d[40] = -7.5;
    d[63] = 6;
    return { x: new Tensor("float32", [1, 1, 8, 8], d) };
  };
  const samples = [sample(1), sample(2), sample(3)];
  /** The tuner's distance, computed by hand. */
  const distance = (th: number): number => {
    let s = 0;
    for (const f of samples) {
      const x = f.x!.data as Float32Array;
      const q = fakeQuantInto(x, th, new Float32Array(64));
      let d2 = 0;
      let n1 = 0;
      for (const c of [1, 0.5]) {
        for (let i = 0; i < 64; i++) {
          const yf = Math.fround(c * x[i]!);
          d2 += (yf - Math.fround(c * q[i]!)) ** 2;
          n1 += Math.abs(yf);
        }
      }
      s += Math.sqrt(d2) / n1;
    }
    return s / samples.length;
  };
  const entries = (th: number): CaliEntry[] => [
    { name: "x", opType: "Input", threshold: th, min: -7.5, max: 8 },
    { name: "y", opType: "Conv", threshold: 4, min: -7.5, max: 8 },
  ];

  it("moves a too-low threshold up to the hand-computed best candidate", async () => {
    const steps = 21;
    let best = 1;
    let bestD = Infinity;
    for (let i = 0; i <= steps; i++) {
      const th = 1 + (i * (8 - 1)) / steps;
      const d = distance(th);
      if (d < bestD) [best, bestD] = [th, d];
    }
    expect(best).toBeGreaterThan(5); // the outliers dominate: clipping them costs more than coarse steps
    const lines: string[] = [];
    const r = await tuneThresholds(build(), entries(1), samples, { log: (l) => lines.push(l) });
    expect(r.entries[0]!.threshold).toBeCloseTo(best, 5);
    expect(r.records[0]!.distanceBest).toBeCloseTo(bestD, 6);
    expect(r.records[0]!.distanceFrom).toBeCloseTo(distance(1), 6);
    expect(r.entries[1]!.threshold).toBe(4); // y has no consumer: never tuned
    expect(r.tuned).toBe(1);
    expect(lines.some((l) => l.includes("Conv"))).toBe(true);
  });

  it("never moves a threshold down, and leaves one within 0.01 of absmax alone", async () => {
    for (const th0 of [1, 3, 6.5, 7.995]) {
      const r = await tuneThresholds(build(), entries(th0), samples);
      expect(r.entries[0]!.threshold).toBeGreaterThanOrEqual(th0);
      expect(r.entries[0]!.threshold).toBeLessThanOrEqual(8 + 1e-9);
    }
    const r = await tuneThresholds(build(), entries(7.995), samples);
    expect(r.records).toHaveLength(0);
    expect(r.entries[0]!.threshold).toBe(7.995);
  });

  it("honours steps and an empty sample list", async () => {
    const r = await tuneThresholds(build(), entries(1), samples, { steps: 1 });
    expect([1, 8]).toContain(r.entries[0]!.threshold);
    const none = await tuneThresholds(build(), entries(1), []);
    expect(none.tuned).toBe(0);
  });
});

const S = (p: string) => resolve(SHARED, p);

describe.skipIf(!HAVE_SHARED)("tuneThresholds on ResNet20 (KL)", () => {
  let g: Graph;
  let tune: Feeds[];
  let dir: string;
  beforeAll(async () => {
    g = await readOnnx(S("torch/resnet20_cifar10/resnet20_cifar10.onnx"));
    const all = await readNpy(S("torch/resnet20_cifar10/ref/input.npy"));
    const parts = split0(all, Array.from({ length: all.shape[0]! }, () => 1));
    dir = mkdtempSync(join(tmpdir(), "q-tune-"));
    for (const [i, t] of parts.entries()) await writeNpy(join(dir, `s${String(i).padStart(2, "0")}.npy`), new Tensor("float32", t.shape, (t.data as Float32Array).slice()));
    tune = parts.slice(0, 5).map((t) => ({ input: t }));
  });

  it("raises some thresholds, lowers none, and lowers the mean per-op distance", async () => {
    const cal = await calibrate(g, {
      data: { dataset: dir, inputs: [{ name: "input", shape: [1, 3, 32, 32], dtype: "float32" }] },
      method: "kl",
    });
    expect(cal.samples).toBe(10);
    const t0 = performance.now();
    const r = await tuneThresholds(g, cal.entries, tune);
    const secs = (performance.now() - t0) / 1000;
    console.log(`ResNet20 tuning (5 samples, 21 steps): ${secs.toFixed(2)} s, ${r.records.length} visits tuned, ${r.tuned}/${r.entries.length} thresholds changed`);
    expect(r.entries.map((e) => e.name)).toEqual(cal.entries.map((e) => e.name));
    r.entries.forEach((e, i) => expect(e.threshold, e.name).toBeGreaterThanOrEqual(cal.entries[i]!.threshold));
    r.entries.forEach((e) => expect(e.threshold, e.name).toBeLessThanOrEqual(Math.max(Math.abs(e.min), Math.abs(e.max)) * (1 + 1e-6)));
    expect(r.tuned).toBeGreaterThan(0);
    expect(r.records.some((x) => x.opType === "Conv")).toBe(true);
    const lines: string[] = [];
    await tuneThresholds(g, cal.entries, tune, { opTypes: new Set(["Gemm"]), log: (l) => lines.push(l) });
    // the Gemm is visited (it reads the flattened pool output), whose KL threshold is already its abs-max here
    expect(lines[0]).toMatch(/\b1 visits\b/);

    const before = await tuneDistances(g, cal.entries, tune);
    const after = await tuneDistances(g, r.entries, tune);
    expect(after.length).toBe(before.length);
    const mean = (a: { distance: number }[]) => a.reduce((s, x) => s + x.distance, 0) / a.length;
    console.log(`ResNet20 mean per-op distance: untuned ${mean(before).toExponential(4)}, tuned ${mean(after).toExponential(4)}`);
    expect(mean(after)).toBeLessThanOrEqual(mean(before));
  }, 120_000);
});

describe.skipIf(HAVE_SHARED)("tuneThresholds on ResNet20", () => {
  it.skip(SKIP_SHARED_MSG, () => {});
});
