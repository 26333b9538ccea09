import type { DType } from "../dtype.js";
import type { Dim } from "../graph.js";
import { symInts } from "./symbolic.js";
import type { InferContext, OpSchema, TypeShape } from "./types.js";

/** Building blocks shared by the schema tables. */

export const ANY = Infinity;

export function schema(
  opType: string,
  inputs: [number, number],
  outputs: [number, number],
  infer: OpSchema["infer"],
  extra: Partial<Omit<OpSchema, "opType" | "inputs" | "outputs" | "infer">> = {},
): OpSchema {
  return { opType, domain: extra.domain ?? "", inputs, outputs, infer, ...extra };
}

/** A TypeShape with fresh arrays and no undefined fields. */
export function ts(dtype: DType | undefined, shape: readonly Dim[] | undefined): TypeShape {
  const t: TypeShape = {};
  if (dtype) t.dtype = dtype;
  if (shape) t.shape = [...shape];
  return t;
}

export function inShape(ctx: InferContext, i: number): Dim[] | undefined {
  return ctx.inputs[i]?.shape;
}

export function inType(ctx: InferContext, i: number): DType | undefined {
  return ctx.inputs[i]?.dtype;
}

/** Fully known integer values of input i (undefined when absent or not constant). */
export function constInts(ctx: InferContext, i: number): number[] | undefined {
  if (!ctx.has(i)) return undefined;
  return symInts(ctx.partial(i));
}

/** Values of input i as dims (numbers, symbols or null), e.g. a shape computed from Shape. */
export function dimValues(ctx: InferContext, i: number): Dim[] | undefined {
  if (!ctx.has(i)) return undefined;
  const p = ctx.partial(i);
  if (p) return p.values.map((v) => (typeof v === "number" ? Math.trunc(v) : v));
  // length known from the input's shape: a vector of unknown entries
  const s = ctx.inputs[i]?.shape;
  if (s && s.length === 1 && typeof s[0] === "number") return new Array<Dim>(s[0]).fill(null);
  return undefined;
}

/** Same type and shape as input i. */
export function like(ctx: InferContext, i = 0, dtype?: DType): TypeShape {
  return ts(dtype ?? inType(ctx, i), inShape(ctx, i));
}

/** Product of dims for MAC counting: symbolic dims count as 1 (per unit), unknown gives NaN. */
export function macProd(ds: readonly Dim[] | undefined): number {
  if (!ds) return NaN;
  let n = 1;
  for (const d of ds) {
    if (typeof d === "number") n *= d;
    else if (d === null) return NaN;
  }
  return n;
}

export function macDim(d: Dim | undefined): number {
  return typeof d === "number" ? d : typeof d === "string" ? 1 : NaN;
}

/** Shape's [start, end) over a rank-`r` input: opset ≥ 15 attributes, negatives wrap, clamped. */
export function shapeRange(ctx: InferContext, r: number): [number, number] {
  let start = ctx.opset >= 15 ? ctx.node.int("start", 0) : 0;
  let end = ctx.opset >= 15 ? ctx.node.int("end", r) : r;
  if (start < 0) start += r;
  if (end < 0) end += r;
  start = Math.min(Math.max(start, 0), r);
  end = Math.min(Math.max(end, 0), r);
  return [start, Math.max(start, end)];
}
