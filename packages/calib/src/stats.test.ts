import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { HAVE_NUMPY, PY, rng } from "../../../tools/testing/shared-models.js";
import { UsageError } from "@q/ir";
import { histogramInto, nthElement, octavS, parseCaliMethod, pyFloorDiv, TensorStats, type CaliMethod } from "./stats.js";
import { percentileForOp, thresholdFor } from "./thresholds.js";

// ---- deterministic data ------------------------------------------------------------------------

function gaussian(n: number, scale: number, seed: number, mean = 0): Float32Array {
  const r = rng(seed);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i += 2) {
    const u = 1 - r();
    const v = r();
    const m = Math.sqrt(-2 * Math.log(u));
    out[i] = mean + scale * m * Math.cos(2 * Math.PI * v);
    if (i + 1 < n) out[i + 1] = mean + scale * m * Math.sin(2 * Math.PI * v);
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

// ---- the numpy reference -----------------------------------------------------------------------

const SCRIPT = resolve(__dirname, "../../../tools/kld_reference.py");
if (!HAVE_NUMPY) console.warn(`stats.test: ${PY} with numpy is not available; numpy reference comparisons are skipped`);
const tmp = mkdtempSync(join(tmpdir(), "q-calib-stats-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

interface SetSpec {
  samples: Float32Array[];
  bins: number;
  N: number;
  p: number;
  bits: number;
}
interface SetResult {
  hist: number[];
  width: number;
  th: number;
  restarts: number;
  min: number;
  max: number;
  vmin: number;
  vmax: number;
  k: number;
  np_percentile: number;
  abs_percentile: number;
  mse: number[];
  gauss: number[];
  laplace: number[];
  kurtosis: number[];
  observer: { scale: number; zp: number; th: number; min: number; max: number };
}

function runReference(sets: SetSpec[]): SetResult[] {
  let offset = 0;
  const parts: Float32Array[] = [];
  const specSets = sets.map((s) => {
    const lengths = s.samples.map((x) => x.length);
    const o = offset;
    for (const x of s.samples) {
      parts.push(x);
      offset += x.length;
    }
    return { lengths, offset: o, bins: s.bins, N: s.N, p: s.p, bits: s.bits };
  });
  const all = new Float32Array(offset);
  let at = 0;
  for (const p of parts) {
    all.set(p, at);
    at += p.length;
  }
  const specFile = join(tmp, `spec-${Math.random().toString(36).slice(2)}.json`);
  const dataFile = specFile.replace(".json", ".bin");
  writeFileSync(specFile, JSON.stringify({ sets: specSets }));
  writeFileSync(dataFile, new Uint8Array(all.buffer));
  const r = spawnSync(PY, [SCRIPT, specFile, dataFile], { encoding: "utf8", maxBuffer: 1 << 28 });
  if (r.status !== 0) throw new Error(`kld_reference.py failed: ${r.stderr}`);
  const parsed = JSON.parse(r.stdout.replace(/-?Infinity|NaN/g, (m) => `"${m}"`), (_k, v) =>
    v === "NaN" || v === "Infinity" || v === "-Infinity" ? Number(v) : v,
  ) as { sets: SetResult[] };
  return parsed.sets;
}

const ALL: CaliMethod[] = ["percentile9999", "mse", "aciq_gauss", "aciq_laplace"];

function collect(s: SetSpec, extra: { kurtosis?: boolean; tailPercentile?: boolean } = {}): TensorStats {
  const st = new TensorStats({ bins: s.bins, numSamples: s.N, percentile: s.p, methods: ALL, int4: s.bits === 4, kurtosis: true, tailPercentile: true, ...extra });
  for (const x of s.samples) st.update(x);
  return st;
}

function relClose(a: number, b: number, rel: number): boolean {
  if (Number.isNaN(a) && Number.isNaN(b)) return true;
  return Math.abs(a - b) <= rel * Math.max(Math.abs(a), Math.abs(b));
}

// the data sets, each compared with the reference as a whole
const SETS: Record<string, SetSpec> = {
  // growing absmax: the histogram is extended several times
  gaussGrowing: {
    samples: [1, 0.7, 1.6, 3.1, 2.0, 4.5].map((s, i) => gaussian(40_000, s, 100 + i, 0.1)),
    bins: 2048, N: 6, p: percentileForOp(0, 10), bits: 8,
  },
  // ReLU'd Laplace with a long tail of outliers (many exact zeros: OCTAV's unsigned branch)
  reluLaplaceTail: {
    samples: [1, 1.3, 0.9, 2.2, 1.1].map((b, i) => {
      const x = laplace(30_000, b, 200 + i);
      const r = rng(300 + i);
      for (let j = 0; j < x.length; j++) {
        if (r() < 0.002) x[j] = x[j]! * 40;
        if (x[j]! < 0) x[j] = 0;
      }
      return x;
    }),
    bins: 2048, N: 8, p: percentileForOp(7, 10), bits: 8,
  },
  // values on a coarse grid: a histogram with many empty bins; int4 OCTAV
  coarseGrid: {
    samples: [1, 1.2, 0.8, 1.5].map((s, i) => gaussian(20_000, s, 400 + i).map((v) => Math.round(v * 4) / 4)),
    bins: 2048, N: 4, p: 99.99, bits: 4,
  },
  // the second sample is 10^4 times wider: more than 8,000,000 bins → history discarded
  discard: {
    samples: [gaussian(10_000, 0.0001, 500), gaussian(10_000, 1, 501), gaussian(10_000, 0.5, 502)],
    bins: 2048, N: 3, p: 99.99, bits: 8,
  },
  // tiny tensor, N·size·(1−p) > size/2: TPU-MLIR's per-sample lists overlap
  tiny: {
    samples: Array.from({ length: 5 }, (_, i) => gaussian(3, 1, 600 + i)),
    bins: 2048, N: 20_000, p: 99.99, bits: 8,
  },
  // a plain laplace sample set with an offset mean, big enough for k in the hundreds
  laplaceWide: {
    samples: [0.5, 0.6, 0.55].map((b, i) => laplace(200_000, b, 700 + i).map((v) => v + 0.2)),
    bins: 2048, N: 3, p: 99.95, bits: 8,
  },
};

describe("parseCaliMethod", () => {
  it("accepts the TPU-MLIR flag names and q's names", () => {
    expect(parseCaliMethod("use_kl")).toBe("kl");
    expect(parseCaliMethod("")).toBe("kl");
    expect(parseCaliMethod("use_max")).toBe("max");
    expect(parseCaliMethod("use_percentile9999")).toBe("percentile9999");
    expect(parseCaliMethod("use_mse")).toBe("mse");
    expect(parseCaliMethod("use_aciq_gauss")).toBe("aciq_gauss");
    expect(parseCaliMethod("use_aciq_laplace")).toBe("aciq_laplace");
    expect(parseCaliMethod("use_torch_observer_for_cali")).toBe("torch_observer");
    expect(parseCaliMethod("mse")).toBe("mse");
  });
  it("rejects others with a UsageError listing the valid names", () => {
    expect(() => parseCaliMethod("use_kld")).toThrow(UsageError);
    expect(() => parseCaliMethod("use_kld")).toThrow(/use_kl, use_max, use_percentile9999, use_mse, use_aciq_gauss, use_aciq_laplace, use_torch_observer_for_cali/);
    expect(() => parseCaliMethod("constructor")).toThrow(UsageError);
  });
});

describe("single-sample histogram rule", () => {
  it("drops zeros, rounds half up, width = th/(n−1)", () => {
    const h = new Float64Array(5);
    // th = 4, n = 5 → width 1; 0 dropped; 0.49 → 0; 0.5 → 1; 1.5 → 2; −2.49 → 2; 4 → 4
    const w = histogramInto(h, Float32Array.from([0, 0.49, 0.5, 1.5, -2.49, 4, -0]), 4, 5);
    expect(w).toBe(1);
    expect(Array.from(h)).toEqual([1, 1, 2, 0, 1]);
  });
  it("computes the index in float32 (|x|/w is rounded to float32 before + 0.5)", () => {
    const th = 204.7;
    const w32 = Math.fround(th / 2047);
    const r = rng(11);
    let found = 0;
    for (let t = 0; t < 200_000 && found < 5; t++) {
      const a = Math.fround(r() * th);
      const i32 = Math.floor(Math.fround(Math.fround(a / w32) + 0.5));
      const i64 = Math.floor(a / w32 + 0.5);
      if (i32 === i64) continue;
      found++;
      const h = new Float64Array(2048);
      histogramInto(h, Float32Array.of(a), th, 2048);
      expect(h[i32]).toBe(1);
      expect(h[i64]).toBe(0);
    }
    expect(found).toBeGreaterThan(0);
  });
  it("pyFloorDiv matches Python's float // where a/b rounds up to an integer", () => {
    expect(pyFloorDiv(7, 2)).toBe(3);
    expect(pyFloorDiv(1, 0.1)).toBe(9); // Python: 1 // 0.1 == 9.0 although 1/0.1 == 10.0
    expect(pyFloorDiv(0.3, 0.1)).toBe(2); // Python: 0.3 // 0.1 == 2.0
  });
});

describe("TensorStats basics", () => {
  it("tracks min/max/absmax/samples and never keeps the input", () => {
    const s = new TensorStats();
    const x = Float32Array.from([1, -3, 2]);
    s.update(x);
    x.fill(100);
    s.update(Float32Array.from([0.5, 2.5]));
    expect([s.min, s.max, s.absmax, s.samples]).toEqual([-3, 2.5, 3, 2]);
    expect(s.histogram.length).toBe(2048);
    expect(s.histogram.reduce((a, b) => a + b, 0)).toBe(5);
  });
  it("restarts after an all-zero first sample instead of dividing by a zero step", () => {
    const s = new TensorStats({ bins: 16 });
    s.update(new Float32Array(10));
    s.update(Float32Array.from([0, 1, -2]));
    expect(s.histogram.length).toBe(16);
    expect(s.histogramRange).toBe(2);
    expect(s.histogram.reduce((a, b) => a + b, 0)).toBe(2);
  });
  it("needs the planned sample count for percentile statistics", () => {
    expect(() => new TensorStats({ methods: ["percentile9999"] })).toThrow(UsageError);
  });
});

describe("partial selection", () => {
  it("nthElement agrees with a full sort on data with many ties", () => {
    const r = rng(7);
    for (const n of [1, 5, 30, 1000, 50_000]) {
      const a = new Float32Array(n);
      for (let i = 0; i < n; i++) a[i] = Math.floor(r() * 50) / 7;
      const sorted = a.slice().sort();
      for (const nth of [0, n >> 1, n - 1]) {
        const b = a.slice();
        nthElement(b, 0, n, nth);
        expect(b[nth]).toBe(sorted[nth]);
        for (let i = 0; i < nth; i++) expect(b[i]! <= b[nth]!).toBe(true);
      }
    }
  });
  it("the kept k largest/smallest equal those of all samples together (k = 4001)", () => {
    const samples = [0, 1, 2, 3].map((i) => gaussian(100_000, 1 + i * 0.3, 900 + i));
    // N·size·(1−p/100) = 4·1e5·0.01 = 4000 → k = 4001
    const s = new TensorStats({ numSamples: 4, percentile: 99, methods: ["percentile9999"] });
    for (const x of samples) s.update(x);
    expect(s.k).toBe(4001);
    const all = new Float32Array(400_000);
    samples.forEach((x, i) => all.set(x, i * 100_000));
    all.sort();
    expect(Array.from(s.topValues()!)).toEqual(Array.from(all.subarray(all.length - 4001)));
    expect(Array.from(s.bottomValues()!)).toEqual(Array.from(all.subarray(0, 4001)));
  });
});

describe.skipIf(!HAVE_NUMPY)("against the numpy reference (tools/kld_reference.py)", () => {
  const names = Object.keys(SETS);
  const results = HAVE_NUMPY ? runReference(names.map((n) => SETS[n]!)) : [];
  names.forEach((name, i) => {
    describe(name, () => {
      const spec = SETS[name]!;
      const ref = results[i]!;
      const st = collect(spec);

      it("merged histogram and width equal §2.2 in numpy exactly", () => {
        expect(st.histogram.length).toBe(ref.hist.length);
        expect(Array.from(st.histogram)).toEqual(ref.hist);
        expect(st.width).toBe(ref.width);
        expect(st.histogramRange).toBe(ref.th);
        expect(st.histogramRestarts).toBe(ref.restarts);
        expect([st.min, st.max]).toEqual([ref.min, ref.max]);
        if (name === "gaussGrowing") expect(st.histogram.length).toBeGreaterThan(2048);
        if (name === "discard") expect(st.histogramRestarts).toBe(1);
      });

      it("percentile v_min/v_max equal the spec's per-sample-list computation exactly", () => {
        expect(st.k).toBe(ref.k);
        const t = thresholdFor(st, "percentile9999");
        expect(t.min).toBe(ref.vmin);
        expect(t.max).toBe(ref.vmax);
        expect(t.threshold).toBe(Math.max(Math.abs(ref.vmin), Math.abs(ref.vmax)));
        if (name !== "tiny" && spec.N === spec.samples.length) {
          // and it is close to numpy's own np.percentile of all the data
          const spread = ref.max - ref.min;
          expect(Math.abs(ref.vmax - ref.np_percentile)).toBeLessThan(0.01 * spread);
        }
      });

      it("per-sample OCTAV s, ACIQ σ and b, kurtosis agree with numpy", () => {
        expect(st.mseValues.length).toBe(ref.mse.length);
        st.mseValues.forEach((v, j) => expect(relClose(v, ref.mse[j]!, 1e-9)).toBe(true));
        st.gaussSigmas.forEach((v, j) => expect(relClose(v, ref.gauss[j]!, 1e-15)).toBe(true));
        st.laplaceBs.forEach((v, j) => expect(relClose(v, ref.laplace[j]!, 1e-9)).toBe(true));
        st.kurtosisValues.forEach((v, j) => expect(relClose(v, ref.kurtosis[j]!, 1e-9)).toBe(true));
      });

      it("mse / aciq thresholds are min(mean, absmax) of the reference values", () => {
        const absmax = Math.max(Math.abs(ref.min), Math.abs(ref.max));
        const mean = (v: number[], a: number) => v.reduce((s, x) => s + a * x, 0) / v.length;
        const int4 = spec.bits === 4;
        const cases: [CaliMethod, number][] = [
          ["mse", Math.min(mean(ref.mse, 1), absmax)],
          ["aciq_gauss", Math.min(mean(ref.gauss, int4 ? 2.55913642 : 3.92403337), absmax)],
          ["aciq_laplace", Math.min(mean(ref.laplace, int4 ? 5.02864014 : 9.89675982), absmax)],
        ];
        for (const [m, want] of cases) {
          const got = thresholdFor(st, m, { int4 });
          expect(relClose(got.threshold, Math.max(want, 1e-5), 1e-9), `${m}: ${got.threshold} vs ${want}`).toBe(true);
          expect([got.min, got.max]).toEqual([ref.min, ref.max]);
          expect(thresholdFor(st, m, { isGraphInput: true, int4 }).threshold).toBe(absmax);
        }
      });

      it("MovingAverageMinMax observer qparams equal the float32 reference", () => {
        const t = thresholdFor(st, "torch_observer");
        expect(t.threshold).toBe(ref.observer.th);
        expect(t.min).toBe(ref.observer.min);
        expect(t.max).toBe(ref.observer.max);
      });
    });
  });
});

describe("OCTAV details", () => {
  it("keeps the previous s when the change falls below 1e-6, and is NaN for an all-zero sample", () => {
    expect(Number.isNaN(octavS(new Float32Array(8), 0, 0, 8))).toBe(true);
    // a two-valued sample: s converges in a few steps; compare with a direct float64 iteration
    const x = Float32Array.from({ length: 1000 }, (_, i) => (i % 10 === 0 ? 5 : i % 2 ? 1 : -1));
    let s = x.reduce((a, v) => a + Math.abs(v), 0) / 1000;
    for (let it = 0; it < 20; it++) {
      let gs = 0, gc = 0;
      for (const v of x) if (Math.abs(v) > Math.fround(s)) { gs += Math.abs(v); gc++; }
      const nx = gs / (4 ** -8 / 3 * (1000 - gc) + gc);
      if (Math.abs(nx - s) < 1e-6) break;
      s = nx;
    }
    expect(octavS(x, -1, 5, 8)).toBe(s);
  });
});

describe("toJSON / fromJSON", () => {
  it("restores every statistic: identical thresholds and identical state after more samples", () => {
    const spec = SETS.gaussGrowing!;
    const a = collect({ ...spec, samples: spec.samples.slice(0, 4) });
    const b = TensorStats.fromJSON(JSON.parse(JSON.stringify(a.toJSON())));
    for (const m of ["kl", "max", "percentile9999", "mse", "aciq_gauss", "aciq_laplace", "torch_observer"] as CaliMethod[]) {
      expect(thresholdFor(b, m)).toEqual(thresholdFor(a, m));
    }
    expect(b.kurtosis).toBe(a.kurtosis);
    for (const x of spec.samples.slice(4)) {
      a.update(x);
      b.update(x);
    }
    expect(JSON.stringify(b.toJSON())).toBe(JSON.stringify(a.toJSON()));
  });
  it("keeps infinities (empty statistics, σ = 0 kurtosis)", () => {
    const e = TensorStats.fromJSON(JSON.parse(JSON.stringify(new TensorStats().toJSON())));
    expect([e.min, e.max, e.samples]).toEqual([Infinity, -Infinity, 0]);
    const c = new TensorStats({ kurtosis: true });
    c.update(new Float32Array(4).fill(2));
    const d = TensorStats.fromJSON(JSON.parse(JSON.stringify(c.toJSON())));
    expect(d.kurtosisValues).toEqual([Infinity]);
  });
});

describe("speed (micro-benchmark, no assertions on time)", () => {
  it("update on 4M-element samples", () => {
    const n = 4 * 1024 * 1024;
    const xs = [1, 1.2, 2.5].map((s, i) => gaussian(n, s, 1000 + i));
    const time = (label: string, mk: () => TensorStats) => {
      const s = mk();
      const ms: number[] = [];
      for (const x of xs) {
        const t0 = performance.now();
        s.update(x);
        ms.push(performance.now() - t0);
      }
      console.log(`[calib bench] update 4M f32, ${label}: ${ms.map((m) => m.toFixed(1)).join(" / ")} ms per sample (bins ${s.histogram.length})`);
      return s;
    };
    time("min/max + histogram", () => new TensorStats());
    time("+ OCTAV (mse)", () => new TensorStats({ methods: ["mse"] }));
    time("+ ACIQ gauss & laplace", () => new TensorStats({ methods: ["aciq_gauss", "aciq_laplace"] }));
    time("+ kurtosis", () => new TensorStats({ kurtosis: true }));
    const p = time("+ percentile (N=100, p=99.99, k=41944)", () => new TensorStats({ numSamples: 100, percentile: 99.99, methods: ["percentile9999"] }));
    expect(p.k).toBe(41944);
    time("everything", () => new TensorStats({ numSamples: 100, methods: ALL, kurtosis: true, tailPercentile: true }));
  });
});
