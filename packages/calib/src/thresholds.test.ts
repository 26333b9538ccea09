import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { HAVE_NUMPY, PY, rng } from "../../../tools/testing/shared-models.js";
import { UsageError } from "@q/ir";
import { TensorStats, type CaliMethod } from "./stats.js";
import { absPercentile, kldThreshold, MIN_THRESHOLD, percentileForOp, tailRule, thresholdFor, type TailEntry } from "./thresholds.js";

function gaussian(n: number, scale: number, seed: number, mean = 0): Float32Array {
  const r = rng(seed);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const u = 1 - r();
    out[i] = mean + scale * Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * r());
  }
  return out;
}
function laplace(n: number, b: number, seed: number): Float32Array {
  const r = rng(seed);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const u = r() - 0.5;
    out[i] = -b * Math.sign(u) * Math.log(1 - 2 * Math.abs(u) + 1e-300);
  }
  return out;
}
function statsOf(samples: Float32Array[], opts: ConstructorParameters<typeof TensorStats>[0] = {}): TensorStats {
  const s = new TensorStats(opts);
  for (const x of samples) s.update(x);
  return s;
}

const SCRIPT = resolve(__dirname, "../../../tools/kld_reference.py");
if (!HAVE_NUMPY) console.warn(`thresholds.test: ${PY} with numpy is not available; numpy reference comparisons are skipped`);
const tmp = mkdtempSync(join(tmpdir(), "q-calib-th-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

interface KldCase {
  hist: number[];
  width: number;
  dst: number;
}
function referenceKld(cases: KldCase[]): { th: number; m: number; th64: number; m64: number }[] {
  const f = join(tmp, `kld-${Math.random().toString(36).slice(2)}.json`);
  writeFileSync(f, JSON.stringify({ kld: cases }));
  const r = spawnSync(PY, [SCRIPT, f], { encoding: "utf8", maxBuffer: 1 << 26 });
  if (r.status !== 0) throw new Error(`kld_reference.py failed: ${r.stderr}`);
  return (JSON.parse(r.stdout) as { kld: { th: number; m: number; th64: number; m64: number }[] }).kld;
}

describe("kldThreshold: worked by hand", () => {
  it("two masses 8 bins apart: clipping at bin 8 costs KL, keeping both costs nothing", () => {
    // 16 bins, dstBins 8, total 8.
    // m=0 (i=8): P[0]=.5, P[7]=.5 (tail); S=4, groups of 1: Q[0]=4/1/4=1, Q[7]=0 (empty bin)
    //   KL = .5·log10(.5/1) + .5·(log10 .5 − log10 1e-30) = 14.69897…
    // m=1 (i=16): P[0]=P[8]=.5; S=8, groups of 2: {4,0} → Q[0]=Q[8]=4/1/8=.5 → KL = 0
    // m* = 1 → th = w·2·8 = 16·0.25 = 4
    const h = [4, 0, 0, 0, 0, 0, 0, 0, 4, 0, 0, 0, 0, 0, 0, 0];
    expect(kldThreshold(h, 0.25, 8)).toBe(4);
  });
  it("ties go to the first candidate", () => {
    // uniform mass in bins 0..7: both candidates reproduce P exactly (KL 0) → m* = 0 → th = 0.25·1·8
    const h = [8, 8, 8, 8, 8, 8, 8, 8, 0, 0, 0, 0, 0, 0, 0, 0];
    expect(kldThreshold(h, 0.25, 8)).toBe(2);
  });
  it("pads to a multiple of dstBins and uses width as float32", () => {
    // 10 bins → padded to 16; mass at bin 9 only: m=0 puts it all in the tail bin P[7] with Q=0
    // (KL ≈ 30), m=1 matches it (KL 0) → th = f32(0.1)·2·8
    const h = [0, 0, 0, 0, 0, 0, 0, 0, 0, 5];
    expect(kldThreshold(h, 0.1, 8)).toBe(Math.fround(Math.fround(Math.fround(0.1) * 2) * 8));
  });
  it("an empty histogram gives the first candidate (the library's NaN argmin)", () => {
    expect(kldThreshold(new Float64Array(256), 0.5, 128)).toBe(64);
  });
});

describe.skipIf(!HAVE_NUMPY)("kldThreshold against the numpy reference (float32 arithmetic of calibration_math.so)", () => {
  const gauss = statsOf([gaussian(200_000, 1, 1)]);
  const lapTail = (() => {
    const x = laplace(300_000, 0.3, 2);
    const r = rng(3);
    for (let i = 0; i < x.length; i++) if (r() < 0.0005) x[i] = x[i]! * 60;
    return statsOf([x]);
  })();
  const zeroBins = statsOf([gaussian(100_000, 1, 4).map((v) => Math.round(v * 3) / 3)]);
  const merged = statsOf([1, 0.8, 1.9].map((s, i) => gaussian(50_000, s, 10 + i)));
  // counts beyond 2^24: float32 sums round
  const huge = Array.from({ length: 2048 }, (_, j) => Math.round(3e7 * Math.exp(-((j / 300) ** 2))) + (j % 7 === 0 ? 12345 : 0));
  const sparse = (() => {
    const r = rng(5);
    return Array.from({ length: 2048 }, () => (r() < 0.05 ? Math.floor(r() * 1000) : 0));
  })();
  const cases: [string, KldCase][] = [
    ["gaussian", { hist: Array.from(gauss.histogram), width: gauss.width, dst: 128 }],
    ["laplace, long tail", { hist: Array.from(lapTail.histogram), width: lapTail.width, dst: 128 }],
    ["many zero bins", { hist: Array.from(zeroBins.histogram), width: zeroBins.width, dst: 128 }],
    ["merged (extended, padded)", { hist: Array.from(merged.histogram), width: merged.width, dst: 128 }],
    ["counts beyond 2^24", { hist: huge, width: 0.001, dst: 128 }],
    ["sparse, int4 (dst 8)", { hist: sparse, width: 0.01, dst: 8 }],
    ["gaussian, int4 (dst 8)", { hist: Array.from(gauss.histogram), width: gauss.width, dst: 8 }],
  ];
  const ref = HAVE_NUMPY ? referenceKld(cases.map((c) => c[1])) : [];
  cases.forEach(([name, c], i) => {
    it(`${name}: identical threshold`, () => {
      const got = kldThreshold(c.hist, c.width, c.dst);
      expect(got).toBe(ref[i]!.th);
      if (ref[i]!.m !== ref[i]!.m64) console.log(`[kld] ${name}: float32 picks m=${ref[i]!.m}, float64 would pick m=${ref[i]!.m64}`);
    });
  });
  it("the merged histogram really is extended and not a multiple of 128", () => {
    expect(merged.histogram.length).toBeGreaterThan(2048);
    expect(merged.histogram.length % 128).not.toBe(0);
  });
  it("KL clips the long-tailed laplace far below absmax; the gaussian's sparse tail keeps its full range", () => {
    expect(thresholdFor(lapTail, "kl").threshold).toBeLessThan(lapTail.absmax / 4);
    expect(thresholdFor(gauss, "kl").threshold).toBe(gauss.absmax);
  });
});

const METHODS: CaliMethod[] = ["kl", "max", "percentile9999", "mse", "aciq_gauss", "aciq_laplace", "torch_observer"];

describe("sanity of every method", () => {
  const datasets: [string, Float32Array[]][] = [
    ["gaussian", [1, 1.4, 0.7].map((s, i) => gaussian(30_000, s, 20 + i))],
    ["relu", [1, 2].map((s, i) => gaussian(30_000, s, 30 + i).map((v) => Math.max(v, 0)))],
    ["laplace tail", [laplace(50_000, 0.2, 40).map((v, j) => (j % 997 === 0 ? v * 50 : v))]],
    ["offset positive", [gaussian(20_000, 0.1, 50, 3)]],
    ["negative only", [gaussian(20_000, 0.5, 60, -4)]],
    ["tiny values", [gaussian(1000, 1e-7, 70)]],
    ["all zero", [new Float32Array(500), new Float32Array(500)]],
  ];
  for (const [name, samples] of datasets) {
    it(`${name}: 0 < th, and th ≤ absmax (except the observer's affine range and the 1e-5 floor)`, () => {
      const s = statsOf(samples, { numSamples: samples.length, methods: ["percentile9999", "mse", "aciq_gauss", "aciq_laplace"] });
      const kl = thresholdFor(s, "kl").threshold;
      for (const m of METHODS) {
        for (const int4 of [false, true]) {
          const t = thresholdFor(s, m, { int4 });
          expect(t.threshold, `${m}`).toBeGreaterThan(0);
          expect(Number.isFinite(t.threshold)).toBe(true);
          if (m !== "torch_observer") expect(t.threshold).toBeLessThanOrEqual(Math.max(s.absmax, MIN_THRESHOLD));
          expect(t.min).toBeLessThanOrEqual(t.max);
        }
      }
      expect(kl).toBeLessThanOrEqual(Math.max(thresholdFor(s, "max").threshold, MIN_THRESHOLD));
    });
  }
  it("all-zero tensors get th 1e-5, min 0, max 1e-5; negative tiny ones min −1e-5", () => {
    const z = statsOf([new Float32Array(10)], { numSamples: 1, methods: ["percentile9999"] });
    for (const m of ["kl", "max", "percentile9999"] as CaliMethod[]) expect(thresholdFor(z, m)).toEqual({ threshold: 1e-5, min: 0, max: 1e-5 });
    const t = statsOf([Float32Array.from([-1e-7, 2e-7])]);
    expect(thresholdFor(t, "max")).toEqual({ threshold: 1e-5, min: -1e-5, max: 1e-5 });
  });
  it("methods whose statistics were not kept fail with a UsageError", () => {
    const s = statsOf([gaussian(100, 1, 1)]);
    expect(() => thresholdFor(s, "mse")).toThrow(UsageError);
    expect(() => thresholdFor(s, "percentile9999")).toThrow(UsageError);
  });
  it("KL with int4 uses 8 destination bins (a multiple of width·8)", () => {
    const s = statsOf([laplace(100_000, 1, 9)]);
    const t = thresholdFor(s, "kl", { int4: true }).threshold;
    const steps = t / (Math.fround(s.width) * 8);
    expect(Math.abs(steps - Math.round(steps))).toBeLessThan(1e-4);
  });
});

describe("percentile index and tail rule", () => {
  it("percentileForOp spreads 99.99 … 99.999999 over the ops", () => {
    expect(percentileForOp(0, 10)).toBe(99.99);
    expect(percentileForOp(5, 10)).toBeCloseTo(99.9949995, 10);
    expect(percentileForOp(10, 10)).toBeCloseTo(99.999999, 10);
  });
  const mk = (x: Float32Array, N = 4) => statsOf([x], { numSamples: N, percentile: 99.9999, methods: ["mse"], tailPercentile: true });
  it("walks back from the output while the |x| percentile equals absmax, stopping after a Conv/MatMul/Gemm", () => {
    const big = (seed: number) => mk(gaussian(200_000, 1, seed), 100); // k > 1: percentile < absmax
    const small = (seed: number) => mk(gaussian(100, 1, seed)); // k = 1: percentile = absmax
    const entries: TailEntry[] = [
      { name: "in", opType: "Input", stats: big(1) },
      { name: "c1", opType: "Conv", stats: big(2) },
      { name: "r1", opType: "Relu", stats: big(3) },
      { name: "c2", opType: "Conv", stats: small(4) },
      { name: "r2", opType: "Relu", stats: small(5) },
      { name: "fc", opType: "Gemm", stats: small(6) },
      { name: "sm", opType: "Softmax", stats: small(7) },
    ];
    expect(entries[1]!.stats.k).toBeGreaterThan(1);
    const o = tailRule(entries, "mse");
    expect([...o.keys()]).toEqual(["sm", "fc"]);
    expect(o.get("sm")).toBe(entries[6]!.stats.absmax);
    expect(absPercentile(entries[6]!.stats)).toBe(entries[6]!.stats.absmax);
    // a clipped last tensor ends the walk at once; other methods have no tail rule
    expect(tailRule([...entries.slice(0, 6), { name: "sm", opType: "Softmax", stats: big(8) }], "mse").size).toBe(0);
    expect(tailRule(entries, "kl").size).toBe(0);
  });
  it("needs the tail statistics", () => {
    const s = statsOf([gaussian(100, 1, 1)], { methods: ["mse"] });
    expect(() => tailRule([{ name: "a", opType: "Relu", stats: s }], "mse")).toThrow(UsageError);
  });
});

describe("statistics cache round trip", () => {
  it("gives identical thresholds for every method", () => {
    const samples = [1, 1.7, 0.6].map((s, i) => laplace(40_000, s, 80 + i));
    const a = statsOf(samples, { numSamples: 3, percentile: percentileForOp(3, 7), methods: ["percentile9999", "mse", "aciq_gauss", "aciq_laplace"], tailPercentile: true, kurtosis: true });
    const b = TensorStats.fromJSON(JSON.parse(JSON.stringify(a)));
    for (const m of METHODS) {
      for (const int4 of [false, true]) {
        for (const isGraphInput of [false, true]) expect(thresholdFor(b, m, { int4, isGraphInput })).toEqual(thresholdFor(a, m, { int4, isGraphInput }));
      }
    }
    expect(absPercentile(b)).toBe(absPercentile(a));
    expect(b.kurtosis).toBe(a.kurtosis);
  });
});
