import { describe, expect, it, beforeAll } from "vitest";
import { spawnSync } from "node:child_process";
import { mkdtempSync, writeFileSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Graph, Node, Tensor, ModelFormatError, MissingFileError, UnknownOpError, type DType } from "@q/ir";
import { decodeOnnx, encodeOnnx, readOnnx, writeOnnx } from "./index.js";
import { PY } from "../../../tools/testing/shared-models.js";

const havePyOnnx = spawnSync(PY, ["-c", "import onnx, numpy"]).status === 0;

const DTYPES: [DType, number[]][] = [
  ["float32", [1.5, -2.25, 3e-8, 65504]],
  ["float16", [1.5, -2.25, 0.0001, 65504]],
  ["bfloat16", [1.5, -2.25, 3.140625, -1e10]],
  ["float64", [1.5, -2.25, 1e-300, 1e300]],
  ["int8", [-128, -1, 0, 127]],
  ["uint8", [0, 1, 128, 255]],
  ["int16", [-32768, -1, 0, 32767]],
  ["uint16", [0, 1, 40000, 65535]],
  ["int32", [-2147483648, -1, 0, 2147483647]],
  ["int64", [-9007199254740991, -1, 0, 9007199254740991]],
  ["bool", [1, 0, 0, 1]],
  ["int4", [-8, -1, 0, 7]],
  ["uint4", [0, 1, 9, 15]],
];

function everything(): Graph {
  const g = new Graph({ name: "all_kinds", opsets: { "": 21, "com.example": 1 } });
  g.irVersion = 10;
  g.inputs = [{ name: "x", dtype: "float32", shape: ["batch", 3, null, 7] }];
  g.outputs = [{ name: "y", dtype: "float32", shape: ["batch", 3, null, 7] }];
  for (const [dt, vals] of DTYPES) g.initializers.set(`w_${dt}`, Tensor.fromNumbers(dt, [2, 2], vals));
  g.initializers.set("scalar", Tensor.f32([], [42]));
  g.initializers.set("empty", Tensor.f32([0, 3]));
  const body = new Graph({ name: "body" });
  body.outputs = [{ name: "b_out", dtype: "float32" }];
  body.nodes = [new Node({ opType: "Identity", inputs: ["x"], outputs: ["b_out"] })];
  g.nodes = [
    new Node({
      name: "custom", opType: "Thing", domain: "com.example", inputs: ["x", "", "w_int8"], outputs: ["t", "t2"],
      attrs: {
        f: { type: "float", value: 0.25 },
        i: { type: "int", value: -7 },
        big: { type: "int", value: 2 ** 40 },
        s: { type: "string", value: "héllo" },
        fs: { type: "floats", value: [0.5, -1] },
        is: { type: "ints", value: [1, -2, 3] },
        ss: { type: "strings", value: ["a", "b"] },
        t: { type: "tensor", value: Tensor.fromNumbers("float16", [2], [1, 2]) },
        ts: { type: "tensors", value: [Tensor.i64([1], [5]), Tensor.f32([1], [6])] },
        g: { type: "graph", value: body },
        gs: { type: "graphs", value: [body.clone(), body.clone()] },
      },
    }),
    new Node({ name: "id", opType: "Identity", inputs: ["x"], outputs: ["y"] }),
  ];
  g.metadata = { author: "q test" };
  return g;
}

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "q-onnx-"));
});

describe("ONNX writer and reader", () => {
  it("round-trips tensors of every dtype, attributes of every kind, dims and metadata", () => {
    const g = everything();
    const back = decodeOnnx(encodeOnnx(g));
    expect(back.opsets).toEqual({ "": 21, "com.example": 1 });
    expect(back.irVersion).toBe(10);
    expect(back.inputs).toEqual(g.inputs);
    expect(back.metadata).toEqual({ author: "q test" });
    for (const [dt, vals] of DTYPES) {
      const t = back.initializers.get(`w_${dt}`)!;
      expect(t.dtype).toBe(dt);
      expect(t.shape).toEqual([2, 2]);
      expect(t.toArray()).toEqual(Tensor.fromNumbers(dt, [2, 2], vals).toArray());
    }
    expect(back.initializers.get("scalar")!.shape).toEqual([]);
    expect(back.initializers.get("empty")!.shape).toEqual([0, 3]);
    const n = back.nodes[0]!;
    expect(n.domain).toBe("com.example");
    expect(n.inputs).toEqual(["x", "", "w_int8"]);
    expect(n.float("f")).toBe(0.25);
    expect(n.int("i")).toBe(-7);
    expect(n.int("big")).toBe(2 ** 40);
    expect(n.str("s")).toBe("héllo");
    expect(n.floats("fs")).toEqual([0.5, -1]);
    expect(n.ints("is")).toEqual([1, -2, 3]);
    expect(n.strs("ss")).toEqual(["a", "b"]);
    expect(n.tensor("t")!.toArray()).toEqual([1, 2]);
    expect(n.tensor("t")!.dtype).toBe("float16");
    const ts = n.attrs.get("ts")!;
    expect(ts.type === "tensors" && ts.value.map((t) => t.toArray())).toEqual([[5], [6]]);
    expect(n.graph("g")!.nodes[0]!.opType).toBe("Identity");
    const gs = n.attrs.get("gs")!;
    expect(gs.type === "graphs" && gs.value.length).toBe(2);
  });

  it.skipIf(!havePyOnnx)("writes files that the onnx Python package reads with the same values", () => {
    const f = join(dir, "kinds.onnx");
    // Debian's onnx (1.12) predates int4/uint4 (onnx 1.16): leave those to the round-trip test
    const g = everything();
    g.initializers.delete("w_int4");
    g.initializers.delete("w_uint4");
    writeOnnx(g, f);
    const script = `
import sys, json, onnx
from onnx import numpy_helper
m = onnx.load(sys.argv[1])
out = {}
for t in m.graph.initializer:
    a = numpy_helper.to_array(t)
    out[t.name] = [str(a.dtype), list(a.shape), [float(v) for v in a.astype('float64').ravel()]]
n = m.graph.node[0]
attrs = {a.name: onnx.helper.get_attribute_value(a) for a in n.attribute}
out["_attrs"] = {"f": attrs["f"], "i": attrs["i"], "big": attrs["big"], "s": attrs["s"].decode(), "is": list(attrs["is"]), "ss": [x.decode() for x in attrs["ss"]]}
out["_opset"] = {o.domain: o.version for o in m.opset_import}
out["_dims"] = [d.dim_param or d.dim_value for d in m.graph.input[0].type.tensor_type.shape.dim]
print(json.dumps(out))
`;
    const r = spawnSync(PY, ["-c", script, f], { encoding: "utf8" });
    expect(r.status, r.stderr).toBe(0);
    const py = JSON.parse(r.stdout);
    const npName: Partial<Record<DType, string>> = { float32: "float32", float16: "float16", float64: "float64", int8: "int8", uint8: "uint8", int16: "int16", uint16: "uint16", int32: "int32", int64: "int64", bool: "bool" };
    for (const [dt, vals] of DTYPES.filter(([d]) => d !== "int4" && d !== "uint4")) {
      const [npType, shape, values] = py[`w_${dt}`];
      expect(shape).toEqual([2, 2]);
      if (npName[dt]) expect(npType).toBe(npName[dt]);
      expect(values).toEqual(Tensor.fromNumbers(dt, [2, 2], vals).toArray());
    }
    expect(py._attrs).toEqual({ f: 0.25, i: -7, big: 2 ** 40, s: "héllo", is: [1, -2, 3], ss: ["a", "b"] });
    expect(py._opset).toEqual({ "": 21, "com.example": 1 });
    expect(py._dims).toEqual(["batch", 3, 0, 7]); // onnx reports an unset dim_value as 0
  });

  it.skipIf(!havePyOnnx)("reads a model written by the onnx Python package (float_data, int64_data, external data)", async () => {
    const f = join(dir, "py.onnx");
    const script = `
import sys, numpy as np, onnx
from onnx import helper, TensorProto, numpy_helper
w = numpy_helper.from_array(np.arange(12, dtype=np.float32).reshape(3, 4) - 5.5, "w")
shape = helper.make_tensor("shape", TensorProto.INT64, [2], [4, -1])
half = numpy_helper.from_array(np.array([0.5, -3], dtype=np.float16), "half")
g = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["y"])], "g",
    [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3])], [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 4])],
    initializer=[w, shape, half])
m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
onnx.save_model(m, sys.argv[1], save_as_external_data=True, all_tensors_to_one_file=True, location="py.onnx.data", size_threshold=16)
`;
    const r = spawnSync(PY, ["-c", script, f], { encoding: "utf8" });
    expect(r.status, r.stderr).toBe(0);
    const g = await readOnnx(f);
    expect(g.initializers.get("w")!.toArray()).toEqual(Array.from({ length: 12 }, (_, i) => i - 5.5));
    expect(g.initializers.get("shape")!.toArray()).toEqual([4, -1]);
    expect(g.initializers.get("half")!.toArray()).toEqual([0.5, -3]);
    expect(g.opset("")).toBe(13);
  });

  it("writes external data and reads it back", async () => {
    const g = everything();
    const f = join(dir, "ext", "m.onnx");
    writeOnnx(g, f, { externalData: "m.weights", externalThreshold: 8 });
    const back = await readOnnx(f);
    expect(back.initializers.get("w_float64")!.toArray()).toEqual([1.5, -2.25, 1e-300, 1e300]);
    expect(readFileSync(join(dir, "ext", "m.weights")).length).toBeGreaterThan(32);
  });

  it("names the file and the problem for bad input", async () => {
    const good = encodeOnnx(everything());
    const trunc = join(dir, "t.onnx");
    writeFileSync(trunc, good.subarray(0, good.length - 40));
    await expect(readOnnx(trunc)).rejects.toThrow(ModelFormatError);
    await expect(readOnnx(trunc)).rejects.toThrow(/t\.onnx/);
    await expect(readOnnx(join(dir, "absent.onnx"))).rejects.toThrow(MissingFileError);
    const g = everything();
    g.nodes[1]!.opType = "Idenity";
    const typo = join(dir, "typo.onnx");
    writeOnnx(g, typo);
    await expect(readOnnx(typo)).rejects.toThrow(UnknownOpError);
    await expect(readOnnx(typo)).rejects.toThrow(/typo\.onnx.*'id'.*Idenity/);
    expect((await readOnnx(typo, { allowUnknownOps: true })).nodes[1]!.opType).toBe("Idenity");
  });
});
