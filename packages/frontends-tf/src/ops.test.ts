import { describe, expect, it } from "vitest";
import { Tensor } from "@q/ir";
import { decodeTf } from "./index.js";
import { F, I32, arange, b, close, constF, constI, f, graphDef, i, li, node, placeholder, runBoth, s } from "./tf-builder.test-util.js";

const x = (shape: number[], scale = 1, offset = 0) => Tensor.f32(shape, arange(shape.reduce((p, q) => p * q, 1), scale, offset));

/** NHWC → NCHW data of a row-major array. */
function nhwcAt(d: ArrayLike<number>, [, H, W, C]: number[], n: number, h: number, w: number, c: number): number {
  return d[((n * H + h) * W + w) * C + c]!;
}

/** Plain NHWC conv (for checking), with explicit pads and dilation. */
function convRef(inp: Tensor, filt: Tensor, stride: number, dil: number, pads: [number, number, number, number]): { shape: number[]; data: number[] } {
  const [N, H, W, C] = inp.shape as number[];
  const [kH, kW, , O] = filt.shape as number[];
  const [pt, pl, pb, pr] = pads;
  const OH = Math.floor((H! + pt + pb - (dil * (kH! - 1) + 1)) / stride) + 1;
  const OW = Math.floor((W! + pl + pr - (dil * (kW! - 1) + 1)) / stride) + 1;
  const out: number[] = [];
  const xd = inp.toNumbers(), fd = filt.toNumbers();
  for (let n = 0; n < N!; n++) for (let oh = 0; oh < OH; oh++) for (let ow = 0; ow < OW; ow++) for (let o = 0; o < O!; o++) {
    let acc = 0;
    for (let kh = 0; kh < kH!; kh++) for (let kw = 0; kw < kW!; kw++) {
      const ih = oh * stride + kh * dil - pt, iw = ow * stride + kw * dil - pl;
      if (ih < 0 || iw < 0 || ih >= H! || iw >= W!) continue;
      for (let c = 0; c < C!; c++) acc += nhwcAt(xd, inp.shape as number[], n, ih, iw, c) * fd[((kh * kW! + kw) * C! + c) * O! + o]!;
    }
    out.push(acc);
  }
  return { shape: [N!, OH, OW, O!], data: out };
}

describe("TF ops → IR (both executors)", () => {
  it("Conv2D SAME stride 2 + BiasAdd + Relu6 in NHWC, output back in NHWC", async () => {
    const filt = Tensor.f32([3, 3, 2, 3], arange(54, 0.01, -0.2));
    const pb = graphDef([
      placeholder("x", [1, 5, 6, 2]),
      constF("w", [3, 3, 2, 3], Array.from(filt.toNumbers())),
      constF("bias", [3], [0.5, -0.5, 1]),
      node("Conv2D", "conv", ["x", "w"], { strides: li([1, 2, 2, 1]), padding: s("SAME"), data_format: s("NHWC") }),
      node("BiasAdd", "ba", ["conv", "bias"]),
      node("Relu6", "y", ["ba"]),
    ]);
    const g = decodeTf(pb);
    const inp = x([1, 5, 6, 2], 0.1, -2);
    const r = await runBoth(g, { x: inp });
    // SAME, 5x6 stride 2, k3: out 3x3; H total pad 2 → (1,1); W total pad 1 → (0,1)
    const want = convRef(inp, filt, 2, 1, [1, 0, 1, 1]);
    const biasv = [0.5, -0.5, 1];
    close(r.y, want.shape, want.data.map((v, k) => Math.min(6, Math.max(0, v + biasv[k % 3]!))), 1e-4);
    expect(g.nodes.filter((n) => n.opType === "Conv")[0]!.inputs.length).toBe(3); // bias folded into the Conv
  });

  it("dilated conv: SpaceToBatchND/Conv2D/BatchToSpaceND folds into one Conv and matches the general form", async () => {
    const filt = Tensor.f32([3, 3, 1, 2], arange(18, 0.1, -0.8));
    const nodes = [
      placeholder("x", [1, 7, 7, 1]),
      constF("w", [3, 3, 1, 2], Array.from(filt.toNumbers())),
      constI("block", [2], [2, 2]),
      constI("pads", [2, 2], [2, 3, 2, 3]),
      constI("crops", [2, 2], [0, 1, 0, 1]),
      node("SpaceToBatchND", "s2b", ["x", "block", "pads"]),
      node("Conv2D", "conv", ["s2b", "w"], { strides: li([1, 1, 1, 1]), padding: s("VALID") }),
      node("BatchToSpaceND", "y", ["conv", "block", "crops"]),
    ];
    const inp = x([1, 7, 7, 1], 0.05, -1);
    const want = convRef(inp, filt, 1, 2, [2, 2, 2, 2]); // SAME with dilation 2
    const g1 = decodeTf(graphDef(nodes));
    expect(g1.nodes.map((n) => n.opType)).not.toContain("Reshape");
    const c = g1.nodes.find((n) => n.opType === "Conv")!;
    expect(c.ints("dilations")).toEqual([2, 2]);
    close((await runBoth(g1, { x: inp })).y, want.shape, want.data, 1e-4);
    const g2 = decodeTf(graphDef(nodes), { foldDilatedConv: false });
    expect(g2.nodes.map((n) => n.opType)).toContain("Reshape");
    close((await runBoth(g2, { x: inp })).y, want.shape, want.data, 1e-4);
  });

  it("DepthwiseConv2dNative with multiplier 2, EXPLICIT padding", async () => {
    const C = 2, m = 2;
    const filt = Tensor.f32([2, 2, C, m], arange(16, 0.1, -0.5));
    const pb = graphDef([
      placeholder("x", [1, 3, 3, C]),
      constF("w", [2, 2, C, m], Array.from(filt.toNumbers())),
      node("DepthwiseConv2dNative", "y", ["x", "w"], { strides: li([1, 1, 1, 1]), padding: s("EXPLICIT"), explicit_paddings: li([0, 0, 1, 0, 0, 1, 0, 0]) }),
    ]);
    const inp = x([1, 3, 3, C], 0.3, -1);
    const r = await runBoth(decodeTf(pb), { x: inp });
    // reference: out channel c*m + j = sum over window of x[..c] * w[kh,kw,c,j]; pads top 1, right 1
    const xd = inp.toNumbers(), fd = filt.toNumbers();
    const want: number[] = [];
    for (let oh = 0; oh < 3; oh++) for (let ow = 0; ow < 3; ow++) for (let c = 0; c < C; c++) for (let j = 0; j < m; j++) {
      let acc = 0;
      for (let kh = 0; kh < 2; kh++) for (let kw = 0; kw < 2; kw++) {
        const ih = oh + kh - 1, iw = ow + kw;
        if (ih < 0 || ih >= 3 || iw >= 3) continue;
        acc += xd[(ih * 3 + iw) * C + c]! * fd[((kh * 2 + kw) * C + c) * m + j]!;
      }
      want.push(acc);
    }
    close(r.y, [1, 3, 3, C * m], want, 1e-4);
  });

  it("AvgPool SAME excludes padding from the divisor; MaxPool SAME", async () => {
    const pb = graphDef([
      placeholder("x", [1, 3, 3, 1]),
      node("AvgPool", "avg", ["x"], { ksize: li([1, 2, 2, 1]), strides: li([1, 1, 1, 1]), padding: s("SAME") }),
      node("MaxPool", "max", ["x"], { ksize: li([1, 2, 2, 1]), strides: li([1, 2, 2, 1]), padding: s("SAME") }),
    ]);
    const g = decodeTf(pb, { outputs: ["avg", "max"] });
    const r = await runBoth(g, { x: x([1, 3, 3, 1], 1, 1) });
    close(r.avg, [1, 3, 3, 1], [3, 4, 4.5, 6, 7, 7.5, 7.5, 8.5, 9]);
    close(r.max, [1, 2, 2, 1], [5, 6, 8, 9]);
  });

  it("FusedBatchNormV3 (NHWC) then Mean keep_dims and Mean over H,W", async () => {
    const pb = graphDef([
      placeholder("x", [1, 2, 2, 2]),
      constF("scale", [2], [2, 0.5]), constF("offset", [2], [1, -1]), constF("mean", [2], [0.5, 1]), constF("var", [2], [4, 0.25]),
      node("FusedBatchNormV3", "bn", ["x", "scale", "offset", "mean", "var"], { epsilon: f(0), is_training: b(false) }),
      constI("axes", [2], [1, 2]),
      node("Mean", "m_keep", ["bn", "axes"], { keep_dims: b(true) }),
      node("Mean", "m", ["bn", "axes"], { keep_dims: b(false) }),
    ]);
    const g = decodeTf(pb, { outputs: ["bn", "m_keep", "m"] });
    const inp = x([1, 2, 2, 2]); // c0: 0,2,4,6  c1: 1,3,5,7
    const r = await runBoth(g, { x: inp });
    const bn = (v: number, c: number) => (c === 0 ? 2 * (v - 0.5) / 2 + 1 : 0.5 * (v - 1) / 0.5 - 1);
    close(r.bn, [1, 2, 2, 2], arange(8).map((v) => bn(v, v % 2)));
    const m0 = [0, 2, 4, 6].map((v) => bn(v, 0)).reduce((p, q) => p + q) / 4, m1 = [1, 3, 5, 7].map((v) => bn(v, 1)).reduce((p, q) => p + q) / 4;
    close(r.m_keep, [1, 1, 1, 2], [m0, m1]);
    close(r.m, [1, 2], [m0, m1]);
  });

  it("StridedSlice masks: shrink, ellipsis, new_axis, negative stride", async () => {
    const pb = graphDef([
      placeholder("x", [2, 3, 4]),
      constI("b1", [2], [0, 1]), constI("e1", [2], [0, 3]), constI("s1", [2], [1, 1]),
      node("StridedSlice", "a", ["x", "b1", "e1", "s1"], { shrink_axis_mask: i(1) }), // x[0, 1:3]
      constI("b2", [3], [0, 0, -1]), constI("e2", [3], [0, 0, 0]), constI("s2", [3], [1, 1, -2]),
      node("StridedSlice", "c", ["x", "b2", "e2", "s2"], { ellipsis_mask: i(1), new_axis_mask: i(2), end_mask: i(4) }), // x[..., None, ::-2]
      constI("b3", [1], [-1]), constI("e3", [1], [0]), constI("s3", [1], [1]),
      node("StridedSlice", "d", ["x", "b3", "e3", "s3"], { shrink_axis_mask: i(1) }), // x[-1]
    ]);
    const g = decodeTf(pb, { outputs: ["a", "c", "d"] });
    const r = await runBoth(g, { x: x([2, 3, 4]) });
    close(r.a, [2, 4], [4, 5, 6, 7, 8, 9, 10, 11]);
    const c: number[] = [];
    for (let p = 0; p < 2; p++) for (let q = 0; q < 3; q++) for (const k of [3, 1]) c.push(p * 12 + q * 4 + k);
    close(r.c, [2, 3, 1, 2], c);
    close(r.d, [3, 4], arange(12, 1, 12));
  });

  it("MatMul transpose_b, Reshape, Squeeze, ExpandDims, Pack, Shape, Softmax", async () => {
    const pb = graphDef([
      placeholder("x", [2, 3]),
      constF("w", [4, 3], arange(12, 0.1)),
      node("MatMul", "mm", ["x", "w"], { transpose_b: b(true) }),
      constI("shape", [3], [1, -1, 2]),
      node("Reshape", "rs", ["mm", "shape"]),
      node("Squeeze", "sq", ["rs"], { squeeze_dims: li([0]) }),
      constI("dim", [], [-1]),
      node("ExpandDims", "ed", ["sq", "dim"]),
      node("Pack", "pk", ["x", "x"], { axis: i(1), N: i(2) }),
      node("Shape", "sh", ["pk"], { out_type: { type: I32 } }),
      node("Softmax", "sm", ["mm"]),
    ]);
    const g = decodeTf(pb, { outputs: ["mm", "ed", "pk", "sh", "sm"] });
    const xv = x([2, 3], 1, -1);
    const r = await runBoth(g, { x: xv });
    const mm: number[] = [];
    for (let p = 0; p < 2; p++) for (let q = 0; q < 4; q++) {
      let acc = 0;
      for (let k = 0; k < 3; k++) acc += (p * 3 + k - 1) * (q * 3 + k) * 0.1;
      mm.push(acc);
    }
    close(r.mm, [2, 4], mm, 1e-5);
    close(r.ed, [4, 2, 1], mm, 1e-5);
    close(r.pk, [2, 2, 3], [-1, 0, 1, -1, 0, 1, 2, 3, 4, 2, 3, 4]);
    close(r.sh, [3], [2, 2, 3]);
    const sm = mm.map((v, k) => {
      const row = mm.slice(Math.floor(k / 4) * 4, Math.floor(k / 4) * 4 + 4);
      return Math.exp(v) / row.reduce((p, q) => p + Math.exp(q), 0);
    });
    close(r.sm, [2, 4], sm, 1e-5);
  });

  it("ConcatV2 (negative axis) and SplitV (-1 size) on NCHW-held values, Pad / MirrorPad", async () => {
    const pb = graphDef([
      placeholder("x", [1, 2, 2, 3]),
      constF("w", [1, 1, 3, 2], [1, 0, 0, 1, 0, 0]),
      node("Conv2D", "conv", ["x", "w"], { strides: li([1, 1, 1, 1]), padding: s("VALID") }), // channels 0,1
      constI("ax", [], [-1]),
      node("ConcatV2", "cat", ["conv", "x", "ax"], { N: i(2) }),
      constI("sizes", [2], [1, -1]),
      node("SplitV", "sp", ["cat", "sizes", "ax"], { num_split: i(2) }),
      constI("pads", [4, 2], [0, 0, 1, 0, 0, 1, 0, 0]),
      node("Pad", "pad", ["sp:1", "pads"]),
      node("MirrorPad", "refl", ["x", "pads"], { mode: s("REFLECT") }),
      node("MirrorPad", "sym", ["x", "pads"], { mode: s("SYMMETRIC") }),
    ]);
    const g = decodeTf(pb, { outputs: ["sp:0", "pad", "refl", "sym"] });
    const xv = x([1, 2, 2, 3]);
    const r = await runBoth(g, { x: xv });
    close(r.sp, [1, 2, 2, 1], [0, 3, 6, 9]);
    // sp:1 = [x1, x0, x1, x2] per pixel; pad H top 1, W right 1 with zeros
    const px = (h: number, w: number) => [h * 6 + w * 3 + 1, h * 6 + w * 3, h * 6 + w * 3 + 1, h * 6 + w * 3 + 2];
    const pad: number[] = [];
    for (let h = -1; h < 2; h++) for (let w = 0; w < 3; w++) pad.push(...(h < 0 || w > 1 ? [0, 0, 0, 0] : px(h, w)));
    close(r.pad, [1, 3, 3, 4], pad);
    const pix = (h: number, w: number) => [0, 1, 2].map((c) => h * 6 + w * 3 + c);
    const refl: number[] = [], sym: number[] = [];
    for (const h of [1, 0, 1]) for (const w of [0, 1, 0]) refl.push(...pix(h, w));
    for (const h of [0, 0, 1]) for (const w of [0, 1, 1]) sym.push(...pix(h, w));
    close(r.refl, [1, 3, 3, 3], refl);
    close(r.sym, [1, 3, 3, 3], sym);
  });

  it("ResizeBilinear / ResizeNearestNeighbor coordinate modes", async () => {
    const pb = graphDef([
      placeholder("x", [1, 1, 3, 1]),
      placeholder("y", [1, 1, 2, 1]),
      constI("s5", [2], [1, 5]), constI("s2", [2], [1, 2]), constI("s4", [2], [1, 4]),
      node("ResizeBilinear", "bl_ac", ["x", "s5"], { align_corners: b(true) }),
      node("ResizeBilinear", "bl_hp", ["y", "s4"], { half_pixel_centers: b(true) }),
      node("ResizeBilinear", "bl_as", ["y", "s4"]),
      node("ResizeNearestNeighbor", "nn_hp", ["x", "s2"], { half_pixel_centers: b(true) }),
      node("ResizeNearestNeighbor", "nn_as", ["x", "s2"]),
      node("ResizeNearestNeighbor", "nn_ac", ["x", "s4"], { align_corners: b(true) }),
    ]);
    const g = decodeTf(pb, { outputs: ["bl_ac", "bl_hp", "bl_as", "nn_hp", "nn_as", "nn_ac"] });
    const r = await runBoth(g, { x: Tensor.f32([1, 1, 3, 1], [0, 10, 20]), y: Tensor.f32([1, 1, 2, 1], [0, 1]) });
    close(r.bl_ac, [1, 1, 5, 1], [0, 5, 10, 15, 20]);
    close(r.bl_hp, [1, 1, 4, 1], [0, 0.25, 0.75, 1]);
    close(r.bl_as, [1, 1, 4, 1], [0, 0.5, 1, 1]);
    close(r.nn_hp, [1, 1, 2, 1], [0, 20]); // floor((x + 0.5) * 1.5) = 0, 2
    close(r.nn_as, [1, 1, 2, 1], [0, 10]); // floor(x * 1.5) = 0, 1
    close(r.nn_ac, [1, 1, 4, 1], [0, 10, 10, 20]); // round(x * 2/3) = 0, 1(0.67), 1(1.33), 2
  });

  it("elementwise and reductions: Maximum, Minimum, RealDiv, Sub, Rsqrt, Square, Sqrt, Elu, Tanh, Sum, Max, Cast", async () => {
    const pb = graphDef([
      placeholder("x", [2, 3]),
      constF("c", [3], [1, 2, 4]),
      node("Maximum", "mx", ["x", "c"]), node("Minimum", "mn", ["x", "c"]),
      node("RealDiv", "dv", ["x", "c"]), node("Sub", "sb", ["c", "x"]),
      node("Square", "sq", ["x"]), node("Rsqrt", "rs", ["c"]), node("Sqrt", "st", ["sq"]),
      node("Elu", "el", ["x"]), node("Tanh", "th", ["x"]),
      constI("ax1", [1], [1]), constI("ax0", [], [0]),
      node("Sum", "su", ["x", "ax1"], { keep_dims: b(false) }), node("Max", "ma", ["x", "ax0"], { keep_dims: b(true) }),
      node("Cast", "ci", ["x"], { SrcT: { type: F }, DstT: { type: I32 } }),
    ]);
    const outs = ["mx", "mn", "dv", "sb", "sq", "rs", "st", "el", "th", "su", "ma", "ci"];
    const g = decodeTf(pb, { outputs: outs });
    const xv = [-2.5, 0, 1.5, 3, -1, 5];
    const r = await runBoth(g, { x: Tensor.f32([2, 3], xv) });
    const c = [1, 2, 4];
    close(r.mx, [2, 3], xv.map((v, k) => Math.max(v, c[k % 3]!)));
    close(r.mn, [2, 3], xv.map((v, k) => Math.min(v, c[k % 3]!)));
    close(r.dv, [2, 3], xv.map((v, k) => v / c[k % 3]!));
    close(r.sb, [2, 3], xv.map((v, k) => c[k % 3]! - v));
    close(r.sq, [2, 3], xv.map((v) => v * v));
    close(r.rs, [3], c.map((v) => 1 / Math.sqrt(v)));
    close(r.st, [2, 3], xv.map((v) => Math.abs(v)));
    close(r.el, [2, 3], xv.map((v) => (v > 0 ? v : Math.exp(v) - 1)));
    close(r.th, [2, 3], xv.map(Math.tanh));
    close(r.su, [2], [-1, 7]);
    close(r.ma, [1, 3], [3, 0, 5]);
    close(r.ci, [2, 3], [-2, 0, 1, 3, -1, 5]);
  });

  it("SparseToDense with indices and a scalar value; Split", async () => {
    const pb = graphDef([
      placeholder("x", [4, 2]),
      constI("idx", [2, 1], [0, 2]), constI("oshape", [1], [4]), constF("val", [], [5]), constF("dflt", [], [-1]),
      node("SparseToDense", "sd", ["idx", "oshape", "val", "dflt"]),
      constI("ax", [], [0]),
      node("Split", "sp", ["ax", "x"], { num_split: i(2) }),
    ]);
    const g = decodeTf(pb, { outputs: ["sd", "sp:0", "sp:1"] });
    const r = await runBoth(g, { x: x([4, 2]) });
    close(r.sd, [4], [5, -1, 5, -1]);
    close(r.sp, [2, 2], [0, 1, 2, 3]);
    close(r["sp:1"], [2, 2], [4, 5, 6, 7]);
  });

  it("nchw option: NCHW graph inputs/outputs, names kept", async () => {
    const pb = graphDef([
      placeholder("img", [1, 4, 4, 3]),
      node("Relu", "r", ["img"]),
      constI("ax", [2], [1, 2]),
      node("Mean", "gap", ["r", "ax"], { keep_dims: b(false) }),
    ]);
    const g = decodeTf(pb, { nchw: true, outputs: ["r", "gap"] });
    expect(g.inputs[0]!.shape).toEqual([1, 3, 4, 4]);
    expect(g.outputs.map((o) => [o.name, o.shape])).toEqual([["r", [1, 3, 4, 4]], ["gap", [1, 3]]]);
    expect(g.nodes.map((n) => n.opType)).not.toContain("Transpose");
    const r = await runBoth(g, { img: x([1, 3, 4, 4], 1, -20) });
    close(r.gap, [1, 3], [0, 1, 2].map((c) => arange(16, 1, c * 16 - 20).reduce((p, q) => p + Math.max(0, q), 0) / 16));
  });

  it("values held in NCHW mix correctly with plain ones (Reshape, Shape, Add, Transpose, Squeeze, Concat, StridedSlice)", async () => {
    const eye = [1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1];
    const pb = graphDef([
      placeholder("x", [1, 2, 3, 4]),
      placeholder("v", [4]),
      constF("w", [1, 1, 4, 4], eye),
      node("Conv2D", "y", ["x", "w"], { strides: li([1, 1, 1, 1]), padding: s("VALID") }), // y == x, held as NCHW
      constI("flat", [2], [1, -1]),
      node("Reshape", "rs", ["y", "flat"]),
      node("Shape", "sh", ["y"], { out_type: { type: I32 } }),
      node("Add", "ad", ["y", "v"]),
      constI("perm", [4], [0, 3, 1, 2]),
      node("Transpose", "tr", ["y", "perm"]),
      node("Reshape", "trf", ["tr", "flat"]),
      constI("hw", [2], [1, 2]),
      node("Mean", "mk", ["y", "hw"], { keep_dims: b(true) }),
      node("Squeeze", "sq", ["mk"], { squeeze_dims: li([1, 2]) }),
      constI("ax3", [], [3]),
      node("ConcatV2", "cat", ["y", "x", "ax3"], { N: i(2) }),
      constI("sb", [4], [0, 0, 1, 0]), constI("se", [4], [0, 0, 3, 4]), constI("ss", [4], [1, 1, 1, 2]),
      node("StridedSlice", "sl", ["y", "sb", "se", "ss"], { begin_mask: i(3), end_mask: i(3) }),
    ]);
    const g = decodeTf(pb, { outputs: ["rs", "sh", "ad", "trf", "sq", "cat", "sl"] });
    const xv = x([1, 2, 3, 4], 1, -5);
    const vv = Tensor.f32([4], [10, 20, 30, 40]);
    const r = await runBoth(g, { x: xv, v: vv });
    const xd = Array.from(xv.toNumbers());
    const at = (h: number, w: number, c: number) => xd[(h * 3 + w) * 4 + c]!;
    close(r.rs, [1, 24], xd);
    close(r.sh, [4], [1, 2, 3, 4]);
    close(r.ad, [1, 2, 3, 4], xd.map((q, k) => q + [10, 20, 30, 40][k % 4]!));
    const nchw: number[] = [];
    for (let c = 0; c < 4; c++) for (let h = 0; h < 2; h++) for (let w = 0; w < 3; w++) nchw.push(at(h, w, c));
    close(r.trf, [1, 24], nchw);
    close(r.sq, [1, 4], [0, 1, 2, 3].map((c) => [0, 1].flatMap((h) => [0, 1, 2].map((w) => at(h, w, c))).reduce((p, q) => p + q) / 6));
    const cat: number[] = [];
    for (let h = 0; h < 2; h++) for (let w = 0; w < 3; w++) for (let k = 0; k < 8; k++) cat.push(at(h, w, k % 4));
    close(r.cat, [1, 2, 3, 8], cat);
    const sl: number[] = [];
    for (let h = 0; h < 2; h++) for (const w of [1, 2]) for (const c of [0, 2]) sl.push(at(h, w, c));
    close(r.sl, [1, 2, 2, 2], sl);
  });
});
