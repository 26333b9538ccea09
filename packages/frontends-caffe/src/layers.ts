/**
 * Caffe layer type → IR builder. Each builder reads its bottoms and parameters from a LayerCtx,
 * emits ai.onnx nodes (opset 17) and records the static shape of every top, following Caffe's own
 * shape rules (specs/formats.md §2.4).
 */
import { Tensor, shapeSize } from "@q/ir";
import type { Msg } from "./bind.js";
import type { Converter, LayerCtx } from "./context.js";

export type LayerBuilder = (c: LayerCtx, cv: Converter) => void;

const num = (m: Msg, f: string) => m[f] as number;
const nums = (m: Msg, f: string) => m[f] as number[];
const bool = (m: Msg, f: string) => m[f] as boolean;
const str = (m: Msg, f: string) => m[f] as string;

/** Caffe's axis normalization (negative counts from the end). */
function axisOf(c: LayerCtx, axis: number, rank: number, what = "axis"): number {
  const a = axis < 0 ? axis + rank : axis;
  if (a < 0 || a >= rank) c.fail(`${what} ${axis} is out of range for a bottom of rank ${rank}`);
  return a;
}

/** A per-spatial-dim value given as one value for all, one per dim, or a default. */
function perDim(c: LayerCtx, vals: number[], nsp: number, dflt: number | undefined, what: string): number[] {
  if (vals.length === 0) {
    if (dflt === undefined) c.fail(`${what} is not given`);
    return new Array<number>(nsp).fill(dflt);
  }
  if (vals.length === 1) return new Array<number>(nsp).fill(vals[0]!);
  if (vals.length === nsp) return [...vals];
  return c.fail(`${what} has ${vals.length} values; give 1 or ${nsp} (one per spatial dim)`);
}

interface ConvGeom {
  kernel: number[];
  stride: number[];
  pad: number[];
  dilation: number[];
  group: number;
  numOutput: number;
  biasTerm: boolean;
}

function convGeom(c: LayerCtx, p: Msg, inShape: number[]): ConvGeom {
  if (num(p, "axis") !== 1 && num(p, "axis") !== 1 - inShape.length) c.fail(`convolution_param.axis ${num(p, "axis")} is not supported (only the channel axis 1)`);
  const nsp = inShape.length - 2;
  if (nsp < 1) c.fail(`bottom has rank ${inShape.length}; convolution needs N, C and at least one spatial dim`);
  const hw = (a: string, b: string, what: string): number[] | undefined => {
    if (!c.has(p, a) && !c.has(p, b)) return undefined;
    if (nsp !== 2) c.fail(`${a}/${b} are only valid for 2-D convolution`);
    if (!c.has(p, a) || !c.has(p, b)) {
      if (what === "pad") return [num(p, a), num(p, b)];
      c.fail(`give both ${a} and ${b}`);
    }
    return [num(p, a), num(p, b)];
  };
  const kernel = hw("kernel_h", "kernel_w", "kernel") ?? perDim(c, nums(p, "kernel_size"), nsp, undefined, "kernel_size");
  const stride = hw("stride_h", "stride_w", "stride") ?? perDim(c, nums(p, "stride"), nsp, 1, "stride");
  const pad = hw("pad_h", "pad_w", "pad") ?? perDim(c, nums(p, "pad"), nsp, 0, "pad");
  const dilation = perDim(c, nums(p, "dilation"), nsp, 1, "dilation");
  if (kernel.some((k) => k <= 0)) c.fail(`kernel size [${kernel}] must be positive`);
  if (stride.some((s) => s <= 0)) c.fail(`stride [${stride}] must be positive`);
  if (!c.has(p, "num_output")) c.fail(`convolution_param.num_output is not given`);
  const group = num(p, "group");
  const numOutput = num(p, "num_output");
  if (group < 1 || inShape[1]! % group !== 0 || numOutput % group !== 0) {
    c.fail(`group ${group} must divide both the ${inShape[1]} input channels and num_output ${numOutput}`);
  }
  return { kernel, stride, pad, dilation, group, numOutput, biasTerm: bool(p, "bias_term") };
}

function convolution(c: LayerCtx): void {
  c.arity([1, 1], [1, 1]);
  const x = c.shape(0);
  const g = convGeom(c, c.param("convolution_param"), x);
  const C = x[1]!;
  const out = g.kernel.map((k, i) => Math.floor((x[i + 2]! + 2 * g.pad[i]! - (g.dilation[i]! * (k - 1) + 1)) / g.stride[i]!) + 1);
  if (out.some((o) => o <= 0)) c.fail(`output size [${out}] is not positive for input [${x}]`);
  const W = c.weight(0, [g.numOutput, C / g.group, ...g.kernel], "weights");
  const ins = [c.input(0), c.init("W", W)];
  if (g.biasTerm) ins.push(c.init("B", c.weight(1, [g.numOutput], "bias")));
  c.node("Conv", ins, [c.top(0)], { kernel_shape: g.kernel, strides: g.stride, pads: [...g.pad, ...g.pad], dilations: g.dilation, group: g.group });
  c.setTop(0, [x[0]!, g.numOutput, ...out]);
}

function deconvolution(c: LayerCtx): void {
  c.arity([1, 1], [1, 1]);
  const x = c.shape(0);
  const g = convGeom(c, c.param("convolution_param"), x);
  const C = x[1]!;
  const out = g.kernel.map((k, i) => g.stride[i]! * (x[i + 2]! - 1) + g.dilation[i]! * (k - 1) + 1 - 2 * g.pad[i]!);
  if (out.some((o) => o <= 0)) c.fail(`output size [${out}] is not positive for input [${x}]`);
  // Caffe stores deconvolution weights as [C_in, O/g, k...], the ONNX ConvTranspose layout
  const W = c.weight(0, [C, g.numOutput / g.group, ...g.kernel], "weights");
  const ins = [c.input(0), c.init("W", W)];
  if (g.biasTerm) ins.push(c.init("B", c.weight(1, [g.numOutput], "bias")));
  c.node("ConvTranspose", ins, [c.top(0)], { kernel_shape: g.kernel, strides: g.stride, pads: [...g.pad, ...g.pad], dilations: g.dilation, group: g.group });
  c.setTop(0, [x[0]!, g.numOutput, ...out]);
}

function innerProduct(c: LayerCtx): void {
  c.arity([1, 1], [1, 1]);
  const p = c.param("inner_product_param");
  const x = c.shape(0);
  const axis = axisOf(c, num(p, "axis"), x.length);
  if (!c.has(p, "num_output")) c.fail(`inner_product_param.num_output is not given`);
  const N = num(p, "num_output");
  const lead = x.slice(0, axis);
  const M = shapeSize(lead);
  const K = shapeSize(x.slice(axis));
  const transpose = bool(p, "transpose");
  const W = c.weight(0, transpose ? [K, N] : [N, K], "weights");
  let a = c.input(0);
  if (axis === 1 && x.length > 2) {
    const f = c.tmp("flatten", [M, K]);
    c.node("Flatten", [a], [f], { axis: 1 });
    a = f;
  } else if (axis !== 1 || x.length !== 2) {
    const r = c.tmp("reshape", [M, K]);
    c.node("Reshape", [a, c.i64("shape", [M, K])], [r]);
    a = r;
  }
  const ins = [a, c.init("W", W)];
  if (bool(p, "bias_term")) ins.push(c.init("B", c.weight(1, [N], "bias")));
  const outShape = [...lead, N];
  if (axis === 1) {
    c.node("Gemm", ins, [c.top(0)], { transB: transpose ? 0 : 1 });
  } else {
    const y = c.tmp("gemm", [M, N]);
    c.node("Gemm", ins, [y], { transB: transpose ? 0 : 1 });
    c.node("Reshape", [y, c.i64("out_shape", outShape)], [c.top(0)]);
  }
  c.setTop(0, outShape);
}

function pooling(c: LayerCtx): void {
  c.arity([1, 1], [1, 1]);
  const p = c.param("pooling_param");
  const x = c.shape(0);
  if (x.length !== 4) c.fail(`bottom has rank ${x.length}; Caffe pooling takes N, C, H, W`);
  const method = str(p, "pool");
  if (method === "STOCHASTIC") c.fail(`pool: STOCHASTIC is training-only randomness; q cannot translate it`);
  const H = x[2]!, W = x[3]!;
  const global = bool(p, "global_pooling");
  const kernel = global
    ? [H, W]
    : c.has(p, "kernel_size")
      ? [num(p, "kernel_size"), num(p, "kernel_size")]
      : c.has(p, "kernel_h") && c.has(p, "kernel_w")
        ? [num(p, "kernel_h"), num(p, "kernel_w")]
        : c.fail(`pooling_param needs kernel_size, or kernel_h and kernel_w, or global_pooling`);
  const pad = c.has(p, "pad_h") || c.has(p, "pad_w") ? [num(p, "pad_h"), num(p, "pad_w")] : [num(p, "pad"), num(p, "pad")];
  const stride = c.has(p, "stride_h") || c.has(p, "stride_w") ? [num(p, "stride_h") || 1, num(p, "stride_w") || 1] : [num(p, "stride"), num(p, "stride")];
  if (global) {
    if (pad.some((v) => v !== 0) || stride.some((v) => v !== 1)) c.fail(`global_pooling requires pad 0 and stride 1`);
    c.node(method === "MAX" ? "GlobalMaxPool" : "GlobalAveragePool", [c.input(0)], [c.top(0)]);
    c.setTop(0, [x[0]!, x[1]!, 1, 1]);
    return;
  }
  if (kernel.some((k) => k <= 0) || stride.some((s) => s <= 0)) c.fail(`kernel [${kernel}] and stride [${stride}] must be positive`);
  if (pad.some((v, i) => v >= kernel[i]!)) c.fail(`pad [${pad}] must be smaller than the kernel [${kernel}]`);
  const ceil = c.has(p, "round_mode") ? str(p, "round_mode") === "CEIL" : bool(p, "ceil_mode");
  const ins = [H, W];
  const out = ins.map((I, i) => {
    const span = (I + 2 * pad[i]! - kernel[i]!) / stride[i]!;
    return (ceil ? Math.ceil(span) : Math.floor(span)) + 1;
  });
  // Caffe: the last window must start inside the image or the left padding
  if (pad[0] || pad[1]) {
    for (let i = 0; i < 2; i++) if ((out[i]! - 1) * stride[i]! >= ins[i]! + pad[i]!) out[i]!--;
  }
  if (out.some((o) => o <= 0)) c.fail(`output size [${out}] is not positive for input [${x}]`);
  // explicit end pads so floor-mode ONNX pooling gives Caffe's output size
  const padEnd = ins.map((I, i) => Math.max(0, (out[i]! - 1) * stride[i]! + kernel[i]! - I - pad[i]!));
  const attrs = { kernel_shape: kernel, strides: stride, pads: [...pad, ...padEnd] };
  const outShape = [x[0]!, x[1]!, out[0]!, out[1]!];
  if (method === "MAX") {
    c.node("MaxPool", [c.input(0)], [c.top(0)], attrs);
    c.setTop(0, outShape);
    return;
  }
  // AVE. Caffe divides by the window clipped to [-pad, I + pad), then sums over [0, I).
  if (pad[0] === 0 && pad[1] === 0) {
    // divisor = cells inside the image = ONNX count_include_pad 0
    c.node("AveragePool", [c.input(0)], [c.top(0)], { ...attrs, count_include_pad: 0 });
    c.setTop(0, outShape);
    return;
  }
  // count_include_pad 1 divides by the full kernel (the windows never pass I + padEnd); windows that
  // pass I + pad (ceil mode) get Caffe's smaller divisor through a constant correction factor.
  const factors = ins.map((I, i) => {
    const f = new Float64Array(out[i]!);
    for (let o = 0; o < out[i]!; o++) {
      const start = o * stride[i]! - pad[i]!;
      const end = Math.min(start + kernel[i]!, I + pad[i]!);
      f[o] = kernel[i]! / (end - start);
    }
    return f;
  });
  const needFix = factors.some((f) => f.some((v) => v !== 1));
  if (!needFix) {
    c.node("AveragePool", [c.input(0)], [c.top(0)], { ...attrs, count_include_pad: 1 });
    c.setTop(0, outShape);
    return;
  }
  const pooled = c.tmp("avg", outShape);
  c.node("AveragePool", [c.input(0)], [pooled], { ...attrs, count_include_pad: 1 });
  const fix = new Float32Array(out[0]! * out[1]!);
  for (let h = 0; h < out[0]!; h++) for (let w = 0; w < out[1]!; w++) fix[h * out[1]! + w] = factors[0]![h]! * factors[1]![w]!;
  c.node("Mul", [pooled, c.init("divisor_fix", new Tensor("float32", [1, 1, out[0]!, out[1]!], fix))], [c.top(0)]);
  c.setTop(0, outShape);
}

/** An elementwise op with no parameters. */
function unary(op: string): LayerBuilder {
  return (c) => {
    c.arity([1, 1], [1, 1]);
    c.node(op, [c.input(0)], [c.top(0)]);
    c.setTop(0, c.shape(0));
  };
}

function relu(c: LayerCtx): void {
  c.arity([1, 1], [1, 1]);
  const slope = num(c.param("relu_param"), "negative_slope");
  if (slope !== 0) c.node("LeakyRelu", [c.input(0)], [c.top(0)], { alpha: slope });
  else c.node("Relu", [c.input(0)], [c.top(0)]);
  c.setTop(0, c.shape(0));
}

function prelu(c: LayerCtx): void {
  c.arity([1, 1], [1, 1]);
  const p = c.param("prelu_param");
  const x = c.shape(0);
  const C = x.length > 1 ? x[1]! : 1;
  const shared = bool(p, "channel_shared");
  const slope = c.weight(0, [shared ? 1 : C], "slope");
  const shape = shared ? [1] : [C, ...new Array<number>(Math.max(0, x.length - 2)).fill(1)];
  c.node("PRelu", [c.input(0), c.init("slope", slope.reshape(shape))], [c.top(0)]);
  c.setTop(0, x);
}

function elu(c: LayerCtx): void {
  c.arity([1, 1], [1, 1]);
  c.node("Elu", [c.input(0)], [c.top(0)], { alpha: num(c.param("elu_param"), "alpha") });
  c.setTop(0, c.shape(0));
}

function clip(c: LayerCtx): void {
  c.arity([1, 1], [1, 1]);
  const p = c.param("clip_param");
  if (!c.has(p, "min") || !c.has(p, "max")) c.fail(`clip_param needs min and max`);
  c.node("Clip", [c.input(0), c.f32("min", [], [num(p, "min")]), c.f32("max", [], [num(p, "max")])], [c.top(0)]);
  c.setTop(0, c.shape(0));
}

function batchNorm(c: LayerCtx): void {
  c.arity([1, 1], [1, 1]);
  const p = c.param("batch_norm_param");
  const x = c.shape(0);
  const C = x.length > 1 ? x[1]! : 1;
  const eps = num(p, "eps");
  const global = c.has(p, "use_global_stats") ? bool(p, "use_global_stats") : true; // TEST phase
  if (!global) {
    // statistics of the batch itself, per channel over every other axis
    const axes = x.map((_, i) => i).filter((i) => i !== 1);
    const stat = x.map((d, i) => (i === 1 ? d : 1));
    const mean = c.tmp("mean", stat), d = c.tmp("centered", x), sq = c.tmp("sq", x), v = c.tmp("var", stat);
    const ve = c.tmp("var_eps", stat), sd = c.tmp("std", stat);
    c.node("ReduceMean", [c.input(0)], [mean], { axes, keepdims: 1 });
    c.node("Sub", [c.input(0), mean], [d]);
    c.node("Mul", [d, d], [sq]);
    c.node("ReduceMean", [sq], [v], { axes, keepdims: 1 });
    c.node("Add", [v, c.f32("eps", [], [eps])], [ve]);
    c.node("Sqrt", [ve], [sd]);
    c.node("Div", [d, sd], [c.top(0)]);
    c.setTop(0, x);
    return;
  }
  const m = c.weight(0, [C], "mean");
  const v = c.weight(1, [C], "variance");
  const s = (c.weight(2, [1], "moving-average factor").data as Float32Array)[0]!;
  const k = s === 0 ? 0 : 1 / s;
  const mean = new Float32Array(C), vari = new Float32Array(C);
  const md = m.data as Float32Array, vd = v.data as Float32Array;
  for (let i = 0; i < C; i++) {
    mean[i] = md[i]! * k;
    vari[i] = vd[i]! * k;
  }
  const ones = new Float32Array(C).fill(1);
  c.node(
    "BatchNormalization",
    [c.input(0), c.f32("scale", [C], ones), c.f32("bias", [C], new Float32Array(C)), c.f32("mean", [C], mean), c.f32("var", [C], vari)],
    [c.top(0)],
    { epsilon: eps },
  );
  c.setTop(0, x);
}

/** Shape [dims covered by the parameter] + trailing 1s so it broadcasts from `axis` on. */
function broadcastShape(covered: number[], rank: number, axis: number): number[] {
  return [...covered, ...new Array<number>(rank - axis - covered.length).fill(1)];
}

function scaleLike(c: LayerCtx, field: "scale_param" | "bias_param"): void {
  const isScale = field === "scale_param";
  c.arity([1, 2], [1, 1]);
  const p = c.param(field);
  const x = c.shape(0);
  const axis = axisOf(c, num(p, "axis"), x.length);
  let y = c.input(0);
  let blob = 0;
  const finalOut = c.top(0);
  const steps: [string, string][] = []; // [op, operand]
  if (c.layer.bottom.length === 2) {
    const s = c.shape(1);
    if (s.some((d, i) => d !== x[axis + i])) c.fail(`bottom 1 shape [${s}] does not match bottom 0 [${x}] from axis ${axis}`);
    const shaped = c.tmp("operand", broadcastShape(s, x.length, axis));
    c.node("Reshape", [c.input(1), c.i64("operand_shape", broadcastShape(s, x.length, axis))], [shaped]);
    steps.push([isScale ? "Mul" : "Add", shaped]);
  } else {
    const na = num(p, "num_axes");
    if (na < -1) c.fail(`num_axes ${na} must be -1 or more`);
    const covered = x.slice(axis, na === -1 ? x.length : axis + na);
    if (na !== -1 && axis + na > x.length) c.fail(`axis ${axis} + num_axes ${na} exceeds the bottom rank ${x.length}`);
    const w = c.weight(blob++, covered.length ? covered : [1], isScale ? "scale" : "bias");
    steps.push([isScale ? "Mul" : "Add", c.init(isScale ? "scale" : "bias", w.reshape(broadcastShape(covered, x.length, axis)))]);
  }
  if (isScale && bool(p, "bias_term")) {
    const na = c.layer.bottom.length === 2 ? c.shape(1).length : num(p, "num_axes");
    const covered = x.slice(axis, na === -1 ? x.length : axis + na);
    const b = c.weight(blob++, covered.length ? covered : [1], "bias");
    steps.push(["Add", c.init("bias", b.reshape(broadcastShape(covered, x.length, axis)))]);
  }
  steps.forEach(([op, operand], i) => {
    const out = i === steps.length - 1 ? finalOut : c.tmp(op.toLowerCase(), x);
    c.node(op, [y, operand], [out]);
    y = out;
  });
  c.setTop(0, x);
}

function eltwise(c: LayerCtx): void {
  c.arity([2, Infinity], [1, 1]);
  const p = c.param("eltwise_param");
  const x = c.shape(0);
  const n = c.layer.bottom.length;
  for (let i = 1; i < n; i++) {
    const s = c.shape(i);
    if (s.length !== x.length || s.some((d, k) => d !== x[k])) c.fail(`bottom ${i} has shape [${s}] but bottom 0 has [${x}]; Eltwise needs equal shapes`);
  }
  const op = str(p, "operation");
  const coeff = nums(p, "coeff");
  if (coeff.length && op !== "SUM") c.fail(`coeff is only allowed with operation SUM`);
  if (coeff.length && coeff.length !== n) c.fail(`has ${coeff.length} coeff values for ${n} bottoms`);
  const out = c.top(0);
  if (op === "MAX") {
    c.node("Max", Array.from({ length: n }, (_, i) => c.input(i)), [out]);
    c.setTop(0, x);
    return;
  }
  const cf = (i: number) => (coeff.length ? coeff[i]! : 1);
  let acc = c.input(0);
  if (op === "SUM" && cf(0) !== 1) {
    const t = c.tmp("scaled0", x);
    c.node("Mul", [acc, c.f32("coeff0", [], [cf(0)])], [t]);
    acc = t;
  }
  for (let i = 1; i < n; i++) {
    const dst = i === n - 1 ? out : c.tmp(`acc${i}`, x);
    if (op === "PROD") {
      c.node("Mul", [acc, c.input(i)], [dst]);
    } else if (cf(i) === 1 || cf(i) === -1) {
      c.node(cf(i) === 1 ? "Add" : "Sub", [acc, c.input(i)], [dst]);
    } else {
      const t = c.tmp(`scaled${i}`, x);
      c.node("Mul", [c.input(i), c.f32(`coeff${i}`, [], [cf(i)])], [t]);
      c.node("Add", [acc, t], [dst]);
    }
    acc = dst;
  }
  c.setTop(0, x);
}

function concat(c: LayerCtx): void {
  c.arity([1, Infinity], [1, 1]);
  const p = c.param("concat_param");
  const x = c.shape(0);
  const axis = c.has(p, "concat_dim") && !c.has(p, "axis") ? num(p, "concat_dim") : axisOf(c, num(p, "axis"), x.length);
  if (axis >= x.length) c.fail(`concat_dim ${axis} is out of range for rank ${x.length}`);
  const out = [...x];
  for (let i = 1; i < c.layer.bottom.length; i++) {
    const s = c.shape(i);
    if (s.length !== x.length || s.some((d, k) => k !== axis && d !== x[k])) c.fail(`bottom ${i} shape [${s}] does not match bottom 0 [${x}] off axis ${axis}`);
    out[axis]! += s[axis]!;
  }
  if (c.layer.bottom.length === 1) {
    c.alias(0, c.input(0));
    return;
  }
  c.node("Concat", c.layer.bottom.map((_, i) => c.input(i)), [c.top(0)], { axis });
  c.setTop(0, out);
}

function slice(c: LayerCtx): void {
  c.arity([1, 1], [1, Infinity]);
  const p = c.param("slice_param");
  const x = c.shape(0);
  const axis = c.has(p, "slice_dim") && !c.has(p, "axis") ? num(p, "slice_dim") : axisOf(c, num(p, "axis"), x.length);
  if (axis >= x.length) c.fail(`slice_dim ${axis} is out of range for rank ${x.length}`);
  const D = x[axis]!;
  const nt = c.layer.top.length;
  const points = nums(p, "slice_point");
  let sizes: number[];
  if (points.length) {
    if (points.length !== nt - 1) c.fail(`has ${points.length} slice_point values for ${nt} tops (need ${nt - 1})`);
    const b = [0, ...points, D];
    sizes = [];
    for (let i = 0; i < nt; i++) {
      if (b[i + 1]! <= b[i]!) c.fail(`slice_point values [${points}] must increase and stay within ${D}`);
      sizes.push(b[i + 1]! - b[i]!);
    }
  } else {
    if (D % nt !== 0) c.fail(`axis ${axis} has size ${D}, which does not split evenly into ${nt} tops`);
    sizes = new Array<number>(nt).fill(D / nt);
  }
  if (nt === 1) {
    c.alias(0, c.input(0));
    return;
  }
  c.node("Split", [c.input(0), c.i64("split", sizes)], c.layer.top.map((_, i) => c.top(i)), { axis });
  sizes.forEach((s, i) => c.setTop(i, x.map((d, k) => (k === axis ? s : d))));
}

function split(c: LayerCtx): void {
  c.arity([1, 1], [1, Infinity]);
  c.layer.top.forEach((_, i) => c.alias(i, c.input(0)));
}

function dropout(c: LayerCtx): void {
  c.arity([1, 1], [1, 1]);
  const p = c.param("dropout_param");
  if (bool(p, "scale_train")) {
    c.alias(0, c.input(0));
    return;
  }
  c.node("Mul", [c.input(0), c.f32("keep", [], [1 - num(p, "dropout_ratio")])], [c.top(0)]);
  c.setTop(0, c.shape(0));
}

function flatten(c: LayerCtx): void {
  c.arity([1, 1], [1, 1]);
  const p = c.param("flatten_param");
  const x = c.shape(0);
  const a = axisOf(c, num(p, "axis"), x.length);
  const e = axisOf(c, num(p, "end_axis"), x.length, "end_axis");
  if (e < a) c.fail(`end_axis ${e} comes before axis ${a}`);
  const out = [...x.slice(0, a), shapeSize(x.slice(a, e + 1)), ...x.slice(e + 1)];
  if (a === 1 && e === x.length - 1) {
    c.node("Flatten", [c.input(0)], [c.top(0)], { axis: 1 });
  } else {
    const spec = [...new Array<number>(a).fill(0), -1, ...x.slice(e + 1)];
    c.node("Reshape", [c.input(0), c.i64("shape", spec)], [c.top(0)]);
  }
  c.setTop(0, out);
}

function reshape(c: LayerCtx): void {
  c.arity([1, 1], [1, 1]);
  const p = c.param("reshape_param");
  const x = c.shape(0);
  const shapeMsg = p.shape as Msg | undefined;
  if (!shapeMsg) c.fail(`reshape_param.shape is not given`);
  const spec = (shapeMsg.dim as number[]).map(Number);
  const axis = num(p, "axis"), na = num(p, "num_axes");
  const start = axis >= 0 ? axis : x.length + axis + 1;
  if (start < 0 || start > x.length) c.fail(`axis ${axis} is out of range for rank ${x.length}`);
  if (na < -1) c.fail(`num_axes ${na} must be -1 or more`);
  const end = na === -1 ? x.length : start + na;
  if (end > x.length) c.fail(`axis ${axis} + num_axes ${na} exceeds the bottom rank ${x.length}`);
  const mid = spec.map((d, i) => {
    if (d === 0) {
      if (start + i >= x.length) c.fail(`dim ${i} is 0 (copy) but the bottom has no dim ${start + i}`);
      return x[start + i]!;
    }
    return d;
  });
  const known = [...x.slice(0, start), ...mid.filter((d) => d !== -1), ...x.slice(end)];
  const inferCount = spec.filter((d) => d === -1).length;
  if (inferCount > 1) c.fail(`more than one dim is -1`);
  if (spec.some((d) => d < -1)) c.fail(`dim values must be >= -1`);
  const total = shapeSize(x);
  const knownSize = shapeSize(known);
  if (inferCount === 1 && (knownSize === 0 || total % knownSize !== 0)) c.fail(`cannot infer the -1 dim: ${total} values do not divide by ${knownSize}`);
  const resolved = mid.map((d) => (d === -1 ? total / knownSize : d));
  const out = [...x.slice(0, start), ...resolved, ...x.slice(end)];
  if (shapeSize(out) !== total) c.fail(`shape [${out}] holds ${shapeSize(out)} values but the bottom [${x}] has ${total}`);
  // ONNX 0 copies the input dim at the same index, as Caffe's does when the spec starts at axis 0
  const onnxSpec = start === 0 && end === x.length ? spec : [...new Array<number>(start).fill(0), ...spec, ...x.slice(end)];
  c.node("Reshape", [c.input(0), c.i64("shape", onnxSpec)], [c.top(0)]);
  c.setTop(0, out);
}

function permute(c: LayerCtx): void {
  c.arity([1, 1], [1, 1]);
  const x = c.shape(0);
  const order = nums(c.param("permute_param"), "order").map(Number);
  const perm: number[] = [];
  for (const o of order) {
    if (o >= x.length || perm.includes(o)) c.fail(`order [${order}] is not a permutation of the ${x.length} axes`);
    perm.push(o);
  }
  for (let i = 0; i < x.length; i++) if (!perm.includes(i)) perm.push(i);
  c.node("Transpose", [c.input(0)], [c.top(0)], { perm });
  c.setTop(0, perm.map((i) => x[i]!));
}

function softmax(c: LayerCtx): void {
  c.arity([1, 1], [1, 1]);
  const x = c.shape(0);
  const axis = axisOf(c, num(c.param("softmax_param"), "axis"), x.length);
  c.node("Softmax", [c.input(0)], [c.top(0)], { axis });
  c.setTop(0, x);
}

function lrn(c: LayerCtx): void {
  c.arity([1, 1], [1, 1]);
  const p = c.param("lrn_param");
  const x = c.shape(0);
  const n = num(p, "local_size"), alpha = num(p, "alpha"), beta = num(p, "beta"), k = num(p, "k");
  if (n % 2 !== 1) c.fail(`local_size ${n} must be odd`);
  if (str(p, "norm_region") === "ACROSS_CHANNELS") {
    c.node("LRN", [c.input(0)], [c.top(0)], { size: n, alpha, beta, bias: k });
    c.setTop(0, x);
    return;
  }
  // WITHIN_CHANNEL, as Caffe builds it: x * (1 + alpha * avgpool_n(x^2))^-beta, pool pad (n-1)/2,
  // divisor n*n everywhere (Caffe counts the padded cells)
  if (x.length !== 4) c.fail(`WITHIN_CHANNEL needs a 4-D bottom`);
  const pad = (n - 1) / 2;
  const sq = c.tmp("sq", x), avg = c.tmp("avg", x), sc = c.tmp("scaled", x), sh = c.tmp("shifted", x), den = c.tmp("pow", x);
  c.node("Mul", [c.input(0), c.input(0)], [sq]);
  c.node("AveragePool", [sq], [avg], { kernel_shape: [n, n], strides: [1, 1], pads: [pad, pad, pad, pad], count_include_pad: 1 });
  c.node("Mul", [avg, c.f32("alpha", [], [alpha])], [sc]);
  c.node("Add", [sc, c.f32("one", [], [1])], [sh]);
  c.node("Pow", [sh, c.f32("neg_beta", [], [-beta])], [den]);
  c.node("Mul", [c.input(0), den], [c.top(0)]);
  c.setTop(0, x);
}

/** shift + scale * x, as a chain of nodes; returns the value holding it. */
function affine(c: LayerCtx, scale: number, shift: number, last: string | undefined): string {
  const x = c.shape(0);
  let y = c.input(0);
  if (scale !== 1) {
    const out = shift === 0 && last ? last : c.tmp("scaled", x);
    c.node("Mul", [y, c.f32("scale", [], [scale])], [out]);
    y = out;
  }
  if (shift !== 0) {
    const out = last ?? c.tmp("shifted", x);
    c.node("Add", [y, c.f32("shift", [], [shift])], [out]);
    y = out;
  }
  return y;
}

function power(c: LayerCtx): void {
  c.arity([1, 1], [1, 1]);
  const p = c.param("power_param");
  const pw = num(p, "power"), scale = num(p, "scale"), shift = num(p, "shift");
  const x = c.shape(0);
  if (pw === 1 && scale === 1 && shift === 0) {
    c.alias(0, c.input(0));
    return;
  }
  const base = affine(c, scale, shift, pw === 1 ? c.top(0) : undefined);
  if (pw !== 1) c.node("Pow", [base, c.f32("power", [], [pw])], [c.top(0)]);
  c.setTop(0, x);
}

function expLayer(c: LayerCtx): void {
  c.arity([1, 1], [1, 1]);
  const p = c.param("exp_param");
  const base = num(p, "base");
  if (base !== -1 && base <= 0) c.fail(`base ${base} must be positive (or -1 for e)`);
  const ln = base === -1 ? 1 : Math.log(base);
  const inner = affine(c, num(p, "scale") * ln, num(p, "shift") * ln, undefined);
  c.node("Exp", [inner], [c.top(0)]);
  c.setTop(0, c.shape(0));
}

function logLayer(c: LayerCtx): void {
  c.arity([1, 1], [1, 1]);
  const p = c.param("log_param");
  const base = num(p, "base");
  if (base !== -1 && (base <= 0 || base === 1)) c.fail(`base ${base} must be positive and not 1 (or -1 for e)`);
  const inner = affine(c, num(p, "scale"), num(p, "shift"), undefined);
  if (base === -1) {
    c.node("Log", [inner], [c.top(0)]);
  } else {
    const l = c.tmp("ln", c.shape(0));
    c.node("Log", [inner], [l]);
    c.node("Mul", [l, c.f32("inv_ln_base", [], [1 / Math.log(base)])], [c.top(0)]);
  }
  c.setTop(0, c.shape(0));
}

function crop(c: LayerCtx): void {
  c.arity([2, 2], [1, 1]);
  const p = c.param("crop_param");
  const x = c.shape(0), ref = c.shape(1);
  if (x.length !== ref.length) c.fail(`bottoms have ranks ${x.length} and ${ref.length}; Crop needs equal ranks`);
  const axis = axisOf(c, num(p, "axis"), x.length);
  const offsets = nums(p, "offset");
  const nCrop = x.length - axis;
  if (offsets.length > 1 && offsets.length !== nCrop) c.fail(`has ${offsets.length} offsets; give 0, 1 or ${nCrop} (one per axis from ${axis})`);
  const out = [...x];
  const starts: number[] = [], ends: number[] = [], axes: number[] = [];
  for (let i = axis; i < x.length; i++) {
    const off = offsets.length === 0 ? 0 : offsets.length === 1 ? offsets[0]! : offsets[i - axis]!;
    if (off + ref[i]! > x[i]!) c.fail(`crop of ${ref[i]} at offset ${off} does not fit axis ${i} of size ${x[i]}`);
    out[i] = ref[i]!;
    if (off !== 0 || ref[i] !== x[i]) {
      starts.push(off);
      ends.push(off + ref[i]!);
      axes.push(i);
    }
  }
  if (!axes.length) {
    c.alias(0, c.input(0));
    return;
  }
  c.node("Slice", [c.input(0), c.i64("starts", starts), c.i64("ends", ends), c.i64("axes", axes)], [c.top(0)]);
  c.setTop(0, out);
}

function interp(c: LayerCtx): void {
  c.arity([1, 2], [1, 1]);
  const p = c.param("interp_param");
  const x = c.shape(0);
  if (x.length !== 4) c.fail(`Interp needs a 4-D bottom`);
  if (num(p, "pad_beg") !== 0 || num(p, "pad_end") !== 0) c.fail(`pad_beg/pad_end other than 0 are not supported`);
  const zoom = num(p, "zoom_factor"), shrink = num(p, "shrink_factor");
  const [H, W] = [x[2]!, x[3]!];
  let oh: number, ow: number;
  if (c.layer.bottom.length === 2) {
    const r = c.shape(1);
    [oh, ow] = [r[2]!, r[3]!];
  } else if (c.has(p, "height") || c.has(p, "width")) {
    [oh, ow] = [num(p, "height"), num(p, "width")];
  } else if (c.has(p, "zoom_factor") || c.has(p, "shrink_factor")) {
    if (zoom < 1 || shrink < 1) c.fail(`zoom_factor and shrink_factor must be >= 1`);
    [oh, ow] = [H, W].map((d) => {
      const s = Math.floor((d - 1) / shrink) + 1;
      return s + (s - 1) * (zoom - 1);
    }) as [number, number];
  } else {
    c.fail(`interp_param needs height/width, zoom_factor, shrink_factor or a second bottom`);
  }
  if (oh <= 0 || ow <= 0) c.fail(`output size ${oh}x${ow} is not positive`);
  const out = [x[0]!, x[1]!, oh, ow];
  c.node("Resize", [c.input(0), "", "", c.i64("sizes", out)], [c.top(0)], { mode: "linear", coordinate_transformation_mode: "align_corners" });
  c.setTop(0, out);
}

function upsample(c: LayerCtx): void {
  c.arity([1, 1], [1, 1]);
  const p = c.param("upsample_param");
  const x = c.shape(0);
  if (x.length !== 4) c.fail(`Upsample needs a 4-D bottom`);
  const sh = c.has(p, "scale_h") ? num(p, "scale_h") : num(p, "scale");
  const sw = c.has(p, "scale_w") ? num(p, "scale_w") : num(p, "scale");
  if (!(sh > 0 && sw > 0)) c.fail(`scale must be positive`);
  const out = [x[0]!, x[1]!, Math.floor(x[2]! * sh), Math.floor(x[3]! * sw)];
  c.node("Resize", [c.input(0), "", c.f32("scales", [4], [1, 1, sh, sw])], [c.top(0)], {
    mode: "nearest",
    coordinate_transformation_mode: "asymmetric",
    nearest_mode: "floor",
  });
  c.setTop(0, out);
}

/** Network inputs declared as layers. */
function inputLayer(c: LayerCtx, cv: Converter): void {
  const shapes = (c.param("input_param").shape as Msg[]).map((s) => (s.dim as number[]).map(Number));
  const tops = c.layer.top;
  if (shapes.length !== 1 && shapes.length !== tops.length) c.fail(`has ${tops.length} tops but ${shapes.length} input_param shapes`);
  tops.forEach((t, i) => cv.addInput(t, resolveInputShape(cv, t, shapes[shapes.length === 1 ? 0 : i]), c.layer));
}

function dataLayer(c: LayerCtx, cv: Converter): void {
  const t = c.layer.top[0];
  if (!t) c.fail(`has no top`);
  let shape: number[] | undefined;
  if (c.layer.type === "MemoryData") {
    const p = c.param("memory_data_param");
    shape = ["batch_size", "channels", "height", "width"].map((f) => num(p, f));
  } else if (c.layer.type === "DummyData") {
    const p = c.param("dummy_data_param");
    const s = (p.shape as Msg[])[0];
    shape = s ? (s.dim as number[]).map(Number) : ["num", "channels", "height", "width"].map((f) => nums(p, f)[0] ?? 0);
  }
  const given = cv.inputShapes[t];
  if (!given && !shape) {
    c.fail(`a ${c.layer.type} layer does not say its input shape; pass opts.inputShapes { "${t}": [N, C, H, W] }`);
  }
  cv.addInput(t, resolveInputShape(cv, t, shape ?? given!), c.layer);
  // other tops (labels) are not inputs of an inference graph
}

function resolveInputShape(cv: Converter, name: string, declared: number[] | undefined): number[] {
  return cv.inputShapes[name] ?? declared ?? [];
}

function silence(c: LayerCtx): void {
  c.arity([1, Infinity], [0, 0]);
}

/** The table: Caffe layer type string → builder. V1 enum types are mapped to these names first. */
export const LAYER_BUILDERS: Record<string, LayerBuilder> = {
  Input: inputLayer,
  Data: dataLayer,
  ImageData: dataLayer,
  HDF5Data: dataLayer,
  WindowData: dataLayer,
  AnnotatedData: dataLayer,
  MemoryData: dataLayer,
  DummyData: dataLayer,
  Convolution: convolution,
  Deconvolution: deconvolution,
  InnerProduct: innerProduct,
  Pooling: pooling,
  ReLU: relu,
  PReLU: prelu,
  ELU: elu,
  Clip: clip,
  Sigmoid: unary("Sigmoid"),
  TanH: unary("Tanh"),
  AbsVal: unary("Abs"),
  BNLL: unary("Softplus"),
  BatchNorm: batchNorm,
  Scale: (c) => scaleLike(c, "scale_param"),
  Bias: (c) => scaleLike(c, "bias_param"),
  Eltwise: eltwise,
  Concat: concat,
  Slice: slice,
  Split: split,
  Dropout: dropout,
  Flatten: flatten,
  Reshape: reshape,
  Permute: permute,
  Softmax: softmax,
  LRN: lrn,
  Power: power,
  Exp: expLayer,
  Log: logLayer,
  Crop: crop,
  Interp: interp,
  Upsample: upsample,
  Silence: silence,
};
