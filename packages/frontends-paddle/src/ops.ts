/**
 * Paddle op → IR (ai.onnx opset 17) builders, as a table. feed/fetch are handled by the reader.
 * Semantics from the formats spec §4.4 and the Paddle operator docs.
 */
import { ONNX_DTYPE, Tensor, type AttrValue, type DType } from "@q/ir";
import { A, type OpBuilder, type OpCtx } from "./context.js";
import { dtypeFromPaddle } from "./params.js";

// ---------------------------------------------------------------- helpers

const range = (a: number, b: number) => Array.from({ length: Math.max(0, b - a) }, (_, k) => a + k);
const prod = (xs: readonly number[]) => xs.reduce((a, b) => a * b, 1);

function rankOf(c: OpCtx, slot: string): number {
  const d = c.dims(c.inVar(slot));
  if (!d) c.bad(`input '${slot}' has no declared tensor shape`);
  return d.length;
}

/** Data format of a 4-D NCHW/NHWC op ("AnyLayout" counts as NCHW). */
function isNHWC(c: OpCtx, attr = "data_format"): boolean {
  const f = c.s(attr, "NCHW");
  if (f === "NHWC") return true;
  if (f === "NCHW" || f === "AnyLayout" || f === "") return false;
  return c.unsupported(`${attr} '${f}' is not supported (NCHW or NHWC)`);
}

/** Run `body` in NCHW: transpose an NHWC input in and the result back out. */
function inNCHW(c: OpCtx, nhwc: boolean, x: string, out: string, body: (x: string, out: string) => void): void {
  if (!nhwc) return body(x, out);
  const xt = c.op1("Transpose", [x], { perm: A.is([0, 3, 1, 2]) }, "nchw");
  const yt = c.tmp("nchw_out");
  body(xt, yt);
  c.emit("Transpose", [yt], [out], { perm: A.is([0, 2, 3, 1]) });
}

/** Conv/pool padding: ONNX pads (all begins, then all ends) or auto_pad. */
function padAttrs(c: OpCtx, nSpatial: number, attrs: Record<string, AttrValue>, forceUnitDilation: boolean): void {
  const algo = c.s("padding_algorithm", "EXPLICIT");
  if (algo === "SAME") {
    attrs.auto_pad = A.s("SAME_UPPER");
    if (forceUnitDilation && attrs.dilations) attrs.dilations = A.is(Array(nSpatial).fill(1));
    return;
  }
  if (algo === "VALID") {
    attrs.pads = A.is(Array(2 * nSpatial).fill(0));
    return;
  }
  if (algo !== "EXPLICIT" && algo !== "") c.unsupported(`padding_algorithm '${algo}' is not supported`);
  const p = c.ints("paddings", Array(nSpatial).fill(0));
  if (p.length === nSpatial) attrs.pads = A.is([...p, ...p]);
  else if (p.length === 2 * nSpatial) attrs.pads = A.is([...range(0, nSpatial).map((k) => p[2 * k]!), ...range(0, nSpatial).map((k) => p[2 * k + 1]!)]);
  else c.bad(`paddings has ${p.length} values; expected ${nSpatial} or ${2 * nSpatial}`);
}

/** Unsqueeze `name` (of rank `rank`) with `n` trailing size-1 dims; folds constants. */
function trailingOnes(c: OpCtx, name: string, rank: number, n: number): string {
  const v = c.value(name);
  if (v) return c.konstant(v.reshape([...v.shape, ...Array(n).fill(1)]), `${name}_bcast`);
  return c.op1("Unsqueeze", [name, c.i64(range(rank, rank + n))], undefined, `${name}_bcast`);
}

/** Transpose the last two dims (rank known); folds 2-D constants. */
function swapLast2(c: OpCtx, name: string, rank: number): string {
  if (rank < 2) return name;
  const v = c.value(name);
  if (v && rank === 2 && v.dtype === "float32") {
    const [r, k] = v.shape as [number, number];
    const src = v.data as Float32Array;
    const dst = new Float32Array(r * k);
    for (let i = 0; i < r; i++) for (let j = 0; j < k; j++) dst[j * r + i] = src[i * k + j]!;
    return c.konstant(new Tensor("float32", [k, r], dst), `${name}_T`);
  }
  const perm = [...range(0, rank - 2), rank - 1, rank - 2];
  return c.op1("Transpose", [name], { perm: A.is(perm) }, `${name}_T`);
}

/** 1-D int64 from a list of 1-element tensors (Paddle "TensorList" inputs); folds constants. */
function listToI64(c: OpCtx, names: string[]): string {
  const vals = names.map((n) => c.value(n));
  if (vals.every((v) => v)) return c.i64(vals.flatMap((v) => v!.toArray()));
  const parts = names.map((n) => {
    const v = c.value(n);
    if (v) return c.i64(v.toArray());
    const cast = c.op1("Cast", [n], { to: A.i(ONNX_DTYPE.int64) }, "i64");
    return c.op1("Reshape", [cast, c.i64([1])], undefined, "i64");
  });
  return parts.length === 1 ? parts[0]! : c.op1("Concat", parts, { axis: A.i(0) }, "i64");
}

/** A 1-D tensor input as int64 (folds constants). */
function asI64(c: OpCtx, name: string): string {
  const v = c.value(name);
  if (v) return c.i64(v.toArray());
  return c.op1("Cast", [name], { to: A.i(ONNX_DTYPE.int64) }, "i64");
}

/** Shape(x)[a:b] as int64. */
function shapeSlice(c: OpCtx, x: string, a: number, b: number): string {
  const s = c.op1("Shape", [x], undefined, "shape");
  return c.op1("Slice", [s, c.i64([a]), c.i64([b]), c.i64([0])], undefined, "shape");
}

/**
 * Reshape `flat` (whose leading dims were flattened) to lead(x) ++ tail, where lead = x.dims[:n]:
 * a constant target when at most one leading dim is unknown, Shape/Slice/Concat otherwise.
 */
function restoreLeading(c: OpCtx, flat: string, x: string, xDims: number[], n: number, tail: number[], out: string): void {
  const lead = xDims.slice(0, n);
  if (lead.filter((d) => d < 0).length <= 1 && tail.every((d) => d >= 0)) {
    c.emit("Reshape", [flat, c.i64([...lead, ...tail])], [out]);
    return;
  }
  const target = c.op1("Concat", [shapeSlice(c, x, 0, n), c.i64(tail)], { axis: A.i(0) }, "shape");
  c.emit("Reshape", [flat, target], [out]);
}

/** Flatten a constant or value to 2-D at `axis` ([prod(:axis), prod(axis:)]). */
function flatten2d(c: OpCtx, name: string, dims: number[], axis: number): string {
  if (dims.length === 2 && axis === 1) return name;
  const v = c.value(name);
  if (v) return c.konstant(v.reshape([prod(v.shape.slice(0, axis)), prod(v.shape.slice(axis))]), `${name}_2d`);
  return c.op1("Flatten", [name], { axis: A.i(axis) }, `${name}_2d`);
}

const dtypeAttr = (c: OpCtx, attr: string, dflt: number): DType => {
  const code = c.i(attr, dflt);
  const dt = dtypeFromPaddle(code);
  if (!dt) c.unsupported(`${attr} = VarType ${code} is not a supported element type`);
  return dt;
};

function numberFrom(s: string): number {
  const t = s.trim().toLowerCase();
  if (t === "inf" || t === "+inf" || t === "infinity") return Infinity;
  if (t === "-inf" || t === "-infinity") return -Infinity;
  if (t === "nan") return NaN;
  return Number(t);
}

// ---------------------------------------------------------------- builders

const unary = (onnx: string, attrs?: (c: OpCtx) => Record<string, AttrValue>): OpBuilder => (c) =>
  c.emit(onnx, [c.need("X")], [c.out("Out")], attrs?.(c));

function conv(c: OpCtx): void {
  const x = c.need("Input");
  const w = c.need("Filter");
  const bias = c.in("Bias");
  const attrs: Record<string, AttrValue> = {
    strides: A.is(c.ints("strides", [1, 1])),
    dilations: A.is(c.ints("dilations", [1, 1])),
    group: A.i(c.i("groups", 1)),
  };
  padAttrs(c, 2, attrs, true);
  const fused = c.s("fuse_activation", "") || (c.b("fuse_relu", false) ? "relu" : "");
  const residual = c.in("ResidualData");
  const out = c.out("Output");
  inNCHW(c, isNHWC(c), x, out, (xi, yo) => {
    const extra = !!fused || !!residual;
    const y = extra ? c.tmp("conv") : yo;
    c.emit("Conv", bias ? [xi, w, bias] : [xi, w], [y], attrs);
    let cur = y;
    if (residual) {
      const r = fused ? c.tmp("conv_res") : yo;
      c.emit("Add", [cur, residual], [r]);
      cur = r;
    }
    if (fused === "relu") c.emit("Relu", [cur], [yo]);
    else if (fused === "relu6") c.emit("Clip", [cur, c.scalar(0), c.scalar(c.f("fuse_alpha", 6) || 6)], [yo]);
    else if (fused) c.unsupported(`fused activation '${fused}' is not supported`);
  });
}

function convTranspose(c: OpCtx): void {
  const x = c.need("Input");
  const w = c.need("Filter");
  const bias = c.in("Bias");
  const strides = c.ints("strides", [1, 1]);
  const attrs: Record<string, AttrValue> = {
    strides: A.is(strides),
    dilations: A.is(c.ints("dilations", [1, 1])),
    group: A.i(c.i("groups", 1)),
  };
  const wDims = c.dims(c.inVar("Filter"));
  const inDims = c.dims(c.inVar("Input"));
  const nhwc = isNHWC(c);
  const spatial = inDims ? (nhwc ? inDims.slice(1, 3) : inDims.slice(2, 4)) : undefined;
  if (c.s("padding_algorithm", "EXPLICIT") === "SAME") {
    // Paddle pads as the matching forward conv would: needs the input size
    if (!spatial || spatial.some((d) => d < 0) || !wDims) c.unsupported("padding_algorithm SAME needs a known input size (give inputShapes)");
    const ks = wDims.slice(2);
    const begin: number[] = [], end: number[] = [];
    spatial.forEach((n, k) => {
      const o = Math.ceil(n / strides[k]!);
      const total = Math.max((o - 1) * strides[k]! + ks[k]! - n, 0);
      begin.push(Math.floor(total / 2));
      end.push(total - Math.floor(total / 2));
    });
    attrs.pads = A.is([...begin, ...end]);
    attrs.dilations = A.is([1, 1]);
  } else {
    padAttrs(c, 2, attrs, false);
  }
  const outPad = c.ints("output_padding", []);
  const outSize = c.ints("output_size", []);
  if (outSize.length) {
    if (!spatial || spatial.some((d) => d < 0) || !wDims) c.unsupported("output_size needs a known input size (give inputShapes)");
    const pads = (attrs.pads as { value: number[] }).value;
    const dil = (attrs.dilations as { value: number[] }).value;
    attrs.output_padding = A.is(spatial.map((n, k) => {
      const natural = (n - 1) * strides[k]! - pads[k]! - pads[k + 2]! + dil[k]! * (wDims[k + 2]! - 1) + 1;
      return outSize[k]! - natural;
    }));
  } else if (outPad.length) {
    attrs.output_padding = A.is(outPad);
  }
  inNCHW(c, nhwc, x, c.out("Output"), (xi, yo) => c.emit("ConvTranspose", bias ? [xi, w, bias] : [xi, w], [yo], attrs));
}

function batchNorm(c: OpCtx): void {
  const ins = ["X", "Scale", "Bias", "Mean", "Variance"].map((s) => c.need(s));
  const nhwc = c.s("data_layout", "NCHW") === "NHWC" && rankOf(c, "X") === 4;
  inNCHW(c, nhwc, ins[0]!, c.out("Y"), (xi, yo) =>
    c.emit("BatchNormalization", [xi, ...ins.slice(1)], [yo], { epsilon: A.f(c.f("epsilon", 1e-5)) }),
  );
}

function pool(c: OpCtx): void {
  const x = c.need("X");
  const type = c.s("pooling_type", "max");
  if (type !== "max" && type !== "avg") c.unsupported(`pooling_type '${type}' is not supported`);
  const isMax = type === "max";
  const ksize = c.ints("ksize", [1, 1]);
  const nhwc = isNHWC(c);
  const xd = c.dims(c.inVar("X"));
  const spatial = xd ? (nhwc ? xd.slice(1, 3) : xd.slice(2, 4)) : undefined;
  const out = c.out("Out");
  const global = c.b("global_pooling", false) || (c.b("adaptive", false) && ksize.every((k) => k === 1));
  if (global) {
    inNCHW(c, nhwc, x, out, (xi, yo) => c.emit(isMax ? "GlobalMaxPool" : "GlobalAveragePool", [xi], [yo]));
    return;
  }
  const attrs: Record<string, AttrValue> = {};
  if (c.b("adaptive", false)) {
    // adaptive bins are a plain pooling when the input size is a multiple of the output size
    if (!spatial || spatial.some((d, k) => d < 0 || d % ksize[k]! !== 0)) {
      c.unsupported(`adaptive pooling to [${ksize}] needs an input size that is a known multiple of it (input [${spatial ?? "?"}])`);
    }
    const k = spatial.map((d, i) => d / ksize[i]!);
    attrs.kernel_shape = A.is(k);
    attrs.strides = A.is(k);
    attrs.pads = A.is([0, 0, 0, 0]);
  } else {
    attrs.kernel_shape = A.is(ksize);
    attrs.strides = A.is(c.ints("strides", [1, 1]));
    padAttrs(c, 2, attrs, false);
    if (c.b("ceil_mode", false)) attrs.ceil_mode = A.i(1);
    if (!isMax) attrs.count_include_pad = A.i(c.b("exclusive", true) ? 0 : 1);
  }
  inNCHW(c, nhwc, x, out, (xi, yo) => c.emit(isMax ? "MaxPool" : "AveragePool", [xi], [yo], attrs));
}

/** Paddle elementwise broadcasting: Y's dims line up with X's starting at `axis` (−1: trailing). */
const elementwise = (onnx: string): OpBuilder => (c: OpCtx) => {
  let x = c.need("X");
  let y = c.need("Y");
  const axis = c.i("axis", -1);
  if (axis !== -1) {
    const rx = c.dims(c.inVar("X"))?.length;
    const ry = c.dims(c.inVar("Y"))?.length;
    if (rx === undefined || ry === undefined) c.unsupported(`axis ${axis} broadcasting needs the ranks of X and Y`);
    if (rx !== ry) {
      const [big, small] = rx > ry ? [rx, ry] : [ry, rx];
      const a = axis < 0 ? axis + big - small + 1 : axis;
      const trail = big - a - small;
      if (a < 0 || trail < 0) c.bad(`axis ${axis} does not fit ranks ${rx} and ${ry}`);
      if (trail > 0) {
        if (rx > ry) y = trailingOnes(c, y, ry, trail);
        else x = trailingOnes(c, x, rx, trail);
      }
    }
  }
  c.emit(onnx, [x, y], [c.out("Out")]);
};

const matmulWith = (tx: string, ty: string, alphaAttr?: string): OpBuilder => (c: OpCtx) => {
  let x = c.need("X");
  let y = c.need("Y");
  if (c.b(tx, false)) x = swapLast2(c, x, rankOf(c, "X"));
  if (c.b(ty, false)) y = swapLast2(c, y, rankOf(c, "Y"));
  const alpha = alphaAttr ? c.f(alphaAttr, 1) : 1;
  const out = c.out("Out");
  if (alpha === 1) {
    c.emit("MatMul", [x, y], [out]);
  } else {
    const m = c.op1("MatMul", [x, y], undefined, "matmul");
    c.emit("Mul", [m, c.scalar(alpha, c.dtype(c.inVar("X")) ?? "float32")], [out]);
  }
};

/** mul / fc: flatten X at n and W at m, MatMul, restore X's leading dims. */
function flatMatmul(c: OpCtx, xSlot: string, wSlot: string, nAttr: string, mAttr: string | undefined, out: string): string {
  const x = c.need(xSlot);
  const w = c.need(wSlot);
  const xd = c.dims(c.inVar(xSlot));
  const wd = c.dims(c.inVar(wSlot));
  if (!xd || !wd) c.bad(`${xSlot}/${wSlot} have no declared shapes`);
  const n = c.i(nAttr, 1);
  const m = mAttr ? c.i(mAttr, 1) : 1;
  const tail = wd.slice(m);
  const x2 = flatten2d(c, x, xd, n);
  const w2 = flatten2d(c, w, wd, m);
  if (n === 1 && tail.length === 1) {
    // [d0, K] @ [K, N] is already [d0, N]
    c.emit("MatMul", [x2, w2], [out]);
    return out;
  }
  const mm = c.op1("MatMul", [x2, w2], undefined, "matmul");
  restoreLeading(c, mm, x, xd, n, tail, out);
  return out;
}

function fc(c: OpCtx): void {
  const bias = c.in("Bias");
  const act = c.s("activation_type", "");
  if (act && act !== "relu") c.unsupported(`activation_type '${act}' is not supported`);
  const out = c.out("Out");
  const mmOut = bias || act ? c.tmp("fc") : out;
  flatMatmul(c, "Input", "W", "in_num_col_dims", undefined, mmOut);
  let cur = mmOut;
  if (bias) {
    const bo = act ? c.tmp("fc_bias") : out;
    const bv = c.value(bias);
    const b = bv && bv.shape.length === 2 && bv.shape[0] === 1 ? c.konstant(bv.reshape([bv.shape[1]!]), `${bias}_1d`) : bias;
    c.emit("Add", [cur, b], [bo]);
    cur = bo;
  }
  if (act === "relu") c.emit("Relu", [cur], [out]);
}

function reshape(c: OpCtx): void {
  const x = c.need("X");
  const list = c.ins("ShapeTensor");
  const shapeT = c.in("Shape");
  let target: string;
  if (list.length) target = listToI64(c, list);
  else if (shapeT) target = asI64(c, shapeT);
  else target = c.i64(c.ints("shape", []));
  c.emit("Reshape", [x, target], [c.out("Out")]);
}

function flattenRange(c: OpCtx): void {
  const x = c.need("X");
  const xd = c.dims(c.inVar("X"));
  if (!xd) c.bad("X has no declared shape");
  const r = xd.length;
  if (r === 0) return c.emit("Reshape", [x, c.i64([1])], [c.out("Out")]);
  const norm = (a: number) => (a < 0 ? a + r : a);
  const start = norm(c.i("start_axis", 1));
  const stop = norm(c.i("stop_axis", -1));
  if (start > stop) c.bad(`start_axis ${start} > stop_axis ${stop}`);
  const after = xd.slice(stop + 1);
  const out = c.out("Out");
  if (after.every((d) => d >= 0)) {
    // 0 copies the leading dims (same positions in and out); the tail is known
    c.emit("Reshape", [x, c.i64([...Array(start).fill(0), -1, ...after])], [out]);
    return;
  }
  const parts = [shapeSlice(c, x, 0, start), c.i64([-1]), shapeSlice(c, x, stop + 1, r)];
  c.emit("Reshape", [x, c.op1("Concat", parts, { axis: A.i(0) }, "shape")], [out]);
}

function concat(c: OpCtx): void {
  let axis = c.i("axis", 0);
  const at = c.in("AxisTensor");
  if (at) {
    const v = c.value(at);
    if (!v) c.unsupported("AxisTensor that is not a constant is not supported");
    axis = v.scalar();
  }
  c.emit("Concat", c.ins("X"), [c.out("Out")], { axis: A.i(axis) });
}

function split(c: OpCtx): void {
  const x = c.need("X");
  let axis = c.i("axis", 0);
  const at = c.in("AxisTensor");
  if (at) {
    const v = c.value(at);
    if (!v) c.unsupported("AxisTensor that is not a constant is not supported");
    axis = v.scalar();
  }
  if (c.ins("SectionsTensorList").length) c.unsupported("SectionsTensorList is not supported");
  const outVars = c.outVars("Out");
  const xd = c.dims(c.inVar("X"));
  const ax = axis < 0 && xd ? axis + xd.length : axis;
  const total = xd?.[ax];
  const num = c.i("num", 0);
  let sizes: number[] = num > 0 ? Array(num).fill(-1) : [...c.ints("sections", [])];
  if (num > 0 && total !== undefined && total >= 0) sizes = Array(num).fill(total / num);
  const unknown = sizes.filter((s) => s < 0).length;
  if (unknown === 1 && total !== undefined && total >= 0) {
    const known = sizes.filter((s) => s >= 0).reduce((a, b) => a + b, 0);
    sizes = sizes.map((s) => (s < 0 ? total - known : s));
  }
  // fall back to the declared output sizes
  sizes = sizes.map((s, k) => (s >= 0 ? s : (c.dims(outVars[k])?.[ax] ?? -1)));
  if (sizes.some((s) => s < 0)) c.unsupported(`split sizes on axis ${axis} cannot be determined (input size unknown; give inputShapes)`);
  c.emit("Split", [x, c.i64(sizes)], c.outs("Out"), { axis: A.i(ax) });
}

function slice(c: OpCtx): void {
  const x = c.need("Input");
  const axes = c.ints("axes", []);
  const startsT = c.in("StartsTensor");
  const endsT = c.in("EndsTensor");
  const startsL = c.ins("StartsTensorList");
  const endsL = c.ins("EndsTensorList");
  const starts = startsT ? asI64(c, startsT) : startsL.length ? listToI64(c, startsL) : c.i64(c.ints("starts", []));
  const ends = endsT ? asI64(c, endsT) : endsL.length ? listToI64(c, endsL) : c.i64(c.ints("ends", []));
  const dec = c.ints("decrease_axis", []);
  const out = c.out("Out");
  const inRank = c.dims(c.inVar("Input"))?.length;
  const outRank = c.dims(c.outVars("Out")[0])?.length;
  // Paddle < 2.5 keeps a [1] tensor when every dim is decreased; later releases give 0-D
  const squeeze = dec.length > 0 && !(inRank !== undefined && inRank === dec.length && outRank === 1);
  if (!squeeze) {
    c.emit("Slice", [x, starts, ends, c.i64(axes)], [out]);
    return;
  }
  const s = c.op1("Slice", [x, starts, ends, c.i64(axes)], undefined, "slice");
  c.emit("Squeeze", [s, c.i64(dec)], [out]);
}

function scale(c: OpCtx): void {
  const x = c.need("X");
  const dt = c.dtype(c.inVar("X")) ?? "float32";
  const st = c.in("ScaleTensor");
  const s = c.f("scale", 1);
  const b = c.f("bias", 0);
  const after = c.b("bias_after_scale", true);
  const out = c.out("Out");
  const steps: [string, string][] = [];
  const mulBy = st ?? (s !== 1 ? c.scalar(s, dt) : undefined);
  const addB = b !== 0 ? c.scalar(b, dt) : undefined;
  if (after) {
    if (mulBy) steps.push(["Mul", mulBy]);
    if (addB) steps.push(["Add", addB]);
  } else {
    if (addB) steps.push(["Add", addB]);
    if (mulBy) steps.push(["Mul", mulBy]);
  }
  if (!steps.length) return c.emit("Identity", [x], [out]);
  let cur = x;
  steps.forEach(([op, k], i) => {
    const o = i === steps.length - 1 ? out : c.tmp("scale");
    c.emit(op, [cur, k], [o]);
    cur = o;
  });
}

function dropout(c: OpCtx): void {
  const x = c.need("X");
  const out = c.out("Out");
  const impl = c.s("dropout_implementation", "downgrade_in_infer");
  const p = c.f("dropout_prob", 0.5);
  // inference: upscale_in_train is the identity, downgrade_in_infer scales by (1 - p)
  if (impl === "upscale_in_train" || p === 0) return c.emit("Identity", [x], [out]);
  if (impl !== "downgrade_in_infer") c.unsupported(`dropout_implementation '${impl}' is not supported`);
  c.emit("Mul", [x, c.scalar(1 - p, c.dtype(c.inVar("X")) ?? "float32")], [out]);
}

const interp = (mode: "nearest" | "linear" | "cubic", v2: boolean): OpBuilder => (c: OpCtx) => {
  const x = c.need("X");
  const nhwc = c.s("data_layout", "NCHW") === "NHWC";
  const alignCorners = c.b("align_corners", true);
  const alignMode = c.i("align_mode", 1);
  const attrs: Record<string, AttrValue> = { mode: A.s(mode) };
  if (mode === "nearest") {
    attrs.coordinate_transformation_mode = A.s(alignCorners ? "align_corners" : "asymmetric");
    attrs.nearest_mode = A.s(alignCorners ? "round_prefer_ceil" : "floor");
  } else if (mode === "linear") {
    attrs.coordinate_transformation_mode = A.s(alignCorners ? "align_corners" : alignMode === 0 ? "half_pixel" : "asymmetric");
  } else {
    attrs.coordinate_transformation_mode = A.s(alignCorners ? "align_corners" : "half_pixel");
    attrs.cubic_coeff_a = A.f(-0.75);
  }
  const hw = nhwc ? [1, 2] : [2, 3];
  const out = c.out("Out");
  const withSizes = (hwSizes: string) => {
    const parts = nhwc
      ? [shapeSlice(c, x, 0, 1), hwSizes, shapeSlice(c, x, 3, 4)]
      : [shapeSlice(c, x, 0, 2), hwSizes];
    const sizes = c.op1("Concat", parts, { axis: A.i(0) }, "sizes");
    c.emit("Resize", [x, "", "", sizes], [out], attrs);
  };
  const withScales = (sh: number, sw: number) => {
    const s = [1, 1, 1, 1];
    s[hw[0]!] = sh;
    s[hw[1]!] = sw;
    c.emit("Resize", [x, "", c.konstant(Tensor.f32([4], s), "scales")], [out], attrs);
  };
  const sizeList = c.ins("SizeTensor");
  const outSize = c.in("OutSize");
  const scaleT = c.in("Scale");
  if (sizeList.length) return withSizes(listToI64(c, sizeList));
  if (outSize) return withSizes(asI64(c, outSize));
  if (scaleT) {
    const v = c.value(scaleT);
    if (!v) c.unsupported("a Scale input that is not a constant is not supported");
    const a = v.toArray();
    return withScales(a[0]!, a[1] ?? a[0]!);
  }
  const sc = v2 ? c.floats("scale", []) : [c.f("scale", 0)];
  if (sc.length && sc[0]! > 0) return withScales(sc[0]!, sc[1] ?? sc[0]!);
  const oh = c.i("out_h", -1);
  const ow = c.i("out_w", -1);
  if (oh > 0 && ow > 0) return withSizes(c.i64([oh, ow]));
  c.bad("no output size: none of SizeTensor, OutSize, Scale, scale, out_h/out_w is set");
};

function squeeze(c: OpCtx): void {
  const x = c.need("X");
  const xd = c.dims(c.inVar("X"));
  const asked = c.ints("axes", []);
  const out = c.out("Out");
  if (!xd) {
    if (!asked.length) return c.emit("Squeeze", [x], [out]);
    return c.emit("Squeeze", [x, c.i64(asked)], [out]);
  }
  const r = xd.length;
  // no axes: every size-1 dim; Paddle ignores listed axes whose size is not 1
  const axes = asked.length
    ? asked.map((a) => (a < 0 ? a + r : a)).filter((a) => xd[a] === 1 || xd[a]! < 0)
    : range(0, r).filter((a) => xd[a] === 1);
  if (!axes.length) return c.emit("Identity", [x], [out]);
  c.emit("Squeeze", [x, c.i64(axes)], [out]);
}

function unsqueeze(c: OpCtx): void {
  const x = c.need("X");
  const at = c.in("AxesTensor");
  let axes = c.ints("axes", []);
  if (at) {
    const v = c.value(at);
    if (!v) c.unsupported("AxesTensor that is not a constant is not supported");
    axes = v.toArray();
  }
  const r = rankOf(c, "X");
  // Paddle inserts one axis at a time (each relative to the current rank); ONNX names output positions
  const layout: boolean[] = Array(r).fill(false);
  for (const a of axes) {
    const p = a < 0 ? a + layout.length + 1 : a;
    layout.splice(p, 0, true);
  }
  const onnxAxes = layout.flatMap((isNew, k) => (isNew ? [k] : []));
  c.emit("Unsqueeze", [x, c.i64(onnxAxes)], [c.out("Out")]);
}

function fillConstant(c: OpCtx): void {
  if (c.ins("ShapeTensor").length || c.ins("ShapeTensorList").length || c.ins("ValueTensor").length) {
    c.unsupported("fill_constant with a ShapeTensor/ValueTensor input is not supported");
  }
  const dt = dtypeAttr(c, "dtype", 5);
  const shape = c.ints("shape", []);
  const sv = c.s("str_value", "");
  const v = sv ? numberFrom(sv) : c.f("value", 0);
  const n = prod(shape);
  c.bindConst(c.outVars("Out")[0]!, Tensor.fromNumbers(dt, shape, new Float64Array(n).fill(v)));
}

function hardSwish(c: OpCtx): void {
  const x = c.need("X");
  const t = c.f("threshold", 6);
  const s = c.f("scale", 6);
  const o = c.f("offset", 3);
  const out = c.out("Out");
  if (t === 6 && s === 6 && o === 3) return c.emit("HardSwish", [x], [out]);
  // x * min(max(x + offset, 0), threshold) / scale
  const a = c.op1("Add", [x, c.scalar(o)], undefined, "hswish");
  const cl = c.op1("Clip", [a, c.scalar(0), c.scalar(t)], undefined, "hswish");
  const m = c.op1("Mul", [x, cl], undefined, "hswish");
  c.emit("Div", [m, c.scalar(s)], [out]);
}

function swish(c: OpCtx): void {
  const x = c.need("X");
  const beta = c.f("beta", 1);
  const bx = beta === 1 ? x : c.op1("Mul", [x, c.scalar(beta)], undefined, "swish");
  const sg = c.op1("Sigmoid", [bx], undefined, "swish");
  c.emit("Mul", [x, sg], [c.out("Out")]);
}

function gelu(c: OpCtx): void {
  const x = c.need("X");
  const out = c.out("Out");
  const half = c.op1("Mul", [x, c.scalar(0.5)], undefined, "gelu");
  let inner: string;
  if (c.b("approximate", false)) {
    // tanh(sqrt(2/pi) * (x + 0.044715 x^3))
    const x3 = c.op1("Mul", [c.op1("Mul", [x, x], undefined, "gelu"), x], undefined, "gelu");
    const sum = c.op1("Add", [x, c.op1("Mul", [x3, c.scalar(0.044715)], undefined, "gelu")], undefined, "gelu");
    inner = c.op1("Tanh", [c.op1("Mul", [sum, c.scalar(Math.sqrt(2 / Math.PI))], undefined, "gelu")], undefined, "gelu");
  } else {
    inner = c.op1("Erf", [c.op1("Mul", [x, c.scalar(Math.SQRT1_2)], undefined, "gelu")], undefined, "gelu");
  }
  const onePlus = c.op1("Add", [inner, c.scalar(1)], undefined, "gelu");
  c.emit("Mul", [half, onePlus], [out]);
}

function layerNorm(c: OpCtx): void {
  const x = c.need("X");
  const xd = c.dims(c.inVar("X"));
  if (!xd) c.bad("X has no declared shape");
  const begin = c.i("begin_norm_axis", 1);
  const normDims = xd.slice(begin);
  const fit = (name: string | undefined, fill: number): string => {
    if (normDims.some((d) => d < 0)) {
      if (name && normDims.length === 1) return name;
      c.unsupported("layer_norm over dims of unknown size needs Scale/Bias and a single normalized axis");
    }
    if (!name) return c.konstant(Tensor.f32(normDims, new Float32Array(prod(normDims)).fill(fill)), "ln_const");
    if (normDims.length === 1) return name;
    const v = c.value(name);
    if (v) return c.konstant(v.reshape(normDims), `${name}_nd`);
    return c.op1("Reshape", [name, c.i64(normDims)], undefined, `${name}_nd`);
  };
  const sc = fit(c.in("Scale"), 1);
  const bi = fit(c.in("Bias"), 0);
  c.emit("LayerNormalization", [x, sc, bi], [c.out("Y")], { axis: A.i(begin), epsilon: A.f(c.f("epsilon", 1e-5)) });
}

function prelu(c: OpCtx): void {
  const x = c.need("X");
  let alpha = c.need("Alpha");
  const mode = c.s("mode", "all");
  const xd = c.dims(c.inVar("X"));
  if (mode === "channel" && xd && c.s("data_format", "NCHW") !== "NHWC") {
    const ad = c.dims(c.inVar("Alpha"));
    const C = xd[1] ?? -1;
    const count = ad ? prod(ad) : -1;
    const v = c.value(alpha);
    const target = [count > 0 ? count : C, ...Array(xd.length - 2).fill(1)];
    alpha = v ? c.konstant(v.reshape(target), `${alpha}_bcast`) : c.op1("Reshape", [alpha, c.i64(target)], undefined, "alpha");
  }
  c.emit("PRelu", [x, alpha], [c.out("Out")]);
}

function reduce(onnx: string, axesAsInput: boolean): OpBuilder {
  return (c) => {
    const x = c.need("X");
    const all = c.b("reduce_all", false);
    const dims = c.ints("dim", []);
    const keep = A.i(c.b("keep_dim", false) ? 1 : 0);
    const out = c.out("Out");
    if (all || !dims.length) return c.emit(onnx, [x], [out], { keepdims: keep });
    if (axesAsInput) c.emit(onnx, [x, c.i64(dims)], [out], { keepdims: keep });
    else c.emit(onnx, [x], [out], { keepdims: keep, axes: A.is(dims) });
  };
}

function clip(c: OpCtx): void {
  const x = c.need("X");
  const dt = c.dtype(c.inVar("X")) ?? "float32";
  const mn = c.in("Min") ?? c.scalar(c.f("min", -3.4e38), dt);
  const mx = c.in("Max") ?? c.scalar(c.f("max", 3.4e38), dt);
  c.emit("Clip", [x, mn, mx], [c.out("Out")]);
}

function cast(c: OpCtx): void {
  const dt = dtypeAttr(c, "out_dtype", 5);
  c.emit("Cast", [c.need("X")], [c.out("Out")], { to: A.i(ONNX_DTYPE[dt]) });
}

function argMax(c: OpCtx): void {
  let x = c.need("X");
  let axis = c.i("axis", -1);
  if (c.b("flatten", false)) {
    x = c.op1("Reshape", [x, c.i64([-1])], undefined, "flat");
    axis = 0;
  }
  const dt = dtypeAttr(c, "dtype", 3);
  const keep = A.i(c.b("keepdims", false) ? 1 : 0);
  const out = c.out("Out");
  if (dt === "int64") return c.emit("ArgMax", [x], [out], { axis: A.i(axis), keepdims: keep });
  const a = c.op1("ArgMax", [x], { axis: A.i(axis), keepdims: keep }, "argmax");
  c.emit("Cast", [a], [out], { to: A.i(ONNX_DTYPE[dt]) });
}

function stack(c: OpCtx): void {
  const axis = c.i("axis", 0);
  const parts = c.ins("X").map((n) => c.op1("Unsqueeze", [n, c.i64([axis])], undefined, "stack"));
  c.emit("Concat", parts, [c.out("Y")], { axis: A.i(axis) });
}

function shape(c: OpCtx): void {
  const s = c.op1("Shape", [c.need("Input")], undefined, "shape");
  c.emit("Cast", [s], [c.out("Out")], { to: A.i(ONNX_DTYPE.int32) });
}

function transpose(c: OpCtx): void {
  c.emit("Transpose", [c.need("X")], [c.out("Out")], { perm: A.is(c.ints("axis", [])) });
}

function pow(c: OpCtx): void {
  const x = c.need("X");
  const ft = c.in("FactorTensor");
  c.emit("Pow", [x, ft ?? c.scalar(c.f("factor", 1), c.dtype(c.inVar("X")) ?? "float32")], [c.out("Out")]);
}

// ---------------------------------------------------------------- the table

export const PADDLE_OPS: Readonly<Record<string, OpBuilder>> = {
  conv2d: conv,
  depthwise_conv2d: conv,
  conv2d_transpose: convTranspose,
  depthwise_conv2d_transpose: convTranspose,
  batch_norm: batchNorm,
  pool2d: pool,

  relu: unary("Relu"),
  relu6: (c) => c.emit("Clip", [c.need("X"), c.scalar(0), c.scalar(c.f("threshold", 6))], [c.out("Out")]),
  leaky_relu: unary("LeakyRelu", (c) => ({ alpha: A.f(c.f("alpha", 0.02)) })),
  hard_swish: hardSwish,
  hard_sigmoid: unary("HardSigmoid", (c) => ({ alpha: A.f(c.f("slope", 0.2)), beta: A.f(c.f("offset", 0.5)) })),
  sigmoid: unary("Sigmoid"),
  swish: swish,
  silu: swish,
  gelu: gelu,
  tanh: unary("Tanh"),
  exp: unary("Exp"),
  log: unary("Log"),
  sqrt: unary("Sqrt"),
  abs: unary("Abs"),
  floor: unary("Floor"),
  ceil: unary("Ceil"),
  reciprocal: unary("Reciprocal"),
  softplus: unary("Softplus"),
  elu: unary("Elu", (c) => ({ alpha: A.f(c.f("alpha", 1)) })),
  prelu: prelu,
  clip: clip,
  pow: pow,
  assign: unary("Identity"),
  cast: cast,

  elementwise_add: elementwise("Add"),
  elementwise_sub: elementwise("Sub"),
  elementwise_mul: elementwise("Mul"),
  elementwise_div: elementwise("Div"),
  elementwise_pow: elementwise("Pow"),
  elementwise_max: elementwise("Max"),
  elementwise_min: elementwise("Min"),

  matmul: matmulWith("transpose_X", "transpose_Y", "alpha"),
  matmul_v2: matmulWith("trans_x", "trans_y"),
  mul: (c) => { flatMatmul(c, "X", "Y", "x_num_col_dims", "y_num_col_dims", c.out("Out")); },
  fc: fc,
  softmax: (c) => c.emit("Softmax", [c.need("X")], [c.out("Out")], { axis: A.i(c.i("axis", -1)) }),
  layer_norm: layerNorm,

  reshape: reshape,
  reshape2: reshape,
  transpose: transpose,
  transpose2: transpose,
  flatten: (c) => c.emit("Flatten", [c.need("X")], [c.out("Out")], { axis: A.i(c.i("axis", 1)) }),
  flatten2: (c) => c.emit("Flatten", [c.need("X")], [c.out("Out")], { axis: A.i(c.i("axis", 1)) }),
  flatten_contiguous_range: flattenRange,
  concat: concat,
  split: split,
  slice: slice,
  squeeze: squeeze,
  squeeze2: squeeze,
  unsqueeze: unsqueeze,
  unsqueeze2: unsqueeze,
  stack: stack,
  shape: shape,
  fill_constant: fillConstant,
  scale: scale,
  dropout: dropout,
  arg_max: argMax,

  reduce_mean: reduce("ReduceMean", false),
  reduce_max: reduce("ReduceMax", false),
  reduce_min: reduce("ReduceMin", false),
  reduce_prod: reduce("ReduceProd", false),
  reduce_sum: reduce("ReduceSum", true),

  nearest_interp: interp("nearest", false),
  nearest_interp_v2: interp("nearest", true),
  bilinear_interp: interp("linear", false),
  bilinear_interp_v2: interp("linear", true),
  bicubic_interp: interp("cubic", false),
  bicubic_interp_v2: interp("cubic", true),
};

/** Paddle op types the reader converts (feed and fetch included). */
export function supportedPaddleOps(): string[] {
  return ["feed", "fetch", ...Object.keys(PADDLE_OPS)].sort();
}
