/**
 * Helpers shared by the reference kernels: axis normalization, broadcasting plans, dtype-agnostic
 * element movers (strided copies) and conversions between tensors and float arrays.
 */
import { allocData, bytesPerElement, isBig, type DType, type TensorData } from "../../dtype.js";
import { Tensor, shapeSize, stridesOf } from "../../tensor.js";
import { toHalfBits } from "../../half.js";

export type FArr = Float32Array | Float64Array;
/** Storage reinterpreted by element width: what element movers copy (bits, not values). */
export type Words = Uint8Array | Uint16Array | Uint32Array;
/** Anything a mover can read or write element by element (a Words view or a string array). */
export type Cells = { [i: number]: unknown; readonly length: number };

export const INT64_MAX = 9223372036854775807n;
export const INT64_MIN = -9223372036854775808n;

export function fail(msg: string): never {
  throw new Error(msg);
}

/** Normalize a possibly negative axis into [0, rank). */
export function normAxis(axis: number, rank: number, what = "axis"): number {
  const a = axis < 0 ? axis + rank : axis;
  if (!(a >= 0 && a < rank)) fail(`${what} ${axis} is out of range for rank ${rank}`);
  return a;
}

/** Normalize a list of axes; duplicates are an error. */
export function normAxes(axes: readonly number[], rank: number, what = "axes"): number[] {
  const out = axes.map((a) => normAxis(a, rank, what));
  if (new Set(out).size !== out.length) fail(`${what} [${axes.join(",")}] has duplicates`);
  return out;
}

/** Integer values of an index-like tensor (int32/int64 or any numeric) as plain numbers. */
export function ints(t: Tensor): number[] {
  return Array.from(isBig(t.dtype) ? bigToNumbers(t) : t.toNumbers());
}

/** Numpy broadcasting of several shapes. */
export function broadcastShape(shapes: readonly (readonly number[])[]): number[] {
  let rank = 0;
  for (const s of shapes) rank = Math.max(rank, s.length);
  const out = new Array<number>(rank).fill(1);
  for (const s of shapes) {
    const off = rank - s.length;
    for (let i = 0; i < s.length; i++) {
      const d = s[i]!;
      const o = out[off + i]!;
      if (d === o || d === 1) continue;
      if (o === 1) out[off + i] = d;
      else fail(`shapes ${shapes.map((x) => `[${x.join(",")}]`).join(" and ")} cannot be broadcast together`);
    }
  }
  return out;
}

/**
 * How to walk several broadcast inputs in output order: the output is `rows` runs of `inner`
 * elements; in run r input k starts at `offs[k][r]` and advances by `steps[k]` per element.
 * Dimensions are merged where possible, so same-shape operands give one run with step 1 and a
 * scalar operand has step 0.
 */
export interface Plan {
  shape: number[];
  size: number;
  rows: number;
  inner: number;
  offs: Int32Array[];
  steps: number[];
}

const ZERO_OFFS = new Int32Array(1);

export function broadcastPlan(shapes: readonly (readonly number[])[], outShape?: readonly number[]): Plan {
  const shape = outShape ? [...outShape] : broadcastShape(shapes);
  const size = shapeSize(shape);
  const rank = shape.length;
  const k = shapes.length;
  // same shape everywhere (or scalars): one run
  let simple = true;
  // (an operand as large as the output can only differ from it by size-1 dims: same layout)
  for (const s of shapes) {
    const n = shapeSize(s);
    if (n !== 1 && n !== size) { simple = false; break; }
  }
  if (simple || size === 0) {
    return {
      shape, size, rows: size === 0 ? 0 : 1, inner: size,
      offs: shapes.map(() => ZERO_OFFS),
      steps: shapes.map((s) => (shapeSize(s) === 1 ? 0 : 1)),
    };
  }
  // per-input strides aligned to the output shape (0 where broadcast)
  const strides = shapes.map((s) => {
    const st = new Array<number>(rank).fill(0);
    const own = stridesOf(s);
    const off = rank - s.length;
    for (let i = 0; i < s.length; i++) {
      if (s[i] !== 1) {
        if (s[i] !== shape[off + i]) fail(`shape [${s.join(",")}] cannot be broadcast to [${shape.join(",")}]`);
        st[off + i] = own[i]!;
      }
    }
    return st;
  });
  // merge dims from the innermost out
  const dims: number[] = [];
  const mst: number[][] = [];
  for (let d = rank - 1; d >= 0; d--) {
    const n = shape[d]!;
    if (n === 1) continue;
    const last = dims.length - 1;
    if (last >= 0) {
      let ok = true;
      for (let j = 0; j < k; j++) if (strides[j]![d] !== mst[last]![j]! * dims[last]!) { ok = false; break; }
      if (ok) { dims[last] = dims[last]! * n; continue; }
    }
    dims.push(n);
    mst.push(strides.map((s) => s[d]!));
  }
  const inner = dims[0]!;
  const steps = mst[0]!;
  const rows = size / inner;
  const offs = shapes.map(() => new Int32Array(rows));
  // odometer over the outer merged dims (dims[1..], innermost first)
  const nd = dims.length;
  const ctr = new Array<number>(nd).fill(0);
  const cur = new Array<number>(k).fill(0);
  for (let r = 0; r < rows; r++) {
    for (let j = 0; j < k; j++) offs[j]![r] = cur[j]!;
    for (let d = 1; d < nd; d++) {
      const st = mst[d]!;
      if (++ctr[d]! < dims[d]!) {
        for (let j = 0; j < k; j++) cur[j] = cur[j]! + st[j]!;
        break;
      }
      ctr[d] = 0;
      for (let j = 0; j < k; j++) cur[j] = cur[j]! - st[j]! * (dims[d]! - 1);
    }
  }
  return { shape, size, rows, inner, offs, steps };
}

export function sameShape(a: readonly number[], b: readonly number[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** The storage of `data` seen as raw words of its element width; 8-byte elements are 2 words. */
export function wordsOf(data: TensorData): { w: Cells; k: number } {
  if (Array.isArray(data)) return { w: data, k: 1 };
  const d = data as Exclude<TensorData, string[]>;
  const buf = d.buffer, off = d.byteOffset, n = d.length;
  switch (d.BYTES_PER_ELEMENT) {
    case 1: return { w: new Uint8Array(buf, off, n), k: 1 };
    case 2: return { w: new Uint16Array(buf, off, n), k: 1 };
    case 4: return { w: new Uint32Array(buf, off, n), k: 1 };
    default: return { w: new Uint32Array(buf, off, n * 2), k: 2 };
  }
}

/** Element width in words as wordsOf sees it. */
export function wordWidth(dt: DType): number {
  return bytesPerElement(dt) === 8 ? 2 : 1;
}

/**
 * Copy the strided view (`off`, `strides` in elements, `shape`) of `src` into `dst` contiguously
 * from `dstOff`. Both are word views of the same dtype with `k` words per element.
 */
export function copyStrided(
  src: Cells, off: number, strides: readonly number[], shape: readonly number[],
  dst: Cells, dstOff: number, k: number,
): void {
  const n = shapeSize(shape);
  if (n === 0) return;
  // dims innermost first, size-1 dims dropped, contiguous ones merged
  const dims: number[] = [];
  const sts: number[] = [];
  if (k !== 1) { dims.push(k); sts.push(1); }
  for (let d = shape.length - 1; d >= 0; d--) {
    const len = shape[d]!;
    if (len === 1) continue;
    const st = strides[d]! * k;
    const last = dims.length - 1;
    if (last >= 0 && st === sts[last]! * dims[last]!) { dims[last] = dims[last]! * len; continue; }
    dims.push(len);
    sts.push(st);
  }
  off *= k;
  let o = dstOff * k;
  if (dims.length === 0) { dst[o] = src[off]; return; }
  const inner = dims[0]!;
  const step = sts[0]!;
  const nd = dims.length;
  const rows = (n * k) / inner;
  const ctr = new Array<number>(nd).fill(0);
  let p = off;
  const typed = !Array.isArray(src);
  for (let r = 0; r < rows; r++) {
    if (step === 1 && typed && inner >= 16) {
      (dst as unknown as Uint32Array).set((src as unknown as Uint32Array).subarray(p, p + inner), o);
      o += inner;
    } else if (step === 1) {
      for (let i = 0; i < inner; i++) dst[o++] = src[p + i]!;
    } else {
      for (let i = 0, q = p; i < inner; i++, q += step) dst[o++] = src[q]!;
    }
    for (let d = 1; d < nd; d++) {
      if (++ctr[d]! < dims[d]!) { p += sts[d]!; break; }
      ctr[d] = 0;
      p -= sts[d]! * (dims[d]! - 1);
    }
  }
}

/** A new tensor holding the strided view of `t` (offset and strides in elements). */
export function materialize(t: Tensor, off: number, strides: readonly number[], shape: readonly number[]): Tensor {
  const out = Tensor.zeros(t.dtype, shape);
  const s = wordsOf(t.data);
  copyStrided(s.w, off, strides, shape, wordsOf(out.data).w, 0, s.k);
  return out;
}

/** Broadcast `t` to `shape` (which must be a broadcast of t's shape) as a new tensor. */
export function broadcastTo(t: Tensor, shape: readonly number[]): Tensor {
  if (sameShape(t.shape, shape)) return t;
  const rank = shape.length;
  const own = stridesOf(t.shape);
  const off = rank - t.rank;
  if (off < 0) fail(`cannot broadcast [${t.shape.join(",")}] to [${shape.join(",")}]`);
  const st = new Array<number>(rank).fill(0);
  for (let i = 0; i < t.rank; i++) {
    const d = t.shape[i]!;
    if (d === shape[off + i]) st[off + i] = own[i]!;
    else if (d !== 1) fail(`cannot broadcast [${t.shape.join(",")}] to [${shape.join(",")}]`);
  }
  return materialize(t, 0, st, shape);
}

/** Transpose by `perm` (output dim i is input dim perm[i]). */
export function transpose(t: Tensor, perm: readonly number[]): Tensor {
  const st = stridesOf(t.shape);
  return materialize(t, 0, perm.map((p) => st[p]!), perm.map((p) => t.shape[p]!));
}

/** Values of a float tensor for computing: float32/float64 storage itself, others converted. */
export function floatData(t: Tensor): FArr {
  if (t.dtype === "float32" || t.dtype === "float64") return t.data as FArr;
  if (t.dtype === "float16" || t.dtype === "bfloat16") return Float32Array.from(t.toNumbers());
  return numbers(t);
}

/** Values as float64 numbers (like Tensor.toNumbers, faster for int64). */
export function numbers(t: Tensor): Float64Array {
  return isBig(t.dtype) ? bigToNumbers(t) : t.toNumbers();
}

/** Fresh float array to compute `n` results of dtype `dt` into (float64 unless float32: results are rounded once). */
export function floatOut(dt: DType, n: number): FArr {
  return dt === "float32" ? new Float32Array(n) : new Float64Array(n);
}

/** Wrap computed values as a tensor of `dt` (shares float32/float64 arrays of the same kind). */
export function fromFloats(dt: DType, shape: readonly number[], v: FArr): Tensor {
  if (dt === "float32" && v instanceof Float32Array) return new Tensor(dt, shape, v);
  if (dt === "float64" && v instanceof Float64Array) return new Tensor(dt, shape, v);
  if (dt === "float16" || dt === "bfloat16") return halfFromNumbers(dt, shape, v);
  return Tensor.fromNumbers(dt, shape, v);
}

/** int64/uint64 values as bigints (a view, not a copy). */
export function bigData(t: Tensor): BigInt64Array | BigUint64Array {
  if (!isBig(t.dtype)) fail(`expected an int64 tensor, got ${t.dtype}`);
  return t.data as BigInt64Array;
}

/** Scalar tensor of dtype holding `v`. */
export function scalarOf(dt: DType, v: number | bigint): Tensor {
  const t = Tensor.zeros(dt, []);
  if (isBig(dt)) (t.data as BigInt64Array)[0] = BigInt(v);
  else t.setFromNumbers([Number(v)]);
  return t;
}

/** An int64 tensor from numbers. */
export function i64(shape: readonly number[], values: ArrayLike<number>): Tensor {
  const d = new BigInt64Array(values.length);
  for (let i = 0; i < values.length; i++) d[i] = BigInt(values[i]!);
  return new Tensor("int64", shape, d);
}

/** Allocate an empty tensor of dtype/shape (zeros). */
export function alloc(dt: DType, shape: readonly number[]): Tensor {
  return new Tensor(dt, shape, allocData(dt, shapeSize(shape)));
}

/** Split `shape` around `axis`: [outer, len, inner]. */
export function around(shape: readonly number[], axis: number): [number, number, number] {
  let outer = 1, inner = 1;
  for (let i = 0; i < axis; i++) outer *= shape[i]!;
  for (let i = axis + 1; i < shape.length; i++) inner *= shape[i]!;
  return [outer, shape[axis] ?? 1, inner];
}

/** The i-th input, or an error naming the op when it is missing. */
export function need(inputs: readonly (Tensor | undefined)[], i: number, op: string): Tensor {
  const t = inputs[i];
  if (!t) fail(`${op}: input ${i} is required`);
  return t;
}

/** Copy `len` elements (`k` words each) from src[so..] to dst[dOff..] (element offsets). */
export function copyRun(src: Cells, so: number, dst: Cells, dOff: number, len: number, k: number): void {
  const n = len * k;
  let s = so * k, d = dOff * k;
  if (n >= 16 && !Array.isArray(src)) {
    (dst as unknown as Uint32Array).set((src as unknown as Uint32Array).subarray(s, s + n), d);
    return;
  }
  for (let i = 0; i < n; i++) dst[d++] = src[s++]!;
}

/** Set `len` elements of dst from dOff to the single element `v` (its own k words). */
export function fillRun(dst: Cells, dOff: number, len: number, v: Cells, k: number): void {
  if (k === 1) {
    const x = v[0]!;
    if (!Array.isArray(dst)) (dst as unknown as Uint32Array).fill(x as number, dOff, dOff + len);
    else for (let i = 0; i < len; i++) dst[dOff + i] = x;
    return;
  }
  let d = dOff * k;
  for (let i = 0; i < len; i++) for (let j = 0; j < k; j++) dst[d++] = v[j]!;
}

/** Strides (row-major, in elements) of `shape` aligned to the broadcast `outShape`: 0 where broadcast. */
export function broadcastStrides(shape: readonly number[], outShape: readonly number[]): number[] {
  const own = stridesOf(shape);
  const off = outShape.length - shape.length;
  const st = new Array<number>(outShape.length).fill(0);
  for (let i = 0; i < shape.length; i++) if (shape[i] !== 1) st[off + i] = own[i]!;
  return st;
}

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
const TWO32 = 4294967296;

/**
 * Values of an int64/uint64 tensor as float64 numbers without creating bigints: hi * 2^32 + lo
 * is one correctly rounded addition, so values beyond 2^53 round to nearest like Number(bigint).
 */
export function bigToNumbers(t: Tensor): Float64Array {
  const d = t.data as BigInt64Array;
  const n = d.length;
  const out = new Float64Array(n);
  if (!LITTLE_ENDIAN) {
    for (let i = 0; i < n; i++) out[i] = Number(d[i]!);
    return out;
  }
  const w = new Int32Array(d.buffer, d.byteOffset, n * 2);
  if (t.dtype === "uint64") for (let i = 0; i < n; i++) out[i] = (w[2 * i + 1]! >>> 0) * TWO32 + (w[2 * i]! >>> 0);
  else for (let i = 0; i < n; i++) out[i] = w[2 * i + 1]! * TWO32 + (w[2 * i]! >>> 0);
  return out;
}

/**
 * Store integer-valued numbers into int64/uint64 storage (two's complement wrap like a BigInt64Array
 * store); values outside +-2^53 or non-integers go through BigInt. NaN and infinities store 0.
 */
export function numbersToBig(v: ArrayLike<number>, dst: BigInt64Array | BigUint64Array): void {
  const n = v.length;
  const w = LITTLE_ENDIAN ? new Int32Array(dst.buffer, dst.byteOffset, n * 2) : null;
  for (let i = 0; i < n; i++) {
    const x = v[i]!;
    if (w && x >= -9007199254740991 && x <= 9007199254740991 && Math.floor(x) === x) {
      const hi = Math.floor(x / TWO32);
      w[2 * i] = x - hi * TWO32;
      w[2 * i + 1] = hi;
    } else {
      dst[i] = Number.isFinite(x) ? BigInt(Math.trunc(x)) : 0n;
    }
  }
}

/** The low 32 bits of each int64/uint64 element as a signed 32-bit number (what narrowing keeps). */
export function bigLow32(t: Tensor): Float64Array {
  const d = t.data as BigInt64Array;
  const n = d.length;
  const out = new Float64Array(n);
  if (!LITTLE_ENDIAN) {
    for (let i = 0; i < n; i++) out[i] = Number(BigInt.asIntN(32, d[i]!));
    return out;
  }
  const w = new Int32Array(d.buffer, d.byteOffset, n * 2);
  for (let i = 0; i < n; i++) out[i] = w[2 * i]!;
  return out;
}

/** A float16/bfloat16 tensor from float64 values, each rounded once. */
export function halfFromNumbers(dt: "float16" | "bfloat16", shape: readonly number[], v: ArrayLike<number>): Tensor {
  const out = new Uint16Array(v.length);
  const bf = dt === "bfloat16";
  for (let i = 0; i < v.length; i++) out[i] = toHalfBits(v[i]!, bf);
  return new Tensor(dt, shape, out);
}
