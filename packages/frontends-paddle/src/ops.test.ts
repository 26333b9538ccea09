import { describe, expect, it, beforeAll, afterAll } from "vitest";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ReferenceExecutor, Tensor, inferShapes, type Graph } from "@q/ir";
import { readPaddle } from "./index.js";
import { at, buildProgram, combinedParams, type OpInit, type VarInit } from "./test-programs.js";

let dir: string;
let k = 0;
beforeAll(() => { dir = mkdtempSync(join(tmpdir(), "q-paddle-ops-")); });
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function seq(shape: number[], f = (i: number) => Math.sin(i * 0.7) * 3): Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  return Tensor.f32(shape, Float32Array.from({ length: n }, (_, i) => f(i)));
}

async function load(vars: VarInit[], feeds: string[], ops: OpInit[], fetches: string[], params: Record<string, Tensor> = {}): Promise<Graph> {
  const stem = join(dir, `m${k++}`);
  const pvars = Object.entries(params).map(([name, t]) => ({ name, dims: [...t.shape], persistable: true }));
  writeFileSync(`${stem}.pdmodel`, buildProgram([...vars, ...pvars], feeds, ops, fetches));
  if (pvars.length) writeFileSync(`${stem}.pdiparams`, combinedParams(params));
  return readPaddle(`${stem}.pdmodel`);
}

async function run1(g: Graph, feeds: Record<string, Tensor>): Promise<Tensor> {
  const r = await new ReferenceExecutor(g).run(feeds);
  return r[g.outputs[0]!.name]!;
}

const arr = (t: Tensor) => Array.from(t.toFloat32());
const close = (a: ArrayLike<number>, b: ArrayLike<number>, tol = 1e-5) => {
  expect(a.length).toBe(b.length);
  for (let i = 0; i < a.length; i++) expect(Math.abs(a[i]! - b[i]!), `element ${i}: ${a[i]} vs ${b[i]}`).toBeLessThanOrEqual(tol * Math.max(1, Math.abs(b[i]!)));
};

describe("elementwise axis broadcasting", () => {
  it("aligns Y [C] at axis 1 of X [N,C,H,W] (not numpy's trailing alignment)", async () => {
    const x = seq([2, 3, 4, 5]);
    const y = Tensor.f32([3], [10, 20, 30]);
    const g = await load([{ name: "x", dims: [-1, 3, 4, 5] }, { name: "o", dims: [-1, 3, 4, 5] }], ["x"],
      [{ type: "elementwise_add", inputs: { X: ["x"], Y: ["b"] }, outputs: { Out: ["o"] }, attrs: { axis: at.i(1) } }], ["o"], { b: y });
    const got = arr(await run1(g, { x }));
    const xs = arr(x);
    close(got, xs.map((v, i) => v + [10, 20, 30][Math.floor(i / 20) % 3]!));
    // the constant was reshaped to [3,1,1], not broadcast through a runtime node
    expect(g.nodes.map((n) => n.opType)).toEqual(["Add"]);
  });

  it("aligns a rank-2 runtime Y [C,H] at axis 1 of [N,C,H,W]", async () => {
    const x = seq([1, 2, 3, 4]);
    const y = seq([2, 3], (i) => i * 100);
    const g = await load([{ name: "x", dims: [1, 2, 3, 4] }, { name: "y", dims: [2, 3] }, { name: "o", dims: [1, 2, 3, 4] }], ["x", "y"],
      [{ type: "elementwise_mul", inputs: { X: ["x"], Y: ["y"] }, outputs: { Out: ["o"] }, attrs: { axis: at.i(1) } }], ["o"]);
    const got = arr(await run1(g, { x, y }));
    close(got, arr(x).map((v, i) => v * (Math.floor(i / 4) * 100)));
  });

  it("axis -1 is numpy broadcasting", async () => {
    const x = seq([2, 3]);
    const y = Tensor.f32([3], [1, 2, 3]);
    const g = await load([{ name: "x", dims: [2, 3] }, { name: "y", dims: [3] }, { name: "o", dims: [2, 3] }], ["x", "y"],
      [{ type: "elementwise_sub", inputs: { X: ["x"], Y: ["y"] }, outputs: { Out: ["o"] }, attrs: { axis: at.i(-1) } }], ["o"]);
    close(arr(await run1(g, { x, y })), arr(x).map((v, i) => v - [1, 2, 3][i % 3]!));
  });
});

describe("dropout, scale", () => {
  const dropout = (impl: string) => load([{ name: "x", dims: [4] }, { name: "o", dims: [4] }], ["x"],
    [{ type: "dropout", inputs: { X: ["x"] }, outputs: { Out: ["o"], Mask: ["m"] }, attrs: { dropout_prob: at.f(0.25), is_test: at.b(true), dropout_implementation: at.s(impl) } }], ["o"]);
  const x = Tensor.f32([4], [1, 2, 3, 4]);

  it("downgrade_in_infer scales by 1 - p at inference", async () => {
    close(arr(await run1(await dropout("downgrade_in_infer"), { x })), [0.75, 1.5, 2.25, 3]);
  });
  it("upscale_in_train is the identity at inference", async () => {
    close(arr(await run1(await dropout("upscale_in_train"), { x })), [1, 2, 3, 4]);
  });
  it("scale: bias before or after the scale", async () => {
    for (const [after, want] of [[true, [5, 7, 9, 11]], [false, [8, 10, 12, 14]]] as const) {
      const g = await load([{ name: "x", dims: [4] }, { name: "o", dims: [4] }], ["x"],
        [{ type: "scale", inputs: { X: ["x"] }, outputs: { Out: ["o"] }, attrs: { scale: at.f(2), bias: at.f(3), bias_after_scale: at.b(after) } }], ["o"]);
      close(arr(await run1(g, { x })), want);
    }
  });
});

describe("matmul family", () => {
  it("matmul with transpose_Y and alpha; mul flattens with x_num_col_dims", async () => {
    const x = seq([2, 3]);
    const w = seq([4, 3], (i) => i - 5);
    const g = await load([{ name: "x", dims: [-1, 3] }, { name: "o", dims: [-1, 4] }], ["x"],
      [{ type: "matmul", inputs: { X: ["x"], Y: ["w"] }, outputs: { Out: ["o"] }, attrs: { transpose_X: at.b(false), transpose_Y: at.b(true), alpha: at.f(0.5) } }], ["o"], { w });
    const xs = arr(x), ws = arr(w);
    const want: number[] = [];
    for (let i = 0; i < 2; i++) for (let j = 0; j < 4; j++) { let s = 0; for (let t = 0; t < 3; t++) s += xs[i * 3 + t]! * ws[j * 3 + t]!; want.push(0.5 * s); }
    close(arr(await run1(g, { x })), want, 1e-4);

    const x3 = seq([2, 3, 2]);
    const w2 = seq([2, 5], (i) => i * 0.1);
    const gm = await load([{ name: "x", dims: [-1, 3, 2] }, { name: "o", dims: [-1, 3, 5] }], ["x"],
      [{ type: "mul", inputs: { X: ["x"], Y: ["w"] }, outputs: { Out: ["o"] }, attrs: { x_num_col_dims: at.i(2), y_num_col_dims: at.i(1) } }], ["o"], { w: w2 });
    const out = await run1(gm, { x: x3 });
    expect(out.shape).toEqual([2, 3, 5]);
    const a = arr(x3), b = arr(w2), want2: number[] = [];
    for (let r = 0; r < 6; r++) for (let j = 0; j < 5; j++) want2.push(a[r * 2]! * b[j]! + a[r * 2 + 1]! * b[5 + j]!);
    close(arr(out), want2, 1e-4);
  });
});

describe("shape ops", () => {
  it("flatten_contiguous_range, unsqueeze2 with negative axes, squeeze2 ignoring non-1 axes", async () => {
    const x = seq([2, 3, 4, 5]);
    const g = await load([{ name: "x", dims: [-1, 3, 4, 5] }, { name: "f", dims: [-1, 12, 5] }, { name: "u", dims: [-1, 12, 1, 5, 1] }, { name: "s", dims: [-1, 12, 5] }], ["x"], [
      { type: "flatten_contiguous_range", inputs: { X: ["x"] }, outputs: { Out: ["f"], XShape: ["xs"] }, attrs: { start_axis: at.i(1), stop_axis: at.i(2) } },
      { type: "unsqueeze2", inputs: { X: ["f"] }, outputs: { Out: ["u"], XShape: ["xs2"] }, attrs: { axes: at.ints([-1, 2]) } },
      { type: "squeeze2", inputs: { X: ["u"] }, outputs: { Out: ["s"], XShape: ["xs3"] }, attrs: { axes: at.ints([1, 2, -1]) } },
    ], ["u", "s"]);
    const r = await new ReferenceExecutor(g).run({ x });
    expect(r[g.outputs[0]!.name]!.shape).toEqual([2, 12, 1, 5, 1]);
    expect(r[g.outputs[1]!.name]!.shape).toEqual([2, 12, 5]);
    close(arr(r[g.outputs[1]!.name]!), arr(x));
  });

  it("slice with decrease_axis, split by num and sections, concat", async () => {
    const x = seq([2, 6, 3]);
    const g = await load([
      { name: "x", dims: [2, 6, 3] }, { name: "sl", dims: [6, 2] }, { name: "a", dims: [2, 2, 3] }, { name: "b", dims: [2, 4, 3] },
      { name: "c1", dims: [2, 3, 3] }, { name: "c2", dims: [2, 3, 3] }, { name: "cat", dims: [2, 6, 3] },
    ], ["x"], [
      { type: "slice", inputs: { Input: ["x"] }, outputs: { Out: ["sl"] }, attrs: { axes: at.ints([0, 2]), starts: at.ints([1, 1]), ends: at.ints([2, 10000]), decrease_axis: at.ints([0]) } },
      { type: "split", inputs: { X: ["x"] }, outputs: { Out: ["a", "b"] }, attrs: { axis: at.i(1), sections: at.ints([2, -1]), num: at.i(0) } },
      { type: "split", inputs: { X: ["x"] }, outputs: { Out: ["c1", "c2"] }, attrs: { axis: at.i(1), num: at.i(2) } },
      { type: "concat", inputs: { X: ["c2", "c1"] }, outputs: { Out: ["cat"] }, attrs: { axis: at.i(1) } },
    ], ["sl", "a", "b", "cat"]);
    const r = await new ReferenceExecutor(g).run({ x });
    const [sl, a, b, cat] = g.outputs.map((o) => r[o.name]!);
    expect(sl!.shape).toEqual([6, 2]);
    const xs = arr(x);
    close(arr(sl!), Array.from({ length: 12 }, (_, i) => xs[18 + Math.floor(i / 2) * 3 + 1 + (i % 2)]!));
    expect(a!.shape).toEqual([2, 2, 3]);
    expect(b!.shape).toEqual([2, 4, 3]);
    expect(cat!.shape).toEqual([2, 6, 3]);
    close(arr(cat!).slice(0, 9), xs.slice(9, 18));
  });

  it("reshape2 from a ShapeTensor list built at run time (shape + slice + fill_constant)", async () => {
    const x = seq([3, 8, 1, 1]);
    const g = await load([
      { name: "x", dims: [-1, 8, 1, 1] }, { name: "sh", dims: [4], dtype: 2 }, { name: "n", dims: [1], dtype: 2 }, { name: "c", dims: [1], dtype: 2 }, { name: "o", dims: [-1, 8] },
    ], ["x"], [
      { type: "shape", inputs: { Input: ["x"] }, outputs: { Out: ["sh"] } },
      { type: "slice", inputs: { Input: ["sh"] }, outputs: { Out: ["n"] }, attrs: { axes: at.ints([0]), starts: at.ints([0]), ends: at.ints([1]), decrease_axis: at.ints([0]) } },
      { type: "fill_constant", outputs: { Out: ["c"] }, attrs: { shape: at.longs([1]), dtype: at.i(2), value: at.f(8), str_value: at.s("8") } },
      { type: "reshape2", inputs: { X: ["x"], ShapeTensor: ["n", "c"] }, outputs: { Out: ["o"], XShape: ["xs"] }, attrs: { shape: at.ints([-1, 8]) } },
    ], ["o"]);
    const o = await run1(g, { x });
    expect(o.shape).toEqual([3, 8]);
    inferShapes(g, { inputShapes: { x: [5, 8, 1, 1] } });
    expect(g.valueInfo.get(g.outputs[0]!.name)?.shape).toEqual([5, 8]);
  });
});

describe("conv / pool attributes", () => {
  it("4-value paddings are [top, bottom, left, right]; SAME and VALID map to ONNX", async () => {
    const w = seq([2, 3, 3, 3]);
    const mk = (attrs: OpInit["attrs"]) => load([{ name: "x", dims: [1, 3, 8, 8] }, { name: "o", dims: [1, 2, -1, -1] }], ["x"],
      [{ type: "conv2d", inputs: { Input: ["x"], Filter: ["w"], Bias: [], ResidualData: [] }, outputs: { Output: ["o"] }, attrs: { strides: at.ints([1, 1]), dilations: at.ints([2, 2]), groups: at.i(1), ...attrs } }], ["o"], { w });
    const g4 = await mk({ paddings: at.ints([1, 2, 3, 4]), padding_algorithm: at.s("EXPLICIT") });
    expect(g4.nodes[0]!.ints("pads")).toEqual([1, 3, 2, 4]);
    expect(g4.nodes[0]!.ints("dilations")).toEqual([2, 2]);
    const gs = await mk({ paddings: at.ints([0, 0]), padding_algorithm: at.s("SAME") });
    expect(gs.nodes[0]!.str("auto_pad")).toBe("SAME_UPPER");
    expect(gs.nodes[0]!.ints("dilations")).toEqual([1, 1]);
    expect((await run1(gs, { x: seq([1, 3, 8, 8]) })).shape).toEqual([1, 2, 8, 8]);
    const gv = await mk({ paddings: at.ints([5, 5]), padding_algorithm: at.s("VALID") });
    expect(gv.nodes[0]!.ints("pads")).toEqual([0, 0, 0, 0]);
  });

  it("NHWC conv equals NCHW conv on transposed data", async () => {
    const w = seq([4, 3, 3, 3]);
    const xN = seq([1, 3, 5, 6]);
    const base = { strides: at.ints([1, 1]), dilations: at.ints([1, 1]), groups: at.i(1), paddings: at.ints([1, 1]) };
    const gN = await load([{ name: "x", dims: [1, 3, 5, 6] }, { name: "o", dims: [1, 4, 5, 6] }], ["x"],
      [{ type: "conv2d", inputs: { Input: ["x"], Filter: ["w"] }, outputs: { Output: ["o"] }, attrs: { ...base, data_format: at.s("NCHW") } }], ["o"], { w });
    const gH = await load([{ name: "x", dims: [1, 5, 6, 3] }, { name: "o", dims: [1, 5, 6, 4] }], ["x"],
      [{ type: "conv2d", inputs: { Input: ["x"], Filter: ["w"] }, outputs: { Output: ["o"] }, attrs: { ...base, data_format: at.s("NHWC") } }], ["o"], { w });
    const toNHWC = (t: Tensor) => {
      const [n, c, h, wd] = t.shape as number[];
      const s = t.toFloat32(), d = new Float32Array(s.length);
      for (let ci = 0; ci < c!; ci++) for (let y = 0; y < h!; y++) for (let x = 0; x < wd!; x++) d[(y * wd! + x) * c! + ci] = s[(ci * h! + y) * wd! + x]!;
      return Tensor.f32([n!, h!, wd!, c!], d);
    };
    const oN = await run1(gN, { x: xN });
    const oH = await run1(gH, { x: toNHWC(xN) });
    close(arr(oH), arr(toNHWC(oN)), 1e-4);
  });

  it("pool2d: exclusive=false counts the padding, ceil_mode, global and adaptive", async () => {
    const mk = (attrs: OpInit["attrs"], od: number[]) => load([{ name: "x", dims: [1, 2, 6, 6] }, { name: "o", dims: od }], ["x"],
      [{ type: "pool2d", inputs: { X: ["x"] }, outputs: { Out: ["o"] }, attrs: { pooling_type: at.s("avg"), ksize: at.ints([3, 3]), strides: at.ints([2, 2]), paddings: at.ints([1, 1]), ...attrs } }], ["o"]);
    const g = await mk({ exclusive: at.b(false), ceil_mode: at.b(true) }, [1, 2, 4, 4]);
    expect(g.nodes[0]!.opType).toBe("AveragePool");
    expect(g.nodes[0]!.int("count_include_pad")).toBe(1);
    expect(g.nodes[0]!.int("ceil_mode")).toBe(1);
    const ga = await mk({ adaptive: at.b(true), ksize: at.ints([2, 3]) }, [1, 2, 2, 3]);
    const x = seq([1, 2, 6, 6]);
    const oa = await run1(ga, { x });
    expect(oa.shape).toEqual([1, 2, 2, 3]);
    const xs = arr(x);
    let s = 0;
    for (let y = 0; y < 3; y++) for (let xx = 0; xx < 2; xx++) s += xs[y * 6 + xx]!;
    close([arr(oa)[0]!], [s / 6]);
    const gg = await mk({ global_pooling: at.b(true), pooling_type: at.s("max") }, [1, 2, 1, 1]);
    expect(gg.nodes[0]!.opType).toBe("GlobalMaxPool");
  });
});

/** Paddle's own interpolation rules, written out for NCHW with one channel. */
function paddleInterp(src: Float32Array, ih: number, iw: number, oh: number, ow: number, method: "nearest" | "bilinear", alignCorners: boolean, alignMode: number): number[] {
  const ratio = (i: number, o: number) => (o > 1 ? (alignCorners ? (i - 1) / (o - 1) : i / o) : 0);
  const rh = ratio(ih, oh), rw = ratio(iw, ow);
  const out: number[] = [];
  const at2 = (y: number, x: number) => src[y * iw + x]!;
  for (let k = 0; k < oh; k++) for (let l = 0; l < ow; l++) {
    if (method === "nearest") {
      const y = alignCorners ? Math.trunc(rh * k + 0.5) : Math.trunc(rh * k);
      const x = alignCorners ? Math.trunc(rw * l + 0.5) : Math.trunc(rw * l);
      out.push(at2(y, x));
      continue;
    }
    const flag = alignMode === 0 && !alignCorners;
    const coord = (r: number, i: number, n: number) => {
      let lo = flag ? Math.trunc(r * (i + 0.5) - 0.5) : Math.trunc(r * i);
      lo = Math.max(lo, 0);
      const hi = Math.min(lo + 1, n - 1);
      const srcIdx = Math.max(r * (i + 0.5) - 0.5, 0);
      const d = flag ? srcIdx - lo : r * i - lo;
      return [lo, hi, d] as const;
    };
    const [y0, y1, dy] = coord(rh, k, ih);
    const [x0, x1, dx] = coord(rw, l, iw);
    out.push(at2(y0, x0) * (1 - dy) * (1 - dx) + at2(y0, x1) * (1 - dy) * dx + at2(y1, x0) * dy * (1 - dx) + at2(y1, x1) * dy * dx);
  }
  return out;
}

describe("interpolation matches Paddle's coordinate rules", () => {
  const cases: [string, "nearest" | "bilinear", boolean, number][] = [
    ["nearest_interp_v2", "nearest", false, 1],
    ["nearest_interp_v2", "nearest", true, 1],
    ["bilinear_interp_v2", "bilinear", true, 1],
    ["bilinear_interp_v2", "bilinear", false, 0],
    ["bilinear_interp_v2", "bilinear", false, 1],
    ["bilinear_interp", "bilinear", false, 0],
  ];
  for (const [op, method, ac, am] of cases) {
    for (const [oh, ow] of [[7, 3], [8, 10]] as const) {
      it(`${op} align_corners=${ac} align_mode=${am} 4x5 -> ${oh}x${ow}`, async () => {
        const x = seq([1, 1, 4, 5], (i) => i * i * 0.1 - i);
        const g = await load([{ name: "x", dims: [-1, 1, 4, 5] }, { name: "o", dims: [-1, 1, oh, ow] }], ["x"], [{
          type: op, inputs: { X: ["x"], OutSize: [], SizeTensor: [], Scale: [] }, outputs: { Out: ["o"] },
          attrs: { out_h: at.i(oh), out_w: at.i(ow), align_corners: at.b(ac), align_mode: at.i(am), data_layout: at.s("NCHW"), interp_method: at.s(method), scale: op.endsWith("v2") ? at.floats([]) : at.f(0) },
        }], ["o"]);
        const got = await run1(g, { x });
        expect(got.shape).toEqual([1, 1, oh, ow]);
        close(arr(got), paddleInterp(x.toFloat32(), 4, 5, oh, ow, method, ac, am), 1e-4);
      });
    }
  }
});

describe("activations", () => {
  it("hard_swish with non-default attrs, hard_sigmoid, relu6, swish, leaky_relu", async () => {
    const x = Tensor.f32([6], [-5, -2, -0.5, 0.5, 2, 7]);
    const xs = arr(x);
    const one = async (type: string, attrs: OpInit["attrs"], f: (v: number) => number) => {
      const g = await load([{ name: "x", dims: [6] }, { name: "o", dims: [6] }], ["x"], [{ type, inputs: { X: ["x"] }, outputs: { Out: ["o"] }, attrs }], ["o"]);
      close(arr(await run1(g, { x })), xs.map(f), 1e-5);
    };
    await one("hard_swish", { threshold: at.f(5), scale: at.f(4), offset: at.f(2) }, (v) => (v * Math.min(Math.max(v + 2, 0), 5)) / 4);
    await one("hard_swish", { threshold: at.f(6), scale: at.f(6), offset: at.f(3) }, (v) => (v * Math.min(Math.max(v + 3, 0), 6)) / 6);
    await one("hard_sigmoid", { slope: at.f(0.2), offset: at.f(0.5) }, (v) => Math.min(Math.max(0.2 * v + 0.5, 0), 1));
    await one("relu6", { threshold: at.f(6) }, (v) => Math.min(Math.max(v, 0), 6));
    await one("swish", { beta: at.f(1.5) }, (v) => v / (1 + Math.exp(-1.5 * v)));
    await one("leaky_relu", { alpha: at.f(0.1) }, (v) => (v > 0 ? v : 0.1 * v));
  });
});
