import type { Dim } from "../graph.js";

/** Shape helpers working on dims that may be symbolic (string) or unknown (null). */

export function isNum(d: Dim | undefined): d is number {
  return typeof d === "number";
}

/** True when every dim of `s` is a concrete number. */
export function allKnown(s: readonly Dim[] | undefined): s is number[] {
  return !!s && s.every((d) => typeof d === "number");
}

/** An error in the graph found by inference (bad attribute, incompatible shapes). */
export class ShapeInferenceError extends Error {
  override name = "ShapeInferenceError";
}

export function fail(msg: string): never {
  throw new ShapeInferenceError(msg);
}

/** Broadcast two dims numpy-style. */
export function broadcastDim(a: Dim, b: Dim): Dim {
  if (a === 1) return b;
  if (b === 1) return a;
  if (typeof a === "number" && typeof b === "number") {
    if (a !== b) fail(`cannot broadcast dims ${a} and ${b}`);
    return a;
  }
  if (typeof a === "number") return a;
  if (typeof b === "number") return b;
  if (a === b) return a;
  return null;
}

/** Numpy broadcast of several shapes; undefined when any rank is unknown. */
export function broadcastShapes(shapes: (readonly Dim[] | undefined)[]): Dim[] | undefined {
  if (shapes.some((s) => !s)) return undefined;
  const ss = shapes as (readonly Dim[])[];
  const rank = Math.max(0, ...ss.map((s) => s.length));
  const out: Dim[] = new Array<Dim>(rank).fill(1);
  for (const s of ss) {
    const off = rank - s.length;
    for (let i = 0; i < s.length; i++) out[off + i] = broadcastDim(out[off + i]!, s[i]!);
  }
  return out;
}

/** Product of dims: a number when all known; a symbol when exactly one symbol times 1; else null. */
export function dimProd(ds: readonly Dim[]): Dim {
  let n = 1;
  let sym: string | null = null;
  let syms = 0;
  for (const d of ds) {
    if (typeof d === "number") n *= d;
    else if (typeof d === "string") {
      syms++;
      sym = d;
    } else return n === 0 ? 0 : null;
  }
  if (n === 0) return 0;
  if (syms === 0) return n;
  if (syms === 1 && n === 1) return sym;
  return null;
}

export function dimMul(a: Dim, b: Dim): Dim {
  if (typeof a === "number" && typeof b === "number") return a * b;
  if (a === 1) return b;
  if (b === 1) return a;
  if (a === 0 || b === 0) return 0;
  return null;
}

export function dimAdd(a: Dim, b: Dim): Dim {
  if (typeof a === "number" && typeof b === "number") return a + b;
  if (a === 0) return b;
  if (b === 0) return a;
  return null;
}

/** Normalize a possibly negative axis against `rank`. */
export function normAxis(axis: number, rank: number, what = "axis"): number {
  const a = axis < 0 ? axis + rank : axis;
  if (a < 0 || a >= rank) fail(`${what} ${axis} is out of range for rank ${rank}`);
  return a;
}

/** Merge two views of the same dim: concrete numbers first, then symbols. */
export function mergeDim(a: Dim | undefined, b: Dim | undefined): Dim {
  if (typeof a === "number") return a;
  if (typeof b === "number") return b;
  if (typeof a === "string") return a;
  if (typeof b === "string") return b;
  return null;
}

/** Merge two shapes of the same value; `a` (e.g. freshly inferred) wins on rank disagreement. */
export function mergeShape(a: readonly Dim[] | undefined, b: readonly Dim[] | undefined): Dim[] | undefined {
  if (!a) return b ? [...b] : undefined;
  if (!b || b.length !== a.length) return [...a];
  return a.map((d, i) => mergeDim(d, b[i]));
}

export interface SpatialParams {
  kernel: number[];
  strides: number[];
  dilations: number[];
  /** [begin..., end...] as in ONNX `pads`. */
  pads: number[];
  autoPad: string;
  ceilMode: boolean;
}

/**
 * Output spatial size of a convolution/pooling window along one axis (ONNX rules; with ceil_mode a
 * last window that would start inside the end padding is dropped, as PyTorch and ONNX Runtime do).
 */
export function windowOut(inDim: Dim, k: number, s: number, d: number, padBegin: number, padEnd: number, autoPad: string, ceil: boolean): Dim {
  if (typeof inDim !== "number") return null;
  const ek = (k - 1) * d + 1;
  if (autoPad === "SAME_UPPER" || autoPad === "SAME_LOWER") return Math.ceil(inDim / s);
  if (autoPad === "VALID") return Math.max(0, Math.floor((inDim - ek) / s) + 1);
  const span = inDim + padBegin + padEnd - ek;
  if (span < 0) fail(`window of ${ek} does not fit input ${inDim} with pads ${padBegin}+${padEnd}`);
  if (!ceil) return Math.floor(span / s) + 1;
  let out = Math.ceil(span / s) + 1;
  if ((out - 1) * s >= inDim + padBegin) out--;
  return out;
}

export function spatialOut(inDims: readonly Dim[], p: SpatialParams): Dim[] {
  const r = inDims.length;
  return inDims.map((x, i) => windowOut(x, p.kernel[i]!, p.strides[i] ?? 1, p.dilations[i] ?? 1, p.pads[i] ?? 0, p.pads[i + r] ?? 0, p.autoPad, p.ceilMode));
}

/** Symbolic size bookkeeping for Reshape's -1: product of dims as a number times a multiset of symbols. */
export function symbolicProduct(ds: readonly Dim[]): { num: number; syms: string[] } | undefined {
  let num = 1;
  const syms: string[] = [];
  for (const d of ds) {
    if (typeof d === "number") num *= d;
    else if (typeof d === "string") syms.push(d);
    else return undefined;
  }
  return { num, syms: syms.sort() };
}

/** total / part for symbolic products; a dim or null when it cannot be told. */
export function symbolicQuotient(total: readonly Dim[], part: readonly Dim[]): Dim {
  const t = symbolicProduct(total);
  const p = symbolicProduct(part);
  if (!t || !p) return null;
  const rest = [...t.syms];
  for (const s of p.syms) {
    const i = rest.indexOf(s);
    if (i < 0) return null;
    rest.splice(i, 1);
  }
  if (p.num === 0) return null;
  const q = t.num / p.num;
  if (rest.length === 0) return Number.isInteger(q) ? q : null;
  if (rest.length === 1 && q === 1) return rest[0]!;
  return null;
}
