/**
 * Per-tensor calibration statistics, accumulated one sample at a time (spec sophgo.md §2.2, §2.4,
 * §2.9). Everything TPU-MLIR's `ActivationCalibrator` gathers per sample is kept here, in bounded
 * memory: running min/max, the |x| histogram merged across samples exactly as TPU-MLIR merges it,
 * and the per-sample values the other methods average (OCTAV s, ACIQ σ/b, kurtosis), plus the k
 * smallest/largest values the percentile method needs.
 *
 * Floating point follows what TPU-MLIR computes with numpy 1.x on float32 activations, where that
 * decides a result: histogram bin indices are float32 arithmetic (`floor(f32(f32(|x|/w32)+0.5))`),
 * range bookkeeping is float64 with float32 subtraction while the range is still a float32 absmax,
 * `//` is Python's floor division. Sums that numpy does in float32 pairwise (OCTAV, ACIQ-Laplace,
 * kurtosis) are done in float64 here: those results agree to ~1e-7 relative, not bit for bit.
 */
import { UsageError } from "@q/ir";

/** The calibration methods of `run_calibration` (`--cali_method` / `--debug_cmd`). */
export type CaliMethod = "kl" | "max" | "percentile9999" | "mse" | "aciq_gauss" | "aciq_laplace" | "torch_observer";

export const CALI_METHODS: readonly CaliMethod[] = ["kl", "max", "percentile9999", "mse", "aciq_gauss", "aciq_laplace", "torch_observer"];

/** TPU-MLIR flag names → method. */
const FLAG_TO_METHOD: ReadonlyMap<string, CaliMethod> = new Map<string, CaliMethod>([
  ["use_kl", "kl"],
  ["use_max", "max"],
  ["use_percentile9999", "percentile9999"],
  ["use_mse", "mse"],
  ["use_aciq_gauss", "aciq_gauss"],
  ["use_aciq_laplace", "aciq_laplace"],
  ["use_torch_observer_for_cali", "torch_observer"],
]);

/**
 * Parse a TPU-MLIR method flag (`use_kl`, `use_max`, `use_percentile9999`, `use_mse`,
 * `use_aciq_gauss`, `use_aciq_laplace`, `use_torch_observer_for_cali`; empty = KL) or one of q's
 * own names (`kl`, `max`, ...). Throws a UsageError listing the valid names otherwise.
 */
export function parseCaliMethod(flag: string): CaliMethod {
  const f = flag.trim();
  if (f === "") return "kl";
  const m = FLAG_TO_METHOD.get(f);
  if (m) return m;
  if ((CALI_METHODS as readonly string[]).includes(f)) return f as CaliMethod;
  throw new UsageError(
    `unknown calibration method '${flag}': use one of ${[...FLAG_TO_METHOD.keys()].join(", ")} (or nothing for KL)`,
  );
}

export interface TensorStatsOptions {
  /** Histogram bins of the first sample (`--histogram_bin_num`, default 2048). */
  bins?: number;
  /** Planned number of samples N (`--input_num`): sets the percentile k and interpolation position. */
  numSamples?: number;
  /** Percentile p for this tensor (see `percentileForOp`); default 99.99. */
  percentile?: number;
  /**
   * Which per-sample accumulators to keep, named by the method that needs them: "percentile9999"
   * (k smallest and largest signed values), "mse" (OCTAV s), "aciq_gauss" (σ), "aciq_laplace" (b).
   * "kl", "max" and "torch_observer" need nothing beyond what is always kept (min/max, histogram,
   * moving-average observer). Default: none.
   */
  methods?: Iterable<CaliMethod>;
  /** Keep the per-sample kurtosis (`--kurtosis_analysis`). */
  kurtosis?: boolean;
  /** Keep the k largest |x| (what the mse/aciq tail rule compares with absmax; see `tailRule`). */
  tailPercentile?: boolean;
  /** OCTAV with 4 bits instead of 8 (`debug_cmd int4`). */
  int4?: boolean;
}

/** TPU-MLIR discards the merged histogram when it would grow past this many bins. */
export const MAX_HIST_BINS = 8_000_000;

const OCTAV_BUCKETS = 2048;

// ---------------------------------------------------------------------------------------------
// Shared scratch buffers. `update` is synchronous, so one set per thread is enough and the
// statistics of many tensors never each hold a sample-sized buffer.

let scratchF32 = new Float32Array(0);
function scratch(n: number): Float32Array {
  if (scratchF32.length < n) scratchF32 = new Float32Array(Math.max(n, Math.ceil(scratchF32.length * 1.5)));
  return scratchF32;
}
const bucketCount = new Float64Array(OCTAV_BUCKETS + 1);
const bucketSum = new Float64Array(OCTAV_BUCKETS + 1);
const bucketPos = new Int32Array(OCTAV_BUCKETS + 1);
const bucketFill = new Int32Array(OCTAV_BUCKETS + 1);

// ---------------------------------------------------------------------------------------------
// Small numeric helpers

/** Python's float `//` (fmod based, as CPython and numpy compute it), for b > 0. */
export function pyFloorDiv(a: number, b: number): number {
  if (b === 0) return a > 0 ? Infinity : a < 0 ? -Infinity : NaN;
  const mod = a % b;
  let div = (a - mod) / b;
  if (mod !== 0 && b < 0 !== mod < 0) div -= 1;
  if (div === 0) return Math.sign(a / b) * 0;
  let fl = Math.floor(div);
  if (div - fl > 0.5) fl += 1;
  return fl;
}

/**
 * Add the |x| histogram of one sample into `h` (TPU-MLIR `histogram`): exact zeros (and NaN) are
 * dropped, width = th/(n−1), index = floor(|x|/width + 0.5) in float32 arithmetic; indices past
 * n−1 are dropped as numpy's `histogram(range=(0, n−1))` drops them. Returns the width (float64).
 */
export function histogramInto(h: Float64Array, x: Float32Array, th: number, n: number): number {
  const width = th / (n - 1);
  const w32 = Math.fround(width);
  const fr = Math.fround;
  const len = x.length;
  if (n <= 2 ** 23) {
    // f32(|x|/w32) computed as f32(|x|·(1/w32)): the float64 product is within 2^-52 (relative)
    // of the exact quotient, and a quotient of two float32 values is never closer than 2^-49 to a
    // float32 rounding midpoint, so both round to the same float32. Below 2^23, q + 0.5 needs no
    // second float32 rounding to get the same floor.
    const inv = 1 / w32;
    for (let i = 0; i < len; i++) {
      const a = Math.abs(x[i]!);
      if (!(a > 0)) continue; // zero or NaN
      const f = fr(a * inv) + 0.5;
      if (f < n) h[f | 0]!++;
    }
  } else {
    const top = n - 1;
    for (let i = 0; i < len; i++) {
      const a = Math.abs(x[i]!);
      if (!(a > 0)) continue;
      const idx = Math.floor(fr(fr(a / w32) + 0.5));
      if (idx <= top) h[idx]!++;
    }
  }
  return width;
}

/** In-place selection on a[lo, hi): afterwards a[nth] holds the value of rank nth (ascending). */
export function nthElement(a: Float32Array, lo: number, hi: number, nth: number): void {
  let l = lo;
  let r = hi - 1;
  let guard = 0;
  while (r > l) {
    if (r - l < 24) {
      for (let i = l + 1; i <= r; i++) {
        const v = a[i]!;
        let j = i - 1;
        while (j >= l && a[j]! > v) {
          a[j + 1] = a[j]!;
          j--;
        }
        a[j + 1] = v;
      }
      return;
    }
    if (++guard > 80) {
      a.subarray(l, r + 1).sort();
      return;
    }
    const m = (l + r) >>> 1;
    const x = a[l]!, y = a[m]!, z = a[r]!;
    const pivot = x < y ? (y < z ? y : x < z ? z : x) : x < z ? x : y < z ? z : y;
    let i = l;
    let j = r;
    while (i <= j) {
      while (a[i]! < pivot) i++;
      while (a[j]! > pivot) j--;
      if (i <= j) {
        const t = a[i]!;
        a[i] = a[j]!;
        a[j] = t;
        i++;
        j--;
      }
    }
    if (nth <= j) r = j;
    else if (nth >= i) l = i;
    else return;
  }
}

/**
 * The k largest values seen (a multiset), kept unsorted in a Float32Array of capacity k.
 * `floor` is their minimum once k are held: smaller candidates cannot enter.
 */
class TopK {
  vals: Float32Array;
  len = 0;
  floor = -Infinity;
  constructor(readonly k: number) {
    this.vals = new Float32Array(k);
  }
  /** Merge candidates s[0, m) (s must have room for m + k values; it is clobbered). */
  absorb(s: Float32Array, m: number): void {
    const k = this.k;
    s.set(this.vals.subarray(0, this.len), m);
    const total = m + this.len;
    if (total <= k) {
      this.vals.set(s.subarray(0, total));
      this.len = total;
    } else {
      nthElement(s, 0, total, total - k);
      this.vals.set(s.subarray(total - k, total));
      this.len = k;
    }
    if (this.len === k) {
      let f = Infinity;
      const v = this.vals;
      for (let i = 0; i < k; i++) if (v[i]! < f) f = v[i]!;
      this.floor = f;
    }
  }
  /** Held values, ascending (a copy). */
  sorted(): Float32Array {
    return this.vals.slice(0, this.len).sort();
  }
}

const MODE_SIGNED = 0;
const MODE_NEGATED = 1;
const MODE_ABS = 2;

/** Copy the values of x that beat `floor` (after the mode's transform) into s; returns how many. */
function gather(x: Float32Array, mode: number, floor: number, s: Float32Array): number {
  let m = 0;
  const n = x.length;
  if (mode === MODE_SIGNED) {
    for (let i = 0; i < n; i++) {
      const v = x[i]!;
      if (v > floor) s[m++] = v;
    }
  } else if (mode === MODE_NEGATED) {
    for (let i = 0; i < n; i++) {
      const v = -x[i]!;
      if (v > floor) s[m++] = v;
    }
  } else {
    for (let i = 0; i < n; i++) {
      const v = Math.abs(x[i]!);
      if (v > floor) s[m++] = v;
    }
  }
  return m;
}

/**
 * Add x (transformed by mode) to a TopK. Before the TopK is full, a strided sample of x gives a
 * provisional floor that still leaves at least k candidates, so the first sample does not have
 * to select among all of x.
 */
function absorbSample(t: TopK, x: Float32Array, mode: number): void {
  const n = x.length;
  const k = t.k;
  let floor = t.floor;
  if (t.len < k && n > 16 * k && n > 65536) {
    const m = 4096;
    const stride = n / m;
    const probe = new Float32Array(m);
    for (let i = 0; i < m; i++) {
      const v = x[Math.floor(i * stride)]!;
      probe[i] = mode === MODE_SIGNED ? v : mode === MODE_NEGATED ? -v : Math.abs(v);
    }
    probe.sort();
    const want = Math.min(1, (4 * k + 256) / n); // fraction of x to keep, with a wide margin
    const at = Math.floor(m * (1 - want)) - 1;
    if (at >= 0 && probe[at] === probe[at]) {
      const s = scratch(n + k);
      const got = gather(x, mode, probe[at]!, s);
      if (got >= k) {
        t.absorb(s, got);
        return;
      }
    }
    floor = -Infinity;
  }
  const s = scratch(n + k);
  t.absorb(s, gather(x, mode, floor, s));
}

/** Sequential float64 mean, as Python's `sum(list)/len(list)`; NaN entries are skipped. */
function meanOf(v: readonly number[]): number {
  let s = 0;
  let n = 0;
  for (const x of v) {
    if (Number.isNaN(x)) continue;
    s += x;
    n++;
  }
  return n === 0 ? NaN : s / n;
}

/**
 * OCTAV (`use_mse`) for one sample: s₀ = Σa/#(a>0), then s ← Σ_{a>s} a / (4^−b/(3u)·#(a≤s) +
 * #(a>s)) at most 20 times, stopping (keeping the previous s, as TPU-MLIR does) when the change is
 * below 1e-6. The comparisons a > s use s rounded to float32, as numpy does with a float32 array.
 * |x| is bucketed once (counting sort into scratch), so each iteration scans only the bucket that
 * holds s. Returns NaN for an all-zero sample (TPU-MLIR's 0/0).
 */
export function octavS(x: Float32Array, sampleMin: number, absmax: number, bits: number): number {
  const n = x.length;
  const unsigned = Math.abs(sampleMin - 0) < 1e-6 ? 4 : 1;
  const coef = 1 / 4 ** bits / 3 / unsigned;
  if (!(absmax > 0) || !Number.isFinite(absmax)) return NaN;
  const B = OCTAV_BUCKETS;
  const scale = B / absmax;
  bucketCount.fill(0);
  bucketSum.fill(0);
  let total = 0;
  let nnz = 0;
  for (let i = 0; i < n; i++) {
    const a = Math.abs(x[i]!);
    if (!(a > 0)) continue;
    let b = (a * scale) | 0;
    if (b >= B) b = B - 1;
    bucketCount[b]!++;
    bucketSum[b] += a;
    total += a;
    nnz++;
  }
  if (nnz === 0) return NaN;
  // bucket starts, then scatter the non-zero |x| into scratch grouped by bucket
  let acc = 0;
  for (let b = 0; b < B; b++) {
    bucketPos[b] = acc;
    acc += bucketCount[b]!;
  }
  bucketPos[B] = acc;
  const s = scratch(nnz);
  const fill = bucketFill;
  fill.set(bucketPos);
  for (let i = 0; i < n; i++) {
    const a = Math.abs(x[i]!);
    if (!(a > 0)) continue;
    let b = (a * scale) | 0;
    if (b >= B) b = B - 1;
    s[fill[b]!++] = a;
  }
  // suffix sums: bucketCount/bucketSum[b] := Σ over buckets ≥ b
  bucketCount[B] = 0;
  bucketSum[B] = 0;
  for (let b = B - 1; b >= 0; b--) {
    bucketCount[b] = bucketCount[b]! + bucketCount[b + 1]!;
    bucketSum[b] = bucketSum[b]! + bucketSum[b + 1]!;
  }
  let sn = total / nnz;
  for (let it = 0; it < 20; it++) {
    const sf = Math.fround(sn);
    let j = (sf * scale) | 0;
    if (!(sf * scale < B)) j = B - 1;
    let gtCnt = bucketCount[j + 1]!;
    let gtSum = bucketSum[j + 1]!;
    for (let p = bucketPos[j]!, e = bucketPos[j + 1]!; p < e; p++) {
      const a = s[p]!;
      if (a > sf) {
        gtCnt++;
        gtSum += a;
      }
    }
    const leCnt = n - gtCnt;
    const next = gtSum / (coef * leCnt + gtCnt);
    if (Math.abs(next - sn) < 1e-6) break;
    sn = next;
  }
  return sn;
}

// ---------------------------------------------------------------------------------------------
// JSON helpers (the statistics cache)

function f64ToB64(a: Float64Array): string {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength).toString("base64");
}
function f32ToB64(a: Float32Array): string {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength).toString("base64");
}
function b64ToF64(s: string): Float64Array {
  const b = Buffer.from(s, "base64");
  const out = new Float64Array(b.byteLength / 8);
  new Uint8Array(out.buffer).set(b);
  return out;
}
function b64ToF32(s: string): Float32Array {
  const b = Buffer.from(s, "base64");
  const out = new Float32Array(b.byteLength / 4);
  new Uint8Array(out.buffer).set(b);
  return out;
}
type JNum = number | string;
function jn(x: number): JNum {
  return Number.isFinite(x) ? x : String(x);
}
function nj(x: JNum): number {
  return typeof x === "number" ? x : Number(x);
}
function listToB64(v: readonly number[]): string {
  return f64ToB64(Float64Array.from(v));
}
function b64ToList(s: string): number[] {
  return Array.from(b64ToF64(s));
}

interface TopKJSON {
  k: number;
  vals: string;
}

/** What `toJSON` writes: plain JSON, arrays of numbers as base64 of their little-endian bytes. */
export interface TensorStatsJSON {
  version: 1;
  bins: number;
  numSamples: number | null;
  percentile: number;
  methods: CaliMethod[];
  kurtosis: boolean;
  tailPercentile: boolean;
  int4: boolean;
  samples: number;
  size: number;
  min: JNum;
  max: JNum;
  hist: string | null;
  th: JNum;
  thIsF32: boolean;
  width: JNum;
  restarts: number;
  mse: string;
  gauss: string;
  laplace: string;
  kurt: string;
  maMin: JNum;
  maMax: JNum;
  top: TopKJSON | null;
  bottom: TopKJSON | null;
  absTop: TopKJSON | null;
}

// ---------------------------------------------------------------------------------------------

/**
 * Statistics of one tensor over the calibration samples. Feed it with `update` once per sample;
 * the array passed in is only read during the call.
 */
export class TensorStats {
  readonly bins: number;
  readonly numSamples: number | undefined;
  readonly percentile: number;
  readonly methods: ReadonlySet<CaliMethod>;
  readonly keepKurtosis: boolean;
  readonly keepTail: boolean;
  readonly int4: boolean;

  private _samples = 0;
  private _size = 0;
  private _min = Infinity;
  private _max = -Infinity;
  private _hist: Float64Array | null = null;
  private _th = 0;
  private _thIsF32 = true;
  private _width = 0;
  private _restarts = 0;
  private _mse: number[] = [];
  private _gauss: number[] = [];
  private _laplace: number[] = [];
  private _kurt: number[] = [];
  private _maMin = Infinity;
  private _maMax = -Infinity;
  private _top: TopK | null = null;
  private _bottom: TopK | null = null; // negated values
  private _absTop: TopK | null = null;

  constructor(opts: TensorStatsOptions = {}) {
    const bins = opts.bins ?? 2048;
    if (!Number.isInteger(bins) || bins < 2) throw new UsageError(`histogram bin number must be an integer ≥ 2, got ${bins}`);
    this.bins = bins;
    this.numSamples = opts.numSamples;
    this.percentile = opts.percentile ?? 99.99;
    this.methods = new Set(opts.methods ?? []);
    this.keepKurtosis = opts.kurtosis ?? false;
    this.keepTail = opts.tailPercentile ?? false;
    this.int4 = opts.int4 ?? false;
    if ((this.methods.has("percentile9999") || this.keepTail) && !(this.numSamples !== undefined && this.numSamples > 0)) {
      throw new UsageError("percentile statistics need the planned sample count (numSamples > 0)");
    }
    if (!(this.percentile > 0 && this.percentile <= 100)) throw new UsageError(`percentile must be in (0, 100], got ${this.percentile}`);
  }

  /** Samples seen. */
  get samples(): number {
    return this._samples;
  }
  /** Element count of the last sample (TPU-MLIR's `size`). */
  get size(): number {
    return this._size;
  }
  /** Running minimum (+Infinity before any sample). */
  get min(): number {
    return this._min;
  }
  /** Running maximum (−Infinity before any sample). */
  get max(): number {
    return this._max;
  }
  /** max(|min|, |max|); 0 before any sample. */
  get absmax(): number {
    return this._samples === 0 ? 0 : Math.max(Math.abs(this._min), Math.abs(this._max));
  }
  /** Merged |x| histogram (bin counts; may hold more than `bins` bins after range growth). */
  get histogram(): Float64Array {
    return this._hist ?? new Float64Array(this.bins);
  }
  /** Bin width of the merged histogram (the last width computed, float64). */
  get width(): number {
    return this._width;
  }
  /** The range the histogram covers (TPU-MLIR's `old_th`). */
  get histogramRange(): number {
    return this._th;
  }
  /** Times the history was discarded because the merged histogram would exceed 8,000,000 bins. */
  get histogramRestarts(): number {
    return this._restarts;
  }
  /** Per-sample OCTAV s values (NaN for all-zero samples). */
  get mseValues(): readonly number[] {
    return this._mse;
  }
  /** Per-sample ACIQ-Gauss σ = (max−min)·c/√(2 ln N). */
  get gaussSigmas(): readonly number[] {
    return this._gauss;
  }
  /** Per-sample ACIQ-Laplace b = mean|x − mean x|. */
  get laplaceBs(): readonly number[] {
    return this._laplace;
  }
  /** Per-sample kurtosis (Infinity when σ = 0). */
  get kurtosisValues(): readonly number[] {
    return this._kurt;
  }
  /** Mean kurtosis over samples (NaN when not kept). */
  get kurtosis(): number {
    let s = 0;
    for (const k of this._kurt) s += k;
    return this._kurt.length ? s / this._kurt.length : NaN;
  }
  /** Mean OCTAV s over samples whose s is defined. */
  get mseMean(): number {
    return meanOf(this._mse);
  }
  /** MovingAverageMinMaxObserver state (averaging constant 0.1). */
  get observerMin(): number {
    return this._maMin;
  }
  get observerMax(): number {
    return this._maMax;
  }
  /** Percentile k: floor(N·size·(1 − p/100)) + 1. */
  get k(): number {
    return Math.floor((this.numSamples ?? this._samples) * this._size * (1 - this.percentile / 100)) + 1;
  }
  /** The k largest signed values over all samples, ascending (undefined if not kept). */
  topValues(): Float32Array | undefined {
    return this._top?.sorted();
  }
  /** The k smallest signed values over all samples, ascending (undefined if not kept). */
  bottomValues(): Float32Array | undefined {
    if (!this._bottom) return undefined;
    const neg = this._bottom.sorted();
    const out = new Float32Array(neg.length);
    for (let i = 0; i < neg.length; i++) out[i] = -neg[neg.length - 1 - i]!;
    return out;
  }
  /** The k largest |x| over all samples, ascending (undefined if not kept). */
  absTopValues(): Float32Array | undefined {
    return this._absTop?.sorted();
  }

  /** Add one sample. `x` is read during the call only. */
  update(x: Float32Array): void {
    const n = x.length;
    if (n === 0) return;
    // pass 1: min/max (NaN ignored)
    let lo = Infinity;
    let hi = -Infinity;
    for (let i = 0; i < n; i++) {
      const v = x[i]!;
      if (v < lo) lo = v;
      if (v > hi) hi = v;
    }
    if (lo > hi) return; // all NaN
    this._size = n;
    if (lo < this._min) this._min = lo;
    if (hi > this._max) this._max = hi;
    const absmax = Math.max(Math.abs(this._min), Math.abs(this._max));

    this.mergeHistogram(x, absmax);

    const m = this.methods;
    if (m.has("mse")) this._mse.push(octavS(x, lo, Math.max(-lo, hi), this.int4 ? 4 : 8));
    if (m.has("aciq_gauss")) {
      const c = 0.5 * 0.35 * (1 + Math.sqrt(Math.PI * Math.log(4)));
      this._gauss.push((Math.fround(hi - lo) * c) / Math.sqrt(2 * Math.log(n)));
    }
    if (m.has("aciq_laplace") || this.keepKurtosis) this.moments(x, m.has("aciq_laplace"));
    if (m.has("percentile9999")) this.percentileUpdate(x);
    if (this.keepTail) {
      if (!this._absTop) this._absTop = new TopK(this.k);
      absorbSample(this._absTop, x, MODE_ABS);
    }
    // MovingAverageMinMaxObserver(averaging_constant=0.1), float32 tensor arithmetic
    if (this._maMin === Infinity && this._maMax === -Infinity) {
      this._maMin = lo;
      this._maMax = hi;
    } else {
      const fr = Math.fround;
      const c = fr(0.1);
      this._maMin = fr(this._maMin + fr(c * fr(lo - this._maMin)));
      this._maMax = fr(this._maMax + fr(c * fr(hi - this._maMax)));
    }
    this._samples++;
  }

  /** §2.2 `combine_histogram`. */
  private mergeHistogram(x: Float32Array, absmax: number): void {
    const old = this._hist;
    if (old === null || this._th === 0) {
      // first sample; also after all-zero samples (TPU-MLIR would divide by a zero step here)
      this.freshHistogram(x, absmax);
      return;
    }
    const oldTh = this._th;
    if (absmax <= oldTh) {
      histogramInto(old, x, oldTh, old.length);
      return;
    }
    const nOld = old.length;
    const step = oldTh / nOld;
    const diff = this._thIsF32 ? Math.fround(absmax - oldTh) : absmax - oldTh;
    const extra = pyFloorDiv(diff, step) + 1;
    const nNew = nOld + extra;
    if (!(nNew <= MAX_HIST_BINS)) {
      this._restarts++;
      this.freshHistogram(x, absmax);
      return;
    }
    const newTh = extra * step + oldTh;
    const h = new Float64Array(nNew);
    h.set(old);
    this._width = histogramInto(h, x, newTh, nNew);
    this._hist = h;
    this._th = newTh;
    this._thIsF32 = false;
  }

  private freshHistogram(x: Float32Array, absmax: number): void {
    const h = new Float64Array(this.bins);
    this._width = histogramInto(h, x, absmax, this.bins);
    this._hist = h;
    this._th = absmax;
    this._thIsF32 = true;
  }

  /** Central moments pass: ACIQ-Laplace b and/or kurtosis. */
  private moments(x: Float32Array, laplace: boolean): void {
    const n = x.length;
    let sum = 0;
    for (let i = 0; i < n; i++) sum += x[i]!;
    const mu = sum / n;
    let s1 = 0, s2 = 0, s4 = 0;
    for (let i = 0; i < n; i++) {
      const d = x[i]! - mu;
      const d2 = d * d;
      s1 += Math.abs(d);
      s2 += d2;
      s4 += d2 * d2;
    }
    if (laplace) this._laplace.push(s1 / n);
    if (this.keepKurtosis) {
      const sd = Math.sqrt(s2 / n);
      this._kurt.push(sd === 0 ? Infinity : s4 / n / (sd + 1e-8) ** 4);
    }
  }

  /**
   * Keep the k largest and k smallest signed values. TPU-MLIR keeps, per sample, the k smallest
   * and k largest (sorted[:k] and sorted[−k:]) and concatenates them; the k largest of that
   * concatenation equal the k largest of all values as long as size ≥ 2k. For tiny tensors
   * (size < 2k) the two lists overlap and overlapping values count twice, as they do there.
   */
  private percentileUpdate(x: Float32Array): void {
    const n = x.length;
    if (!this._top) {
      const k = this.k;
      this._top = new TopK(k);
      this._bottom = new TopK(k);
    }
    const top = this._top;
    const bottom = this._bottom!;
    const k = top.k;
    if (n >= 2 * k) {
      absorbSample(top, x, MODE_SIGNED);
      absorbSample(bottom, x, MODE_NEGATED);
      return;
    }
    // tiny tensor: explicit per-sample lists, as TPU-MLIR builds them
    const sorted = new Float32Array(n);
    let m = 0;
    for (let i = 0; i < n; i++) if (x[i] === x[i]) sorted[m++] = x[i]!;
    const srt = sorted.subarray(0, m).sort();
    const c = Math.min(k, m);
    const s = scratch(2 * c + k);
    for (let i = 0; i < c; i++) {
      s[i] = srt[i]!;
      s[c + i] = srt[m - c + i]!;
    }
    top.absorb(s, 2 * c);
    for (let i = 0; i < c; i++) {
      s[i] = -srt[i]!;
      s[c + i] = -srt[m - c + i]!;
    }
    bottom.absorb(s, 2 * c);
  }

  toJSON(): TensorStatsJSON {
    const tk = (t: TopK | null): TopKJSON | null => (t ? { k: t.k, vals: f32ToB64(t.vals.slice(0, t.len)) } : null);
    return {
      version: 1,
      bins: this.bins,
      numSamples: this.numSamples ?? null,
      percentile: this.percentile,
      methods: [...this.methods],
      kurtosis: this.keepKurtosis,
      tailPercentile: this.keepTail,
      int4: this.int4,
      samples: this._samples,
      size: this._size,
      min: jn(this._min),
      max: jn(this._max),
      hist: this._hist ? f64ToB64(this._hist) : null,
      th: jn(this._th),
      thIsF32: this._thIsF32,
      width: jn(this._width),
      restarts: this._restarts,
      mse: listToB64(this._mse),
      gauss: listToB64(this._gauss),
      laplace: listToB64(this._laplace),
      kurt: listToB64(this._kurt),
      maMin: jn(this._maMin),
      maMax: jn(this._maMax),
      top: tk(this._top),
      bottom: tk(this._bottom),
      absTop: tk(this._absTop),
    };
  }

  static fromJSON(j: TensorStatsJSON): TensorStats {
    if (!j || j.version !== 1) throw new UsageError("statistics cache entry has an unknown format (delete the cache and recalibrate)");
    const opts: TensorStatsOptions = {
      bins: j.bins,
      percentile: j.percentile,
      methods: j.methods,
      kurtosis: j.kurtosis,
      tailPercentile: j.tailPercentile,
      int4: j.int4,
    };
    if (j.numSamples !== null) opts.numSamples = j.numSamples;
    const s = new TensorStats(opts);
    s._samples = j.samples;
    s._size = j.size;
    s._min = nj(j.min);
    s._max = nj(j.max);
    s._hist = j.hist === null ? null : b64ToF64(j.hist);
    s._th = nj(j.th);
    s._thIsF32 = j.thIsF32;
    s._width = nj(j.width);
    s._restarts = j.restarts;
    s._mse = b64ToList(j.mse);
    s._gauss = b64ToList(j.gauss);
    s._laplace = b64ToList(j.laplace);
    s._kurt = b64ToList(j.kurt);
    s._maMin = nj(j.maMin);
    s._maMax = nj(j.maMax);
    const tk = (t: TopKJSON | null): TopK | null => {
      if (!t) return null;
      const r = new TopK(t.k);
      const v = b64ToF32(t.vals);
      r.vals.set(v);
      r.len = v.length;
      if (r.len === r.k) {
        let f = Infinity;
        for (let i = 0; i < v.length; i++) if (v[i]! < f) f = v[i]!;
        r.floor = f;
      }
      return r;
    };
    s._top = tk(j.top);
    s._bottom = tk(j.bottom);
    s._absTop = tk(j.absTop);
    return s;
  }
}
