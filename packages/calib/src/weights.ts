/**
 * Per-channel weight statistics for Conv / ConvTranspose / Gemm / MatMul weights, and the INT8
 * per-channel scales TPU-MLIR derives from them (spec sophgo.md §4.2: s_w[c] = max(maxabs(W_c)/qmax,
 * 1e-5), qmax = 127 for signed weights). Plain typed loops over the tensor's data.
 */
import { GraphError, type Tensor } from "@q/ir";

export interface ChannelRanges {
  /** The channel axis (normalized, ≥ 0). */
  axis: number;
  min: Float32Array;
  max: Float32Array;
  absmax: Float32Array;
}

function floatData(w: Tensor): Float32Array | Float64Array {
  if (w.dtype === "float32") return w.data as Float32Array;
  if (w.dtype === "float64") return w.data as Float64Array;
  if (w.dtype === "string") throw new GraphError("a weight of dtype string has no numeric range");
  return w.toFloat32();
}

function normAxis(w: Tensor, axis: number): number {
  const r = w.rank;
  const a = axis < 0 ? axis + r : axis;
  if (!Number.isInteger(a) || a < 0 || a >= r) {
    throw new GraphError(`channel axis ${axis} is out of range for a weight of shape [${w.shape.join(",")}]`);
  }
  return a;
}

/**
 * Min, max and max|w| of every slice along `axis` (default 0, the output channel of a Conv
 * weight [O, I/g, kh, kw]). A rank-0 weight counts as one channel.
 */
export function weightRanges(w: Tensor, axis = 0): ChannelRanges {
  const d = floatData(w);
  if (w.rank === 0) {
    const v = d[0]!;
    return { axis: 0, min: Float32Array.of(v), max: Float32Array.of(v), absmax: Float32Array.of(Math.abs(v)) };
  }
  const a = normAxis(w, axis);
  const C = w.shape[a]!;
  let outer = 1;
  for (let i = 0; i < a; i++) outer *= w.shape[i]!;
  let inner = 1;
  for (let i = a + 1; i < w.rank; i++) inner *= w.shape[i]!;
  const mn = new Float64Array(C).fill(Infinity);
  const mx = new Float64Array(C).fill(-Infinity);
  let p = 0;
  for (let o = 0; o < outer; o++) {
    for (let c = 0; c < C; c++) {
      let lo = mn[c]!;
      let hi = mx[c]!;
      for (let e = p + inner; p < e; p++) {
        const v = d[p]!;
        if (v < lo) lo = v;
        if (v > hi) hi = v;
      }
      mn[c] = lo;
      mx[c] = hi;
    }
  }
  const min = new Float32Array(C);
  const max = new Float32Array(C);
  const absmax = new Float32Array(C);
  for (let c = 0; c < C; c++) {
    // empty channels (a zero-sized dimension elsewhere) read as 0
    const lo = mn[c]! <= mx[c]! ? mn[c]! : 0;
    const hi = mn[c]! <= mx[c]! ? mx[c]! : 0;
    min[c] = lo;
    max[c] = hi;
    absmax[c] = Math.max(Math.abs(lo), Math.abs(hi));
  }
  return { axis: a, min, max, absmax };
}

/**
 * The output-channel axis of an op's weight: Conv [O, I/g, k…] → 0; ConvTranspose [I, O/g, k…]
 * → 1; Gemm B → 0 with transB, else 1; MatMul B [.., K, N] → last.
 */
export function weightChannelAxis(opType: string, rank: number, attrs: { transB?: boolean } = {}): number {
  switch (opType) {
    case "Conv":
      return 0;
    case "ConvTranspose":
      return 1;
    case "Gemm":
      return attrs.transB ? 0 : 1;
    case "MatMul":
      return rank - 1;
    default:
      throw new GraphError(`no weight channel axis is defined for op type ${opType}`);
  }
}

export interface ChannelScaleOptions {
  /** Largest quantized magnitude: 127 for signed int8 (default), 255 for uint8, 7 for int4. */
  qmax?: number;
  /** Smallest scale (TPU-MLIR: 1e-5). */
  minScale?: number;
}

/** Per-channel symmetric scales max(absmax_c/qmax, minScale) (float32). */
export function channelScales(absmax: Float32Array, opts: ChannelScaleOptions = {}): Float32Array {
  const qmax = opts.qmax ?? 127;
  const minScale = opts.minScale ?? 1e-5;
  const out = new Float32Array(absmax.length);
  for (let c = 0; c < absmax.length; c++) {
    const s = absmax[c]! / qmax;
    out[c] = s > minScale ? s : minScale;
  }
  return out;
}

/** INT8 per-channel scales of a weight: max(max|W_c|/127, 1e-5) along `axis`. */
export function int8WeightScales(w: Tensor, axis = 0, opts: ChannelScaleOptions = {}): Float32Array {
  return channelScales(weightRanges(w, axis).absmax, opts);
}

/** TPU-MLIR's `fsign`: weights are stored signed when any weight is negative or the op has a bias. */
export function weightIsSigned(w: Tensor, hasBias = false): boolean {
  if (hasBias) return true;
  const d = floatData(w);
  for (let i = 0; i < d.length; i++) if (d[i]! < 0) return true;
  return false;
}
