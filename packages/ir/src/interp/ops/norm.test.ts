import { describe, expect, it } from "vitest";
import { Node, type AttrValue } from "../../graph.js";
import { Tensor } from "../../tensor.js";
import { kernels } from "./norm.js";

function run(op: string, inputs: (Tensor | undefined)[], attrs: Record<string, AttrValue> = {}, opset = 17, nOut = 1): Tensor[] {
  const n = new Node({ opType: op, inputs: inputs.map((t, i) => (t ? `i${i}` : "")), outputs: ["y", "o1", "o2"].slice(0, nOut), attrs });
  return kernels[op]!(inputs, n, { opset, runSubgraph: () => { throw new Error("no subgraphs"); } });
}
const f = (value: number): AttrValue => ({ type: "float", value });
const i = (value: number): AttrValue => ({ type: "int", value });
const vals = (t: Tensor) => Array.from(t.toNumbers());
function expectClose(got: number[], want: number[], tol = 1e-6): void {
  expect(got.length).toBe(want.length);
  got.forEach((g, k) => expect(Math.abs(g - want[k]!)).toBeLessThanOrEqual(tol * (1 + Math.abs(want[k]!))));
}

describe("BatchNormalization", () => {
  const x = Tensor.f32([2, 1, 1, 2], [1, 2, 3, 4]);
  const one = (v: number) => Tensor.f32([1], [v]);
  it("inference", () => {
    const [y] = run("BatchNormalization", [x, one(2), one(1), one(2), one(4)], { epsilon: f(0) });
    expect(vals(y!)).toEqual([0, 1, 2, 3]);
  });
  it("training_mode uses the batch statistics and updates the running ones", () => {
    const [y, rm, rv] = run("BatchNormalization", [x, one(2), one(1), one(0), one(1)], { epsilon: f(0), training_mode: i(1) }, 15, 3);
    // batch mean 2.5, population variance 1.25
    const s = Math.sqrt(1.25);
    expectClose(vals(y!), [1, 2, 3, 4].map((v) => ((v - 2.5) / s) * 2 + 1));
    expectClose(vals(rm!), [0.25]);
    expectClose(vals(rv!), [1.025]);
  });
  it("opset 7 spatial=0: statistics per element of a sample", () => {
    const x2 = Tensor.f32([2, 2, 2], [1, 2, 3, 4, 5, 6, 7, 8]);
    const st = (...v: number[]) => Tensor.f32([2, 2], v);
    const [y] = run("BatchNormalization", [x2, st(1, 1, 1, 2), st(0, 0, 10, 10), st(1, 2, 0, 0), st(1, 1, 4, 4)], { epsilon: f(0), spatial: i(0) }, 7);
    expect(vals(y!)).toEqual([0, 0, 11.5, 14, 4, 4, 13.5, 18]);
  });
});

describe("LayerNormalization", () => {
  it("axis 1 of a 3-D input, broadcast scale, Mean and InvStdDev outputs", () => {
    const x = Tensor.f32([1, 2, 2], [1, 2, 3, 5]);
    const [y, mean, inv] = run("LayerNormalization", [x, Tensor.f32([2], [1, 2])], { axis: i(1), epsilon: f(0) }, 17, 3);
    const m = 2.75, s = 1 / Math.sqrt(2.1875);
    expectClose(vals(y!), [(1 - m) * s, (2 - m) * s * 2, (3 - m) * s, (5 - m) * s * 2]);
    expect(mean!.shape).toEqual([1, 1, 1]);
    expect(mean!.dtype).toBe("float32");
    expectClose(vals(mean!), [m]);
    expectClose(vals(inv!), [s]);
  });
  it("float64 input keeps its dtype; rows normalise independently", () => {
    const x = Tensor.fromNumbers("float64", [2, 2], [1, 3, 10, 20]);
    const [y] = run("LayerNormalization", [x, Tensor.fromNumbers("float64", [2], [1, 1]), Tensor.fromNumbers("float64", [2], [0, 1])], { epsilon: f(0) });
    expect(y!.dtype).toBe("float64");
    expect(vals(y!)).toEqual([-1, 2, -1, 2]);
  });
});

describe("GroupNormalization", () => {
  const x = Tensor.f32([1, 4, 2], [1, 3, 5, 7, 0, 0, 2, 2]);
  const want = [-3, -1, 1, 3].map((v) => v / Math.sqrt(5)).concat([8, 8, 12, 12]);
  it("opset 18: scale and bias per group", () => {
    const [y] = run("GroupNormalization", [x, Tensor.f32([2], [1, 2]), Tensor.f32([2], [0, 10])], { num_groups: i(2), epsilon: f(0) }, 18);
    expectClose(vals(y!), want);
  });
  it("opset 21: scale and bias per channel", () => {
    const [y] = run("GroupNormalization", [x, Tensor.f32([4], [1, 1, 2, 2]), Tensor.f32([4], [0, 0, 10, 10])], { num_groups: i(2), epsilon: f(0) }, 21);
    expectClose(vals(y!), want);
  });
});

describe("InstanceNormalization and LRN", () => {
  it("InstanceNormalization", () => {
    const x = Tensor.f32([1, 2, 2], [1, 3, 10, 10]);
    const [y] = run("InstanceNormalization", [x, Tensor.f32([2], [2, 1]), Tensor.f32([2], [0, 5])], { epsilon: f(0.01) });
    const k = 2 / Math.sqrt(1.01);
    expectClose(vals(y!), [-k, k, 5, 5]);
  });
  it("LRN with odd and even sizes", () => {
    const x = Tensor.f32([1, 3, 1, 1], [1, 2, 3]);
    const [y3] = run("LRN", [x], { size: i(3), alpha: f(3), beta: f(1), bias: f(1) });
    expectClose(vals(y3!), [1 / 6, 2 / 15, 3 / 14]);
    // size 2 looks at the channel itself and the next one
    const [y2] = run("LRN", [x], { size: i(2), alpha: f(2), beta: f(1), bias: f(1) });
    expectClose(vals(y2!), [1 / 6, 2 / 14, 3 / 10]);
  });
});
