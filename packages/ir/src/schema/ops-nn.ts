import type { DType } from "../dtype.js";
import type { Dim } from "../graph.js";
import { broadcastDim, broadcastShapes, dimMul, fail, normAxis, spatialOut, type SpatialParams } from "./dims.js";
import { inShape, inType, like, macDim, macProd, schema, ts } from "./helpers.js";
import type { InferContext, OpSchema, TypeShape } from "./types.js";

/** Neural-network ops: convolution, pooling, matrix products, normalization, recurrent cells. */

function spatialParams(ctx: InferContext, r: number, kernel: number[], pool: boolean): SpatialParams {
  const n = ctx.node;
  const pads = n.ints("pads") ?? new Array<number>(2 * r).fill(0);
  if (pads.length !== 2 * r) fail(`pads has ${pads.length} entries, expected ${2 * r}`);
  const allowDil = !pool || n.opType === "MaxPool" ? true : ctx.opset >= 19;
  return {
    kernel,
    strides: n.ints("strides") ?? new Array<number>(r).fill(1),
    dilations: allowDil ? (n.ints("dilations") ?? new Array<number>(r).fill(1)) : new Array<number>(r).fill(1),
    pads,
    autoPad: n.str("auto_pad", "NOTSET"),
    ceilMode: pool && n.int("ceil_mode", 0) !== 0,
  };
}

/** Conv-like ops: X at xi, W at wi, output dtype `dt`. */
function convInfer(ctx: InferContext, xi: number, wi: number, dt: DType | undefined): TypeShape[] {
  const x = inShape(ctx, xi);
  const w = inShape(ctx, wi);
  const kAttr = ctx.node.ints("kernel_shape");
  const r = x ? x.length - 2 : w ? w.length - 2 : kAttr ? kAttr.length : -1;
  if (r < 0 || !x) return [ts(dt, r >= 0 ? new Array<Dim>(r + 2).fill(null) : undefined)];
  const wk = w?.slice(2);
  const kernel = kAttr ?? (wk && wk.every((d) => typeof d === "number") ? (wk as number[]) : undefined);
  const m: Dim = w ? w[0]! : null;
  if (!kernel) return [ts(dt, [x[0]!, m, ...new Array<Dim>(r).fill(null)])];
  const p = spatialParams(ctx, r, kernel, false);
  return [ts(dt, [x[0]!, m, ...spatialOut(x.slice(2), p)])];
}

function convMacs(ctx: InferContext, outs: TypeShape[], wi: number): number {
  const o = outs[0]?.shape;
  const w = inShape(ctx, wi);
  if (!o || !w) return NaN;
  // N * Cout * prod(out spatial) * (Cin / group) * prod(kernel)
  return macProd(o) * macProd(w.slice(1));
}

function convTransposeInfer(ctx: InferContext): TypeShape[] {
  const n = ctx.node;
  const x = inShape(ctx, 0);
  const w = inShape(ctx, 1);
  const dt = inType(ctx, 0);
  const group = n.int("group", 1);
  const m: Dim = w ? dimMul(w[1]!, group) : null;
  if (!x) return [ts(dt, undefined)];
  const r = x.length - 2;
  const outShape = n.ints("output_shape");
  if (outShape) return [ts(dt, [x[0]!, m, ...outShape.slice(outShape.length - r)])];
  const wk = w?.slice(2);
  const kernel = n.ints("kernel_shape") ?? (wk && wk.every((d) => typeof d === "number") ? (wk as number[]) : undefined);
  if (!kernel) return [ts(dt, [x[0]!, m, ...new Array<Dim>(r).fill(null)])];
  const strides = n.ints("strides") ?? new Array<number>(r).fill(1);
  const dil = n.ints("dilations") ?? new Array<number>(r).fill(1);
  const outPad = n.ints("output_padding") ?? new Array<number>(r).fill(0);
  const autoPad = n.str("auto_pad", "NOTSET");
  const pads = autoPad === "NOTSET" ? (n.ints("pads") ?? new Array<number>(2 * r).fill(0)) : new Array<number>(2 * r).fill(0);
  const sp = x.slice(2).map((d, i) => {
    if (typeof d !== "number") return null;
    const s = strides[i] ?? 1;
    if (autoPad === "SAME_UPPER" || autoPad === "SAME_LOWER") return d * s;
    return s * (d - 1) + (outPad[i] ?? 0) + ((kernel[i]! - 1) * (dil[i] ?? 1) + 1) - pads[i]! - pads[i + r]!;
  });
  return [ts(dt, [x[0]!, m, ...sp])];
}

function convTransposeMacs(ctx: InferContext): number {
  const x = inShape(ctx, 0);
  const w = inShape(ctx, 1);
  if (!x || !w) return NaN;
  // N * prod(in spatial) * Cin * (Cout / group) * prod(kernel): every input pixel scatters a kernel
  return macDim(x[0]) * macProd(x.slice(2)) * macProd(w);
}

function poolInfer(ctx: InferContext): TypeShape[] {
  const x = inShape(ctx, 0);
  const dt = inType(ctx, 0);
  const kernel = ctx.node.ints("kernel_shape");
  if (!x) return [ts(dt, undefined)];
  const r = x.length - 2;
  let out: Dim[];
  if (!kernel) out = [x[0]!, x[1]!, ...new Array<Dim>(r).fill(null)];
  else out = [x[0]!, x[1]!, ...spatialOut(x.slice(2), spatialParams(ctx, r, kernel, true))];
  const res = [ts(dt, out)];
  if (ctx.node.opType === "MaxPool" && ctx.node.outputs.length > 1) res.push(ts("int64", out));
  return res;
}

function globalPool(ctx: InferContext): TypeShape[] {
  const x = inShape(ctx, 0);
  return [ts(inType(ctx, 0), x ? [x[0]!, x[1]!, ...x.slice(2).map(() => 1)] : undefined)];
}

/** numpy matmul shape; also returns K. */
export function matmulShape(a: Dim[] | undefined, b: Dim[] | undefined): { shape?: Dim[]; k: Dim } {
  if (!a || !b) return { k: a ? (a[a.length - 1] ?? null) : b ? (b.length === 1 ? b[0]! : (b[b.length - 2] ?? null)) : null };
  if (a.length === 0 || b.length === 0) fail("MatMul inputs must not be scalars");
  const a2 = a.length === 1 ? [1, a[0]!] : a;
  const b2 = b.length === 1 ? [b[0]!, 1] : b;
  const k = broadcastDim(a2[a2.length - 1]!, b2[b2.length - 2]!);
  const batch = broadcastShapes([a2.slice(0, -2), b2.slice(0, -2)])!;
  const out: Dim[] = [...batch];
  if (a.length > 1) out.push(a2[a2.length - 2]!);
  if (b.length > 1) out.push(b2[b2.length - 1]!);
  return { shape: out, k };
}

function matmulLike(ai: number, bi: number, dt: (ctx: InferContext) => DType | undefined): Pick<OpSchema, "infer" | "macs"> {
  return {
    infer: (ctx) => [ts(dt(ctx), matmulShape(inShape(ctx, ai), inShape(ctx, bi)).shape)],
    macs: (ctx, outs) => macProd(outs[0]?.shape) * macDim(matmulShape(inShape(ctx, ai), inShape(ctx, bi)).k),
  };
}

function gemmDims(ctx: InferContext): { m: Dim; n: Dim; k: Dim } | undefined {
  const a = inShape(ctx, 0);
  const b = inShape(ctx, 1);
  const ta = ctx.node.int("transA", 0) !== 0;
  const tb = ctx.node.int("transB", 0) !== 0;
  const m = a ? (ta ? a[1] : a[0]) ?? null : null;
  const ka = a ? (ta ? a[0] : a[1]) ?? null : null;
  const n = b ? (tb ? b[0] : b[1]) ?? null : null;
  const kb = b ? (tb ? b[1] : b[0]) ?? null : null;
  if (!a && !b) return undefined;
  return { m, n, k: typeof ka === "number" ? ka : kb };
}

function rnnInfer(gates: number) {
  return (ctx: InferContext): TypeShape[] => {
    const n = ctx.node;
    const x = inShape(ctx, 0);
    const w = inShape(ctx, 1);
    const dt = inType(ctx, 0);
    const layout = n.int("layout", 0);
    const dirs = n.str("direction", "forward") === "bidirectional" ? 2 : 1;
    let hidden: Dim = n.int("hidden_size", 0) || null;
    if (hidden === null && w && typeof w[1] === "number") hidden = w[1] / gates;
    const seq: Dim = x ? (layout ? x[1]! : x[0]!) : null;
    const batch: Dim = x ? (layout ? x[0]! : x[1]!) : null;
    const y = layout ? [batch, seq, dirs, hidden] : [seq, dirs, batch, hidden];
    const yh = layout ? [batch, dirs, hidden] : [dirs, batch, hidden];
    const out = [ts(dt, y), ts(dt, yh)];
    if (gates === 4) out.push(ts(dt, yh));
    return out;
  };
}

function rnnMacs(gates: number) {
  return (ctx: InferContext): number => {
    const x = inShape(ctx, 0);
    const w = inShape(ctx, 1);
    if (!x || !w) return NaN;
    const layout = ctx.node.int("layout", 0);
    const seq = macDim(layout ? x[1] : x[0]);
    const batch = macDim(layout ? x[0] : x[1]);
    const input = macDim(x[2] ?? w[2]);
    const dirs = macDim(w[0]);
    const hidden = ctx.node.int("hidden_size", 0) || macDim(w[1]) / gates;
    return dirs * seq * batch * gates * hidden * (input + hidden);
  };
}

/** Parse an einsum equation against input shapes: output shape and all index sizes. */
export function einsumShape(eq: string, shapes: (Dim[] | undefined)[]): { shape?: Dim[]; sizes: Dim[] } {
  const e = eq.replace(/\s+/g, "");
  const [lhs, rhs] = e.split("->") as [string, string | undefined];
  const terms = lhs.split(",");
  if (terms.length !== shapes.length) fail(`einsum equation '${eq}' has ${terms.length} operands, node has ${shapes.length} inputs`);
  const size = new Map<string, Dim>();
  const count = new Map<string, number>();
  let ell: Dim[] | undefined = [];
  let anyEll = false;
  for (let t = 0; t < terms.length; t++) {
    const term = terms[t]!;
    const s = shapes[t];
    const hasEll = term.includes("...");
    anyEll ||= hasEll;
    const [pre, post] = hasEll ? (term.split("...") as [string, string]) : [term, ""];
    for (const c of pre + post) count.set(c, (count.get(c) ?? 0) + 1);
    if (!s) {
      for (const c of pre + post) if (!size.has(c)) size.set(c, null);
      if (hasEll) ell = undefined;
      continue;
    }
    const nEll = s.length - pre.length - post.length;
    if (nEll < 0 || (!hasEll && nEll !== 0)) fail(`einsum term '${term}' does not match rank ${s.length}`);
    [...pre].forEach((c, i) => size.set(c, size.has(c) ? broadcastDim(size.get(c)!, s[i]!) : s[i]!));
    [...post].forEach((c, i) => {
      const d = s[pre.length + nEll + i]!;
      size.set(c, size.has(c) ? broadcastDim(size.get(c)!, d) : d);
    });
    if (hasEll && ell) ell = broadcastShapes([ell, s.slice(pre.length, pre.length + nEll)]);
  }
  let outTerm: string;
  if (rhs !== undefined) outTerm = rhs;
  else {
    const once = [...count].filter(([, n]) => n === 1).map(([c]) => c).sort();
    outTerm = (anyEll ? "..." : "") + once.join("");
  }
  const sizes = [...size.values(), ...(ell ?? [null])];
  if (outTerm.includes("...") && !ell) return { sizes };
  const out: Dim[] = [];
  const [opre, opost] = outTerm.includes("...") ? (outTerm.split("...") as [string, string]) : [outTerm, ""];
  for (const c of opre) out.push(size.has(c) ? size.get(c)! : fail(`einsum output index '${c}' not in inputs`));
  if (outTerm.includes("...")) out.push(...ell!);
  for (const c of opost) out.push(size.has(c) ? size.get(c)! : fail(`einsum output index '${c}' not in inputs`));
  return { shape: out, sizes };
}

function normOut(ctx: InferContext): TypeShape[] {
  // LayerNormalization: Y, Mean, InvStdDev (reduced dims kept as 1)
  const x = inShape(ctx, 0);
  const dt = inType(ctx, 0);
  const res = [like(ctx, 0)];
  if (x) {
    const axis = normAxis(ctx.node.int("axis", -1), x.length);
    const red = x.map((d, i) => (i < axis ? d : 1));
    const stash = ctx.node.int("stash_type", 1) === 1 ? "float32" : dt;
    res.push(ts(stash, red), ts(stash, red));
  }
  return res;
}

function batchNormOut(ctx: InferContext): TypeShape[] {
  const x = inShape(ctx, 0);
  const c: Dim = x && x.length > 1 ? x[1]! : (inShape(ctx, 1)?.[0] ?? null);
  const res = [like(ctx, 0)];
  const extra = ctx.node.outputs.length - 1;
  for (let i = 0; i < extra; i++) res.push(ts(inType(ctx, 3) ?? inType(ctx, 0), [c]));
  return res;
}

function depthSpace(toSpace: boolean) {
  return (ctx: InferContext): TypeShape[] => {
    const x = inShape(ctx, 0);
    const b = ctx.node.int("blocksize", 1);
    if (!x || x.length !== 4) return [ts(inType(ctx, 0), x ? undefined : undefined)];
    const [n, c, h, w] = x as [Dim, Dim, Dim, Dim];
    const div = (d: Dim, k: number): Dim => (typeof d === "number" ? Math.floor(d / k) : k === 1 ? d : null);
    const shape = toSpace ? [n, div(c, b * b), dimMul(h, b), dimMul(w, b)] : [n, dimMul(c, b * b), div(h, b), div(w, b)];
    return [ts(inType(ctx, 0), shape)];
  };
}

const MS = "com.microsoft";

export const NN_SCHEMAS: OpSchema[] = [
  schema("Conv", [2, 3], [1, 1], (ctx) => convInfer(ctx, 0, 1, inType(ctx, 0)), { macs: (ctx, outs) => convMacs(ctx, outs, 1) }),
  schema("ConvInteger", [2, 4], [1, 1], (ctx) => convInfer(ctx, 0, 1, "int32"), { macs: (ctx, outs) => convMacs(ctx, outs, 1) }),
  schema("QLinearConv", [8, 9], [1, 1], (ctx) => convInfer(ctx, 0, 3, inType(ctx, 7) ?? inType(ctx, 0)), { macs: (ctx, outs) => convMacs(ctx, outs, 3) }),
  schema("ConvTranspose", [2, 3], [1, 1], convTransposeInfer, { macs: convTransposeMacs }),
  schema("DeformConv", [3, 5], [1, 1], (ctx) => convInfer(ctx, 0, 1, inType(ctx, 0)), { macs: (ctx, outs) => convMacs(ctx, outs, 1) }),
  schema("MaxPool", [1, 1], [1, 2], poolInfer),
  schema("AveragePool", [1, 1], [1, 1], poolInfer),
  schema("LpPool", [1, 1], [1, 1], poolInfer),
  schema("GlobalAveragePool", [1, 1], [1, 1], globalPool),
  schema("GlobalMaxPool", [1, 1], [1, 1], globalPool),
  schema("GlobalLpPool", [1, 1], [1, 1], globalPool),
  schema("MaxRoiPool", [2, 2], [1, 1], (ctx) => {
    const p = ctx.node.ints("pooled_shape") ?? [];
    return [ts(inType(ctx, 0), [inShape(ctx, 1)?.[0] ?? null, inShape(ctx, 0)?.[1] ?? null, ...p])];
  }),
  schema("RoiAlign", [3, 3], [1, 1], (ctx) => [
    ts(inType(ctx, 0), [inShape(ctx, 1)?.[0] ?? null, inShape(ctx, 0)?.[1] ?? null, ctx.node.int("output_height", 1), ctx.node.int("output_width", 1)]),
  ]),
  schema("MaxUnpool", [2, 3], [1, 1], (ctx) => {
    const x = inShape(ctx, 0);
    if (!x) return [ts(inType(ctx, 0), undefined)];
    const r = x.length - 2;
    const k = ctx.node.ints("kernel_shape") ?? [];
    const s = ctx.node.ints("strides") ?? new Array<number>(r).fill(1);
    const p = ctx.node.ints("pads") ?? new Array<number>(2 * r).fill(0);
    const sp = x.slice(2).map((d, i) => (typeof d === "number" ? (d - 1) * s[i]! - p[i]! - p[i + r]! + k[i]! : null));
    return [ts(inType(ctx, 0), [x[0]!, x[1]!, ...sp])];
  }),
  schema("GridSample", [2, 2], [1, 1], (ctx) => {
    const x = inShape(ctx, 0);
    const g = inShape(ctx, 1);
    if (!x || !g) return [ts(inType(ctx, 0), undefined)];
    return [ts(inType(ctx, 0), [x[0]!, x[1]!, ...g.slice(1, -1)])];
  }),
  schema("Gemm", [2, 3], [1, 1], (ctx) => {
    const d = gemmDims(ctx);
    return [ts(inType(ctx, 0) ?? inType(ctx, 1), d ? [d.m, d.n] : undefined)];
  }, { macs: (ctx) => {
    const d = gemmDims(ctx);
    return d ? macDim(d.m) * macDim(d.n) * macDim(d.k) : NaN;
  } }),
  schema("MatMul", [2, 2], [1, 1], matmulLike(0, 1, (ctx) => inType(ctx, 0) ?? inType(ctx, 1)).infer, { macs: matmulLike(0, 1, () => undefined).macs! }),
  schema("MatMulInteger", [2, 4], [1, 1], matmulLike(0, 1, () => "int32").infer, { macs: matmulLike(0, 1, () => undefined).macs! }),
  schema("QLinearMatMul", [8, 8], [1, 1], matmulLike(0, 3, (ctx) => inType(ctx, 7) ?? inType(ctx, 0)).infer, { macs: matmulLike(0, 3, () => undefined).macs! }),
  schema("Einsum", [1, Infinity], [1, 1], (ctx) => {
    const shapes = ctx.node.inputs.map((_, i) => inShape(ctx, i));
    return [ts(inType(ctx, 0), einsumShape(ctx.node.str("equation", ""), shapes).shape)];
  }, { macs: (ctx) => {
    if (ctx.node.inputs.length < 2) return 0;
    const { sizes } = einsumShape(ctx.node.str("equation", ""), ctx.node.inputs.map((_, i) => inShape(ctx, i)));
    return macProd(sizes);
  } }),
  schema("BatchNormalization", [5, 5], [1, 5], batchNormOut),
  schema("LayerNormalization", [2, 3], [1, 3], normOut),
  schema("InstanceNormalization", [3, 3], [1, 1], (ctx) => [like(ctx)]),
  schema("GroupNormalization", [3, 3], [1, 1], (ctx) => [like(ctx)]),
  schema("RMSNormalization", [2, 2], [1, 1], (ctx) => [like(ctx)]),
  schema("LpNormalization", [1, 1], [1, 1], (ctx) => [like(ctx)]),
  schema("LRN", [1, 1], [1, 1], (ctx) => [like(ctx)]),
  schema("MeanVarianceNormalization", [1, 1], [1, 1], (ctx) => [like(ctx)]),
  schema("Softmax", [1, 1], [1, 1], (ctx) => [like(ctx)]),
  schema("LogSoftmax", [1, 1], [1, 1], (ctx) => [like(ctx)]),
  schema("Hardmax", [1, 1], [1, 1], (ctx) => [like(ctx)]),
  schema("Dropout", [1, 3], [1, 2], (ctx) => [like(ctx), like(ctx, 0, "bool")]),
  schema("LSTM", [3, 8], [0, 3], rnnInfer(4), { macs: rnnMacs(4) }),
  schema("GRU", [3, 6], [0, 2], rnnInfer(3), { macs: rnnMacs(3) }),
  schema("RNN", [3, 6], [0, 2], rnnInfer(1), { macs: rnnMacs(1) }),
  schema("DepthToSpace", [1, 1], [1, 1], depthSpace(true)),
  schema("SpaceToDepth", [1, 1], [1, 1], depthSpace(false)),
  // a few ONNX Runtime contrib ops that show up in optimized / quantized exports
  schema("FusedConv", [2, 4], [1, 1], (ctx) => convInfer(ctx, 0, 1, inType(ctx, 0)), { domain: MS, macs: (ctx, outs) => convMacs(ctx, outs, 1) }),
  schema("FusedMatMul", [2, 2], [1, 1], (ctx) => {
    const tr = (s: Dim[] | undefined, t: number) => (s && t && s.length >= 2 ? [...s.slice(0, -2), s[s.length - 1]!, s[s.length - 2]!] : s);
    return [ts(inType(ctx, 0), matmulShape(tr(inShape(ctx, 0), ctx.node.int("transA", 0)), tr(inShape(ctx, 1), ctx.node.int("transB", 0))).shape)];
  }, { domain: MS }),
  schema("Gelu", [1, 1], [1, 1], (ctx) => [like(ctx)], { domain: MS }),
  schema("FastGelu", [1, 2], [1, 1], (ctx) => [like(ctx)], { domain: MS }),
  schema("BiasGelu", [2, 2], [1, 1], (ctx) => [like(ctx)], { domain: MS }),
  schema("QuickGelu", [1, 1], [1, 1], (ctx) => [like(ctx)], { domain: MS }),
  schema("SkipLayerNormalization", [3, 5], [1, 4], (ctx) => [like(ctx)], { domain: MS }),
  schema("QuantizeLinear", [2, 3], [1, 1], (ctx) => [like(ctx, 0, inType(ctx, 2) ?? "uint8")], { domain: MS }),
  schema("DequantizeLinear", [2, 3], [1, 1], (ctx) => [like(ctx, 0, inType(ctx, 1) ?? "float32")], { domain: MS }),
  schema("MatMulIntegerToFloat", [3, 6], [1, 1], matmulLike(0, 1, (ctx) => inType(ctx, 2) ?? "float32").infer, { domain: MS, macs: matmulLike(0, 1, () => undefined).macs! }),
  schema("DynamicQuantizeMatMul", [3, 5], [1, 1], matmulLike(0, 1, (ctx) => inType(ctx, 0)).infer, { domain: MS, macs: matmulLike(0, 1, () => undefined).macs! }),
  schema("QLinearAdd", [7, 8], [1, 1], (ctx) => [ts(inType(ctx, 0), broadcastShapes([inShape(ctx, 0), inShape(ctx, 3)]))], { domain: MS }),
  schema("QLinearMul", [7, 8], [1, 1], (ctx) => [ts(inType(ctx, 0), broadcastShapes([inShape(ctx, 0), inShape(ctx, 3)]))], { domain: MS }),
  schema("QLinearSigmoid", [4, 5], [1, 1], (ctx) => [like(ctx)], { domain: MS }),
  schema("QLinearLeakyRelu", [4, 5], [1, 1], (ctx) => [like(ctx)], { domain: MS }),
  schema("QLinearGlobalAveragePool", [5, 5], [1, 1], globalPool, { domain: MS }),
];
