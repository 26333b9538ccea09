import { dtypeFromOnnx, type DType } from "../dtype.js";
import type { Dim, Node } from "../graph.js";
import { Tensor } from "../tensor.js";
import { broadcastShapes, dimAdd, dimMul, dimProd, fail, normAxis, symbolicQuotient } from "./dims.js";
import { constInts, dimValues, inShape, inType, like, schema, shapeRange, ts } from "./helpers.js";
import { axesArg, sliceArgs, sliceParams } from "./symbolic.js";
import type { InferContext, OpSchema, TypeShape } from "./types.js";

/** Tensor manipulation ops: shape plumbing, gathers/scatters, constants, resizing. */

/** The tensor a Constant node holds (any of its value* attributes). */
export function constantTensor(n: Node): Tensor | undefined {
  const t = n.tensor("value");
  if (t) return t;
  const vf = n.attrs.get("value_float");
  if (vf) return Tensor.f32([], [n.float("value_float", 0)]);
  const vfs = n.floats("value_floats");
  if (vfs) return Tensor.f32([vfs.length], vfs);
  if (n.has("value_int")) return Tensor.i64([], [n.int("value_int", 0)]);
  const vis = n.ints("value_ints");
  if (vis) return Tensor.i64([vis.length], vis);
  const vs = n.str("value_string");
  if (vs !== undefined) return new Tensor("string", [], [vs]);
  const vss = n.strs("value_strings");
  if (vss) return new Tensor("string", [vss.length], [...vss]);
  return undefined;
}

function constantInfer(ctx: InferContext): TypeShape[] {
  const t = constantTensor(ctx.node);
  if (t) return [ts(t.dtype, [...t.shape])];
  const sp = ctx.node.attrs.get("sparse_value");
  if (sp && sp.type === "tensor") return [ts(sp.value.dtype, [...sp.value.shape])];
  return [{}];
}

function shapeInfer(ctx: InferContext): TypeShape[] {
  const s = inShape(ctx, 0);
  if (!s) return [ts("int64", [null])];
  const [start, end] = shapeRange(ctx, s.length);
  return [ts("int64", [end - start])];
}

export function reshapeShape(input: Dim[] | undefined, target: Dim[], allowzero: boolean): Dim[] {
  const out = target.map((d, i) => {
    if (d === 0 && !allowzero) {
      if (!input) return null;
      if (i >= input.length) fail(`Reshape: 0 at position ${i} but input has rank ${input.length}`);
      return input[i]!;
    }
    return d;
  });
  const neg = out.findIndex((d) => d === -1);
  if (neg >= 0) {
    if (out.some((d, i) => d === -1 && i !== neg)) fail("Reshape: more than one -1 in shape");
    const rest = out.filter((_, i) => i !== neg);
    out[neg] = input ? symbolicQuotient(input, rest) : null;
  }
  return out;
}

function reshapeInfer(ctx: InferContext): TypeShape[] {
  const x = inShape(ctx, 0);
  const dt = inType(ctx, 0);
  const target = dimValues(ctx, 1);
  if (!target) return [ts(dt, undefined)];
  return [ts(dt, reshapeShape(x, target, ctx.node.int("allowzero", 0) !== 0))];
}

function flattenInfer(ctx: InferContext): TypeShape[] {
  const x = inShape(ctx, 0);
  if (!x) return [ts(inType(ctx, 0), [null, null])];
  let axis = ctx.node.int("axis", 1);
  if (axis < 0) axis += x.length;
  if (axis < 0 || axis > x.length) fail(`Flatten axis ${axis} out of range for rank ${x.length}`);
  return [ts(inType(ctx, 0), [dimProd(x.slice(0, axis)), dimProd(x.slice(axis))])];
}

function transposeInfer(ctx: InferContext): TypeShape[] {
  const x = inShape(ctx, 0);
  if (!x) return [ts(inType(ctx, 0), undefined)];
  const perm = ctx.node.ints("perm") ?? x.map((_, i) => x.length - 1 - i);
  if (perm.length !== x.length) fail(`Transpose perm [${perm}] does not match rank ${x.length}`);
  return [ts(inType(ctx, 0), perm.map((p) => x[normAxis(p, x.length, "perm entry")]!))];
}

function squeezeInfer(ctx: InferContext): TypeShape[] {
  const x = inShape(ctx, 0);
  const dt = inType(ctx, 0);
  const axes = axesArg(ctx, 13);
  if (!x || axes === null) return [ts(dt, undefined)];
  if (!axes || axes.length === 0) {
    if (x.some((d) => typeof d !== "number")) return [ts(dt, undefined)];
    return [ts(dt, x.filter((d) => d !== 1))];
  }
  const ax = axes.map((a) => normAxis(a, x.length));
  for (const a of ax) if (typeof x[a] === "number" && x[a] !== 1) fail(`Squeeze axis ${a} has size ${x[a]}, not 1`);
  return [ts(dt, x.filter((_, i) => !ax.includes(i)))];
}

function unsqueezeInfer(ctx: InferContext): TypeShape[] {
  const x = inShape(ctx, 0);
  const dt = inType(ctx, 0);
  const axes = axesArg(ctx, 13);
  if (!x || !axes) return [ts(dt, undefined)];
  const r = x.length + axes.length;
  const ax = axes.map((a) => normAxis(a, r));
  const out: Dim[] = [];
  let j = 0;
  for (let i = 0; i < r; i++) out.push(ax.includes(i) ? 1 : x[j++]!);
  return [ts(dt, out)];
}

function concatInfer(ctx: InferContext): TypeShape[] {
  const shapes: Dim[][] = [];
  let dt: DType | undefined;
  let rank = -1;
  let unknown = false;
  for (let i = 0; i < ctx.node.inputs.length; i++) {
    if (!ctx.has(i)) continue;
    dt ??= inType(ctx, i);
    const s = inShape(ctx, i);
    if (!s) unknown = true;
    else {
      shapes.push(s);
      rank = s.length;
    }
  }
  if (rank < 0) return [ts(dt, undefined)];
  const axis = normAxis(ctx.node.int("axis", 0), rank);
  const out: Dim[] = new Array<Dim>(rank).fill(null);
  for (let d = 0; d < rank; d++) {
    if (d === axis) {
      out[d] = unknown ? null : shapes.reduce<Dim>((acc, s) => dimAdd(acc, s[d]!), 0);
      continue;
    }
    for (const s of shapes) {
      const v = s[d]!;
      if (typeof v === "number") {
        out[d] = v;
        break;
      }
      if (typeof v === "string" && out[d] === null) out[d] = v;
    }
  }
  return [ts(dt, out)];
}

function splitInfer(ctx: InferContext): TypeShape[] {
  const x = inShape(ctx, 0);
  const dt = inType(ctx, 0);
  const nOut = ctx.node.outputs.length;
  if (!x) return new Array(nOut).fill(0).map(() => ts(dt, undefined));
  const axis = normAxis(ctx.node.int("axis", 0), x.length);
  let split: number[] | undefined;
  if (ctx.opset < 13) split = ctx.node.ints("split");
  else if (ctx.has(1)) {
    split = constInts(ctx, 1);
    if (!split) return new Array(nOut).fill(0).map(() => ts(dt, x.map((d, i) => (i === axis ? null : d))));
  }
  const dim = x[axis]!;
  if (!split) {
    const n = ctx.opset >= 18 ? ctx.node.int("num_outputs", nOut) : nOut;
    if (typeof dim !== "number") return new Array(nOut).fill(0).map(() => ts(dt, x.map((d, i) => (i === axis ? null : d))));
    const chunk = Math.ceil(dim / n);
    split = new Array<number>(n).fill(chunk);
    split[n - 1] = dim - chunk * (n - 1);
  }
  return split.map((len) => ts(dt, x.map((d, i) => (i === axis ? len : d))));
}

function sliceInfer(ctx: InferContext): TypeShape[] {
  const x = inShape(ctx, 0);
  const dt = inType(ctx, 0);
  if (!x) return [ts(dt, undefined)];
  const a = sliceArgs(ctx, x.length);
  if (!a) {
    // axes known but bounds not: those axes unknown; nothing known: every axis may be sliced
    const axes = ctx.opset >= 10 && ctx.has(3) ? constInts(ctx, 3) : undefined;
    if (axes) {
      const ax = axes.map((v) => normAxis(v, x.length));
      return [ts(dt, x.map((d, i) => (ax.includes(i) ? null : d)))];
    }
    return [ts(dt, x.map(() => null))];
  }
  const out = [...x];
  a.axes.forEach((ax, i) => {
    const d = x[ax]!;
    const st = a.starts[i]!;
    const en = a.ends[i]!;
    const step = a.steps[i]!;
    if (typeof d === "number") out[ax] = sliceParams(d, st, en, step).count;
    else if (st === 0 && step === 1 && en >= 2 ** 31 - 1) out[ax] = d; // whole symbolic axis
    else out[ax] = null;
  });
  return [ts(dt, out)];
}

function padInfer(ctx: InferContext): TypeShape[] {
  const x = inShape(ctx, 0);
  const dt = inType(ctx, 0);
  if (!x) return [ts(dt, undefined)];
  const r = x.length;
  let pads: Dim[] | undefined;
  if (ctx.opset < 11) pads = ctx.node.ints("pads") ?? ctx.node.ints("paddings");
  else pads = dimValues(ctx, 1);
  if (!pads) return [ts(dt, x.map(() => null))];
  let axes = x.map((_, i) => i);
  if (ctx.opset >= 18 && ctx.has(3)) {
    const a = constInts(ctx, 3);
    if (!a) return [ts(dt, x.map(() => null))];
    axes = a.map((v) => normAxis(v, r));
  }
  const k = axes.length;
  if (pads.length !== 2 * k) fail(`Pad: pads has ${pads.length} entries, expected ${2 * k}`);
  const out = [...x];
  axes.forEach((ax, i) => {
    const pb = pads![i]!;
    const pe = pads![i + k]!;
    out[ax] = typeof pb === "number" && typeof pe === "number" ? dimAdd(x[ax]!, pb + pe) : null;
  });
  return [ts(dt, out)];
}

function scaleDim(d: Dim, s: number): Dim {
  if (s === 1) return d;
  // float32 product as ONNX Runtime computes it: 10 * 0.7f gives 7, not 6
  return typeof d === "number" ? Math.floor(Math.fround(d * s)) : null;
}

function resizeInfer(ctx: InferContext): TypeShape[] {
  const x = inShape(ctx, 0);
  const dt = inType(ctx, 0);
  if (!x) return [ts(dt, undefined)];
  const r = x.length;
  const unknown = (): TypeShape[] => [ts(dt, x.map(() => null))];
  if (ctx.node.opType === "Upsample" || ctx.opset < 11) {
    const scales = ctx.opset < 9 && ctx.node.opType === "Upsample" ? ctx.node.floats("scales") : constFloats(ctx, 1);
    if (!scales) return unknown();
    return [ts(dt, x.map((d, i) => scaleDim(d, scales[i]!)))];
  }
  const axesAttr = ctx.opset >= 18 ? ctx.node.ints("axes") : undefined;
  const axes = (axesAttr ?? x.map((_, i) => i)).map((a) => normAxis(a, r));
  const sizes = ctx.has(3) ? dimValues(ctx, 3) : undefined;
  if (sizes && sizes.length === axes.length) {
    const policy = ctx.opset >= 18 ? ctx.node.str("keep_aspect_ratio_policy", "stretch") : "stretch";
    const out = [...x];
    if (policy === "stretch") {
      axes.forEach((a, i) => (out[a] = sizes[i]!));
      return [ts(dt, out)];
    }
    const ratios = axes.map((a, i) => {
      const s = sizes[i];
      const d = x[a];
      return typeof s === "number" && typeof d === "number" ? s / d : NaN;
    });
    if (ratios.some((v) => Number.isNaN(v))) return unknown();
    const scale = policy === "not_larger" ? Math.min(...ratios) : Math.max(...ratios);
    axes.forEach((a) => (out[a] = Math.round(scale * (x[a] as number))));
    return [ts(dt, out)];
  }
  if (ctx.has(3) && !sizes) return unknown();
  const scales = ctx.has(2) ? constFloats(ctx, 2) : undefined;
  if (!scales || scales.length !== axes.length) return unknown();
  const out = [...x];
  axes.forEach((a, i) => (out[a] = scaleDim(x[a]!, scales[i]!)));
  return [ts(dt, out)];
}

function constFloats(ctx: InferContext, i: number): number[] | undefined {
  if (!ctx.has(i)) return undefined;
  const t = ctx.value(i);
  if (t) return t.toArray();
  const p = ctx.partial(i);
  return p && p.values.every((v) => typeof v === "number") ? (p.values as number[]) : undefined;
}

function gatherInfer(ctx: InferContext): TypeShape[] {
  const d = inShape(ctx, 0);
  const idx = inShape(ctx, 1);
  const dt = inType(ctx, 0);
  if (!d || !idx) return [ts(dt, undefined)];
  const axis = normAxis(ctx.node.int("axis", 0), d.length);
  return [ts(dt, [...d.slice(0, axis), ...idx, ...d.slice(axis + 1)])];
}

function gatherNDInfer(ctx: InferContext): TypeShape[] {
  const d = inShape(ctx, 0);
  const idx = inShape(ctx, 1);
  const dt = inType(ctx, 0);
  if (!d || !idx) return [ts(dt, undefined)];
  const b = ctx.node.int("batch_dims", 0);
  const last = idx[idx.length - 1];
  if (typeof last !== "number") return [ts(dt, undefined)];
  return [ts(dt, [...idx.slice(0, -1), ...d.slice(b + last)])];
}

function expandInfer(ctx: InferContext): TypeShape[] {
  const x = inShape(ctx, 0);
  const s = dimValues(ctx, 1);
  const dt = inType(ctx, 0);
  if (!x || !s) return [ts(dt, undefined)];
  // a null entry of the target shape keeps a concrete input dim > 1 (Expand cannot shrink)
  return [ts(dt, broadcastShapes([x, s]))];
}

function tileInfer(ctx: InferContext): TypeShape[] {
  const x = inShape(ctx, 0);
  const dt = inType(ctx, 0);
  if (!x) return [ts(dt, undefined)];
  const rep = dimValues(ctx, 1);
  if (!rep || rep.length !== x.length) return [ts(dt, x.map(() => null))];
  return [ts(dt, x.map((d, i) => dimMul(d, rep[i]!)))];
}

function argInfer(ctx: InferContext): TypeShape[] {
  const x = inShape(ctx, 0);
  if (!x) return [ts("int64", undefined)];
  const axis = normAxis(ctx.node.int("axis", 0), x.length);
  const keep = ctx.node.int("keepdims", 1) !== 0;
  return [ts("int64", keep ? x.map((d, i) => (i === axis ? 1 : d)) : x.filter((_, i) => i !== axis))];
}

function topkInfer(ctx: InferContext): TypeShape[] {
  const x = inShape(ctx, 0);
  const dt = inType(ctx, 0);
  if (!x) return [ts(dt, undefined), ts("int64", undefined)];
  const axis = normAxis(ctx.node.int("axis", -1), x.length);
  let k: Dim;
  if (ctx.opset < 10) k = ctx.node.int("k", 0);
  else {
    const v = dimValues(ctx, 1);
    k = v && v.length === 1 ? v[0]! : null;
  }
  const out = x.map((d, i) => (i === axis ? k : d));
  return [ts(dt, out), ts("int64", out)];
}

function rangeInfer(ctx: InferContext): TypeShape[] {
  const dt = inType(ctx, 0);
  const s = ctx.partial(0)?.values[0];
  const l = ctx.partial(1)?.values[0];
  const d = ctx.partial(2)?.values[0];
  if (typeof s === "number" && typeof l === "number" && typeof d === "number" && d !== 0) {
    return [ts(dt, [Math.max(Math.ceil((l - s) / d), 0)])];
  }
  return [ts(dt, [null])];
}

function oneHotInfer(ctx: InferContext): TypeShape[] {
  const idx = inShape(ctx, 0);
  const dt = inType(ctx, 2);
  if (!idx) return [ts(dt, undefined)];
  const depthV = ctx.partial(1)?.values[0];
  const depth: Dim = typeof depthV === "number" ? Math.trunc(depthV) : null;
  const r = idx.length + 1;
  const axis = normAxis(ctx.node.int("axis", -1), r);
  const out = [...idx];
  out.splice(axis, 0, depth);
  return [ts(dt, out)];
}

function constantOfShapeInfer(ctx: InferContext): TypeShape[] {
  const t = ctx.node.tensor("value");
  return [ts(t?.dtype ?? "float32", dimValues(ctx, 0))];
}

function randomInfer(ctx: InferContext): TypeShape[] {
  const dt = dtypeFromOnnx(ctx.node.int("dtype", 1)) ?? "float32";
  return [ts(dt, ctx.node.ints("shape"))];
}

function randomLikeInfer(ctx: InferContext): TypeShape[] {
  const code = ctx.node.int("dtype", 0);
  return [like(ctx, 0, code ? dtypeFromOnnx(code) : undefined)];
}

function compressInfer(ctx: InferContext): TypeShape[] {
  const x = inShape(ctx, 0);
  const dt = inType(ctx, 0);
  const axis = ctx.node.int("axis");
  if (axis === undefined || !x) return [ts(dt, [null])];
  const a = normAxis(axis, x.length);
  return [ts(dt, x.map((d, i) => (i === a ? null : d)))];
}

function uniqueInfer(ctx: InferContext): TypeShape[] {
  const x = inShape(ctx, 0);
  const dt = inType(ctx, 0);
  const axis = ctx.node.int("axis");
  if (!x) return [ts(dt, undefined), ts("int64", [null]), ts("int64", [null]), ts("int64", [null])];
  if (axis === undefined) return [ts(dt, [null]), ts("int64", [null]), ts("int64", [dimProd(x)]), ts("int64", [null])];
  const a = normAxis(axis, x.length);
  return [ts(dt, x.map((d, i) => (i === a ? null : d))), ts("int64", [null]), ts("int64", [x[a]!]), ts("int64", [null])];
}

export const TENSOR_SCHEMAS: OpSchema[] = [
  schema("Constant", [0, 0], [1, 1], constantInfer),
  schema("Shape", [1, 1], [1, 1], shapeInfer),
  schema("Size", [1, 1], [1, 1], () => [ts("int64", [])]),
  schema("Identity", [1, 1], [1, 1], (ctx) => [like(ctx)]),
  schema("ConstantOfShape", [1, 1], [1, 1], constantOfShapeInfer),
  schema("Reshape", [1, 2], [1, 1], (ctx) => {
    if (ctx.opset < 5) {
      const s = ctx.node.ints("shape");
      return [ts(inType(ctx, 0), s ? reshapeShape(inShape(ctx, 0), s, false) : undefined)];
    }
    return reshapeInfer(ctx);
  }),
  schema("Flatten", [1, 1], [1, 1], flattenInfer),
  schema("Transpose", [1, 1], [1, 1], transposeInfer),
  schema("Squeeze", [1, 2], [1, 1], squeezeInfer),
  schema("Unsqueeze", [1, 2], [1, 1], unsqueezeInfer),
  schema("Concat", [1, Infinity], [1, 1], concatInfer),
  schema("Split", [1, 2], [1, Infinity], splitInfer),
  schema("Slice", [1, 5], [1, 1], sliceInfer),
  schema("Pad", [1, 4], [1, 1], padInfer),
  schema("Resize", [1, 4], [1, 1], resizeInfer),
  schema("Upsample", [1, 2], [1, 1], resizeInfer),
  schema("Gather", [2, 2], [1, 1], gatherInfer),
  schema("GatherElements", [2, 2], [1, 1], (ctx) => [ts(inType(ctx, 0), inShape(ctx, 1))]),
  schema("GatherND", [2, 2], [1, 1], gatherNDInfer),
  schema("ScatterND", [3, 3], [1, 1], (ctx) => [like(ctx)]),
  schema("ScatterElements", [3, 3], [1, 1], (ctx) => [like(ctx)]),
  schema("Scatter", [3, 3], [1, 1], (ctx) => [like(ctx)]),
  schema("Expand", [2, 2], [1, 1], expandInfer),
  schema("Tile", [2, 3], [1, 1], tileInfer),
  schema("ArgMax", [1, 1], [1, 1], argInfer),
  schema("ArgMin", [1, 1], [1, 1], argInfer),
  schema("TopK", [1, 2], [2, 2], topkInfer),
  schema("NonZero", [1, 1], [1, 1], (ctx) => [ts("int64", [inShape(ctx, 0)?.length ?? null, null])]),
  schema("Range", [3, 3], [1, 1], rangeInfer),
  schema("OneHot", [3, 3], [1, 1], oneHotInfer),
  schema("Trilu", [1, 2], [1, 1], (ctx) => [like(ctx)]),
  schema("CumSum", [2, 2], [1, 1], (ctx) => [like(ctx)]),
  schema("CumProd", [2, 2], [1, 1], (ctx) => [like(ctx)]),
  schema("RotaryEmbedding", [3, 4], [1, 1], (ctx) => [like(ctx)]),
  schema("TensorScatter", [2, 3], [1, 1], (ctx) => [like(ctx)]),
  schema("CenterCropPad", [2, 2], [1, 1], (ctx) => {
    const x = inShape(ctx, 0);
    const sh = dimValues(ctx, 1);
    if (!x) return [ts(inType(ctx, 0), undefined)];
    const axes = (ctx.node.ints("axes") ?? x.map((_, i) => i)).map((a) => normAxis(a, x.length));
    const out = [...x];
    axes.forEach((a, i) => (out[a] = sh ? (sh[i] ?? null) : null));
    return [ts(inType(ctx, 0), out)];
  }),
  schema("ReverseSequence", [2, 2], [1, 1], (ctx) => [like(ctx)]),
  schema("EyeLike", [1, 1], [1, 1], randomLikeInfer),
  schema("RandomNormal", [0, 0], [1, 1], randomInfer),
  schema("RandomUniform", [0, 0], [1, 1], randomInfer),
  schema("RandomNormalLike", [1, 1], [1, 1], randomLikeInfer),
  schema("RandomUniformLike", [1, 1], [1, 1], randomLikeInfer),
  schema("Multinomial", [1, 1], [1, 1], (ctx) => [ts(dtypeFromOnnx(ctx.node.int("dtype", 6)) ?? "int32", [inShape(ctx, 0)?.[0] ?? null, ctx.node.int("sample_size", 1)])]),
  schema("Compress", [2, 2], [1, 1], compressInfer),
  schema("Unique", [1, 1], [1, 4], uniqueInfer),
  schema("NonMaxSuppression", [2, 5], [1, 1], () => [ts("int64", [null, 3])]),
  schema("Det", [1, 1], [1, 1], (ctx) => [ts(inType(ctx, 0), inShape(ctx, 0)?.slice(0, -2))]),
];
