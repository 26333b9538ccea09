import { ONNX_DTYPE, Tensor, type AttrValue, type DType, type Dim } from "@q/ir";
import { NCHW, float, int, invPerm, isIdentity, ints, reducedLayout, str, type NodeCtx, type TfVal } from "./convert.js";

/** Builds the IR for one TF node: reads inputs through the context and records every output. */
export type OpBuilder = (n: NodeCtx) => void;

const BIG = 2 ** 62;

// ---------------------------------------------------------------- helpers

function known(d: Dim | undefined): d is number {
  return typeof d === "number" && d >= 0;
}

function normAxis(n: NodeCtx, a: number, rank: number | undefined): number {
  if (a >= 0) return a;
  if (rank === undefined) throw n.fail(`axis ${a} is negative and the input rank is unknown`);
  return a + rank;
}

/** TF data_format: is the channel axis last? */
function channelsLast(n: NodeCtx): boolean {
  const df = n.s("data_format", "NHWC");
  if (df !== "NHWC" && df !== "NCHW") throw n.fail(`data_format '${df}' is not supported (only NHWC and NCHW)`);
  return df === "NHWC";
}

/** The 4-D input in NCHW: through the layout machinery for NHWC, as is for NCHW. */
function nchwInput(n: NodeCtx, v: TfVal, nhwc: boolean): string {
  if (!nhwc) return n.c.plain(v);
  const r = n.c.rank(v);
  if (r !== undefined && r !== 4) throw n.fail(`input '${v.tf}' has rank ${r}; q supports 2-D spatial ops on 4-D tensors`);
  return n.c.to(v, NCHW);
}

/** Spatial (H, W) entries of a 4-entry TF list given in data_format order. */
function hw(list: number[], nhwc: boolean, what: string, n: NodeCtx): [number, number] {
  if (list.length === 2) return [list[0]!, list[1]!];
  if (list.length !== 4) throw n.fail(`${what} has ${list.length} entries; expected 4`);
  return nhwc ? [list[1]!, list[2]!] : [list[2]!, list[3]!];
}

/**
 * ONNX pads [hb, wb, he, we] for TF padding. SAME uses the input size when known; otherwise the
 * node gets auto_pad SAME_UPPER (the same arithmetic, done by the runtime).
 */
function windowPads(
  n: NodeCtx, x: string, k: [number, number], s: [number, number], d: [number, number], nhwc: boolean,
): Record<string, AttrValue> {
  const padding = n.s("padding", "VALID");
  if (padding === "VALID") return { pads: ints([0, 0, 0, 0]) };
  if (padding === "EXPLICIT") {
    const e = n.ints("explicit_paddings", []);
    if (e.length !== 8) throw n.fail(`explicit_paddings has ${e.length} entries; expected 8`);
    const [h, w] = nhwc ? [1, 2] : [2, 3];
    return { pads: ints([e[2 * h]!, e[2 * w]!, e[2 * h + 1]!, e[2 * w + 1]!]) };
  }
  if (padding !== "SAME") throw n.fail(`padding '${padding}' is not supported`);
  const shape = n.c.shape(x);
  const H = shape?.[2], W = shape?.[3];
  if (!known(H) || !known(W)) return { auto_pad: str("SAME_UPPER") };
  const one = (size: number, i: 0 | 1): [number, number] => {
    const eff = (k[i] - 1) * d[i] + 1;
    const out = Math.ceil(size / s[i]);
    const total = Math.max((out - 1) * s[i] + eff - size, 0);
    const b = Math.floor(total / 2);
    return [b, total - b];
  };
  const [hb, he] = one(H, 0);
  const [wb, we] = one(W, 1);
  return { pads: ints([hb, wb, he, we]) };
}

/** Conv2D / DepthwiseConv2dNative, optionally with the filter already in OIHW. */
function conv(depthwise: boolean): OpBuilder {
  return (n) => {
    const nhwc = channelsLast(n);
    const x = nchwInput(n, n.in(0), nhwc);
    const fv = n.in(1);
    const f = n.c.plain(fv);
    const fs = n.c.shape(f);
    if (!fs || fs.length !== 4) throw n.fail(`filter '${fv.tf}' must be 4-D [kH, kW, in, out]`);
    let w: string;
    let group = 1;
    if (depthwise) {
      // [kH, kW, C, m] → [kH, kW, 1, C*m] (channel c*m + j) → [C*m, 1, kH, kW]
      const r = n.aux("Reshape", [f, n.i64([0, 0, 1, -1], "filter_shape")], {}, "filter_hw1o");
      w = n.aux("Transpose", [r], { perm: ints([3, 2, 0, 1]) }, "filter_oihw");
      const C = fs[2];
      if (!known(C)) throw n.fail("filter channel count is unknown");
      group = C;
    } else {
      w = n.aux("Transpose", [f], { perm: ints([3, 2, 0, 1]) }, "filter_oihw");
      const C = n.c.shape(x)?.[1];
      const I = fs[2];
      if (known(C) && known(I) && C !== I) {
        if (C % I !== 0) throw n.fail(`input has ${C} channels, filter expects ${I} (not a divisor)`);
        group = C / I;
      }
    }
    const k: [number, number] = [fs[0] as number, fs[1] as number];
    const s = hw(n.ints("strides", [1, 1, 1, 1]), nhwc, "strides", n);
    const d = hw(n.ints("dilations", [1, 1, 1, 1]), nhwc, "dilations", n);
    const attrs: Record<string, AttrValue> = {
      kernel_shape: ints(k), strides: ints(s), dilations: ints(d), group: int(group),
      ...windowPads(n, x, k, s, d, nhwc),
    };
    n.out("Conv", [x, w], attrs, nhwc ? NCHW : undefined);
  };
}

function pool(kind: "MaxPool" | "AvgPool"): OpBuilder {
  return (n) => {
    const nhwc = channelsLast(n);
    const x = nchwInput(n, n.in(0), nhwc);
    const k = hw(n.ints("ksize", [1, 1, 1, 1]), nhwc, "ksize", n);
    const s = hw(n.ints("strides", [1, 1, 1, 1]), nhwc, "strides", n);
    const attrs: Record<string, AttrValue> = { kernel_shape: ints(k), strides: ints(s), ...windowPads(n, x, k, s, [1, 1], nhwc) };
    // TF averages over the cells inside the input only (count_include_pad = 0)
    if (kind === "AvgPool") attrs.count_include_pad = int(0);
    n.out(kind === "MaxPool" ? "MaxPool" : "AveragePool", [x], attrs, nhwc ? NCHW : undefined);
  };
}

function unary(op: string, attrs: (n: NodeCtx) => Record<string, AttrValue> = () => ({})): OpBuilder {
  return (n) => {
    const x = n.in(0);
    n.out(op, [x.ir], attrs(n), x.layout);
  };
}

/**
 * Binary elementwise op with numpy broadcasting. Both operands end up in one layout: the layout of
 * the higher-rank non-constant operand; constants and lower-rank values are aligned to it.
 */
function binaryOn(n: NodeCtx, op: string, a: TfVal, b: TfVal, base?: string): { ir: string; layout?: readonly number[] } {
  const c = n.c;
  let l: readonly number[] | undefined;
  if ((isIdentity(a.layout) && isIdentity(b.layout)) || (a.layout && b.layout && a.layout.join() === b.layout.join())) {
    l = a.layout;
  } else {
    const ra = c.rank(a) ?? -1, rb = c.rank(b) ?? -1;
    const cands = [a, b].filter((v) => !isIdentity(v.layout));
    // prefer a non-constant operand's layout; it must have the larger rank
    const pick = cands.find((v) => !c.isConst(v)) ?? cands[0]!;
    const rp = c.rank(pick) ?? -1;
    // the other operand is aligned to it (transposed, or unsqueezed then transposed)
    l = rp >= Math.max(ra, rb) ? pick.layout : undefined;
  }
  const ia = l ? c.alignTo(a, l) : c.plain(a);
  const ib = l ? c.alignTo(b, l) : c.plain(b);
  const ir = base ? c.emit1(op, [ia, ib], {}, base) : n.c.emit1(op, [ia, ib], {}, n.outName(0, l));
  const r: { ir: string; layout?: readonly number[] } = { ir };
  if (l) r.layout = l;
  return r;
}

function binary(op: string): OpBuilder {
  return (n) => {
    const r = binaryOn(n, op, n.in(0), n.in(1));
    n.set(0, r.ir, r.layout);
  };
}

function scalarLike(n: NodeCtx, x: string, v: number, tag: string): string {
  const dt: DType = n.c.dtype(x) ?? "float32";
  return n.c.addConst(Tensor.fromNumbers(dt, [], [v]), `${n.name}/${tag}`);
}

/** TF reduction (Mean/Sum/Max/Min/Prod) with axes from a constant input. */
function reduce(op: string, axesAsInput: boolean): OpBuilder {
  return (n) => {
    const x = n.in(0);
    const r = n.c.rank(x);
    const tfAxes = [...new Set(n.constInts(1, "reduction axes").map((a) => normAxis(n, a, r)))];
    const keep = n.b("keep_dims", false);
    if (tfAxes.length === 0) {
      n.alias(0, x);
      return;
    }
    const l = x.layout;
    const irAxes = tfAxes.map((a) => (l ? l.indexOf(a) : a)).sort((p, q) => p - q);
    const attrs: Record<string, AttrValue> = { keepdims: int(keep ? 1 : 0) };
    const inputs = [x.ir];
    if (axesAsInput) inputs.push(n.i64(irAxes, "axes"));
    else attrs.axes = ints(irAxes);
    const outL = keep ? l : reducedLayout(l, new Set(irAxes));
    n.out(op, inputs, attrs, outL);
  };
}

/** TF paddings [rank, 2] → ONNX pads [begins..., ends...] in the IR layout of `x`. */
function padsFor(n: NodeCtx, x: TfVal, idx: number): string {
  const p = n.constInts(idx, "paddings");
  const r = p.length / 2;
  const l = x.layout ?? [...Array(r).keys()];
  const begins = l.map((d) => p[2 * d]!);
  const ends = l.map((d) => p[2 * d + 1]!);
  return n.i64([...begins, ...ends], "pads");
}

function concatAxis(n: NodeCtx, vals: TfVal[], axis: number): void {
  const c = n.c;
  const r = vals.map((v) => c.rank(v)).find((x) => x !== undefined);
  const a = normAxis(n, axis, r);
  const live = vals.filter((v) => !c.isConst(v));
  const l0 = live[0]?.layout;
  const sameLayout = !isIdentity(l0) && live.every((v) => v.layout && v.layout.join() === l0!.join()) && vals.every((v) => c.rank(v) === l0!.length);
  if (sameLayout) {
    n.out("Concat", vals.map((v) => c.to(v, l0)), { axis: int(l0!.indexOf(a)) }, l0);
  } else {
    n.out("Concat", vals.map((v) => c.plain(v)), { axis: int(a) });
  }
}

/** ONNX Split of `x` along TF axis `axis` into `sizes` (some may be -1 = the rest). */
function splitInto(n: NodeCtx, x: TfVal, axis: number, sizes: number[] | undefined, count: number): void {
  const c = n.c;
  const a = normAxis(n, axis, c.rank(x));
  const irAxis = x.layout ? x.layout.indexOf(a) : a;
  const dim = c.tfShape(x)?.[a];
  let split = sizes;
  if (split && split.includes(-1)) {
    if (!known(dim)) throw n.fail("size_splits has -1 and the split dim is unknown");
    const rest = dim - split.filter((s) => s >= 0).reduce((p, q) => p + q, 0);
    split = split.map((s) => (s < 0 ? rest : s));
  }
  if (!split && known(dim)) split = new Array<number>(count).fill(dim / count);
  const inputs = [x.ir];
  if (split) inputs.push(n.i64(split, "split"));
  const outs = c.emit("Split", inputs, { axis: int(irAxis) }, Array.from({ length: count }, (_, k) => n.outName(k, x.layout)));
  outs.forEach((o, k) => n.set(k, o, x.layout));
}

function resize(mode: "linear" | "nearest"): OpBuilder {
  return (n) => {
    const c = n.c;
    const x = c.to(n.in(0), NCHW);
    const size = n.in(1);
    const alignCorners = n.b("align_corners", false);
    const halfPixel = n.b("half_pixel_centers", false);
    // sizes = [N, C] of the input followed by the requested [newH, newW]
    const shp = n.aux("Shape", [x], {}, "in_shape");
    const nc = n.aux("Slice", [shp, n.i64([0], "s0"), n.i64([2], "s2")], {}, "nc");
    const hwv = c.dtype(size.ir) === "int64" ? c.plain(size) : n.aux("Cast", [c.plain(size)], { to: int(ONNX_DTYPE.int64) }, "size64");
    const sizes = n.aux("Concat", [nc, hwv], { axis: int(0) }, "sizes");
    const attrs: Record<string, AttrValue> = { mode: str(mode) };
    if (mode === "linear") {
      attrs.coordinate_transformation_mode = str(alignCorners ? "align_corners" : halfPixel ? "half_pixel" : "asymmetric");
    } else {
      // TF: align_corners → round(x * (in-1)/(out-1)); half_pixel → floor((x + 0.5) * in/out); else floor(x * in/out)
      attrs.coordinate_transformation_mode = str(alignCorners ? "align_corners" : halfPixel ? "tf_half_pixel_for_nn" : "asymmetric");
      attrs.nearest_mode = str(alignCorners ? "round_prefer_ceil" : "floor");
    }
    n.out("Resize", [x, "", "", sizes], attrs, NCHW);
  };
}

function staticShape(n: NodeCtx, v: TfVal): number[] {
  const s = n.c.tfShape(v);
  if (!s || !s.every(known)) throw n.fail(`needs the full static shape of '${v.tf}' (got [${s?.join(",") ?? "unknown"}]); pass inputShapes`);
  return s as number[];
}

/** SpaceToBatchND in general form: Pad, Reshape, Transpose, Reshape. */
const spaceToBatch: OpBuilder = (n) => {
  const x = n.in(0);
  const block = n.constInts(1, "block_shape");
  const pads = n.constInts(2, "paddings");
  const M = block.length;
  const s = staticShape(n, x);
  const r = s.length;
  const full = new Array<number>(2 * r).fill(0);
  for (let i = 0; i < M; i++) {
    full[1 + i] = pads[2 * i]!;
    full[r + 1 + i] = pads[2 * i + 1]!;
  }
  const p = n.aux("Pad", [n.c.plain(x), n.i64(full, "pads")], {}, "padded");
  const N = s[0]!;
  const sp = block.map((b, i) => (s[1 + i]! + pads[2 * i]! + pads[2 * i + 1]!) / b);
  if (sp.some((v) => !Number.isInteger(v))) throw n.fail("padded spatial size is not a multiple of block_shape");
  const rest = s.slice(1 + M);
  const split = [N, ...sp.flatMap((v, i) => [v, block[i]!]), ...rest];
  const r1 = n.aux("Reshape", [p, n.i64(split, "split_shape")], {}, "split");
  const perm = [...block.map((_, i) => 2 + 2 * i), 0, ...block.map((_, i) => 1 + 2 * i), ...rest.map((_, i) => 1 + 2 * M + i)];
  const t = n.aux("Transpose", [r1], { perm: ints(perm) }, "moved");
  const prodB = block.reduce((a, b) => a * b, 1);
  n.out("Reshape", [t, n.i64([prodB * N, ...sp, ...rest], "out_shape")]);
};

/** BatchToSpaceND in general form: Reshape, Transpose, Reshape, Slice (crops). */
const batchToSpace: OpBuilder = (n) => {
  const x = n.in(0);
  const block = n.constInts(1, "block_shape");
  const crops = n.constInts(2, "crops");
  const M = block.length;
  const s = staticShape(n, x);
  const prodB = block.reduce((a, b) => a * b, 1);
  const N = s[0]! / prodB;
  const sp = s.slice(1, 1 + M);
  const rest = s.slice(1 + M);
  const r1 = n.aux("Reshape", [n.c.plain(x), n.i64([...block, N, ...sp, ...rest], "split_shape")], {}, "split");
  const perm = [M, ...sp.flatMap((_, i) => [M + 1 + i, i]), ...rest.map((_, i) => 2 * M + 1 + i)];
  const t = n.aux("Transpose", [r1], { perm: ints(perm) }, "moved");
  const full = sp.map((v, i) => v * block[i]!);
  const r2 = n.aux("Reshape", [t, n.i64([N, ...full, ...rest], "full_shape")], {}, "merged");
  const starts = crops.filter((_, i) => i % 2 === 0);
  const ends = full.map((v, i) => v - crops[2 * i + 1]!);
  n.out("Slice", [r2, n.i64(starts, "starts"), n.i64(ends, "ends"), n.i64(block.map((_, i) => 1 + i), "axes")]);
};

/** StridedSlice with constant begin/end/strides → Slice, then Squeeze / Unsqueeze for the masks. */
const stridedSlice: OpBuilder = (n) => {
  const x = n.in(0);
  const c = n.c;
  const begin = n.constInts(1, "begin");
  const end = n.constInts(2, "end");
  const strides = n.constInts(3, "strides");
  const r = c.rank(x);
  if (r === undefined) throw n.fail("input rank is unknown");
  const bm = n.i("begin_mask", 0), em = n.i("end_mask", 0), elm = n.i("ellipsis_mask", 0);
  const nam = n.i("new_axis_mask", 0), sam = n.i("shrink_axis_mask", 0);
  const bit = (m: number, i: number) => ((m >>> i) & 1) === 1;
  const consumed = begin.reduce((acc, _, i) => acc + (bit(elm, i) || bit(nam, i) ? 0 : 1), 0);
  const starts: number[] = [], ends: number[] = [], axes: number[] = [], steps: number[] = [];
  const squeeze: number[] = [];
  const outKinds: ("keep" | "new" | "shrink")[] = [];
  let d = 0;
  let sawEllipsis = false;
  for (let i = 0; i < begin.length; i++) {
    if (bit(elm, i) && !sawEllipsis) {
      sawEllipsis = true;
      const cover = r - consumed;
      for (let k = 0; k < cover; k++) outKinds.push("keep");
      d += cover;
      continue;
    }
    if (bit(nam, i)) {
      outKinds.push("new");
      continue;
    }
    const st = strides[i] ?? 1;
    if (st === 0) throw n.fail("stride 0");
    if (bit(sam, i)) {
      const b = begin[i]!;
      starts.push(b);
      ends.push(b === -1 ? BIG : b + 1);
      axes.push(d);
      steps.push(1);
      squeeze.push(d);
      outKinds.push("shrink");
    } else {
      const b = bit(bm, i) ? (st > 0 ? 0 : BIG) : begin[i]!;
      const e = bit(em, i) ? (st > 0 ? BIG : -BIG) : end[i]!;
      starts.push(b);
      ends.push(e);
      axes.push(d);
      steps.push(st);
      outKinds.push("keep");
    }
    d++;
  }
  while (d < r) {
    outKinds.push("keep");
    d++;
  }
  let cur = c.plain(x);
  if (axes.length) {
    cur = n.aux("Slice", [cur, n.i64(starts, "starts"), n.i64(ends, "ends"), n.i64(axes, "axes"), n.i64(steps, "steps")], {}, "slice");
  }
  if (squeeze.length) cur = n.aux("Squeeze", [cur, n.i64(squeeze, "squeeze_axes")], {}, "squeezed");
  const newAxes: number[] = [];
  outKinds.filter((k) => k !== "shrink").forEach((k, j) => k === "new" && newAxes.push(j));
  if (newAxes.length) cur = n.aux("Unsqueeze", [cur, n.i64(newAxes, "new_axes")], {}, "unsqueezed");
  n.out("Identity", [cur]);
};

function matmul(ta: string, tb: string): OpBuilder {
  return (n) => {
    const c = n.c;
    const tr = (v: TfVal, flag: boolean, tag: string): string => {
      const p = c.plain(v);
      if (!flag) return p;
      const r = c.rank(v);
      if (r === undefined) throw n.fail("operand rank is unknown");
      const perm = [...Array(r).keys()];
      [perm[r - 2], perm[r - 1]] = [perm[r - 1]!, perm[r - 2]!];
      return n.aux("Transpose", [p], { perm: ints(perm) }, tag);
    };
    n.out("MatMul", [tr(n.in(0), n.b(ta, false), "a_t"), tr(n.in(1), n.b(tb, false), "b_t")]);
  };
}

function fusedBatchNorm(n: NodeCtx): void {
  const c = n.c;
  const nhwc = channelsLast(n);
  const x = n.in(0);
  const r = c.rank(x);
  const mean = n.in(3), variance = n.in(4);
  const training = n.b("is_training", true);
  const hasStats = c.isConst(mean) && c.isConst(variance) && (c.konst(mean)?.size ?? 0) > 0;
  if (training && !(n.attr("is_training") === undefined && hasStats)) {
    n.fail("is_training is true (batch statistics); only inference graphs (is_training: false) are supported");
  }
  const xi = r === 4 ? nchwInput(n, x, nhwc) : c.plain(x);
  const l = r === 4 && nhwc ? NCHW : undefined;
  if (r !== 4 && nhwc && r !== 2) throw n.fail(`input rank ${r} with NHWC is not supported`);
  n.out("BatchNormalization", [xi, c.plain(n.in(1)), c.plain(n.in(2)), c.plain(mean), c.plain(variance)], { epsilon: float(n.f("epsilon", 0.0001)) }, l);
  // batch_mean / batch_variance (and the reserve spaces) are the moving statistics at inference
  n.alias(1, mean);
  n.alias(2, variance);
  n.alias(3, mean);
  n.alias(4, variance);
}

function biasAdd(n: NodeCtx): void {
  const nhwc = channelsLast(n);
  const x = n.in(0), bias = n.in(1);
  if (nhwc) {
    const r = binaryOn(n, "Add", x, bias);
    n.set(0, r.ir, r.layout);
    return;
  }
  // channels first: bias [C] → [C, 1, ..., 1] against [N, C, spatial...]
  const rank = n.c.rank(x);
  if (rank === undefined) throw n.fail("input rank is unknown");
  const b = n.aux("Unsqueeze", [n.c.plain(bias), n.i64([...Array(rank - 2).keys()].map((i) => i + 1), "bias_axes")], {}, "bias");
  n.out("Add", [n.c.plain(x), b]);
}

function padOp(mode: "constant" | "mirror"): OpBuilder {
  return (n) => {
    const x = n.in(0);
    const pads = padsFor(n, x, 1);
    if (mode === "constant") {
      const inputs = [x.ir, pads];
      if (n.inputs.length > 2) inputs.push(n.c.plain(n.in(2)));
      n.out("Pad", inputs, { mode: str("constant") }, x.layout);
      return;
    }
    const m = n.s("mode", "REFLECT");
    if (m === "REFLECT") {
      n.out("Pad", [x.ir, pads], { mode: str("reflect") }, x.layout);
      return;
    }
    if (m !== "SYMMETRIC") throw n.fail(`mode '${m}' is not supported`);
    // SYMMETRIC: mirror including the edge; built per axis from reversed slices and Concat
    const p = n.constInts(1, "paddings");
    const l = x.layout ?? [...Array(p.length / 2).keys()];
    let cur = x.ir;
    l.forEach((d, ax) => {
      const b = p[2 * d]!, e = p[2 * d + 1]!;
      if (!b && !e) return;
      const parts: string[] = [];
      const axis = n.i64([ax], `ax${ax}`);
      if (b) parts.push(n.aux("Slice", [cur, n.i64([b - 1], `b${ax}s`), n.i64([-BIG], `b${ax}e`), axis, n.i64([-1], `b${ax}st`)], {}, `head${ax}`));
      parts.push(cur);
      if (e) parts.push(n.aux("Slice", [cur, n.i64([-1], `e${ax}s`), n.i64([-e - 1], `e${ax}e`), axis, n.i64([-1], `e${ax}st`)], {}, `tail${ax}`));
      cur = n.aux("Concat", parts, { axis: int(ax) }, `sym${ax}`);
    });
    n.out("Identity", [cur], {}, x.layout);
  };
}

function reshape(n: NodeCtx): void {
  const c = n.c;
  const shp = n.in(1);
  const k = c.konst(shp);
  let s: string;
  let allowzero = false;
  if (k) {
    s = n.i64(k.toArray(), "shape");
    allowzero = k.toArray().includes(0);
  } else {
    s = c.plain(shp);
    if (c.dtype(s) !== "int64") s = n.aux("Cast", [s], { to: int(ONNX_DTYPE.int64) }, "shape64");
    allowzero = true; // TF: 0 means an empty dim, never "copy"
  }
  n.out("Reshape", [c.plain(n.in(0)), s], allowzero ? { allowzero: int(1) } : {});
}

function squeeze(n: NodeCtx): void {
  const c = n.c;
  const x = n.in(0);
  const r = c.rank(x);
  let dims = n.ints("squeeze_dims", n.ints("axis", []));
  if (!dims.length) {
    const s = c.tfShape(x);
    if (!s) throw n.fail("squeeze of all 1-dims needs the input shape");
    if (s.some((v) => !known(v))) throw n.fail("squeeze of all 1-dims with unknown dims");
    dims = s.map((v, i) => (v === 1 ? i : -1)).filter((i) => i >= 0);
  }
  const tf = dims.map((a) => normAxis(n, a, r));
  const irAxes = tf.map((a) => (x.layout ? x.layout.indexOf(a) : a));
  n.out("Squeeze", [x.ir, n.i64(irAxes, "axes")], {}, reducedLayout(x.layout, new Set(irAxes)));
}

function shapeOp(n: NodeCtx): void {
  const x = n.in(0);
  if (isIdentity(x.layout)) {
    n.out("Shape", [x.ir]);
    return;
  }
  // the TF shape is the IR shape read in the inverse order of the layout
  const s = n.aux("Shape", [x.ir], {}, "ir_shape");
  n.out("Gather", [s, n.i64(invPerm(x.layout!), "order")], { axis: int(0) });
}

function pack(n: NodeCtx): void {
  const c = n.c;
  const vals = n.inputs.map((_, i) => n.in(i));
  const r = c.rank(vals[0]!);
  const axis = n.i("axis", 0);
  const a = axis < 0 ? (r === undefined ? n.fail("negative axis with unknown rank") : axis + r + 1) : axis;
  const ax = n.i64([a], "axis");
  const parts = vals.map((v, i) => c.emit1("Unsqueeze", [c.plain(v), ax], {}, `${n.name}/part${i}`));
  n.out("Concat", parts, { axis: int(a) });
}

function unpack(n: NodeCtx): void {
  const c = n.c;
  const x = n.in(0);
  const r = c.rank(x);
  const a = normAxis(n, n.i("axis", 0), r);
  const d = c.tfShape(x)?.[a];
  const num = n.i("num", known(d) ? d : 0);
  if (num <= 0) throw n.fail("the number of outputs (attr num) is unknown");
  const outs = c.emit("Split", [c.plain(x), n.i64(new Array<number>(num).fill(1), "split")], { axis: int(a) }, Array.from({ length: num }, (_, k) => `${n.name}/part${k}`));
  const ax = n.i64([a], "axes");
  outs.forEach((o, k) => n.set(k, c.emit1("Squeeze", [o, ax], {}, n.outName(k))));
}

function expandDims(n: NodeCtx): void {
  const [d] = n.constInts(1, "dim");
  const x = n.in(0);
  const r = n.c.rank(x);
  const a = d! < 0 ? (r === undefined ? n.fail("negative dim with unknown rank") : d! + r + 1) : d!;
  n.out("Unsqueeze", [n.c.plain(x), n.i64([a], "axes")]);
}

function transposeOp(n: NodeCtx): void {
  const x = n.in(0);
  const q = n.constInts(1, "perm");
  // no node: the output is the input seen through a new layout
  const cur = x.layout ?? [...Array(q.length).keys()];
  const inv = invPerm(cur);
  const combined = q.map((v) => inv[v]!);
  const l = invPerm(combined);
  n.set(0, x.ir, isIdentity(l) ? undefined : l);
}

function sparseToDense(n: NodeCtx): void {
  const c = n.c;
  const idx = n.in(0), outShape = n.in(1), values = n.in(2), dflt = n.in(3);
  let shp = c.plain(outShape);
  if (c.dtype(shp) !== "int64") shp = n.aux("Cast", [shp], { to: int(ONNX_DTYPE.int64) }, "shape64");
  const dense = n.aux("Expand", [c.plain(dflt), shp], {}, "dense");
  const ki = c.konst(idx);
  if (ki && ki.size === 0) {
    n.out("Identity", [dense]);
    return;
  }
  // indices [n, rank] (or [n] / scalar for a 1-D output) → ScatterND with [n, rank] indices
  const ir = c.rank(idx);
  let ind = c.plain(idx);
  if (c.dtype(ind) !== "int64") ind = n.aux("Cast", [ind], { to: int(ONNX_DTYPE.int64) }, "idx64");
  if (ir === 0) ind = n.aux("Reshape", [ind, n.i64([1, 1], "idx_shape")], {}, "idx2");
  else if (ir === 1) ind = n.aux("Unsqueeze", [ind, n.i64([1], "idx_axes")], {}, "idx2");
  let vals = c.plain(values);
  if (c.rank(values) === 0) {
    const cnt = n.aux("Slice", [n.aux("Shape", [ind], {}, "idx_shape_v"), n.i64([0], "c0"), n.i64([1], "c1")], {}, "count");
    vals = n.aux("Expand", [vals, cnt], {}, "values");
  }
  n.out("ScatterND", [dense, ind, vals]);
}

function cast(n: NodeCtx): void {
  const to = n.type("DstT");
  if (!to) throw n.fail("DstT is missing or not a supported dtype");
  const x = n.in(0);
  n.out("Cast", [x.ir], { to: int(ONNX_DTYPE[to]) }, x.layout);
}

function softmax(op: string): OpBuilder {
  return (n) => {
    const x = n.in(0);
    const r = n.c.rank(x);
    if (r === undefined) throw n.fail("input rank is unknown");
    const axis = x.layout ? x.layout.indexOf(r - 1) : r - 1;
    n.out(op, [x.ir], { axis: int(axis) }, x.layout);
  };
}

function gather(n: NodeCtx): void {
  const c = n.c;
  const axis = n.inputs.length > 2 ? n.constInts(2, "axis")[0]! : 0;
  if (n.i("batch_dims", 0) !== 0) throw n.fail("batch_dims != 0 is not supported");
  n.out("Gather", [c.plain(n.in(0)), c.plain(n.in(1))], { axis: int(normAxis(n, axis, c.rank(n.in(0)))) });
}

function tile(n: NodeCtx): void {
  const c = n.c;
  let m = c.plain(n.in(1));
  if (c.dtype(m) !== "int64") m = n.aux("Cast", [m], { to: int(ONNX_DTYPE.int64) }, "multiples64");
  n.out("Tile", [c.plain(n.in(0)), m]);
}

// ---------------------------------------------------------------- the table

/** TF op → IR builder. Placeholder and Const are handled by the reader (graph inputs, initializers). */
export const OPS: Record<string, OpBuilder> = {
  Identity: (n) => n.alias(0, n.in(0)),
  StopGradient: (n) => n.alias(0, n.in(0)),
  Snapshot: (n) => n.alias(0, n.in(0)),
  PreventGradient: (n) => n.alias(0, n.in(0)),
  PlaceholderWithDefault: (n) => n.alias(0, n.in(0)),
  NoOp: () => undefined,

  Conv2D: conv(false),
  DepthwiseConv2dNative: conv(true),
  BiasAdd: biasAdd,
  BiasAddV1: biasAdd,
  FusedBatchNorm: fusedBatchNorm,
  FusedBatchNormV2: fusedBatchNorm,
  FusedBatchNormV3: fusedBatchNorm,
  MaxPool: pool("MaxPool"),
  AvgPool: pool("AvgPool"),

  Relu: unary("Relu"),
  Relu6: (n) => {
    const x = n.in(0);
    n.out("Clip", [x.ir, scalarLike(n, x.ir, 0, "min"), scalarLike(n, x.ir, 6, "max")], {}, x.layout);
  },
  Elu: unary("Elu", () => ({ alpha: float(1) })),
  Selu: unary("Selu", () => ({ alpha: float(1.6732632423543772), gamma: float(1.0507009873554805) })),
  Sigmoid: unary("Sigmoid"),
  Tanh: unary("Tanh"),
  Softplus: unary("Softplus"),
  LeakyRelu: unary("LeakyRelu", (n) => ({ alpha: float(n.f("alpha", 0.2)) })),
  Neg: unary("Neg"),
  Abs: unary("Abs"),
  Exp: unary("Exp"),
  Log: unary("Log"),
  Sqrt: unary("Sqrt"),
  Floor: unary("Floor"),
  Ceil: unary("Ceil"),
  Reciprocal: unary("Reciprocal"),
  Rsqrt: (n) => {
    const x = n.in(0);
    const s = n.aux("Sqrt", [x.ir], {}, "sqrt");
    n.out("Reciprocal", [s], {}, x.layout);
  },
  Square: (n) => {
    const x = n.in(0);
    n.out("Mul", [x.ir, x.ir], {}, x.layout);
  },
  Cast: cast,

  Add: binary("Add"),
  AddV2: binary("Add"),
  Sub: binary("Sub"),
  Mul: binary("Mul"),
  RealDiv: binary("Div"),
  Div: binary("Div"),
  Maximum: binary("Max"),
  Minimum: binary("Min"),
  Pow: binary("Pow"),
  SquaredDifference: (n) => {
    const d = binaryOn(n, "Sub", n.in(0), n.in(1), `${n.name}/diff`);
    n.out("Mul", [d.ir, d.ir], {}, d.layout);
  },
  AddN: (n) => {
    let acc: TfVal = n.in(0);
    for (let i = 1; i < n.inputs.length; i++) {
      const r = binaryOn(n, "Add", acc, n.in(i), i === n.inputs.length - 1 ? n.outName(0) : `${n.name}/sum${i}`);
      acc = { tf: n.name, ir: r.ir, ...(r.layout ? { layout: r.layout } : {}) };
    }
    n.alias(0, acc);
  },

  Mean: reduce("ReduceMean", false),
  Sum: reduce("ReduceSum", true),
  Max: reduce("ReduceMax", false),
  Min: reduce("ReduceMin", false),
  Prod: reduce("ReduceProd", false),

  MatMul: matmul("transpose_a", "transpose_b"),
  BatchMatMul: matmul("adj_x", "adj_y"),
  BatchMatMulV2: matmul("adj_x", "adj_y"),
  BatchMatMulV3: matmul("adj_x", "adj_y"),

  ConcatV2: (n) => {
    const k = n.inputs.length - 1;
    const axis = n.constInts(k, "axis")[0]!;
    concatAxis(n, n.inputs.slice(0, k).map((_, i) => n.in(i)), axis);
  },
  Concat: (n) => {
    const axis = n.constInts(0, "concat_dim")[0]!;
    concatAxis(n, n.inputs.slice(1).map((_, i) => n.in(i + 1)), axis);
  },
  Split: (n) => {
    const axis = n.constInts(0, "split_dim")[0]!;
    splitInto(n, n.in(1), axis, undefined, n.i("num_split", 1));
  },
  SplitV: (n) => {
    const sizes = n.constInts(1, "size_splits");
    const axis = n.constInts(2, "split_dim")[0]!;
    splitInto(n, n.in(0), axis, sizes, n.i("num_split", sizes.length));
  },
  Pack: pack,
  Unpack: unpack,

  Reshape: reshape,
  Squeeze: squeeze,
  ExpandDims: expandDims,
  Transpose: transposeOp,
  Shape: shapeOp,
  StridedSlice: stridedSlice,
  GatherV2: gather,
  Gather: gather,
  Tile: tile,
  Pad: padOp("constant"),
  PadV2: padOp("constant"),
  MirrorPad: padOp("mirror"),

  Softmax: softmax("Softmax"),
  LogSoftmax: softmax("LogSoftmax"),

  ResizeBilinear: resize("linear"),
  ResizeNearestNeighbor: resize("nearest"),

  SpaceToBatchND: spaceToBatch,
  BatchToSpaceND: batchToSpace,
  SparseToDense: sparseToDense,
};

export function supportedTfOps(): string[] {
  return ["Placeholder", "Const", ...Object.keys(OPS)].sort();
}
