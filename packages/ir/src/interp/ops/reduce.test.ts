import { describe, expect, it } from "vitest";
import { Node, type AttrValue } from "../../graph.js";
import { Tensor } from "../../tensor.js";
import { runNode } from "../interpreter.js";

function run(op: string, inputs: (Tensor | undefined)[], attrs: Record<string, AttrValue> = {}, opset = 18): Tensor {
  const n = new Node({ opType: op, inputs: inputs.map((t, i) => (t ? `i${i}` : "")), outputs: ["y"], attrs });
  return runNode(n, inputs, opset)[0]!;
}
const vals = (t: Tensor) => Array.from(t.toNumbers());
const int = (value: number): AttrValue => ({ type: "int", value });
const ints = (value: number[]): AttrValue => ({ type: "ints", value });
const i64 = (v: number[]) => Tensor.i64([v.length], v);

// [[1, 2, 3], [4, 5, 6]]
const x = Tensor.f32([2, 3], [1, 2, 3, 4, 5, 6]);

describe("Reduce*: axes as attribute or input by opset", () => {
  it("ReduceSum takes axes as an input from opset 13, others from 18", () => {
    expect(vals(run("ReduceSum", [x], { axes: ints([1]) }, 11))).toEqual([6, 15]);
    expect(vals(run("ReduceSum", [x, i64([1])], {}, 13))).toEqual([6, 15]);
    expect(vals(run("ReduceMean", [x], { axes: ints([0]) }, 13))).toEqual([2.5, 3.5, 4.5]);
    expect(vals(run("ReduceMean", [x, i64([0])], {}, 18))).toEqual([2.5, 3.5, 4.5]);
    expect(vals(run("ReduceMax", [x, i64([-1])], {}, 18))).toEqual([3, 6]);
  });
  it("keepdims and reduce-all", () => {
    const k = run("ReduceSum", [x, i64([1])], {}, 13);
    expect(k.shape).toEqual([2, 1]);
    const d = run("ReduceSum", [x, i64([1])], { keepdims: int(0) }, 13);
    expect(d.shape).toEqual([2]);
    const all = run("ReduceProd", [x], { keepdims: int(0) });
    expect(all.shape).toEqual([]);
    expect(vals(all)).toEqual([720]);
    expect(run("ReduceMin", [x, i64([])]).shape).toEqual([1, 1]);
  });
  it("noop_with_empty_axes returns the input for missing or empty axes", () => {
    expect(run("ReduceSum", [x, i64([])], { noop_with_empty_axes: int(1) }, 13)).toBe(x);
    expect(run("ReduceL2", [x], { noop_with_empty_axes: int(1) })).toBe(x);
  });
  it("non-adjacent axes", () => {
    const t = Tensor.f32([2, 2, 2], [1, 2, 3, 4, 5, 6, 7, 8]);
    const y = run("ReduceSum", [t, i64([0, 2])], { keepdims: int(0) }, 13);
    expect(vals(y)).toEqual([1 + 2 + 5 + 6, 3 + 4 + 7 + 8]);
  });
  it("the other reductions", () => {
    const v = Tensor.f32([4], [-1, 2, -3, 4]);
    expect(vals(run("ReduceL1", [v]))).toEqual([10]);
    expect(vals(run("ReduceL2", [v]))).toEqual([Math.fround(Math.sqrt(30))]);
    expect(vals(run("ReduceSumSquare", [v]))).toEqual([30]);
    expect(vals(run("ReduceLogSum", [Tensor.f32([2], [1, 2])]))[0]).toBeCloseTo(Math.log(3), 6);
    expect(vals(run("ReduceLogSumExp", [Tensor.f32([2], [1000, 1000])]))[0]).toBeCloseTo(1000.6931471805599, 3);
    expect(vals(run("ReduceLogSumExp", [Tensor.f32([2], [-Infinity, 0])]))).toEqual([0]);
  });
  it("empty-set reductions give the identity of the reduction", () => {
    const e = Tensor.f32([2, 0], []);
    const r = (op: string) => vals(run(op, [e, i64([1])], { keepdims: int(0) }));
    expect(r("ReduceSum")).toEqual([0, 0]);
    expect(r("ReduceProd")).toEqual([1, 1]);
    expect(r("ReduceMax")).toEqual([-Infinity, -Infinity]);
    expect(r("ReduceMin")).toEqual([Infinity, Infinity]);
    expect(r("ReduceL1")).toEqual([0, 0]);
    expect(r("ReduceL2")).toEqual([0, 0]);
    expect(r("ReduceSumSquare")).toEqual([0, 0]);
    expect(r("ReduceLogSum")).toEqual([-Infinity, -Infinity]);
    expect(r("ReduceLogSumExp")).toEqual([-Infinity, -Infinity]);
    expect(r("ReduceMean")).toEqual([NaN, NaN]);
    expect(vals(run("ReduceMax", [Tensor.fromNumbers("int32", [0], []), i64([0])]))).toEqual([-2147483648]);
  });
  it("integers: int32 wraps, int64 is exact beyond 2^53", () => {
    const y = run("ReduceSum", [Tensor.i64([2], [9007199254740992n, 1n])], {}, 13);
    expect(Array.from(y.data as BigInt64Array)).toEqual([9007199254740993n]);
    expect(Array.from(run("ReduceMax", [Tensor.i64([3], [-5n, 9223372036854775807n, 0n])]).data as BigInt64Array)).toEqual([9223372036854775807n]);
    expect(vals(run("ReduceSum", [Tensor.fromNumbers("int32", [2], [2147483647, 1])], {}, 13))).toEqual([-2147483648]);
    expect(vals(run("ReduceMean", [Tensor.fromNumbers("int32", [2], [1, 2])], {}, 13))).toEqual([1]);
  });
});

describe("ArgMax / ArgMin", () => {
  const t = Tensor.f32([2, 3], [1, 3, 3, 2, 0, 2]);
  it("first or last index of the extreme", () => {
    expect(vals(run("ArgMax", [t], { axis: int(1) }))).toEqual([1, 0]);
    expect(vals(run("ArgMax", [t], { axis: int(1), select_last_index: int(1) }))).toEqual([2, 2]);
    expect(vals(run("ArgMin", [t], { axis: int(-1), keepdims: int(0) }))).toEqual([0, 1]);
    const y = run("ArgMin", [t], { axis: int(0) });
    expect(y.dtype).toBe("int64");
    expect(y.shape).toEqual([1, 3]);
    expect(vals(y)).toEqual([0, 1, 1]);
  });
});
