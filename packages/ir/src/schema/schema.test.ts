import { describe, expect, it } from "vitest";
import type { DType } from "../dtype.js";
import { Graph, Node, type AttrValue, type Dim } from "../graph.js";
import { Tensor } from "../tensor.js";
import { ONNX_OPS, countMacs, foldConstants, getSchema, inferShapes, registerSchema } from "./index.js";

// ---- tiny graph builder -------------------------------------------------------------------

const i = (value: number): AttrValue => ({ type: "int", value });
const f = (value: number): AttrValue => ({ type: "float", value });
const is = (value: number[]): AttrValue => ({ type: "ints", value });
const fs = (value: number[]): AttrValue => ({ type: "floats", value });
const s = (value: string): AttrValue => ({ type: "string", value });
const t = (value: Tensor): AttrValue => ({ type: "tensor", value });
const g_ = (value: Graph): AttrValue => ({ type: "graph", value });

let counter = 0;
function N(opType: string, inputs: string[], outputs: string[], attrs: Record<string, AttrValue> = {}): Node {
  return new Node({ name: `${opType}_${counter++}`, opType, inputs, outputs, attrs });
}

interface Spec {
  opset?: number;
  inputs?: Record<string, [DType, Dim[]]>;
  inits?: Record<string, Tensor>;
  nodes: Node[];
  outputs?: string[];
}

function build(spec: Spec): Graph {
  const g = new Graph({ opsets: { "": spec.opset ?? 17 } });
  g.inputs = Object.entries(spec.inputs ?? {}).map(([name, [dtype, shape]]) => ({ name, dtype, shape }));
  for (const [k, v] of Object.entries(spec.inits ?? {})) g.initializers.set(k, v);
  g.nodes = spec.nodes;
  const produced = spec.nodes.flatMap((n) => n.outputs).filter((o) => o);
  g.outputs = (spec.outputs ?? produced).map((name) => ({ name }));
  return g;
}

/** Build, infer, return the shape (and dtype) of each named value. */
function infer(spec: Spec, opts?: Parameters<typeof inferShapes>[1]) {
  const g = build(spec);
  const res = inferShapes(g, opts);
  const shape = (n: string) => g.valueInfo.get(n)?.shape;
  const dtype = (n: string) => g.valueInfo.get(n)?.dtype;
  return { g, res, shape, dtype };
}

const W = (shape: number[]) => Tensor.zeros("float32", shape);
const I64 = (vals: number[], shape = [vals.length]) => Tensor.i64(shape, vals);
const F32 = (vals: number[], shape = [vals.length]) => Tensor.f32(shape, vals);
const x4 = (shape: Dim[], dt: DType = "float32"): Record<string, [DType, Dim[]]> => ({ x: [dt, shape] });

// ---- registry ------------------------------------------------------------------------------

describe("registry", () => {
  it("has schemas for the required ops", () => {
    const required = `Conv ConvTranspose Gemm MatMul MatMulInteger Add Sub Mul Div Pow Sqrt Exp Log Erf Neg Abs Relu
      LeakyRelu PRelu Sigmoid Tanh HardSigmoid HardSwish Clip Softmax BatchNormalization LayerNormalization
      InstanceNormalization MaxPool AveragePool GlobalAveragePool GlobalMaxPool Concat Split Slice Reshape Flatten
      Transpose Squeeze Unsqueeze Pad Resize Upsample ReduceMean ReduceMax ReduceMin ReduceSum ReduceProd ReduceL2
      Gather GatherElements Shape Size Constant ConstantOfShape Cast CastLike Expand Tile Where Equal Greater Less
      Not And Or ArgMax ArgMin Identity Dropout LSTM GRU QuantizeLinear DequantizeLinear Min Max Sum Mean Floor
      Ceil Round Reciprocal Sin Cos Softplus Elu Selu Gelu Mish Einsum TopK NonZero Range If Loop DepthToSpace
      SpaceToDepth ReduceLogSumExp CumSum ScatterND GatherND OneHot Trilu Sign IsNaN Mod`.split(/\s+/);
    const missing = required.filter((op) => !getSchema(op));
    expect(missing).toEqual([]);
    for (const op of required) expect(ONNX_OPS.has(op)).toBe(true);
  });

  it("lists the standard ONNX ops, deprecated ones included", () => {
    expect(ONNX_OPS.size).toBeGreaterThan(180);
    for (const op of ["Upsample", "Scatter", "Crop", "Xor", "Abs", "Acos", "ImageScaler"]) expect(ONNX_OPS.has(op)).toBe(true);
    expect(ONNX_OPS.has("Conv2d")).toBe(false);
    expect(getSchema("Conv", "ai.onnx")).toBe(getSchema("Conv"));
  });

  it("reports ops without schema and leaves their outputs unknown", () => {
    const { res, shape } = infer({
      inputs: x4([1, 3]),
      nodes: [N("MyCustomOp", ["x"], ["y"]), N("Relu", ["y"], ["z"]), N("Foo", ["x"], ["w"], {})],
    });
    expect(res.noSchema).toEqual(["MyCustomOp", "Foo"]);
    expect([...res]).toEqual(["MyCustomOp", "Foo"]);
    expect(shape("y")).toBeUndefined();
    expect(shape("z")).toBeUndefined();
  });

  it("accepts registered schemas for custom domains", () => {
    registerSchema({ opType: "Twice", domain: "my.domain", inputs: [1, 1], outputs: [1, 1], infer: (ctx) => [{ dtype: ctx.inputs[0]!.dtype!, shape: ctx.inputs[0]!.shape!.map((d) => (typeof d === "number" ? d * 2 : null)) }] });
    const g = build({ inputs: x4([2, 3]), nodes: [new Node({ opType: "Twice", domain: "my.domain", inputs: ["x"], outputs: ["y"] })] });
    const res = inferShapes(g);
    expect(res.noSchema).toEqual([]);
    expect(g.valueInfo.get("y")?.shape).toEqual([4, 6]);
  });

  it("records failing nodes instead of throwing", () => {
    const { res, shape } = infer({ inputs: { a: ["float32", [2, 3]], b: ["float32", [4, 3]] }, nodes: [N("Add", ["a", "b"], ["c"])] });
    expect(res.errors.length).toBe(1);
    expect(res.errors[0]!.message).toMatch(/broadcast/);
    expect(shape("c")).toBeUndefined();
  });
});

// ---- convolution ---------------------------------------------------------------------------

describe("Conv", () => {
  it("ResNet stem: 1x3x224x224, 64x3x7x7, s2 p3 -> 1x64x112x112", () => {
    const { shape, dtype } = infer({
      inputs: x4([1, 3, 224, 224]),
      inits: { w: W([64, 3, 7, 7]) },
      nodes: [N("Conv", ["x", "w"], ["y"], { strides: is([2, 2]), pads: is([3, 3, 3, 3]), kernel_shape: is([7, 7]) })],
    });
    expect(shape("y")).toEqual([1, 64, 112, 112]);
    expect(dtype("y")).toBe("float32");
  });

  it("auto_pad SAME_UPPER with stride 2 (ONNX conv_with_autopad_same)", () => {
    const { shape } = infer({
      inputs: x4([1, 1, 5, 5]),
      inits: { w: W([1, 1, 3, 3]) },
      nodes: [N("Conv", ["x", "w"], ["y"], { auto_pad: s("SAME_LOWER"), strides: is([2, 2]) }), N("Conv", ["x", "w"], ["z"], { auto_pad: s("VALID"), strides: is([2, 2]) })],
    });
    expect(shape("y")).toEqual([1, 1, 3, 3]);
    expect(shape("z")).toEqual([1, 1, 2, 2]);
  });

  it("strides with asymmetric padding (ONNX conv_with_strides_and_asymmetric_padding)", () => {
    const { shape } = infer({
      inputs: x4([1, 1, 7, 5]),
      inits: { w: W([1, 1, 3, 3]) },
      nodes: [N("Conv", ["x", "w"], ["y"], { strides: is([2, 2]), pads: is([1, 0, 1, 0]) })],
    });
    expect(shape("y")).toEqual([1, 1, 4, 2]);
  });

  it("dilations, groups, symbolic batch, 1-D and 3-D convs", () => {
    const { shape } = infer({
      inputs: { x: ["float32", ["N", 32, 56, 56]], a: ["float32", [2, 4, 100]], v: ["float32", [1, 2, 8, 16, 16]] },
      inits: { wd: W([1, 32, 3, 3]), wg: W([32, 1, 3, 3]), w1: W([8, 4, 5]), w3: W([4, 2, 3, 3, 3]) },
      nodes: [
        N("Conv", ["x", "wd"], ["y"], { dilations: is([2, 2]) }),
        N("Conv", ["x", "wg"], ["z"], { group: i(32), pads: is([1, 1, 1, 1]) }),
        N("Conv", ["a", "w1"], ["b"], { strides: is([2]) }),
        N("Conv", ["v", "w3"], ["u"], { pads: is([1, 1, 1, 1, 1, 1]), strides: is([2, 2, 2]) }),
      ],
    });
    expect(shape("y")).toEqual(["N", 1, 52, 52]);
    expect(shape("z")).toEqual(["N", 32, 56, 56]);
    expect(shape("b")).toEqual([2, 8, 48]);
    expect(shape("u")).toEqual([1, 4, 4, 8, 8]);
  });

  it("unknown spatial dims stay unknown, channels still known", () => {
    const { shape } = infer({
      inputs: x4(["N", 3, "H", "W"]),
      inits: { w: W([16, 3, 3, 3]) },
      nodes: [N("Conv", ["x", "w"], ["y"], { pads: is([1, 1, 1, 1]) })],
    });
    expect(shape("y")).toEqual(["N", 16, null, null]);
  });
});

describe("ConvTranspose", () => {
  const base = (attrs: Record<string, AttrValue>, w = [1, 2, 3, 3], x: Dim[] = [1, 1, 3, 3]) =>
    infer({ inputs: x4(x), inits: { w: W(w) }, nodes: [N("ConvTranspose", ["x", "w"], ["y"], attrs)] }).shape("y");

  it("follows the ONNX operator examples", () => {
    expect(base({})).toEqual([1, 2, 5, 5]); // convtranspose
    expect(base({ strides: is([3, 2]), output_padding: is([1, 1]) })).toEqual([1, 2, 10, 8]); // convtranspose_pad
    expect(base({ strides: is([3, 2]), output_shape: is([10, 8]) })).toEqual([1, 2, 10, 8]); // convtranspose_output_shape
    expect(base({ strides: is([3, 2]), pads: is([1, 2, 1, 2]) })).toEqual([1, 2, 7, 3]); // convtranspose_pads
    expect(base({ strides: is([2, 2]), auto_pad: s("SAME_UPPER") })).toEqual([1, 2, 6, 6]); // convtranspose_autopad_same
    expect(base({ dilations: is([2, 2]) }, [1, 1, 2, 2])).toEqual([1, 1, 5, 5]); // convtranspose_dilations
    expect(base({ group: i(2) }, [4, 1, 3, 3], [1, 4, 3, 3])).toEqual([1, 2, 5, 5]);
    expect(base({ strides: is([2]) }, [1, 2, 3], [1, 1, 3])).toEqual([1, 2, 7]); // convtranspose_1d
  });
});

// ---- pooling -------------------------------------------------------------------------------

describe("pooling", () => {
  const pool = (op: string, x: Dim[], attrs: Record<string, AttrValue>, outs = ["y"]) => {
    const r = infer({ inputs: x4(x), nodes: [N(op, ["x"], outs, attrs)] });
    return r;
  };

  it("MaxPool ceil_mode, pads, dilations, auto_pad, strides (ONNX examples)", () => {
    expect(pool("MaxPool", [1, 1, 4, 4], { kernel_shape: is([3, 3]), strides: is([2, 2]), ceil_mode: i(1) }).shape("y")).toEqual([1, 1, 2, 2]);
    expect(pool("MaxPool", [1, 1, 4, 4], { kernel_shape: is([3, 3]), strides: is([2, 2]) }).shape("y")).toEqual([1, 1, 1, 1]);
    expect(pool("MaxPool", [1, 3, 32, 32], { kernel_shape: is([2, 2]), auto_pad: s("SAME_UPPER") }).shape("y")).toEqual([1, 3, 32, 32]);
    expect(pool("MaxPool", [1, 3, 32, 32], { kernel_shape: is([3, 3]), strides: is([2, 2]), auto_pad: s("SAME_LOWER") }).shape("y")).toEqual([1, 3, 16, 16]);
    expect(pool("MaxPool", [1, 3, 32, 32], { kernel_shape: is([5, 5]), auto_pad: s("VALID"), strides: is([3, 3]) }).shape("y")).toEqual([1, 3, 10, 10]);
    expect(pool("MaxPool", [1, 1, 4, 4], { kernel_shape: is([2, 2]), dilations: is([2, 2]) }).shape("y")).toEqual([1, 1, 2, 2]);
    expect(pool("MaxPool", [1, 3, 28, 28], { kernel_shape: is([3, 3]), pads: is([2, 2, 2, 2]) }).shape("y")).toEqual([1, 3, 30, 30]);
    expect(pool("MaxPool", [1, 3, 32, 32], { kernel_shape: is([5, 5]), strides: is([3, 3]) }).shape("y")).toEqual([1, 3, 10, 10]);
    expect(pool("MaxPool", [1, 3, 32], { kernel_shape: is([2]) }).shape("y")).toEqual([1, 3, 31]);
  });

  it("ceil_mode drops a last window that starts in the padding (as PyTorch)", () => {
    expect(pool("MaxPool", [1, 1, 4, 4], { kernel_shape: is([2, 2]), strides: is([3, 3]), pads: is([1, 1, 1, 1]), ceil_mode: i(1) }).shape("y")).toEqual([1, 1, 2, 2]);
    expect(pool("MaxPool", [1, 1, 6, 6], { kernel_shape: is([3, 3]), strides: is([2, 2]), ceil_mode: i(1) }).shape("y")).toEqual([1, 1, 3, 3]);
  });

  it("MaxPool Indices output is int64", () => {
    const r = pool("MaxPool", [1, 3, 8, 8], { kernel_shape: is([2, 2]), strides: is([2, 2]) }, ["y", "idx"]);
    expect(r.shape("idx")).toEqual([1, 3, 4, 4]);
    expect(r.dtype("idx")).toBe("int64");
  });

  it("AveragePool and global pools", () => {
    expect(pool("AveragePool", [1, 3, 32, 32], { kernel_shape: is([2, 2]) }).shape("y")).toEqual([1, 3, 31, 31]);
    expect(pool("AveragePool", [1, 3, 32, 32], { kernel_shape: is([3, 3]), strides: is([2, 2]), pads: is([1, 1, 1, 1]), ceil_mode: i(1) }).shape("y")).toEqual([1, 3, 17, 17]);
    expect(pool("GlobalAveragePool", ["N", 512, 7, 7], {}).shape("y")).toEqual(["N", 512, 1, 1]);
    expect(pool("GlobalMaxPool", [1, 8, 5, 5, 5], {}).shape("y")).toEqual([1, 8, 1, 1, 1]);
  });
});

// ---- matrix products -----------------------------------------------------------------------

describe("Gemm and MatMul", () => {
  it("Gemm with transA / transB", () => {
    const { shape } = infer({
      inputs: { a: ["float32", [4, 3]], a2: ["float32", ["N", 512]] },
      inits: { b: W([5, 4]), fc: W([1000, 512]), c: W([1000]) },
      nodes: [N("Gemm", ["a", "b"], ["y"], { transA: i(1), transB: i(1) }), N("Gemm", ["a2", "fc", "c"], ["z"], { transB: i(1) })],
    });
    expect(shape("y")).toEqual([3, 5]);
    expect(shape("z")).toEqual(["N", 1000]);
  });

  it("MatMul numpy semantics: 1-D operands and batch broadcasting", () => {
    const mm = (a: Dim[], b: Dim[]) =>
      infer({ inputs: { a: ["float32", a], b: ["float32", b] }, nodes: [N("MatMul", ["a", "b"], ["y"])] }).shape("y");
    expect(mm([2, 3, 4], [4, 5])).toEqual([2, 3, 5]);
    expect(mm([4], [4, 5])).toEqual([5]);
    expect(mm([2, 3, 4], [4])).toEqual([2, 3]);
    expect(mm([4], [4])).toEqual([]);
    expect(mm([2, 1, 3, 4], [5, 4, 6])).toEqual([2, 5, 3, 6]);
    expect(mm(["batch", "seq", 768], [768, 3072])).toEqual(["batch", "seq", 3072]);
    expect(mm(["B", 12, "S", 64], ["B", 12, 64, "S"])).toEqual(["B", 12, "S", "S"]);
  });

  it("MatMulInteger gives int32", () => {
    const { shape, dtype } = infer({ inputs: { a: ["uint8", [2, 3]], b: ["int8", [3, 4]] }, nodes: [N("MatMulInteger", ["a", "b"], ["y"])] });
    expect(shape("y")).toEqual([2, 4]);
    expect(dtype("y")).toBe("int32");
  });

  it("Einsum output shape from the equation", () => {
    const es = (eq: string, shapes: Dim[][]) => {
      const inputs = Object.fromEntries(shapes.map((sh, k) => [`i${k}`, ["float32", sh] as [DType, Dim[]]]));
      return infer({ inputs, nodes: [N("Einsum", Object.keys(inputs), ["y"], { equation: s(eq) })] }).shape("y");
    };
    expect(es("bij,bjk->bik", [[2, 3, 4], [2, 4, 5]])).toEqual([2, 3, 5]);
    expect(es("ij,jk", [[3, 4], [4, 5]])).toEqual([3, 5]);
    expect(es("ij->ji", [[3, 4]])).toEqual([4, 3]);
    expect(es("ii->i", [[3, 3]])).toEqual([3]);
    expect(es("...ij,...jk->...ik", [[7, 2, 3, 4], [2, 4, 5]])).toEqual([7, 2, 3, 5]);
    expect(es("i,i", [[5], [5]])).toEqual([]);
    expect(es("bhqd, bhkd -> bhqk", [["B", 8, 10, 64], ["B", 8, 12, 64]])).toEqual(["B", 8, 10, 12]);
  });
});

// ---- elementwise / broadcasting --------------------------------------------------------------

describe("elementwise", () => {
  it("broadcasts numpy-style, symbolic dims included", () => {
    const { shape, dtype } = infer({
      inputs: { a: ["float32", ["N", 3, 1, 5]], b: ["float32", [4, 1]], c: ["bool", [1]], k: ["float32", [3, 1, 1]] },
      nodes: [
        N("Add", ["a", "b"], ["y"]),
        N("Equal", ["a", "b"], ["e"]),
        N("Where", ["c", "a", "b"], ["w"]),
        N("Max", ["a", "b", "k"], ["m"]),
        N("PRelu", ["a", "k"], ["p"]),
        N("Pow", ["a", "k"], ["pw"]),
        N("Not", ["c"], ["nc"]),
        N("Sigmoid", ["a"], ["sg"]),
        N("Clip", ["a", "", ""], ["cl"]),
      ],
    });
    expect(shape("y")).toEqual(["N", 3, 4, 5]);
    expect(shape("e")).toEqual(["N", 3, 4, 5]);
    expect(dtype("e")).toBe("bool");
    expect(shape("w")).toEqual(["N", 3, 4, 5]);
    expect(dtype("w")).toBe("float32");
    expect(shape("m")).toEqual(["N", 3, 4, 5]);
    expect(shape("p")).toEqual(["N", 3, 1, 5]);
    expect(shape("pw")).toEqual(["N", 3, 1, 5]);
    expect(dtype("nc")).toBe("bool");
    expect(shape("sg")).toEqual(["N", 3, 1, 5]);
    expect(shape("cl")).toEqual(["N", 3, 1, 5]);
  });

  it("Cast, CastLike, quantization dtypes", () => {
    const { dtype, shape } = infer({
      opset: 13,
      inputs: { x: ["float32", [2, 3]], i8: ["int8", [2, 3]] },
      inits: { sc: F32([0.1], []), zp: Tensor.zeros("int8", []), zu: Tensor.zeros("uint8", []) },
      nodes: [
        N("Cast", ["x"], ["c"], { to: i(7) }),
        N("CastLike", ["x", "c"], ["cl"]),
        N("QuantizeLinear", ["x", "sc", "zp"], ["q8"]),
        N("QuantizeLinear", ["x", "sc"], ["qu"]),
        N("DequantizeLinear", ["i8", "sc", "zp"], ["dq"]),
        N("DynamicQuantizeLinear", ["x"], ["dy", "dys", "dyz"]),
      ],
    });
    expect(dtype("c")).toBe("int64");
    expect(shape("c")).toEqual([2, 3]);
    expect(dtype("cl")).toBe("int64");
    expect(dtype("q8")).toBe("int8");
    expect(dtype("qu")).toBe("uint8");
    expect(dtype("dq")).toBe("float32");
    expect(shape("dq")).toEqual([2, 3]);
    expect([dtype("dy"), dtype("dys"), shape("dys")]).toEqual(["uint8", "float32", []]);
  });
});

// ---- reshaping -----------------------------------------------------------------------------

describe("Reshape, Flatten, Transpose, Squeeze, Unsqueeze", () => {
  it("Reshape with 0 and -1, symbolic batch, allowzero", () => {
    const { shape } = infer({
      opset: 14,
      inputs: { a: ["float32", [2, 3, 4]], b: ["float32", ["N", 3, 4]], z: ["float32", [0, 3, 4]] },
      inits: { s1: I64([0, -1]), s2: I64([-1, 12]), s3: I64([3, 4, 0]), s4: I64([-1]), s5: I64([4, 0, -1]) },
      nodes: [
        N("Reshape", ["a", "s1"], ["y1"]),
        N("Reshape", ["b", "s1"], ["y2"]),
        N("Reshape", ["b", "s2"], ["y3"]),
        N("Reshape", ["z", "s3"], ["y4"], { allowzero: i(1) }),
        N("Reshape", ["a", "s4"], ["y5"]),
        N("Reshape", ["a", "s5"], ["y6"]),
      ],
    });
    expect(shape("y1")).toEqual([2, 12]);
    expect(shape("y2")).toEqual(["N", 12]);
    expect(shape("y3")).toEqual(["N", 12]);
    expect(shape("y4")).toEqual([3, 4, 0]);
    expect(shape("y5")).toEqual([24]);
    expect(shape("y6")).toEqual([4, 3, 2]);
  });

  it("Reshape with a shape computed from Shape (symbolic dims propagate)", () => {
    const { shape, g } = infer({
      opset: 13,
      inputs: x4(["N", 3, 224, 224]),
      inits: { zero: I64([0], []), ax: I64([0]), m1: I64([-1]) },
      nodes: [
        N("Shape", ["x"], ["s"]),
        N("Gather", ["s", "zero"], ["n"]),
        N("Unsqueeze", ["n", "ax"], ["n1"]),
        N("Concat", ["n1", "m1"], ["shp"], { axis: i(0) }),
        N("Reshape", ["x", "shp"], ["y"]),
      ],
    });
    expect(shape("s")).toEqual([4]);
    expect(shape("n")).toEqual([]);
    expect(g.valueInfo.get("n")?.dtype).toBe("int64");
    expect(shape("n1")).toEqual([1]);
    expect(shape("y")).toEqual(["N", 150528]);
  });

  it("transformer-style head split [B,S,768] -> [B,S,12,64] -> [B,12,S,64]", () => {
    const { shape } = infer({
      opset: 13,
      inputs: x4(["B", "S", 768]),
      inits: { i0: I64([0], []), i1: I64([1], []), ax: I64([0]), h: I64([12]), d: I64([64]) },
      nodes: [
        N("Shape", ["x"], ["s"]),
        N("Gather", ["s", "i0"], ["b"]),
        N("Gather", ["s", "i1"], ["sq"]),
        N("Unsqueeze", ["b", "ax"], ["b1"]),
        N("Unsqueeze", ["sq", "ax"], ["s1"]),
        N("Concat", ["b1", "s1", "h", "d"], ["shp"], { axis: i(0) }),
        N("Reshape", ["x", "shp"], ["y"]),
        N("Transpose", ["y"], ["t"], { perm: is([0, 2, 1, 3]) }),
      ],
    });
    expect(shape("y")).toEqual(["B", "S", 12, 64]);
    expect(shape("t")).toEqual(["B", 12, "S", 64]);
  });

  it("Flatten and Transpose", () => {
    const { shape } = infer({
      inputs: { a: ["float32", ["N", 3, 4, 5]], b: ["float32", [2, 3]] },
      nodes: [
        N("Flatten", ["a"], ["f1"]),
        N("Flatten", ["a"], ["f2"], { axis: i(-1) }),
        N("Flatten", ["b"], ["f0"], { axis: i(0) }),
        N("Transpose", ["a"], ["t1"]),
        N("Transpose", ["a"], ["t2"], { perm: is([0, 2, 3, 1]) }),
      ],
    });
    expect(shape("f1")).toEqual(["N", 60]);
    expect(shape("f2")).toEqual([null, 5]);
    expect(shape("f0")).toEqual([1, 6]);
    expect(shape("t1")).toEqual([5, 4, 3, "N"]);
    expect(shape("t2")).toEqual(["N", 4, 5, 3]);
  });

  it("Unsqueeze: axes attribute before opset 13, input from 13", () => {
    const a = infer({ opset: 11, inputs: x4([3, 4, 5]), nodes: [N("Unsqueeze", ["x"], ["y"], { axes: is([0, 4]) }), N("Unsqueeze", ["x"], ["z"], { axes: is([-1]) })] });
    expect(a.shape("y")).toEqual([1, 3, 4, 5, 1]);
    expect(a.shape("z")).toEqual([3, 4, 5, 1]);
    const b = infer({ opset: 13, inputs: x4([3, 4, 5]), inits: { ax: I64([0, 4]) }, nodes: [N("Unsqueeze", ["x", "ax"], ["y"])] });
    expect(b.shape("y")).toEqual([1, 3, 4, 5, 1]);
    const c = infer({ opset: 13, inputs: { x: ["float32", [3, 4, 5]], ax: ["int64", [2]] }, nodes: [N("Unsqueeze", ["x", "ax"], ["y"])] });
    expect(c.shape("y")).toBeUndefined();
  });

  it("Squeeze: attribute, input, no axes", () => {
    const a = infer({ opset: 11, inputs: x4([1, 3, 1, 5]), nodes: [N("Squeeze", ["x"], ["y"], { axes: is([0]) }), N("Squeeze", ["x"], ["z"])] });
    expect(a.shape("y")).toEqual([3, 1, 5]);
    expect(a.shape("z")).toEqual([3, 5]);
    const b = infer({ opset: 13, inputs: x4([1, 3, 1, 5]), inits: { ax: I64([-2]) }, nodes: [N("Squeeze", ["x", "ax"], ["y"])] });
    expect(b.shape("y")).toEqual([1, 3, 5]);
  });
});

// ---- concat / split / slice ----------------------------------------------------------------

describe("Concat, Split, Slice", () => {
  it("Concat sums the axis", () => {
    const { shape } = infer({ inputs: { a: ["float32", ["N", 3, 8, 8]], b: ["float32", ["N", 5, 8, 8]] }, nodes: [N("Concat", ["a", "b"], ["y"], { axis: i(1) }), N("Concat", ["a", "a"], ["z"], { axis: i(-4) })] });
    expect(shape("y")).toEqual(["N", 8, 8, 8]);
    expect(shape("z")).toEqual([null, 3, 8, 8]);
  });

  it("Split: attribute (opset 11), input (13), equal parts, num_outputs (18, uneven)", () => {
    const a = infer({ opset: 11, inputs: x4([2, 6]), nodes: [N("Split", ["x"], ["a", "b"], { axis: i(1), split: is([2, 4]) })] });
    expect([a.shape("a"), a.shape("b")]).toEqual([[2, 2], [2, 4]]);
    const b = infer({ opset: 13, inputs: x4([2, 6]), inits: { sp: I64([1, 5]) }, nodes: [N("Split", ["x", "sp"], ["a", "b"], { axis: i(-1) })] });
    expect([b.shape("a"), b.shape("b")]).toEqual([[2, 1], [2, 5]]);
    const c = infer({ opset: 13, inputs: x4([6, "N"]), nodes: [N("Split", ["x"], ["a", "b", "c"])] });
    expect([c.shape("a"), c.shape("b"), c.shape("c")]).toEqual([[2, "N"], [2, "N"], [2, "N"]]);
    const d = infer({ opset: 18, inputs: x4([7]), nodes: [N("Split", ["x"], ["a", "b", "c", "d"], { num_outputs: i(4) })] });
    expect([d.shape("a"), d.shape("b"), d.shape("c"), d.shape("d")]).toEqual([[2], [2], [2], [1]]);
  });

  it("Slice: ONNX examples incl. negative steps and out-of-bounds ends", () => {
    const sl = (starts: number[], ends: number[], axes?: number[], steps?: number[]) => {
      const inits: Record<string, Tensor> = { st: I64(starts), en: I64(ends) };
      const ins = ["x", "st", "en"];
      if (axes) (inits.ax = I64(axes)), ins.push("ax");
      if (steps) {
        if (!axes) ins.push("");
        inits.sp = I64(steps);
        ins.push("sp");
      }
      return infer({ opset: 13, inputs: x4([20, 10, 5]), inits, nodes: [N("Slice", ins, ["y"])] }).shape("y");
    };
    expect(sl([0, 0], [3, 10], [0, 1], [1, 1])).toEqual([3, 10, 5]); // slice
    expect(sl([20, 10, 4], [0, 0, 1], [0, 1, 2], [-1, -3, -2])).toEqual([19, 3, 2]); // slice_neg_steps
    expect(sl([0, 0, 3], [20, 10, 4])).toEqual([20, 10, 1]); // slice_default_axes
    expect(sl([1], [1000], [1], [1])).toEqual([20, 9, 5]); // slice_end_out_of_bounds
    expect(sl([0], [-1], [1], [1])).toEqual([20, 9, 5]); // slice_neg
    expect(sl([1000], [1000], [1], [1])).toEqual([20, 0, 5]); // slice_start_out_of_bounds
    expect(sl([0, 0, 3], [20, 10, 4], [0, -2, -1])).toEqual([20, 10, 1]); // slice_negative_axes
    expect(sl([-1], [-1000], [0], [-1])).toEqual([20, 10, 5]); // full reverse
  });

  it("Slice with attributes before opset 10, and symbolic dims", () => {
    const a = infer({ opset: 9, inputs: x4([20, 10, 5]), nodes: [N("Slice", ["x"], ["y"], { starts: is([0, 2]), ends: is([3, -1]), axes: is([0, 1]) })] });
    expect(a.shape("y")).toEqual([3, 7, 5]);
    const b = infer({ opset: 13, inputs: x4(["N", "S", 8]), inits: { st: I64([0, 1]), en: Tensor.i64([2], [9223372036854775807n, 3n]), ax: I64([0, 2]) }, nodes: [N("Slice", ["x", "st", "en", "ax"], ["y"])] });
    expect(b.shape("y")).toEqual(["N", "S", 2]);
  });
});

// ---- padding and resizing ------------------------------------------------------------------

describe("Pad, Resize, Upsample", () => {
  it("Pad: attribute (opset 2), input (11), axes (18)", () => {
    expect(infer({ opset: 2, inputs: x4([1, 3, 4, 4]), nodes: [N("Pad", ["x"], ["y"], { pads: is([0, 0, 1, 2, 0, 0, 3, 4]) })] }).shape("y")).toEqual([1, 3, 8, 10]);
    expect(infer({ opset: 11, inputs: x4(["N", 3, 4, 4]), inits: { p: I64([0, 0, 1, 1, 0, 0, 1, 1]) }, nodes: [N("Pad", ["x", "p"], ["y"])] }).shape("y")).toEqual(["N", 3, 6, 6]);
    expect(infer({ opset: 18, inputs: x4([1, 3, 4, 4]), inits: { p: I64([2, 1, 2, 1]), ax: I64([-2, -1]) }, nodes: [N("Pad", ["x", "p", "", "ax"], ["y"])] }).shape("y")).toEqual([1, 3, 8, 6]);
  });

  it("Resize by scales and by sizes", () => {
    const r13 = infer({
      opset: 13,
      inputs: x4(["N", 3, 20, 20]),
      inits: { sc: F32([1, 1, 2, 2]), sz: I64([1, 3, 15, 17]), sc2: F32([1, 1, 0.6, 0.6]) },
      nodes: [N("Resize", ["x", "", "sc"], ["y"], { mode: s("nearest") }), N("Resize", ["x", "", "", "sz"], ["z"]), N("Resize", ["x", "", "sc2"], ["w"])],
    });
    expect(r13.shape("y")).toEqual(["N", 3, 40, 40]);
    expect(r13.shape("z")).toEqual([1, 3, 15, 17]);
    expect(r13.shape("w")).toEqual(["N", 3, 12, 12]);
    // opset 11: roi and scales given (scales empty when sizes are used)
    const r11 = infer({
      opset: 11,
      inputs: x4([1, 3, 20, 20]),
      inits: { roi: F32([]), sc: F32([]), sz: I64([1, 3, 7, 9]) },
      nodes: [N("Resize", ["x", "roi", "sc", "sz"], ["y"])],
    });
    expect(r11.shape("y")).toEqual([1, 3, 7, 9]);
    // opset 10: (X, scales)
    const r10 = infer({ opset: 10, inputs: x4([1, 3, 5, 5]), inits: { sc: F32([1, 1, 2, 3]) }, nodes: [N("Resize", ["x", "sc"], ["y"])] });
    expect(r10.shape("y")).toEqual([1, 3, 10, 15]);
  });

  it("Resize opset 18: axes and keep_aspect_ratio_policy (ONNX examples)", () => {
    const pol = (policy: string) =>
      infer({ opset: 18, inputs: x4([1, 1, 2, 2]), inits: { sz: I64([7, 8]) }, nodes: [N("Resize", ["x", "", "", "sz"], ["y"], { axes: is([2, 3]), keep_aspect_ratio_policy: s(policy) })] }).shape("y");
    expect(pol("stretch")).toEqual([1, 1, 7, 8]);
    expect(pol("not_larger")).toEqual([1, 1, 7, 7]);
    expect(pol("not_smaller")).toEqual([1, 1, 8, 8]);
  });

  it("Upsample: scales attribute (opset 7) and input (opset 9)", () => {
    expect(infer({ opset: 7, inputs: x4([1, 1, 2, 2]), nodes: [N("Upsample", ["x"], ["y"], { scales: fs([1, 1, 2, 3]) })] }).shape("y")).toEqual([1, 1, 4, 6]);
    expect(infer({ opset: 9, inputs: x4([1, 1, 2, 2]), inits: { sc: F32([1, 1, 2, 3]) }, nodes: [N("Upsample", ["x", "sc"], ["y"])] }).shape("y")).toEqual([1, 1, 4, 6]);
  });

  it("Resize with sizes computed from Shape (YOLO-style upsample to a skip connection)", () => {
    const { shape } = infer({
      opset: 13,
      inputs: { x: ["float32", ["N", 64, 20, 20]], skip: ["float32", ["N", 32, 40, 40]] },
      inits: { a0: I64([0]), a2: I64([2]), a4: I64([4]), c64: I64([64]) },
      nodes: [
        N("Shape", ["skip"], ["ss"]),
        N("Slice", ["ss", "a2", "a4"], ["hw"]),
        N("Slice", ["ss", "a0", "c64"], ["all"]),
        N("Shape", ["x"], ["xs"]),
        N("Slice", ["xs", "a0", "a2"], ["nc"]),
        N("Concat", ["nc", "hw"], ["sz"], { axis: i(0) }),
        N("Resize", ["x", "", "", "sz"], ["y"]),
      ],
    });
    expect(shape("all")).toEqual([4]);
    expect(shape("y")).toEqual(["N", 64, 40, 40]);
  });
});

// ---- reductions ----------------------------------------------------------------------------

describe("reductions", () => {
  it("axes as attribute (opset 13) or input (ReduceSum 13, others 18), keepdims, noop_with_empty_axes", () => {
    const a = infer({
      opset: 13,
      inputs: x4(["N", 3, 4, 5]),
      inits: { ax: I64([1]) },
      nodes: [
        N("ReduceMean", ["x"], ["m"], { axes: is([-1]) }),
        N("ReduceMax", ["x"], ["mx"], { axes: is([2, 3]), keepdims: i(0) }),
        N("ReduceL2", ["x"], ["l2"]),
        N("ReduceSum", ["x", "ax"], ["s"]),
        N("ReduceSum", ["x"], ["sa"], { keepdims: i(0) }),
        N("ReduceSum", ["x"], ["sn"], { noop_with_empty_axes: i(1) }),
      ],
    });
    expect(a.shape("m")).toEqual(["N", 3, 4, 1]);
    expect(a.shape("mx")).toEqual(["N", 3]);
    expect(a.shape("l2")).toEqual([1, 1, 1, 1]);
    expect(a.shape("s")).toEqual(["N", 1, 4, 5]);
    expect(a.shape("sa")).toEqual([]);
    expect(a.shape("sn")).toEqual(["N", 3, 4, 5]);
    const b = infer({ opset: 18, inputs: x4([2, 3, 4]), inits: { ax: I64([0, 2]) }, nodes: [N("ReduceMean", ["x", "ax"], ["m"], { keepdims: i(0) }), N("ReduceLogSumExp", ["x"], ["l"])] });
    expect(b.shape("m")).toEqual([3]);
    expect(b.shape("l")).toEqual([1, 1, 1]);
  });

  it("ArgMax / ArgMin / TopK", () => {
    const { shape, dtype } = infer({
      opset: 13,
      inputs: x4(["N", 10, 5]),
      inits: { k: I64([3]) },
      nodes: [N("ArgMax", ["x"], ["am"], { axis: i(1) }), N("ArgMin", ["x"], ["an"], { axis: i(-1), keepdims: i(0) }), N("TopK", ["x", "k"], ["v", "ix"], { axis: i(1) })],
    });
    expect(shape("am")).toEqual(["N", 1, 5]);
    expect(dtype("am")).toBe("int64");
    expect(shape("an")).toEqual(["N", 10]);
    expect(shape("v")).toEqual(["N", 3, 5]);
    expect(dtype("ix")).toBe("int64");
  });
});

// ---- gathers, constants, misc --------------------------------------------------------------

describe("gather / scatter / constants / misc", () => {
  it("Gather, GatherElements, GatherND, ScatterND", () => {
    const { shape } = infer({
      inputs: { d: ["float32", ["N", 3, 4]], ix: ["int64", [2, 5]], d2: ["float32", [2, 2, 2]], i2: ["int64", [2, 1]], up: ["float32", [2, 2]] },
      inits: { zero: I64([0], []) },
      nodes: [
        N("Gather", ["d", "ix"], ["g1"], { axis: i(1) }),
        N("Gather", ["d", "zero"], ["g0"], { axis: i(-1) }),
        N("GatherElements", ["d", "ix"], ["ge"]),
        N("GatherND", ["d2", "i2"], ["gn"], { batch_dims: i(1) }),
        N("GatherND", ["d2", "i2"], ["gn0"]),
        N("ScatterND", ["d2", "i2", "up"], ["sn"]),
      ],
    });
    expect(shape("g1")).toEqual(["N", 2, 5, 4]);
    expect(shape("g0")).toEqual(["N", 3]);
    expect(shape("ge")).toEqual([2, 5]);
    expect(shape("gn")).toEqual([2, 2]);
    expect(shape("gn0")).toEqual([2, 2, 2]);
    expect(shape("sn")).toEqual([2, 2, 2]);
  });

  it("Shape with start/end, Size, Constant variants, ConstantOfShape", () => {
    const r = infer({
      opset: 15,
      inputs: x4([2, 3, 4, 5]),
      nodes: [
        N("Shape", ["x"], ["s"], { start: i(1), end: i(-1) }),
        N("Size", ["x"], ["n"]),
        N("Constant", [], ["c1"], { value: t(W([3, 2])) }),
        N("Constant", [], ["c2"], { value_floats: fs([1, 2, 3]) }),
        N("Constant", [], ["c3"], { value_int: i(7) }),
        N("Constant", [], ["c4"], { value_ints: is([1, 2]) }),
        N("Constant", [], ["c5"], { value_float: f(0.5) }),
        N("ConstantOfShape", ["s"], ["z"], { value: t(Tensor.i64([1], [1])) }),
        N("ConstantOfShape", ["c4"], ["zf"]),
      ],
    });
    expect(r.shape("s")).toEqual([2]);
    expect(r.shape("n")).toEqual([]);
    expect([r.shape("c1"), r.dtype("c1")]).toEqual([[3, 2], "float32"]);
    expect(r.shape("c2")).toEqual([3]);
    expect([r.shape("c3"), r.dtype("c3")]).toEqual([[], "int64"]);
    expect(r.shape("c4")).toEqual([2]);
    expect(r.shape("c5")).toEqual([]);
    expect([r.shape("z"), r.dtype("z")]).toEqual([[3, 4], "int64"]);
    expect([r.shape("zf"), r.dtype("zf")]).toEqual([[1, 2], "float32"]);
  });

  it("Expand, Tile, Range, NonZero, OneHot", () => {
    const r = infer({
      opset: 13,
      inputs: { x: ["float32", [3, 1]], b: ["float32", [2, 3]], lim: ["int64", []], ids: ["int64", ["N", 7]] },
      inits: { es: I64([2, 1, 6]), rep: I64([2, 2]), r0: I64([0], []), r10: I64([10], []), r3: I64([3], []), dep: I64([5], []), vals: F32([0, 1]) },
      nodes: [
        N("Expand", ["x", "es"], ["e"]),
        N("Tile", ["b", "rep"], ["t"]),
        N("Range", ["r0", "r10", "r3"], ["rg"]),
        N("Range", ["r0", "lim", "r3"], ["rg2"]),
        N("NonZero", ["b"], ["nz"]),
        N("OneHot", ["ids", "dep", "vals"], ["oh"]),
        N("OneHot", ["ids", "dep", "vals"], ["oh1"], { axis: i(1) }),
      ],
    });
    expect(r.shape("e")).toEqual([2, 3, 6]);
    expect(r.shape("t")).toEqual([4, 6]);
    expect(r.shape("rg")).toEqual([4]);
    expect(r.shape("rg2")).toEqual([null]);
    expect([r.shape("nz"), r.dtype("nz")]).toEqual([[2, null], "int64"]);
    expect([r.shape("oh"), r.dtype("oh")]).toEqual([["N", 7, 5], "float32"]);
    expect(r.shape("oh1")).toEqual(["N", 5, 7]);
  });

  it("normalization, softmax, dropout, depth/space, trilu, cumsum", () => {
    const r = infer({
      inputs: x4(["N", 16, 8, 8]),
      inits: { sc: W([16]), bi: W([16]), mu: W([16]), va: W([16]), ln: W([8]), ax: I64([1], []) },
      nodes: [
        N("BatchNormalization", ["x", "sc", "bi", "mu", "va"], ["bn"]),
        N("LayerNormalization", ["x", "ln", "ln"], ["l", "lm", "ls"], { axis: i(-1) }),
        N("InstanceNormalization", ["x", "sc", "bi"], ["in"]),
        N("Softmax", ["x"], ["sm"], { axis: i(1) }),
        N("Dropout", ["x"], ["dr", "mask"]),
        N("DepthToSpace", ["x"], ["d2s"], { blocksize: i(2) }),
        N("SpaceToDepth", ["x"], ["s2d"], { blocksize: i(2) }),
        N("Trilu", ["x"], ["tr"]),
        N("CumSum", ["x", "ax"], ["cs"]),
        N("IsNaN", ["x"], ["nan"]),
        N("Sign", ["x"], ["sg"]),
        N("Mod", ["x", "ln"], ["md"], { fmod: i(1) }),
      ],
    });
    expect(r.shape("bn")).toEqual(["N", 16, 8, 8]);
    expect(r.shape("l")).toEqual(["N", 16, 8, 8]);
    expect(r.shape("lm")).toEqual(["N", 16, 8, 1]);
    expect(r.shape("in")).toEqual(["N", 16, 8, 8]);
    expect(r.shape("sm")).toEqual(["N", 16, 8, 8]);
    expect(r.dtype("mask")).toBe("bool");
    expect(r.shape("d2s")).toEqual(["N", 4, 16, 16]);
    expect(r.shape("s2d")).toEqual(["N", 64, 4, 4]);
    expect(r.shape("tr")).toEqual(["N", 16, 8, 8]);
    expect(r.shape("cs")).toEqual(["N", 16, 8, 8]);
    expect(r.dtype("nan")).toBe("bool");
    expect(r.shape("sg")).toEqual(["N", 16, 8, 8]);
    expect(r.shape("md")).toEqual(["N", 16, 8, 8]);
  });

  it("LSTM and GRU outputs (layout 0 and 1)", () => {
    const r = infer({
      opset: 14,
      inputs: { x: ["float32", [5, "B", 10]], xb: ["float32", ["B", 5, 10]] },
      inits: { w: W([1, 80, 10]), r: W([1, 80, 20]), gw: W([2, 60, 10]), gr: W([2, 60, 20]) },
      nodes: [
        N("LSTM", ["x", "w", "r"], ["y", "yh", "yc"], { hidden_size: i(20) }),
        N("GRU", ["x", "gw", "gr"], ["gy", "gyh"], { hidden_size: i(20), direction: s("bidirectional") }),
        N("LSTM", ["xb", "w", "r"], ["y1", "yh1"], { hidden_size: i(20), layout: i(1) }),
      ],
    });
    expect(r.shape("y")).toEqual([5, 1, "B", 20]);
    expect(r.shape("yh")).toEqual([1, "B", 20]);
    expect(r.shape("yc")).toEqual([1, "B", 20]);
    expect(r.shape("gy")).toEqual([5, 2, "B", 20]);
    expect(r.shape("gyh")).toEqual([2, "B", 20]);
    expect(r.shape("y1")).toEqual(["B", 5, 1, 20]);
    expect(r.shape("yh1")).toEqual(["B", 1, 20]);
  });

  it("If takes output types from its branches; a constant condition picks one", () => {
    const branch = (name: string) => {
      const b = new Graph();
      b.nodes = [new Node({ opType: "Relu", inputs: ["x"], outputs: [name] })];
      b.outputs = [{ name }];
      return b;
    };
    const r = infer({
      inputs: { x: ["float32", [2, 3]], c: ["bool", []] },
      inits: { t: Tensor.fromNumbers("bool", [], [1]) },
      nodes: [
        N("If", ["c"], ["y"], { then_branch: g_(branch("a")), else_branch: g_(branch("b")) }),
        N("If", ["t"], ["z"], { then_branch: g_(branch("a2")), else_branch: g_(branch("b2")) }),
      ],
    });
    expect(r.res.errors).toEqual([]);
    expect(r.shape("y")).toEqual([2, 3]);
    expect(r.dtype("y")).toBe("float32");
    expect(r.shape("z")).toEqual([2, 3]);
  });

  it("If with branches of different shapes keeps what they agree on", () => {
    const br = (out: string, perm: number[]) => {
      const b = new Graph();
      b.nodes = [new Node({ opType: "Transpose", inputs: ["x"], outputs: [out], attrs: { perm: is(perm) } })];
      b.outputs = [{ name: out }];
      return b;
    };
    const r = infer({
      inputs: { x: ["float32", [2, 3, 2]], c: ["bool", []] },
      nodes: [N("If", ["c"], ["y"], { then_branch: g_(br("a", [0, 1, 2])), else_branch: g_(br("b", [2, 1, 0])) })],
    });
    expect(r.shape("y")).toEqual([2, 3, 2]);
    const r2 = infer({
      inputs: { x: ["float32", [2, 3, 4]], c: ["bool", []] },
      nodes: [N("If", ["c"], ["y"], { then_branch: g_(br("a", [0, 1, 2])), else_branch: g_(br("b", [2, 1, 0])) })],
    });
    expect(r2.shape("y")).toEqual([null, 3, null]);
  });

  it("Loop: carried values and scan outputs from the body", () => {
    const body = new Graph();
    body.inputs = [{ name: "it" }, { name: "cin" }, { name: "acc" }];
    body.nodes = [
      new Node({ opType: "Identity", inputs: ["cin"], outputs: ["cout"] }),
      new Node({ opType: "Add", inputs: ["acc", "x"], outputs: ["acc2"] }),
      new Node({ opType: "ReduceSum", inputs: ["acc2"], outputs: ["sc"], attrs: { keepdims: i(0) } }),
    ];
    body.outputs = [{ name: "cout" }, { name: "acc2" }, { name: "sc" }];
    const r = infer({
      opset: 13,
      inputs: { x: ["float32", [2, 3]], a0: ["float32", [2, 3]] },
      inits: { trip: I64([5], []) },
      nodes: [N("Loop", ["trip", "", "a0"], ["accN", "scans"], { body: g_(body) })],
    });
    expect(r.res.errors).toEqual([]);
    expect(r.shape("accN")).toEqual([2, 3]);
    expect([r.shape("scans"), r.dtype("scans")]).toEqual([[5], "float32"]);
    expect(body.valueInfo.get("acc2")?.shape).toEqual([2, 3]);
  });

  it("inputShapes overrides declared input shapes", () => {
    const { shape } = infer(
      { inputs: x4(["N", 3, "H", "W"]), inits: { w: W([8, 3, 3, 3]) }, nodes: [N("Conv", ["x", "w"], ["y"], { strides: is([2, 2]), pads: is([1, 1, 1, 1]) })] },
      { inputShapes: { x: [1, 3, 64, 48] } },
    );
    expect(shape("y")).toEqual([1, 8, 32, 24]);
  });

  it("keeps recorded dims where inference has none, and reports clashes", () => {
    const g = build({ inputs: x4([1, 4]), nodes: [N("Custom", ["x"], ["y"]), N("Relu", ["x"], ["z"])] });
    g.valueInfo.set("y", { name: "y", dtype: "float32", shape: [1, 9] });
    g.valueInfo.set("z", { name: "z", dtype: "float32", shape: [1, 5] });
    const res = inferShapes(g);
    expect(g.valueInfo.get("y")?.shape).toEqual([1, 9]);
    expect(g.valueInfo.get("z")?.shape).toEqual([1, 4]);
    expect(res.mismatches).toEqual([{ value: "z", inferred: [1, 4], recorded: [1, 5] }]);
  });
});

// ---- MACs ----------------------------------------------------------------------------------

describe("countMacs", () => {
  it("ResNet-18 stem conv and classifier Gemm", () => {
    const g = build({
      inputs: x4([1, 3, 224, 224]),
      inits: { w: W([64, 3, 7, 7]), fc: W([1000, 512]), b: W([1000]) },
      nodes: [
        N("Conv", ["x", "w"], ["y"], { strides: is([2, 2]), pads: is([3, 3, 3, 3]), kernel_shape: is([7, 7]) }),
        N("Relu", ["y"], ["r"]),
        N("GlobalAveragePool", ["r"], ["p"]),
        N("Flatten", ["p"], ["fl"]),
        N("Gemm", ["feat", "fc", "b"], ["logits"], { transB: i(1) }),
      ],
    });
    g.inputs.push({ name: "feat", dtype: "float32", shape: [1, 512] });
    const m = countMacs(g);
    const conv = g.nodes.find((n) => n.opType === "Conv")!;
    const gemm = g.nodes.find((n) => n.opType === "Gemm")!;
    expect(m.perNode.get(conv.label)).toBe(118_013_952);
    expect(m.perNode.get(gemm.label)).toBe(512_000);
    expect(m.perOp).toEqual({ Conv: 118_013_952, Gemm: 512_000 });
    expect(m.total).toBe(118_525_952);
    expect(m.unknown).toEqual([]);
  });

  it("grouped conv, ConvTranspose, MatMul, LSTM, Einsum; symbolic batch counts as 1", () => {
    const g = build({
      opset: 13,
      inputs: { x: ["float32", ["N", 32, 56, 56]], a: ["float32", [2, 3, 4]], s: ["float32", [5, 2, 10]], u: ["float32", [1, 1, 3, 3]] },
      inits: { wg: W([32, 1, 3, 3]), b: W([4, 5]), w: W([1, 80, 10]), r: W([1, 80, 20]), wt: W([1, 2, 3, 3]) },
      nodes: [
        N("Conv", ["x", "wg"], ["y"], { group: i(32), pads: is([1, 1, 1, 1]) }),
        N("MatMul", ["a", "b"], ["m"]),
        N("LSTM", ["s", "w", "r"], ["ly"], { hidden_size: i(20) }),
        N("ConvTranspose", ["u", "wt"], ["ct"]),
        N("Einsum", ["a", "b"], ["es"], { equation: s("bij,jk->bik") }),
        N("Add", ["m", "m"], ["am"]),
      ],
    });
    const m = countMacs(g);
    expect(m.perOp.Conv).toBe(32 * 56 * 56 * 9);
    expect(m.perOp.MatMul).toBe(2 * 3 * 5 * 4);
    expect(m.perOp.LSTM).toBe(5 * 2 * 4 * 20 * (10 + 20));
    expect(m.perOp.ConvTranspose).toBe(9 * 2 * 9);
    expect(m.perOp.Einsum).toBe(2 * 3 * 4 * 5);
    expect(m.perOp.Add).toBeUndefined();
  });
});

// ---- constant folding ----------------------------------------------------------------------

describe("foldConstants", () => {
  it("folds Shape -> Gather -> Unsqueeze -> Concat into a constant Reshape shape", () => {
    const g = build({
      opset: 13,
      inputs: x4([1, 3, 4, 4]),
      inits: { zero: I64([0], []), ax: I64([0]), m1: I64([-1]) },
      nodes: [
        N("Shape", ["x"], ["s"]),
        N("Gather", ["s", "zero"], ["n"]),
        N("Unsqueeze", ["n", "ax"], ["n1"]),
        N("Concat", ["n1", "m1"], ["shp"], { axis: i(0) }),
        N("Reshape", ["x", "shp"], ["y"]),
      ],
      outputs: ["y"],
    });
    const r = foldConstants(g);
    expect(r.folded).toBe(4);
    expect(g.nodes.map((n) => n.opType)).toEqual(["Reshape"]);
    const shp = g.initializers.get(g.nodes[0]!.inputs[1]!)!;
    expect(shp.dtype).toBe("int64");
    expect(shp.toArray()).toEqual([1, -1]);
    expect([...g.initializers.keys()].sort()).toEqual(["shp"]);
    inferShapes(g);
    expect(g.valueInfo.get("y")?.shape).toEqual([1, 48]);
  });

  it("turns Constant nodes into initializers, keeps symbolic shapes and graph outputs", () => {
    const g = build({
      opset: 13,
      inputs: x4(["N", 3, 4]),
      nodes: [
        N("Constant", [], ["c"], { value: t(I64([0, 12])) }),
        N("Reshape", ["x", "c"], ["y"]),
        N("Shape", ["x"], ["s"]), // depends on N: not foldable
        N("Constant", [], ["k"], { value: t(F32([2])) }),
        N("Mul", ["k", "k"], ["kk"]), // a graph output: kept
      ],
      outputs: ["y", "s", "kk"],
    });
    const r = foldConstants(g);
    expect(r.folded).toBe(2);
    expect(g.nodes.map((n) => n.opType).sort()).toEqual(["Mul", "Reshape", "Shape"]);
    expect(g.initializers.get("c")?.toArray()).toEqual([0, 12]);
    expect(g.initializers.get("k")?.toArray()).toEqual([2]);
    inferShapes(g);
    expect(g.valueInfo.get("y")?.shape).toEqual(["N", 12]);
  });

  it("does not fold Q/DQ nodes or large non-shape results", () => {
    const g = build({
      opset: 13,
      inputs: x4([1, 4]),
      inits: { wq: Tensor.zeros("int8", [4, 4]), sc: F32([0.1], []), big: W([100, 100]) },
      nodes: [N("DequantizeLinear", ["wq", "sc"], ["w"]), N("MatMul", ["x", "w"], ["y"]), N("Transpose", ["big"], ["bt"]), N("MatMul", ["x", "bt"], ["z"])],
      outputs: ["y"],
    });
    foldConstants(g, { maxShapeOpElements: 4096 });
    expect(g.nodes.map((n) => n.opType)).toEqual(["DequantizeLinear", "MatMul"]);
  });
});
