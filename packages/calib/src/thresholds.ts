/**
 * Thresholds from statistics (spec sophgo.md §2.3 KLD, §2.4 other methods). Pure functions of a
 * `TensorStats`; nothing here touches data.
 */
import { UsageError } from "@q/ir";
import type { CaliMethod, TensorStats } from "./stats.js";

/** TPU-MLIR's floor for thresholds: anything ≤ this (or NaN) becomes this. */
export const MIN_THRESHOLD = 1e-5;

/** Percentile p_i of the i-th op (0-based, graph order) of numOps: deeper ops clip less. */
export function percentileForOp(i: number, numOps: number): number {
  const step = (99.999999 - 99.99) / numOps;
  return 99.99 + i * step;
}

/**
 * KLD threshold of an |x| histogram (§2.3, `calibration_math.so` `kl_diversity_hist`). The
 * histogram is zero-padded to a multiple of dstBins; candidate m = 0, 1, … clips at bin
 * (m+1)·dstBins; the first argmin of KL(P‖Q) (log10, +1e-30) wins; th = width·(m*+1)·dstBins.
 * The arithmetic is the library's: P, Q, the running sums and each KL value are float32, the log
 * terms float64, width is passed as float32. The caller clamps the result to absmax.
 */
export function kldThreshold(hist: ArrayLike<number>, width: number, dstBins = 128): number {
  if (!Number.isInteger(dstBins) || dstBins < 1) throw new RangeError(`dstBins must be a positive integer, got ${dstBins}`);
  const fr = Math.fround;
  const w32 = fr(width);
  const n0 = hist.length;
  const N = Math.ceil(n0 / dstBins) * dstBins;
  const klNum = N / dstBins;
  if (klNum === 0) return 0;
  // non-zero bins, in order; their counts as float32 (the library converts long long → float)
  let count = 0;
  let nnz = 0;
  for (let j = 0; j < n0; j++) {
    const h = hist[j]!;
    count += h;
    if (h !== 0) nnz++;
  }
  if (count === 0) {
    // every KL is NaN; the library's argmin then stays at 0
    return fr(fr(w32 * 1) * dstBins);
  }
  const idx = new Int32Array(nnz + 1);
  const hF = new Float64Array(nnz);
  const pF = new Float64Array(nnz);
  const logP = new Float64Array(nnz);
  const countF = fr(count);
  for (let j = 0, t = 0; j < n0; j++) {
    const h = hist[j]!;
    if (h === 0) continue;
    idx[t] = j;
    hF[t] = fr(h);
    pF[t] = fr(hF[t]! / countF);
    logP[t] = Math.log10(pF[t]! + 1e-30);
    t++;
  }
  idx[nnz] = 2147483647; // sentinel

  let bestKl = NaN;
  let best = 0;
  let firstNz = 0; // first non-zero position ≥ candidate's last bin (moves forward)
  for (let m = 0; m < klNum; m++) {
    const i = (m + 1) * dstBins;
    const last = i - 1;
    const e = i / dstBins;
    // P[i−1]: float32 running sum of every count from bin i−1 on
    while (idx[firstNz]! < last) firstNz++;
    let tail = 0;
    for (let t = firstNz; t < nnz; t++) tail = fr(tail + hF[t]!);
    const pLast = fr(tail / countF);
    // S: float32 running sum of the counts below i
    let S = 0;
    let t = 0;
    for (; idx[t]! < i; t++) S = fr(S + hF[t]!);
    const hasLast = idx[firstNz] === last;
    // groups of e bins
    let kl = 0;
    t = 0;
    for (let g = 0; g < dstBins; g++) {
      const end = (g + 1) * e;
      const t0 = t;
      let sumBin = 0;
      for (; idx[t]! < end; t++) sumBin = fr(sumBin + hF[t]!);
      const pos = t - t0;
      const qBase = fr(fr(sumBin / (pos === 0 ? 1 : pos)) / S);
      const logQ = Math.log10(qBase + 1e-30);
      if (end === i) {
        const stop = hasLast ? t - 1 : t;
        for (let u = t0; u < stop; u++) kl = fr(kl + pF[u]! * (logP[u]! - logQ));
        const q = hasLast ? qBase : 0;
        kl = fr(kl + pLast * (Math.log10(pLast + 1e-30) - Math.log10(q + 1e-30)));
      } else {
        for (let u = t0; u < t; u++) kl = fr(kl + pF[u]! * (logP[u]! - logQ));
      }
    }
    if (m === 0) {
      bestKl = kl;
    } else if (bestKl > kl) {
      bestKl = kl;
      best = m;
    }
  }
  return fr(fr(w32 * (best + 1)) * dstBins);
}

export interface ThresholdContext {
  /** The tensor is a graph input (an op with no producers): mse/aciq use absmax. */
  isGraphInput?: boolean;
  /** The `#int4_th` value: KL with 8 destination bins, ACIQ's 4-bit constants. */
  int4?: boolean;
}

export interface Threshold {
  threshold: number;
  /** The table's min/max (observed, or the percentile values, or the observer's range). */
  min: number;
  max: number;
}

/** TPU-MLIR's rule for (near-)zero tensors: th ≤ 1e-5 → 1e-5 with min = −1e-5 (if min < 0) or 0, max = 1e-5. */
function settle(th: number, min: number, max: number): Threshold {
  if (th <= MIN_THRESHOLD) return { threshold: MIN_THRESHOLD, min: min < 0 ? -MIN_THRESHOLD : 0, max: MIN_THRESHOLD };
  if (Number.isNaN(th)) return { threshold: MIN_THRESHOLD, min, max };
  return { threshold: th, min, max };
}

function missing(what: string, method: CaliMethod): never {
  throw new UsageError(`threshold method ${method} needs ${what}, which these statistics did not keep (collect with methods including '${method}')`);
}

/** Linear interpolation between the first two of an ascending list, as TPU-MLIR does it. */
function interp(list: Float32Array, k: number, ratio: number, f32Diff: boolean): number {
  if (list.length === 0) return NaN;
  if (k === 1 || list.length < 2) return list[0]!;
  const d = list[1]! - list[0]!;
  return list[0]! + ratio * (f32Diff ? Math.fround(d) : d);
}

function percentilePosition(stats: TensorStats): { k: number; ratio: number } {
  const N = stats.numSamples ?? stats.samples;
  const inter = N * stats.size - 1;
  const pos = (stats.percentile / 100) * inter;
  return { k: stats.k, ratio: pos - Math.trunc(pos) };
}

/**
 * `use_percentile9999` values: v_max from the k largest values (ascending, interpolated between
 * the first two), v_min from the k smallest (descending, interpolated the same way).
 */
export function percentileRange(stats: TensorStats): { vMin: number; vMax: number } {
  const top = stats.topValues() ?? missing("the k largest/smallest values", "percentile9999");
  const bottom = stats.bottomValues()!;
  const { k, ratio } = percentilePosition(stats);
  const desc = bottom.slice().reverse();
  return { vMax: interp(top, k, ratio, false), vMin: interp(desc, k, ratio, false) };
}

/** The |x| percentile the tail rule compares with absmax (float32 difference, as numpy there). */
export function absPercentile(stats: TensorStats): number {
  const top = stats.absTopValues();
  if (!top) throw new UsageError("the mse/aciq tail rule needs the k largest |x| of the last five tensors (collect them with tailPercentile: true)");
  const { k, ratio } = percentilePosition(stats);
  return interp(top, k, ratio, true);
}

/** MovingAverageMinMaxObserver → qint8 per-tensor affine qparams (torch `_calculate_qparams`). */
export function observerQParams(stats: TensorStats): { scale: number; zeroPoint: number } {
  const fr = Math.fround;
  const mn = stats.observerMin;
  const mx = stats.observerMax;
  if (!(mn <= mx)) return { scale: 1, zeroPoint: 0 };
  const minNeg = Math.min(mn, 0);
  const maxPos = Math.max(mx, 0);
  let scale = fr(fr(maxPos - minNeg) / 255);
  const eps = 2 ** -23; // torch.finfo(float32).eps
  if (scale < eps) scale = eps;
  const q = fr(minNeg / scale);
  // torch.round: half to even
  let r = Math.round(q);
  if (Math.abs(q % 1) === 0.5 && r % 2 !== 0) r -= 1;
  let zp = -128 - r;
  if (zp < -128) zp = -128;
  if (zp > 127) zp = 127;
  return { scale, zeroPoint: zp };
}

const ACIQ_GAUSS_ALPHA = 3.92403337;
const ACIQ_GAUSS_ALPHA_INT4 = 2.55913642;
const ACIQ_LAPLACE_BETA = 9.89675982;
const ACIQ_LAPLACE_BETA_INT4 = 5.02864014;

/** Python `sum(alpha * v for v in values) / len(values)`, skipping NaN. */
function scaledMean(values: readonly number[], alpha: number): number {
  let s = 0;
  let n = 0;
  for (const v of values) {
    if (Number.isNaN(v)) continue;
    s += alpha * v;
    n++;
  }
  return n === 0 ? NaN : s / n;
}

/**
 * The threshold (and table min/max) of one tensor for one method (§2.4):
 * - kl: KLD threshold (128 destination bins; 8 with int4), clamped to absmax;
 * - max: absmax;
 * - percentile9999: max(|v_min|, |v_max|), with v_min/v_max as the table's min/max;
 * - mse: min(mean OCTAV s, absmax) (the bit width is the one the statistics were collected with);
 * - aciq_gauss / aciq_laplace: min(mean α·σ or β·b, absmax);
 * - torch_observer: MovingAverageMinMaxObserver (averaging 0.1), qint8 affine:
 *   th = scale·max(zp+128, 127−zp), min = scale·(−128−zp), max = scale·(127−zp).
 * Graph inputs use absmax under mse/aciq. Every result ≤ 1e-5 (or NaN) becomes 1e-5, and when
 * the method's value is ≤ 1e-5 the min/max become ±1e-5 / 0 as TPU-MLIR writes them. The tail rule
 * for mse/aciq needs graph order: apply `tailRule` on top.
 */
export function thresholdFor(stats: TensorStats, method: CaliMethod, ctx: ThresholdContext = {}): Threshold {
  const mn = stats.min;
  const mx = stats.max;
  if (stats.samples === 0) return { threshold: MIN_THRESHOLD, min: 0, max: MIN_THRESHOLD };
  const absmax = Math.max(Math.abs(mn), Math.abs(mx));
  switch (method) {
    case "kl": {
      const base = settle(absmax, mn, mx);
      let th = kldThreshold(stats.histogram, stats.width, ctx.int4 ? 8 : 128);
      if (th > base.threshold) th = base.threshold;
      return { threshold: th <= MIN_THRESHOLD || Number.isNaN(th) ? MIN_THRESHOLD : th, min: base.min, max: base.max };
    }
    case "max":
      return settle(absmax, mn, mx);
    case "percentile9999": {
      const { vMin, vMax } = percentileRange(stats);
      return settle(Math.max(Math.abs(vMax), Math.abs(vMin)), vMin, vMax);
    }
    case "mse":
    case "aciq_gauss":
    case "aciq_laplace": {
      let v: number;
      if (method === "mse") {
        if (!stats.methods.has("mse")) missing("per-sample OCTAV values", method);
        v = scaledMean(stats.mseValues, 1);
      } else if (method === "aciq_gauss") {
        if (!stats.methods.has("aciq_gauss")) missing("per-sample σ", method);
        v = scaledMean(stats.gaussSigmas, ctx.int4 ? ACIQ_GAUSS_ALPHA_INT4 : ACIQ_GAUSS_ALPHA);
      } else {
        if (!stats.methods.has("aciq_laplace")) missing("per-sample b", method);
        v = scaledMean(stats.laplaceBs, ctx.int4 ? ACIQ_LAPLACE_BETA_INT4 : ACIQ_LAPLACE_BETA);
      }
      if (v > absmax) v = absmax;
      const r = settle(v, mn, mx);
      if (ctx.isGraphInput) {
        const th = Math.max(Math.abs(r.min), Math.abs(r.max));
        return { threshold: th <= MIN_THRESHOLD ? MIN_THRESHOLD : th, min: r.min, max: r.max };
      }
      return r;
    }
    case "torch_observer": {
      const fr = Math.fround;
      const { scale, zeroPoint: zp } = observerQParams(stats);
      let th = fr(scale * Math.max(zp + 128, 127 - zp));
      if (th <= MIN_THRESHOLD) th = MIN_THRESHOLD;
      return { threshold: th, min: fr(scale * (-128 - zp)), max: fr(scale * (127 - zp)) };
    }
  }
}

/** Op types that end the tail rule's walk (TPU-MLIR: top.Conv, top.MatMul; ONNX Gemm imports as MatMul). */
const TAIL_STOP = new Set(["Conv", "MatMul", "Gemm", "top.Conv", "top.MatMul"]);

export interface TailEntry {
  name: string;
  opType: string;
  stats: TensorStats;
}

/**
 * The mse/aciq tail rule (§2.4): walking the last five tensors (graph order) from the output
 * backwards, while a tensor's |x| percentile equals its absmax it keeps that value as threshold;
 * the walk stops after the first Conv/MatMul. Returns name → threshold overrides (empty for other
 * methods). The entries are every calibrated tensor in graph order (at least the last five).
 */
export function tailRule(entries: readonly TailEntry[], method: CaliMethod): Map<string, number> {
  const out = new Map<string, number>();
  if (method !== "mse" && method !== "aciq_gauss" && method !== "aciq_laplace") return out;
  const lastFive = entries.slice(-5).reverse();
  for (const e of lastFive) {
    const v = absPercentile(e.stats);
    const r = thresholdFor(e.stats, method);
    if (v !== Math.max(Math.abs(r.min), Math.abs(r.max))) break;
    out.set(e.name, v <= MIN_THRESHOLD ? MIN_THRESHOLD : v);
    if (TAIL_STOP.has(e.opType)) break;
  }
  return out;
}
