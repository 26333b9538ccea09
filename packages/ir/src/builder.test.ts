import { describe, expect, it } from "vitest";
import { GraphBuilder, int64Tensor, toAttr } from "./builder.js";
import { GraphError } from "./errors.js";
import { ReferenceExecutor } from "./interp/interpreter.js";
import { Tensor } from "./tensor.js";

describe("GraphBuilder", () => {
  it("builds a small conv net with shape inference and runs it", async () => {
    const b = new GraphBuilder({ name: "tiny" });
    const x = b.input("x", "float32", ["N", 1, 4, 4]);
    const w = b.initializer("w", Tensor.f32([2, 1, 3, 3], new Array(18).fill(1 / 9)));
    const c = b.conv2d(x, w, undefined, { padding: 1 });
    expect(b.shape(c)).toEqual(["N", 2, 4, 4]);
    const bn = b.batchNorm(c, b.floats("s", [2], [1, 2]), b.floats("bb", [2], [0, 1]), b.floats("m", [2], [0, 0]), b.floats("v", [2], [1, 1]), 0);
    const r = b.relu(bn);
    const p = b.maxPool2d(r, 2);
    expect(b.shape(p)).toEqual(["N", 2, 2, 2]);
    const f = b.flatten(b.globalAvgPool(p));
    const y = b.linear(f, b.floats("fw", [3, 2], [1, 0, 0, 1, 1, 1]), b.floats("fb", [3], [0, 0, 1]));
    expect(b.shape(y)).toEqual(["N", 3]);
    b.output(y);
    const g = b.build();
    expect(g.opsets).toEqual({ "": 17 });
    expect(g.nodes.map((n) => n.opType)).toEqual(["Conv", "BatchNormalization", "Relu", "MaxPool", "GlobalAveragePool", "Flatten", "Gemm"]);
    expect(g.nodes[1]!.attrs.get("epsilon")).toEqual({ type: "float", value: 0 });
    const out = await new ReferenceExecutor(g).run({ x: Tensor.f32([1, 1, 4, 4], new Array(16).fill(9)) });
    // conv of 9s with 1/9 kernels, padded: corners 4, edges 6, centre 9; max pool -> 9 per 2x2; BN: 9 and 19
    expect(out[y]!.toArray()).toEqual([9, 19, 29]);
  });

  it("slices, pads, concat, reshape, rename, unique names and errors", async () => {
    const b = new GraphBuilder();
    const x = b.input("x", "float32", [1, 2, 2, 2]);
    const s = b.slice(x, [0, 0], [Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER], [2, 3], [2, 2]);
    const p = b.pad(s, [0, 1, 0, 0, 0, 1, 0, 0]);
    expect(b.shape(p)).toEqual([1, 4, 1, 1]);
    const r = b.reshape(b.concat([p, p], 1), [1, -1]);
    expect(b.shape(r)).toEqual([1, 8]);
    b.output(b.rename(r, "y"));
    expect(() => b.input("x", "float32", [1])).toThrow(GraphError);
    expect(() => b.op("Relu", ["nope"])).toThrow(/not defined/);
    expect(b.fresh("Relu")).toBe("Relu");
    expect(b.fresh("Relu")).not.toBe("Relu");
    const g = b.build();
    const out = await new ReferenceExecutor(g).run({ x: Tensor.f32([1, 2, 2, 2], [1, 2, 3, 4, 5, 6, 7, 8]) });
    expect(out.y!.toArray()).toEqual([0, 1, 5, 0, 0, 1, 5, 0]);
    expect(() => new GraphBuilder().build()).toThrow(/no outputs/);
  });

  it("types attributes and clamps int64 constants", () => {
    expect(toAttr("axis", 1)).toEqual({ type: "int", value: 1 });
    expect(toAttr("epsilon", 1)).toEqual({ type: "float", value: 1 });
    expect(toAttr("pads", [1, 2])).toEqual({ type: "ints", value: [1, 2] });
    expect(toAttr("scales", [1, 2])).toEqual({ type: "floats", value: [1, 2] });
    expect(toAttr("mode", "constant")).toEqual({ type: "string", value: "constant" });
    expect(toAttr("x", { type: "float", value: 3 })).toEqual({ type: "float", value: 3 });
    expect(Array.from(int64Tensor([2], [9223372036854775807, -1]).data as BigInt64Array)).toEqual([9223372036854775807n, -1n]);
  });
});
