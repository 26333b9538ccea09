/**
 * The op tables between the IR's ONNX op set and TPU-MLIR's top dialect, one entry per op in
 * each direction (spec sophgo.md §5; attribute names from TPU-MLIR's TopOps.td).
 *
 * Writer side (ONNX → top): constant inputs that TPU-MLIR keeps as attributes (shapes, axes,
 * pads, slice bounds, clip bounds, scales) become attributes; other constants become
 * `top.Weight` operands (stored float32, as TPU-MLIR stores weights); shapes come from shape
 * inference. Reader side (top → ONNX, opset 17): each top op becomes the ONNX node(s) that
 * compute the same thing, with constant inputs as initializers.
 */
import { GraphError, Tensor, UnknownOpError, type AttrValue, type Node } from "@q/ir";
import { A, type Attrs, type MAttr } from "./mlir-text.js";

// ---------------------------------------------------------------------------------------------
// Writer side

export interface WriteCtx {
  node: Node;
  /** SSA reference of input `i` (an activation, or a weight emitted on first use). "" → the none value. */
  ref(i: number): string;
  /** The none value (`top.None`) for an absent optional operand. */
  none(): string;
  /** Constant value of input `i` (an initializer), if it is one. */
  konst(i: number): Tensor | undefined;
  /** Constant input `i` as numbers, or an error naming the node when it is not constant. */
  konstNums(i: number, what: string): number[];
  /** Emit a derived weight (e.g. a scaled Gemm operand) named from `base`. */
  weight(base: string, t: Tensor): string;
  /** Static shape of a value (input `name`), from shape inference. */
  shape(name: string): number[];
  inShape(i: number): number[];
  outShape(k?: number): number[];
  /**
   * Emit a top op. `outputs` are IR value names (their loc names and SSA refs are recorded);
   * intermediate values get names from `tmp`.
   */
  emit(op: string, operands: string[], attrs: Record<string, MAttr>, outputs: string[], outShapes?: number[][]): string[];
  /** A fresh name for an intermediate value. */
  tmp(base: string): string;
  /** Make output `k` of the node an alias of an existing SSA value (Identity, Dropout). */
  alias(k: number, ssa: string): void;
  opset: number;
}

export type WriteFn = (c: WriteCtx) => void;

const unsupported = (c: WriteCtx, detail: string): never => {
  throw new UnknownOpError(c.node.opType, c.node.domain, c.node.label, detail);
};

const norm = (axis: number, rank: number) => (axis < 0 ? axis + rank : axis);

function spatialPads(c: WriteCtx, kernel: number[], strides: number[], dilations: number[], inShape: number[]): number[] {
  const n = c.node;
  const sp = inShape.length - 2;
  const autoPad = n.str("auto_pad", "NOTSET");
  if (autoPad === "NOTSET") return n.ints("pads", new Array<number>(2 * sp).fill(0));
  if (autoPad === "VALID") return new Array<number>(2 * sp).fill(0);
  const begins: number[] = [];
  const ends: number[] = [];
  for (let d = 0; d < sp; d++) {
    const inp = inShape[d + 2]!;
    const out = Math.ceil(inp / strides[d]!);
    const total = Math.max(0, (out - 1) * strides[d]! + (kernel[d]! - 1) * dilations[d]! + 1 - inp);
    const small = Math.floor(total / 2);
    if (autoPad === "SAME_UPPER") {
      begins.push(small);
      ends.push(total - small);
    } else {
      begins.push(total - small);
      ends.push(small);
    }
  }
  return [...begins, ...ends];
}

const ones = (n: number) => new Array<number>(n).fill(1);

function convLike(c: WriteCtx, top: "top.Conv" | "top.Deconv"): void {
  const n = c.node;
  const x = c.inShape(0);
  const w = c.inShape(1);
  const sp = x.length - 2;
  const kernel = n.ints("kernel_shape", w.slice(2));
  const strides = n.ints("strides", ones(sp));
  const dilations = n.ints("dilations", ones(sp));
  const attrs: Record<string, MAttr> = {
    kernel_shape: A.i64s(kernel),
    strides: A.i64s(strides),
    dilations: A.i64s(dilations),
    group: A.i64(n.int("group", 1)),
    do_relu: A.bool(false),
    relu_limit: A.f64(-1),
  };
  if (top === "top.Conv") {
    attrs.pads = A.i64s(spatialPads(c, kernel, strides, dilations, x));
  } else {
    const outPad = n.ints("output_padding", new Array<number>(sp).fill(0));
    let pads = n.ints("pads", new Array<number>(2 * sp).fill(0));
    const outputShape = n.ints("output_shape");
    const autoPad = n.str("auto_pad", "NOTSET");
    if (outputShape || autoPad === "SAME_UPPER" || autoPad === "SAME_LOWER") {
      const y = c.outShape();
      const begins: number[] = [];
      const ends: number[] = [];
      for (let d = 0; d < sp; d++) {
        const total = strides[d]! * (x[d + 2]! - 1) + outPad[d]! + ((kernel[d]! - 1) * dilations[d]! + 1) - y[d + 2]!;
        const half = Math.floor(total / 2);
        if (autoPad === "SAME_LOWER") {
          begins.push(total - half);
          ends.push(half);
        } else {
          begins.push(half);
          ends.push(total - half);
        }
      }
      pads = [...begins, ...ends];
    }
    attrs.pads = A.i64s(pads);
    attrs.output_padding = A.i64s(outPad);
  }
  c.emit(top, [c.ref(0), c.ref(1), n.inputs[2] ? c.ref(2) : c.none()], attrs, [n.outputs[0]!]);
}

function pool(c: WriteCtx, top: "top.MaxPool" | "top.AvgPool", global: boolean): void {
  const n = c.node;
  if (n.outputs.length > 1 && n.outputs[1]) unsupported(c, "the Indices output of MaxPool has no top-dialect equivalent");
  const x = c.inShape(0);
  const sp = x.length - 2;
  const kernel = global ? x.slice(2) : n.ints("kernel_shape")!;
  const strides = global ? ones(sp) : n.ints("strides", ones(sp));
  const dil = global ? ones(sp) : n.ints("dilations", ones(sp));
  if (dil.some((d) => d !== 1)) unsupported(c, "pooling with dilations has no top-dialect equivalent");
  const attrs: Record<string, MAttr> = {
    kernel_shape: A.i64s(kernel),
    strides: A.i64s(strides),
    pads: A.i64s(global ? new Array<number>(2 * sp).fill(0) : spatialPads(c, kernel, strides, dil, x)),
    do_relu: A.bool(false),
    relu_limit: A.f64(-1),
    keepdims: A.bool(true),
  };
  if (top === "top.AvgPool") attrs.count_include_pad = A.bool(!global && n.int("count_include_pad", 0) === 1);
  if (!global && n.int("ceil_mode", 0) === 1) attrs.ceil_mode = A.bool(true);
  c.emit(top, [c.ref(0)], attrs, [n.outputs[0]!]);
}

const unary = (top: string, attrs: (c: WriteCtx) => Record<string, MAttr> = () => ({})): WriteFn => (c) => {
  c.emit(top, [c.ref(0)], attrs(c), [c.node.outputs[0]!]);
};

const binary = (top: string, extra: Record<string, MAttr> = {}): WriteFn => (c) => {
  const n = c.node;
  if (n.inputs.length !== 2) unsupported(c, `expected 2 inputs, got ${n.inputs.length}`);
  c.emit(top, [c.ref(0), c.ref(1)], { do_relu: A.bool(false), relu_limit: A.f64(-1), ...extra }, [n.outputs[0]!]);
};

function reduceAxes(c: WriteCtx, axesInputFrom: number): number[] {
  const n = c.node;
  const rank = c.inShape(0).length;
  let axes: number[] | undefined;
  if (c.opset >= axesInputFrom) axes = n.inputs[1] ? c.konstNums(1, "axes") : undefined;
  else axes = n.ints("axes");
  if (!axes || !axes.length) {
    if (n.int("noop_with_empty_axes", 0) === 1) unsupported(c, "noop_with_empty_axes=1 with no axes");
    axes = [...Array(rank).keys()];
  }
  return axes.map((a) => norm(a, rank)).sort((a, b) => a - b);
}

const reduce = (mode: string, axesInputFrom: number): WriteFn => (c) => {
  c.emit("top.Reduce", [c.ref(0)], { axes: A.i64s(reduceAxes(c, axesInputFrom)), keepdims: A.bool(c.node.int("keepdims", 1) === 1), mode: A.str(mode) }, [c.node.outputs[0]!]);
};

function scalarConst(c: WriteCtx, i: number): number | undefined {
  const t = c.konst(i);
  if (!t || t.size !== 1) return undefined;
  return t.scalar();
}

function gemm(c: WriteCtx): void {
  const n = c.node;
  if (n.int("transA", 0) === 1) unsupported(c, "Gemm with transA=1 has no top.MatMul form; transpose A first");
  const alpha = n.float("alpha", 1);
  const beta = n.float("beta", 1);
  let b = c.ref(1);
  if (alpha !== 1) {
    const bt = c.konst(1);
    if (!bt) unsupported(c, "Gemm with alpha != 1 needs a constant B");
    const d = bt!.toFloat32().map((v) => v * alpha);
    b = c.weight(`${n.inputs[1]}_alpha`, new Tensor("float32", bt!.shape, d));
  }
  const transB = n.int("transB", 0) === 1;
  const nOut = c.outShape()[1]!;
  let bias = c.none();
  let addAfter: string | undefined;
  if (n.inputs[2]) {
    const ct = c.konst(2);
    if (ct && ct.size === nOut) {
      const d = beta === 1 ? ct.toFloat32() : ct.toFloat32().map((v) => v * beta);
      bias = beta === 1 && ct.rank === 1 && ct.dtype === "float32" ? c.ref(2) : c.weight(`${n.inputs[2]}_bias`, new Tensor("float32", [nOut], d));
    } else if (ct && ct.size === 1) {
      const v = ct.scalar() * beta;
      bias = c.weight(`${n.inputs[2]}_bias`, Tensor.f32([nOut], new Array<number>(nOut).fill(v)));
    } else {
      if (beta !== 1) unsupported(c, "Gemm with beta != 1 needs a constant C");
      addAfter = c.ref(2);
    }
  }
  const attrs = { right_transpose: A.bool(transB), do_relu: A.bool(false), relu_limit: A.f64(-1) };
  const out = n.outputs[0]!;
  if (!addAfter) {
    c.emit("top.MatMul", [c.ref(0), b, bias], attrs, [out]);
  } else {
    const mid = c.tmp(`${out}_matmul`);
    const [mm] = c.emit("top.MatMul", [c.ref(0), b, c.none()], attrs, [mid], [c.outShape()]);
    c.emit("top.Add", [mm!, addAfter], { do_relu: A.bool(false), relu_limit: A.f64(-1) }, [out]);
  }
}

function softmax(c: WriteCtx, log: boolean): void {
  const n = c.node;
  const x = c.inShape(0);
  const rank = x.length;
  const axis = norm(n.int("axis", c.opset >= 13 ? -1 : 1), rank);
  const attrs = { axis: A.si32(axis), log: A.bool(log), beta: A.f64(1) };
  if (c.opset >= 13 || axis === rank - 1) {
    c.emit("top.Softmax", [c.ref(0)], attrs, [n.outputs[0]!]);
    return;
  }
  // opset < 13: softmax over the flattened trailing dims
  const outer = x.slice(0, axis).reduce((a, b) => a * b, 1);
  const inner = x.slice(axis).reduce((a, b) => a * b, 1);
  const out = n.outputs[0]!;
  const [r1] = c.emit("top.Reshape", [c.ref(0)], { shape: A.i64s([outer, inner]) }, [c.tmp(`${out}_flat`)], [[outer, inner]]);
  const [s] = c.emit("top.Softmax", [r1!], { ...attrs, axis: A.si32(1) }, [c.tmp(`${out}_softmax`)], [[outer, inner]]);
  c.emit("top.Reshape", [s!], { shape: A.i64s(x) }, [out]);
}

function slice(c: WriteCtx): void {
  const n = c.node;
  const x = c.inShape(0);
  const rank = x.length;
  let starts: number[];
  let ends: number[];
  let axes: number[];
  let steps: number[];
  if (c.opset >= 10) {
    starts = c.konstNums(1, "starts");
    ends = c.konstNums(2, "ends");
    axes = n.inputs[3] ? c.konstNums(3, "axes") : [...starts.keys()];
    steps = n.inputs[4] ? c.konstNums(4, "steps") : ones(starts.length);
  } else {
    starts = n.ints("starts")!;
    ends = n.ints("ends")!;
    axes = n.ints("axes", [...starts.keys()]);
    steps = ones(starts.length);
  }
  const offset = new Array<number>(rank).fill(0);
  const end = [...x];
  const step = ones(rank);
  axes.forEach((a0, k) => {
    const a = norm(a0, rank);
    const dim = x[a]!;
    const st = steps[k]!;
    if (st === 0) unsupported(c, "Slice step 0");
    let s = starts[k]!;
    let e = ends[k]!;
    if (s < 0) s += dim;
    if (e < 0) e += dim;
    if (st > 0) {
      s = Math.min(Math.max(s, 0), dim);
      e = Math.min(Math.max(e, 0), dim);
    } else {
      s = Math.min(Math.max(s, 0), dim - 1);
      e = Math.min(Math.max(e, -1), dim - 1);
    }
    offset[a] = s;
    end[a] = e;
    step[a] = st;
  });
  c.emit("top.Slice", [c.ref(0), c.none(), c.none(), c.none()], { offset: A.i64s(offset), ends: A.i64s(end), steps: A.i64s(step), axes: A.i64s([...Array(rank).keys()]) }, [n.outputs[0]!]);
}

function pad(c: WriteCtx): void {
  const n = c.node;
  const rank = c.inShape(0).length;
  const mode = n.str("mode", "constant");
  if (!["constant", "reflect", "edge"].includes(mode)) unsupported(c, `Pad mode '${mode}' has no top.Pad equivalent`);
  let pads: number[];
  let value = 0;
  if (c.opset >= 11) {
    pads = c.konstNums(1, "pads");
    if (n.inputs[2]) {
      const v = c.konst(2);
      if (!v) unsupported(c, "a non-constant pad value");
      value = v!.size ? v!.scalar() : 0;
    }
    if (n.inputs[3]) {
      const axes = c.konstNums(3, "axes").map((a) => norm(a, rank));
      const full = new Array<number>(2 * rank).fill(0);
      axes.forEach((a, k) => {
        full[a] = pads[k]!;
        full[a + rank] = pads[k + axes.length]!;
      });
      pads = full;
    }
  } else {
    pads = n.ints("pads")!;
    value = n.float("value", 0);
  }
  c.emit("top.Pad", [c.ref(0)], { paddings: A.i64s(pads), val: A.f64(value), mode: A.str(mode) }, [n.outputs[0]!]);
}

function resize(c: WriteCtx): void {
  const n = c.node;
  const mode = n.str("mode", "nearest");
  if (mode !== "nearest" && mode !== "linear") unsupported(c, `Resize mode '${mode}' has no top.Interp equivalent`);
  const coord = c.opset >= 11 ? n.str("coordinate_transformation_mode", "half_pixel") : "asymmetric";
  if (!["half_pixel", "pytorch_half_pixel", "align_corners", "asymmetric"].includes(coord)) {
    unsupported(c, `Resize coordinate_transformation_mode '${coord}' has no top.Interp equivalent`);
  }
  const x = c.inShape(0);
  const y = c.outShape();
  if (x.length !== 4 || x[0] !== y[0] || x[1] !== y[1]) unsupported(c, "top.Interp resizes H and W of a 4-D tensor only");
  let scales: number[] | undefined;
  const si = c.opset >= 11 ? 2 : 1;
  if (n.inputs[si]) {
    const t = c.konst(si);
    if (!t) unsupported(c, "non-constant Resize scales");
    if (t!.size) scales = t!.toArray();
  }
  const attrs: Record<string, MAttr> = {
    mode: A.str(mode),
    coord_mode: A.str(coord),
    scale_h: A.f64(scales ? scales[2]! : -1),
    scale_w: A.f64(scales ? scales[3]! : -1),
  };
  // top.Interp has no nearest_mode; TPU-MLIR ignores this extra attribute, q reads it back.
  if (mode === "nearest" && c.opset >= 11) attrs["q.nearest_mode"] = A.str(n.str("nearest_mode", "round_prefer_floor"));
  c.emit("top.Interp", [c.ref(0), c.none()], attrs, [n.outputs[0]!]);
}

function clip(c: WriteCtx): void {
  const n = c.node;
  let lo = -Infinity;
  let hi = Infinity;
  if (c.opset >= 11) {
    if (n.inputs[1]) {
      const v = scalarConst(c, 1);
      if (v === undefined) unsupported(c, "Clip with a non-constant min");
      lo = v!;
    }
    if (n.inputs[2]) {
      const v = scalarConst(c, 2);
      if (v === undefined) unsupported(c, "Clip with a non-constant max");
      hi = v!;
    }
  } else {
    lo = n.float("min", -3.4028234663852886e38);
    hi = n.float("max", 3.4028234663852886e38);
  }
  c.emit("top.Clip", [c.ref(0)], { min: A.f64(lo), max: A.f64(hi) }, [n.outputs[0]!]);
}

function squeezeLike(c: WriteCtx, top: "top.Squeeze" | "top.Unsqueeze"): void {
  const n = c.node;
  const inRank = c.inShape(0).length;
  const rank = top === "top.Squeeze" ? inRank : c.outShape().length;
  let axes = c.opset >= 13 ? (n.inputs[1] ? c.konstNums(1, "axes") : undefined) : n.ints("axes");
  if (!axes) axes = c.inShape(0).flatMap((d, i) => (d === 1 ? [i] : []));
  c.emit(top, [c.ref(0)], { axes: A.i64s(axes.map((a) => norm(a, rank)).sort((a, b) => a - b)) }, [n.outputs[0]!]);
}

function split(c: WriteCtx): void {
  const n = c.node;
  const rank = c.inShape(0).length;
  const axis = norm(n.int("axis", 0), rank);
  const outs = n.outputs.filter((o) => o !== "");
  if (outs.length !== n.outputs.length) unsupported(c, "Split with omitted outputs");
  const sizes = outs.map((o) => c.shape(o)[axis]!);
  c.emit("top.Split", [c.ref(0)], { axis: A.si32(axis), num: A.i64(outs.length), split_size: A.i64s(sizes) }, outs, outs.map((o) => c.shape(o)));
}

function gather(c: WriteCtx): void {
  const n = c.node;
  const rank = c.inShape(0).length;
  const idx = c.inShape(1);
  c.emit("top.Gather", [c.ref(0), c.ref(1)], { axis: A.si32(norm(n.int("axis", 0), rank)), keepdims: A.bool(idx.length > 0) }, [n.outputs[0]!]);
}

function pow(c: WriteCtx): void {
  const e = scalarConst(c, 1);
  if (e !== undefined) c.emit("top.Pow", [c.ref(0)], { exponent: A.f64(e) }, [c.node.outputs[0]!]);
  else c.emit("top.Pow3", [c.ref(0), c.ref(1)], {}, [c.node.outputs[0]!]);
}

function layerNorm(c: WriteCtx): void {
  const n = c.node;
  if (n.outputs.slice(1).some((o) => o)) unsupported(c, "the Mean/InvStdDev outputs of LayerNormalization have no top.LayerNorm equivalent");
  const x = c.inShape(0);
  const axis = norm(n.int("axis", -1), x.length);
  c.emit("top.LayerNorm", [c.ref(0), n.inputs[1] ? c.ref(1) : c.none(), n.inputs[2] ? c.ref(2) : c.none()], {
    axis: A.si32(axis), eps: A.f64(n.float("epsilon", 1e-5)), normalized_shape: A.i64s(x.slice(axis)),
  }, [n.outputs[0]!]);
}

function batchNorm(c: WriteCtx): void {
  const n = c.node;
  if (n.outputs.slice(1).some((o) => o)) unsupported(c, "training-mode BatchNormalization outputs");
  c.emit("top.BatchNorm", [c.ref(0), c.ref(3), c.ref(4), c.ref(1), c.ref(2)], { epsilon: A.f64(n.float("epsilon", 1e-5)), do_relu: A.bool(false), relu_limit: A.f64(-1) }, [n.outputs[0]!]);
}

const reshapeTo: WriteFn = (c) => {
  c.emit("top.Reshape", [c.ref(0)], { shape: A.i64s(c.outShape()) }, [c.node.outputs[0]!]);
};

const identity: WriteFn = (c) => {
  c.alias(0, c.ref(0));
};

/** ONNX op → how to write it as top ops. */
export const ONNX_TO_TOP: Readonly<Record<string, WriteFn>> = {
  Conv: (c) => convLike(c, "top.Conv"),
  ConvTranspose: (c) => convLike(c, "top.Deconv"),
  Gemm: gemm,
  MatMul: (c) => c.emit("top.MatMul", [c.ref(0), c.ref(1), c.none()], { do_relu: A.bool(false), relu_limit: A.f64(-1) }, [c.node.outputs[0]!]),
  Add: binary("top.Add"),
  Sub: binary("top.Sub"),
  Mul: binary("top.Mul"),
  Div: binary("top.Div"),
  Max: (c) => c.emit("top.Max", c.node.inputs.map((_, i) => c.ref(i)), {}, [c.node.outputs[0]!]),
  Min: (c) => c.emit("top.Min", c.node.inputs.map((_, i) => c.ref(i)), {}, [c.node.outputs[0]!]),
  Relu: unary("top.Relu", () => ({ relu_limit: A.f64(-1) })),
  LeakyRelu: unary("top.LeakyRelu", (c) => ({ alpha: A.f64(c.node.float("alpha", 0.01)) })),
  PRelu: (c) => c.emit("top.PRelu", [c.ref(0), c.ref(1)], {}, [c.node.outputs[0]!]),
  Sigmoid: unary("top.Sigmoid", () => ({ scale: A.f64(1), bias: A.f64(0) })),
  Tanh: unary("top.Tanh"),
  HardSigmoid: unary("top.HardSigmoid", (c) => ({ alpha: A.f64(c.node.float("alpha", 0.2)), beta: A.f64(c.node.float("beta", 0.5)) })),
  HardSwish: unary("top.HardSwish"),
  Clip: clip,
  Softmax: (c) => softmax(c, false),
  LogSoftmax: (c) => softmax(c, true),
  BatchNormalization: batchNorm,
  LayerNormalization: layerNorm,
  InstanceNormalization: (c) => c.emit("top.InstanceNorm", [c.ref(0), c.ref(1), c.ref(2)], { eps: A.f64(c.node.float("epsilon", 1e-5)) }, [c.node.outputs[0]!]),
  MaxPool: (c) => pool(c, "top.MaxPool", false),
  AveragePool: (c) => pool(c, "top.AvgPool", false),
  GlobalAveragePool: (c) => pool(c, "top.AvgPool", true),
  GlobalMaxPool: (c) => pool(c, "top.MaxPool", true),
  Concat: (c) => c.emit("top.Concat", c.node.inputs.map((_, i) => c.ref(i)), { axis: A.si32(norm(c.node.int("axis", 0), c.outShape().length)) }, [c.node.outputs[0]!]),
  Split: split,
  Slice: slice,
  Reshape: reshapeTo,
  Flatten: reshapeTo,
  Transpose: (c) => {
    const rank = c.inShape(0).length;
    const perm = c.node.ints("perm", [...Array(rank).keys()].reverse());
    c.emit("top.Permute", [c.ref(0)], { order: A.i64s(perm.map((p) => norm(p, rank))) }, [c.node.outputs[0]!]);
  },
  Squeeze: (c) => squeezeLike(c, "top.Squeeze"),
  Unsqueeze: (c) => squeezeLike(c, "top.Unsqueeze"),
  Pad: pad,
  Resize: resize,
  ReduceMean: reduce("ReduceMean", 18),
  ReduceMax: reduce("ReduceMax", 18),
  ReduceMin: reduce("ReduceMin", 18),
  ReduceSum: reduce("ReduceSum", 13),
  ReduceProd: reduce("ReduceProd", 18),
  ReduceL1: reduce("ReduceL1", 18),
  ReduceL2: reduce("ReduceL2", 18),
  Gather: gather,
  Erf: unary("top.Erf"),
  Gelu: unary("top.GELU", (c) => ({ approx_mode: A.str(c.node.str("approximate", "none") === "tanh" ? "tanh" : "normal") })),
  Exp: unary("top.Exp"),
  Log: unary("top.Log"),
  Sqrt: unary("top.Sqrt"),
  Pow: pow,
  Abs: unary("top.Abs"),
  Floor: unary("top.Floor"),
  Ceil: unary("top.Ceil"),
  Sin: unary("top.Sin"),
  Cos: unary("top.Cos"),
  Softplus: unary("top.Softplus"),
  Mish: unary("top.Mish"),
  Elu: unary("top.Elu", (c) => ({ alpha: A.f64(c.node.float("alpha", 1)) })),
  Reciprocal: unary("top.Reciprocal", () => ({ const_val: A.f64(1) })),
  Neg: unary("top.MulConst", () => ({ const_val: A.f64(-1) })),
  Tile: (c) => c.emit("top.Tile", [c.ref(0)], { tile: A.i64s(c.konstNums(1, "repeats")) }, [c.node.outputs[0]!]),
  Expand: (c) => c.emit("top.Expand", [c.ref(0)], { shape: A.i64s(c.outShape()) }, [c.node.outputs[0]!]),
  Identity: identity,
  Dropout: (c) => {
    if (c.node.outputs[1]) unsupported(c, "the mask output of Dropout");
    identity(c);
  },
};

// ---------------------------------------------------------------------------------------------
// Reader side

export interface ReadCtx {
  op: string;
  a: Attrs;
  /** IR value name of operand `i`; "" for the none value. */
  in(i: number): string;
  nIn: number;
  isNone(i: number): boolean;
  /** Weight data of operand `i`, if it is a top.Weight. */
  konst(i: number): Tensor | undefined;
  inShape(i: number): number[];
  /** IR value name of result `k`. */
  out(k: number): string;
  nOut: number;
  outShape(k?: number): number[];
  /** Add an ONNX node (opset 17). */
  node(opType: string, inputs: string[], outputs: string[], attrs?: Record<string, AttrValue>): void;
  /** Add an initializer named from `base`; returns its name. */
  init(base: string, t: Tensor): string;
  /** A fresh name for an intermediate value. */
  tmp(base: string): string;
  /** Name an int64 version of operand `i` (weights converted, activations cast). */
  asInt64(i: number): string;
  fail(msg: string): never;
}

export type ReadFn = (r: ReadCtx) => void;

const ints = (value: number[]): AttrValue => ({ type: "ints", value });
const int = (value: number): AttrValue => ({ type: "int", value });
const flt = (value: number): AttrValue => ({ type: "float", value });
const str = (value: string): AttrValue => ({ type: "string", value });
const i64 = (v: number[]) => Tensor.i64([v.length], v);
const f32s = (v: number) => Tensor.f32([], [v]);

/** Apply `do_relu` / `relu_limit`: returns the name the main node should write. */
function reluTail(r: ReadCtx, k = 0): string {
  if (!r.a.bool("do_relu", false)) return r.out(k);
  const mid = r.tmp(`${r.out(k)}_pre_relu`);
  const limit = r.a.float("relu_limit", -1);
  if (limit > 0) r.node("Clip", [mid, r.init(`${r.out(k)}_min`, f32s(0)), r.init(`${r.out(k)}_max`, f32s(limit))], [r.out(k)]);
  else r.node("Relu", [mid], [r.out(k)]);
  return mid;
}

function readConv(r: ReadCtx, onnx: "Conv" | "ConvTranspose"): void {
  const w = r.inShape(1);
  const sp = w.length - 2;
  const attrs: Record<string, AttrValue> = {
    kernel_shape: ints(r.a.nums("kernel_shape") ?? w.slice(2)),
    strides: ints(r.a.nums("strides") ?? ones(sp)),
    pads: ints(r.a.nums("pads") ?? new Array<number>(2 * sp).fill(0)),
    dilations: ints(r.a.nums("dilations") ?? ones(sp)),
    group: int(r.a.int("group", 1)),
  };
  if (onnx === "ConvTranspose" && r.a.has("output_padding")) attrs.output_padding = ints(r.a.nums("output_padding")!);
  if (onnx === "Conv" && r.a.nums("inserts")?.some((v) => v !== 0)) r.fail("top.Conv 'inserts' has no ONNX equivalent");
  const inputs = [r.in(0), r.in(1)];
  if (!r.isNone(2)) inputs.push(r.in(2));
  r.node(onnx, inputs, [reluTail(r)], attrs);
}

function readPool(r: ReadCtx, onnx: "MaxPool" | "AveragePool"): void {
  const sp = r.inShape(0).length - 2;
  const attrs: Record<string, AttrValue> = {
    kernel_shape: ints(r.a.nums("kernel_shape")!),
    strides: ints(r.a.nums("strides") ?? ones(sp)),
    pads: ints(r.a.nums("pads") ?? new Array<number>(2 * sp).fill(0)),
  };
  if (r.a.bool("ceil_mode", false)) attrs.ceil_mode = int(1);
  if (onnx === "AveragePool") attrs.count_include_pad = int(r.a.bool("count_include_pad", false) ? 1 : 0);
  if (r.a.bool("is_adaptive", false)) r.fail("adaptive pooling is not supported");
  r.node(onnx, [r.in(0)], [reluTail(r)], attrs);
}

function readBinary(onnx: string): ReadFn {
  return (r) => {
    const coeff = r.a.nums("coeff");
    let ins = Array.from({ length: r.nIn }, (_, i) => r.in(i));
    if (coeff && coeff.some((c) => c !== 1)) {
      ins = ins.map((v, i) => {
        if (coeff[i] === 1) return v;
        const t = r.tmp(`${r.out(0)}_coeff${i}`);
        r.node("Mul", [v, r.init(`${r.out(0)}_coeff${i}_k`, f32s(coeff[i]!))], [t]);
        return t;
      });
    }
    if (r.a.bool("is_reverse", false)) ins.reverse();
    const final = reluTail(r);
    let acc = ins[0]!;
    for (let i = 1; i < ins.length; i++) {
      const o = i === ins.length - 1 ? final : r.tmp(`${r.out(0)}_part${i}`);
      r.node(onnx, [acc, ins[i]!], [o]);
      acc = o;
    }
    if (ins.length === 1) r.node("Identity", [acc], [final]);
  };
}

function readConstBinary(onnx: string): ReadFn {
  return (r) => {
    const k = r.init(`${r.out(0)}_const`, f32s(r.a.float("const_val", 0)));
    const ins = r.a.bool("is_reverse", false) ? [k, r.in(0)] : [r.in(0), k];
    r.node(onnx, ins, [reluTail(r)]);
  };
}

const readUnary = (onnx: string, attrs: (r: ReadCtx) => Record<string, AttrValue> = () => ({})): ReadFn => (r) => {
  r.node(onnx, [r.in(0)], [r.out(0)], attrs(r));
};

function readMatMul(r: ReadCtx): void {
  const a = r.inShape(0);
  const b = r.inShape(1);
  if (r.a.bool("left_transpose", false) || r.a.bool("output_transpose", false) || r.a.bool("hdim_is_batch", false)) {
    r.fail("top.MatMul with left_transpose/output_transpose/hdim_is_batch is not supported");
  }
  const rt = r.a.bool("right_transpose", false);
  const out = reluTail(r);
  if (a.length === 2 && b.length === 2 && (rt || !r.isNone(2))) {
    const ins = [r.in(0), r.in(1)];
    if (!r.isNone(2)) ins.push(r.in(2));
    r.node("Gemm", ins, [out], rt ? { transB: int(1) } : {});
    return;
  }
  let right = r.in(1);
  if (rt) {
    right = r.tmp(`${r.out(0)}_rhs_t`);
    const perm = [...Array(b.length).keys()];
    [perm[b.length - 2], perm[b.length - 1]] = [perm[b.length - 1]!, perm[b.length - 2]!];
    r.node("Transpose", [r.in(1)], [right], { perm: ints(perm) });
  }
  if (r.isNone(2)) {
    r.node("MatMul", [r.in(0), right], [out]);
  } else {
    const mid = r.tmp(`${r.out(0)}_nobias`);
    r.node("MatMul", [r.in(0), right], [mid]);
    r.node("Add", [mid, r.in(2)], [out]);
  }
}

function readSlice(r: ReadCtx): void {
  const x = r.inShape(0);
  const rank = x.length;
  if (!r.isNone(1) || !r.isNone(2) || !r.isNone(3)) r.fail("top.Slice with tensor bounds is not supported");
  const offset = r.a.nums("offset")!;
  const ends = r.a.nums("ends")!;
  const steps = r.a.nums("steps") ?? ones(offset.length);
  let axes = r.a.nums("axes") ?? [];
  if (!axes.length) axes = [...Array(offset.length).keys()];
  if (offset.length !== axes.length && offset.length === rank) axes = [...Array(rank).keys()];
  const st: number[] = [];
  const en: number[] = [];
  axes.forEach((a0, k) => {
    const a = norm(a0, rank);
    const dim = x[a]!;
    const step = steps[k]!;
    let s = offset[k]!;
    let e = ends[k]!;
    if (step > 0) {
      if (s < 0) s += dim;
      if (e < 0) e += dim;
    } else if (e === -1) e = -dim - 1; // before index 0
    st.push(s);
    en.push(e);
  });
  const base = r.out(0);
  r.node("Slice", [r.in(0), r.init(`${base}_starts`, i64(st)), r.init(`${base}_ends`, i64(en)), r.init(`${base}_axes`, i64(axes.map((a) => norm(a, rank)))), r.init(`${base}_steps`, i64(steps))], [r.out(0)]);
}

function readInterp(r: ReadCtx, upsample: boolean): void {
  const x = r.inShape(0);
  const y = r.outShape();
  const base = r.out(0);
  const mode = upsample ? "nearest" : r.a.str("mode", "nearest");
  const coord = upsample ? "asymmetric" : r.a.str("coord_mode", "half_pixel");
  let sh = upsample ? r.a.float("scale_h", -1) : r.a.float("scale_h", -1);
  let sw = r.a.float("scale_w", -1);
  if (!upsample && !r.isNone(1)) r.fail("top.Interp with a target_shape tensor is not supported");
  const attrs: Record<string, AttrValue> = { mode: str(mode), coordinate_transformation_mode: str(coord) };
  if (mode === "nearest") attrs.nearest_mode = str(r.a.str("q.nearest_mode", "floor"));
  if (sh > 0 && sw > 0 && Math.round(x[2]! * sh) === y[2] && Math.round(x[3]! * sw) === y[3]) {
    r.node("Resize", [r.in(0), "", r.init(`${base}_scales`, Tensor.f32([4], [1, 1, sh, sw]))], [r.out(0)], attrs);
  } else {
    sh = sw = -1;
    r.node("Resize", [r.in(0), "", "", r.init(`${base}_sizes`, i64(y))], [r.out(0)], attrs);
  }
}

function readGather(r: ReadCtx): void {
  const x = r.inShape(0);
  const idx = r.inShape(1);
  const axis = norm(r.a.int("axis", 0), x.length);
  const expect = [...x.slice(0, axis), ...idx, ...x.slice(axis + 1)];
  const y = r.outShape();
  const same = expect.length === y.length && expect.every((d, i) => d === y[i]);
  const out = same ? r.out(0) : r.tmp(`${r.out(0)}_gather`);
  r.node("Gather", [r.in(0), r.asInt64(1)], [out], { axis: int(axis) });
  if (!same) r.node("Reshape", [out, r.init(`${r.out(0)}_shape`, i64(y))], [r.out(0)]);
}

function readReduce(r: ReadCtx): void {
  const mode = r.a.str("mode", "");
  const ok = ["ReduceMin", "ReduceMax", "ReduceMean", "ReduceL2", "ReduceL1", "ReduceSum", "ReduceProd"];
  if (!ok.includes(mode)) r.fail(`top.Reduce mode '${mode}' is not supported`);
  const axes = r.a.nums("axes")!;
  const keep = int(r.a.bool("keepdims", true) ? 1 : 0);
  if (mode === "ReduceSum") r.node(mode, [r.in(0), r.init(`${r.out(0)}_axes`, i64(axes))], [r.out(0)], { keepdims: keep });
  else r.node(mode, [r.in(0)], [r.out(0)], { axes: ints(axes), keepdims: keep });
}

const reshapeToOut: ReadFn = (r) => r.node("Reshape", [r.in(0), r.init(`${r.out(0)}_shape`, i64(r.outShape()))], [r.out(0)]);

/** top op → ONNX nodes. */
export const TOP_TO_ONNX: Readonly<Record<string, ReadFn>> = {
  "top.Conv": (r) => readConv(r, "Conv"),
  "top.Deconv": (r) => readConv(r, "ConvTranspose"),
  "top.MatMul": readMatMul,
  "top.Add": readBinary("Add"),
  "top.Sub": readBinary("Sub"),
  "top.Mul": readBinary("Mul"),
  "top.Div": readBinary("Div"),
  "top.Max": readBinary("Max"),
  "top.Min": readBinary("Min"),
  "top.AddConst": readConstBinary("Add"),
  "top.SubConst": readConstBinary("Sub"),
  "top.MulConst": readConstBinary("Mul"),
  "top.DivConst": readConstBinary("Div"),
  "top.MaxConst": readConstBinary("Max"),
  "top.MinConst": readConstBinary("Min"),
  "top.Relu": (r) => {
    const limit = r.a.float("relu_limit", -1);
    if (limit > 0) r.node("Clip", [r.in(0), r.init(`${r.out(0)}_min`, f32s(0)), r.init(`${r.out(0)}_max`, f32s(limit))], [r.out(0)]);
    else r.node("Relu", [r.in(0)], [r.out(0)]);
  },
  "top.LeakyRelu": readUnary("LeakyRelu", (r) => ({ alpha: flt(r.a.float("alpha", 0.01)) })),
  "top.PRelu": (r) => r.node("PRelu", [r.in(0), r.in(1)], [r.out(0)]),
  "top.Sigmoid": (r) => {
    const scale = r.a.float("scale", 1);
    const bias = r.a.float("bias", 0);
    const log = r.a.bool("log", false);
    if (scale === 1 && bias === 0 && !log) {
      r.node("Sigmoid", [r.in(0)], [r.out(0)]);
      return;
    }
    let v = r.tmp(`${r.out(0)}_sigmoid`);
    r.node("Sigmoid", [r.in(0)], [v]);
    const steps: [string, number][] = [];
    if (scale !== 1) steps.push(["Mul", scale]);
    if (bias !== 0) steps.push(["Add", bias]);
    steps.forEach(([op, k], i) => {
      const o = i === steps.length - 1 && !log ? r.out(0) : r.tmp(`${r.out(0)}_${op.toLowerCase()}`);
      r.node(op, [v, r.init(`${r.out(0)}_${op.toLowerCase()}_k`, f32s(k))], [o]);
      v = o;
    });
    if (log) r.node("Log", [v], [r.out(0)]);
  },
  "top.Tanh": readUnary("Tanh"),
  "top.HardSigmoid": readUnary("HardSigmoid", (r) => ({ alpha: flt(r.a.float("alpha", 0.2)), beta: flt(r.a.float("beta", 0.5)) })),
  "top.HardSwish": readUnary("HardSwish"),
  "top.Clip": (r) => {
    const lo = r.a.float("min", -Infinity);
    const hi = r.a.float("max", Infinity);
    r.node("Clip", [r.in(0), r.init(`${r.out(0)}_min`, f32s(Math.max(lo, -3.4028234663852886e38))), r.init(`${r.out(0)}_max`, f32s(Math.min(hi, 3.4028234663852886e38)))], [r.out(0)]);
  },
  "top.Softmax": (r) => {
    if (r.a.float("beta", 1) !== 1) r.fail("top.Softmax with beta != 1 is not supported");
    r.node(r.a.bool("log", false) ? "LogSoftmax" : "Softmax", [r.in(0)], [r.out(0)], { axis: int(r.a.int("axis", -1)) });
  },
  "top.BatchNorm": (r) => {
    const c = r.inShape(0)[1]!;
    const gamma = r.isNone(3) ? r.init(`${r.out(0)}_gamma`, Tensor.f32([c], ones(c))) : r.in(3);
    const beta = r.isNone(4) ? r.init(`${r.out(0)}_beta`, Tensor.f32([c])) : r.in(4);
    r.node("BatchNormalization", [r.in(0), gamma, beta, r.in(1), r.in(2)], [reluTail(r)], { epsilon: flt(r.a.float("epsilon", 1e-5)) });
  },
  "top.LayerNorm": (r) => {
    const x = r.inShape(0);
    const axis = norm(r.a.int("axis", -1), x.length);
    const ns = x.slice(axis);
    const size = ns.reduce((p, q) => p * q, 1);
    const w = r.isNone(1) ? r.init(`${r.out(0)}_scale`, Tensor.f32(ns, ones(size))) : r.in(1);
    const ins = [r.in(0), w];
    if (!r.isNone(2)) ins.push(r.in(2));
    r.node("LayerNormalization", ins, [r.out(0)], { axis: int(axis), epsilon: flt(r.a.float("eps", 1e-5)) });
  },
  "top.InstanceNorm": (r) => {
    const c = r.inShape(0)[1]!;
    const w = r.isNone(1) ? r.init(`${r.out(0)}_scale`, Tensor.f32([c], ones(c))) : r.in(1);
    const b = r.isNone(2) ? r.init(`${r.out(0)}_bias`, Tensor.f32([c])) : r.in(2);
    r.node("InstanceNormalization", [r.in(0), w, b], [r.out(0)], { epsilon: flt(r.a.float("eps", 1e-5)) });
  },
  "top.MaxPool": (r) => readPool(r, "MaxPool"),
  "top.AvgPool": (r) => readPool(r, "AveragePool"),
  "top.Concat": (r) => r.node("Concat", Array.from({ length: r.nIn }, (_, i) => r.in(i)), [reluTail(r)], { axis: int(r.a.int("axis", 1)) }),
  "top.Split": (r) => {
    const axis = norm(r.a.int("axis", 0), r.inShape(0).length);
    const sizes = r.a.nums("split_size") ?? Array.from({ length: r.nOut }, (_, k) => r.outShape(k)[axis]!);
    const outs = Array.from({ length: r.nOut }, (_, k) => r.out(k));
    r.node("Split", [r.in(0), r.init(`${r.out(0)}_split`, i64(sizes))], outs, { axis: int(axis) });
  },
  "top.Slice": readSlice,
  "top.Reshape": reshapeToOut,
  "top.Flatten": reshapeToOut,
  "top.Squeeze": (r) => r.node("Squeeze", [r.in(0), r.init(`${r.out(0)}_axes`, i64(r.a.nums("axes")!))], [r.out(0)]),
  "top.Unsqueeze": (r) => r.node("Unsqueeze", [r.in(0), r.init(`${r.out(0)}_axes`, i64(r.a.nums("axes")!))], [r.out(0)]),
  "top.Permute": (r) => r.node("Transpose", [r.in(0)], [r.out(0)], { perm: ints(r.a.nums("order")!) }),
  "top.Transpose": (r) => {
    const rank = r.inShape(0).length;
    const perm = [...Array(rank).keys()];
    const d0 = norm(r.a.int("dim0", 0), rank);
    const d1 = norm(r.a.int("dim1", 1), rank);
    [perm[d0], perm[d1]] = [perm[d1]!, perm[d0]!];
    r.node("Transpose", [r.in(0)], [r.out(0)], { perm: ints(perm) });
  },
  "top.Pad": (r) => {
    if (r.nIn > 1 && !r.isNone(1)) r.fail("top.Pad with a paddings tensor is not supported");
    const base = r.out(0);
    r.node("Pad", [r.in(0), r.init(`${base}_pads`, i64(r.a.nums("paddings")!)), r.init(`${base}_value`, f32s(r.a.float("val", 0)))], [r.out(0)], { mode: str(r.a.str("mode", "constant")) });
  },
  "top.Interp": (r) => readInterp(r, false),
  "top.Upsample": (r) => readInterp(r, true),
  "top.Reduce": readReduce,
  "top.Gather": readGather,
  "top.Erf": readUnary("Erf"),
  "top.GELU": readUnary("Gelu", (r): Record<string, AttrValue> => (r.a.str("approx_mode", "normal") === "tanh" ? { approximate: str("tanh") } : {})),
  "top.Exp": readUnary("Exp"),
  "top.Log": readUnary("Log"),
  "top.Sqrt": readUnary("Sqrt"),
  "top.Pow": (r) => r.node("Pow", [r.in(0), r.init(`${r.out(0)}_exponent`, f32s(r.a.float("exponent", 1)))], [r.out(0)]),
  "top.Pow3": (r) => r.node("Pow", [r.in(0), r.in(1)], [r.out(0)]),
  "top.Abs": readUnary("Abs"),
  "top.Floor": readUnary("Floor"),
  "top.Ceil": readUnary("Ceil"),
  "top.Sin": readUnary("Sin"),
  "top.Cos": readUnary("Cos"),
  "top.Softplus": readUnary("Softplus"),
  "top.Mish": readUnary("Mish"),
  "top.SiLU": (r) => {
    const s = r.tmp(`${r.out(0)}_sigmoid`);
    r.node("Sigmoid", [r.in(0)], [s]);
    r.node("Mul", [r.in(0), s], [r.out(0)]);
  },
  "top.Elu": readUnary("Elu", (r) => ({ alpha: flt(r.a.float("alpha", 1)) })),
  "top.Reciprocal": (r) => r.node("Div", [r.init(`${r.out(0)}_const`, f32s(r.a.float("const_val", 1))), r.in(0)], [reluTail(r)]),
  "top.Tile": (r) => r.node("Tile", [r.in(0), r.init(`${r.out(0)}_repeats`, i64(r.a.nums("tile")!))], [r.out(0)]),
  "top.Expand": (r) => r.node("Expand", [r.in(0), r.init(`${r.out(0)}_shape`, i64(r.outShape()))], [r.out(0)]),
};

export function checkStatic(shape: readonly (number | string | null)[] | undefined, what: string): number[] {
  if (!shape || shape.some((d) => typeof d !== "number" || d < 0)) {
    throw new GraphError(`${what} has shape [${(shape ?? ["?"]).join(", ")}]; top-dialect MLIR needs static shapes (pass inputShapes)`);
  }
  return shape as number[];
}
