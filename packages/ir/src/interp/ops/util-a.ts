/**
 * Shared helpers of the conv / pool / matmul / norm / resize / rnn kernels: float views of
 * tensors, a packed, blocked GEMM, broadcasting and the window arithmetic of conv and pooling.
 */
import type { DType } from "../../dtype.js";
import type { Node } from "../../graph.js";
import { Tensor, shapeSize, stridesOf } from "../../tensor.js";

/** The float storage kernels compute in: float32 data stays float32, everything else is float64. */
export type FArr = Float32Array | Float64Array;

/** Error raised for inputs a kernel cannot accept (the interpreter adds the node's label). */
export function fail(node: Node, msg: string): never {
  throw new Error(`${node.opType}: ${msg}`);
}

/** Required input `i` of a node. */
export function need(inputs: (Tensor | undefined)[], i: number, node: Node, what: string): Tensor {
  const t = inputs[i];
  if (!t) fail(node, `input ${i} (${what}) is required`);
  return t;
}

/** The values of a float (or integer) tensor as a float array, without copying float32/float64 data. */
export function floats(t: Tensor): FArr {
  if (t.dtype === "float32") return t.data as Float32Array;
  if (t.dtype === "float64") return t.data as Float64Array;
  return t.toNumbers();
}

/** A zeroed compute buffer for results of dtype `dt`: Float32Array for float32, else Float64Array. */
export function allocFor(dt: DType, n: number): FArr {
  return dt === "float32" ? new Float32Array(n) : new Float64Array(n);
}

/** A tensor of `dtype` holding `values` (shared when the storage already fits, else converted). */
export function tensorFrom(dtype: DType, shape: readonly number[], values: FArr): Tensor {
  if (dtype === "float32") {
    return new Tensor(dtype, shape, values instanceof Float32Array ? values : Float32Array.from(values));
  }
  if (dtype === "float64") {
    return new Tensor(dtype, shape, values instanceof Float64Array ? values : Float64Array.from(values));
  }
  return Tensor.fromNumbers(dtype, shape, values);
}

/** Small integer vector (shape, sizes, axes) from an int tensor. */
export function ints(t: Tensor | undefined): number[] {
  return t ? Array.from(t.toNumbers()) : [];
}

export function normAxis(axis: number, rank: number, node: Node): number {
  const a = axis < 0 ? axis + rank : axis;
  if (a < 0 || a >= rank) fail(node, `axis ${axis} is out of range for rank ${rank}`);
  return a;
}

/** numpy broadcast of two shapes. */
export function broadcastShapes(a: readonly number[], b: readonly number[], node: Node): number[] {
  const r = Math.max(a.length, b.length);
  const out = new Array<number>(r);
  for (let i = 0; i < r; i++) {
    const x = a[a.length - r + i] ?? 1;
    const y = b[b.length - r + i] ?? 1;
    if (x !== y && x !== 1 && y !== 1) fail(node, `shapes [${a}] and [${b}] do not broadcast`);
    out[i] = x === 1 ? y : x;
  }
  return out;
}

/**
 * Element offsets into a tensor of shape `from` for every element of `to` (row-major), where `from`
 * broadcasts to `to` (numpy rules, aligned at the right).
 */
export function broadcastOffsets(from: readonly number[], to: readonly number[], node: Node): Int32Array {
  const r = to.length;
  if (from.length > r) fail(node, `shape [${from}] does not broadcast to [${to}]`);
  const fs = stridesOf(from);
  const st = new Array<number>(r).fill(0);
  for (let i = 0; i < from.length; i++) {
    const j = r - from.length + i;
    const d = from[i]!;
    if (d !== 1 && d !== to[j]) fail(node, `shape [${from}] does not broadcast to [${to}]`);
    st[j] = d === 1 ? 0 : fs[i]!;
  }
  const n = shapeSize(to);
  const out = new Int32Array(n);
  if (n === 0) return out;
  const idx = new Array<number>(r).fill(0);
  let off = 0;
  for (let k = 0; k < n; k++) {
    out[k] = off;
    for (let d = r - 1; d >= 0; d--) {
      idx[d]++;
      off += st[d]!;
      if (idx[d]! < to[d]!) break;
      off -= st[d]! * to[d]!;
      idx[d] = 0;
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// GEMM: C[i, j] += sum_k A[i, k] * B[k, j]. Operands are packed into float64 panels (MR rows of A,
// NR columns of B, k-contiguous) so the 4x4 register-tile micro kernel reads two sequential
// streams, and it accumulates in float64. Blocked over k (KC) and over columns (NC) for cache.
// ---------------------------------------------------------------------------------------------

const MR = 4;
const NR = 4;
const NC_BYTES = 256 * 1024;

/** Packs rows k0..k1 and columns n0..n1 of B into `dst` as NR-column panels, k-major inside. */
export type PackB = (k0: number, k1: number, n0: number, n1: number, dst: Float64Array) => void;

let scratchA = new Float64Array(0);
let scratchB = new Float64Array(0);
function scratch(which: 0 | 1, n: number): Float64Array {
  if (which === 0) {
    if (scratchA.length < n) scratchA = new Float64Array(Math.max(n, scratchA.length * 2));
    return scratchA;
  }
  if (scratchB.length < n) scratchB = new Float64Array(Math.max(n, scratchB.length * 2));
  return scratchB;
}

/** Pack rows 0..M of A (element (i,k) at aOff + i*rs + k*cs) for k0..k1 into MR-row panels. */
function packA(A: FArr, aOff: number, rs: number, cs: number, M: number, k0: number, k1: number, dst: Float64Array): void {
  const kc = k1 - k0;
  for (let m0 = 0; m0 < M; m0 += MR) {
    const base = m0 * kc;
    const rows = Math.min(MR, M - m0);
    for (let i = 0; i < MR; i++) {
      if (i >= rows) {
        for (let k = 0; k < kc; k++) dst[base + k * MR + i] = 0;
        continue;
      }
      let src = aOff + (m0 + i) * rs + k0 * cs;
      for (let k = 0, d = base + i; k < kc; k++, d += MR, src += cs) dst[d] = A[src]!;
    }
  }
}

/** A PackB reading a strided matrix: element (k, j) at off + k*rs + j*cs. */
export function stridedPackB(B: FArr, off: number, rs: number, cs: number): PackB {
  return (k0, k1, n0, n1, dst) => {
    const kc = k1 - k0;
    for (let j0 = n0; j0 < n1; j0 += NR) {
      const base = (j0 - n0) * kc;
      const cols = Math.min(NR, n1 - j0);
      for (let j = 0; j < NR; j++) {
        if (j >= cols) {
          for (let k = 0; k < kc; k++) dst[base + k * NR + j] = 0;
          continue;
        }
        let src = off + k0 * rs + (j0 + j) * cs;
        for (let k = 0, d = base + j; k < kc; k++, d += NR, src += rs) dst[d] = B[src]!;
      }
    }
  };
}

/**
 * C[cOff + i*ldc + j] += sum_k A(i,k) * B(k,j) for i < M, j < N, k < K, where A(i,k) is
 * A[aOff + i*aRs + k*aCs] and B is read through `packB` (see stridedPackB).
 */
export function gemm(
  M: number, N: number, K: number,
  A: FArr, aOff: number, aRs: number, aCs: number,
  packB: PackB,
  C: FArr, cOff: number, ldc: number,
): void {
  if (M <= 0 || N <= 0 || K <= 0) return;
  // keep every index an int32 for the optimizer (a double here would slow every access below)
  aOff |= 0; aRs |= 0; aCs |= 0; cOff |= 0; ldc |= 0;
  const nk = Math.ceil(K / 384);
  const KC = Math.ceil(K / nk);
  let NC = Math.max(NR, Math.floor(NC_BYTES / 8 / KC / NR) * NR);
  if (NC > N) NC = Math.ceil(N / NR) * NR;
  const mPanels = Math.ceil(M / MR);
  const ap = scratch(0, mPanels * MR * KC);
  const bp = scratch(1, NC * KC);
  for (let k0 = 0; k0 < K; k0 += KC) {
    const k1 = Math.min(K, k0 + KC);
    const kc = k1 - k0;
    packA(A, aOff, aRs, aCs, M, k0, k1, ap);
    for (let n0 = 0; n0 < N; n0 += NC) {
      const n1 = Math.min(N, n0 + NC);
      packB(k0, k1, n0, n1, bp);
      const nPanels = Math.ceil((n1 - n0) / NR);
      for (let mp = 0; mp < mPanels; mp++) {
        const m = mp * MR;
        for (let np = 0; np < nPanels; np++) {
          micro(ap, mp * MR * kc, bp, np * NR * kc, kc, C, cOff + m * ldc + n0 + np * NR, ldc, Math.min(MR, M - m), Math.min(NR, n1 - n0 - np * NR));
        }
      }
    }
  }
}

/**
 * C += A * B with B already packed as NR-column panels over all of K (panel p holds columns
 * 4p..4p+3, k-major: element (k, j) at bOff + (j >> 2) * 4K + 4k + (j & 3)). For moderate K.
 */
export function gemmPrepackedB(
  M: number, N: number, K: number,
  A: FArr, aOff: number, aRs: number, aCs: number,
  Bp: Float64Array, bOff: number,
  C: FArr, cOff: number, ldc: number,
): void {
  if (M <= 0 || N <= 0 || K <= 0) return;
  aOff |= 0; aRs |= 0; aCs |= 0; bOff |= 0; cOff |= 0; ldc |= 0;
  const mPanels = Math.ceil(M / MR);
  const ap = scratch(0, mPanels * MR * K);
  packA(A, aOff, aRs, aCs, M, 0, K, ap);
  const nPanels = Math.ceil(N / NR);
  for (let mp = 0; mp < mPanels; mp++) {
    const m = mp * MR;
    const rows = Math.min(MR, M - m);
    for (let np = 0; np < nPanels; np++) {
      micro(ap, mp * MR * K, Bp, bOff + np * NR * K, K, C, cOff + m * ldc + np * NR, ldc, rows, Math.min(NR, N - np * NR));
    }
  }
}

/** 4x4 register tile over kc steps; adds the tile into C (only `rows` x `cols` of it at edges). */
function micro(ap: Float64Array, a: number, bp: Float64Array, b: number, kc: number, C: FArr, c: number, ldc: number, rows: number, cols: number): void {
  a |= 0; b |= 0; c |= 0; kc |= 0;
  let s00 = 0, s01 = 0, s02 = 0, s03 = 0;
  let s10 = 0, s11 = 0, s12 = 0, s13 = 0;
  let s20 = 0, s21 = 0, s22 = 0, s23 = 0;
  let s30 = 0, s31 = 0, s32 = 0, s33 = 0;
  const end = a + kc * MR;
  for (; a < end; a += MR, b += NR) {
    const x0 = bp[b]!, x1 = bp[b + 1]!, x2 = bp[b + 2]!, x3 = bp[b + 3]!;
    const w0 = ap[a]!, w1 = ap[a + 1]!, w2 = ap[a + 2]!, w3 = ap[a + 3]!;
    s00 += w0 * x0; s01 += w0 * x1; s02 += w0 * x2; s03 += w0 * x3;
    s10 += w1 * x0; s11 += w1 * x1; s12 += w1 * x2; s13 += w1 * x3;
    s20 += w2 * x0; s21 += w2 * x1; s22 += w2 * x2; s23 += w2 * x3;
    s30 += w3 * x0; s31 += w3 * x1; s32 += w3 * x2; s33 += w3 * x3;
  }
  if (rows === MR && cols === NR) {
    C[c] += s00; C[c + 1] += s01; C[c + 2] += s02; C[c + 3] += s03;
    c += ldc;
    C[c] += s10; C[c + 1] += s11; C[c + 2] += s12; C[c + 3] += s13;
    c += ldc;
    C[c] += s20; C[c + 1] += s21; C[c + 2] += s22; C[c + 3] += s23;
    c += ldc;
    C[c] += s30; C[c + 1] += s31; C[c + 2] += s32; C[c + 3] += s33;
    return;
  }
  const t = tile;
  t[0] = s00; t[1] = s01; t[2] = s02; t[3] = s03;
  t[4] = s10; t[5] = s11; t[6] = s12; t[7] = s13;
  t[8] = s20; t[9] = s21; t[10] = s22; t[11] = s23;
  t[12] = s30; t[13] = s31; t[14] = s32; t[15] = s33;
  for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) C[c + i * ldc + j] += t[i * NR + j]!;
}
const tile = new Float64Array(MR * NR);

/** Columns per packed B panel (see PackB). */
export const GEMM_NR = NR;

// ---------------------------------------------------------------------------------------------
// Windows of conv / pooling.
// ---------------------------------------------------------------------------------------------

export interface Window {
  kernel: number[];
  strides: number[];
  dilations: number[];
  /** Padding at the start of each spatial axis. */
  padB: number[];
  /** Padding at the end of each spatial axis. */
  padE: number[];
  out: number[];
}

/**
 * Output size and padding of a sliding window (Conv, pooling) over `inSp` spatial sizes, from the
 * node's auto_pad / pads / strides / dilations attributes. `ceil` is pooling's ceil_mode.
 */
export function slidingWindow(node: Node, inSp: readonly number[], kernel: number[], ceil = false): Window {
  const n = inSp.length;
  const strides = node.ints("strides", []);
  const dil = node.ints("dilations", []);
  const s = Array.from({ length: n }, (_, i) => strides[i] ?? 1);
  const d = Array.from({ length: n }, (_, i) => dil[i] ?? 1);
  const autoPad = node.str("auto_pad", "NOTSET");
  const padB = new Array<number>(n).fill(0);
  const padE = new Array<number>(n).fill(0);
  const out = new Array<number>(n);
  for (let i = 0; i < n; i++) {
    if (kernel[i] === undefined || kernel[i]! < 1) fail(node, `bad kernel shape [${kernel}]`);
    if (s[i]! < 1 || d[i]! < 1) fail(node, `strides and dilations must be positive`);
  }
  if (autoPad === "SAME_UPPER" || autoPad === "SAME_LOWER") {
    for (let i = 0; i < n; i++) {
      const ek = (kernel[i]! - 1) * d[i]! + 1;
      const o = Math.ceil(inSp[i]! / s[i]!);
      const total = Math.max(0, (o - 1) * s[i]! + ek - inSp[i]!);
      const small = Math.floor(total / 2);
      padB[i] = autoPad === "SAME_UPPER" ? small : total - small;
      padE[i] = total - padB[i]!;
      out[i] = o;
    }
  } else {
    if (autoPad !== "NOTSET" && autoPad !== "VALID") fail(node, `unknown auto_pad '${autoPad}'`);
    const pads = autoPad === "VALID" ? [] : node.ints("pads", []);
    for (let i = 0; i < n; i++) {
      padB[i] = pads[i] ?? 0;
      padE[i] = pads[i + n] ?? 0;
      const ek = (kernel[i]! - 1) * d[i]! + 1;
      const span = inSp[i]! + padB[i]! + padE[i]! - ek;
      if (span < 0) fail(node, `window of size ${ek} does not fit input size ${inSp[i]} with pads`);
      let o = (ceil ? Math.ceil(span / s[i]!) : Math.floor(span / s[i]!)) + 1;
      // a window may not start in the end padding (ceil_mode)
      if (ceil && (o - 1) * s[i]! >= inSp[i]! + padB[i]!) o--;
      out[i] = o;
    }
  }
  return { kernel, strides: s, dilations: d, padB, padE, out };
}

/** First and one-past-last output positions whose input index o*s - p + off lies in [0, size). */
export function validRange(off: number, s: number, p: number, size: number, outSize: number): [number, number] {
  // o*s - p + off >= 0  <=>  o >= ceil((p - off) / s)
  let lo = Math.ceil((p - off) / s) | 0;
  if (lo < 0) lo = 0;
  // o*s - p + off <= size - 1  <=>  o <= floor((size - 1 + p - off) / s)
  let hi = (Math.floor((size - 1 + p - off) / s) + 1) | 0;
  if (hi > outSize) hi = outSize;
  if (hi < lo) hi = lo;
  return [lo, hi];
}
