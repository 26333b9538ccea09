import { describe, expect, it } from "vitest";
import { Tensor } from "../../tensor.js";
import type { AttrValue } from "../../graph.js";
import { runAll, run, vals, int, ints, str, T } from "./test-helpers.js";

const bigs = (t: Tensor) => Array.from(t.data as BigInt64Array);
const i64 = (v: (number | bigint)[], shape = [v.length]) => Tensor.i64(shape, v);
const iota = (shape: number[]) => Tensor.f32(shape, Array.from({ length: shape.reduce((a, b) => a * b, 1) }, (_, i) => i));

const INT64_MAX = 9223372036854775807n, INT64_MIN = -9223372036854775808n;

describe("Slice", () => {
  const x = iota([10]);
  const slice = (starts: (number | bigint)[], ends: (number | bigint)[], steps?: (number | bigint)[], axes?: number[], t = x) =>
    vals(run("Slice", [t, i64(starts), i64(ends), axes ? i64(axes) : undefined, steps ? i64(steps) : undefined], {}, 13));
  it("clamps huge ends and walks negative steps", () => {
    expect(slice([-1], [INT64_MIN], [-1])).toEqual([9, 8, 7, 6, 5, 4, 3, 2, 1, 0]);
    expect(slice([INT64_MAX], [INT64_MIN], [-3])).toEqual([9, 6, 3, 0]);
    expect(slice([1], [INT64_MAX], [4])).toEqual([1, 5, 9]);
    expect(slice([8], [2], [-2])).toEqual([8, 6, 4]);
    expect(slice([5], [-100], [-1])).toEqual([5, 4, 3, 2, 1, 0]);
    expect(slice([-100], [100])).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(slice([3], [3])).toEqual([]);
    expect(slice([7], [2])).toEqual([]);
  });
  it("uses axes (negative too) on N-D inputs, and attributes before opset 10", () => {
    const m = iota([3, 4]);
    const y = run("Slice", [m, i64([-1, 2]), i64([INT64_MIN, 0]), i64([0, -1]), i64([-2, -1])], {}, 13);
    expect(y.shape).toEqual([2, 2]);
    expect(vals(y)).toEqual([10, 9, 2, 1]);
    const z = run("Slice", [m], { starts: ints([1]), ends: ints([1000]), axes: ints([1]) }, 9);
    expect(z.shape).toEqual([3, 3]);
    expect(vals(z)).toEqual([1, 2, 3, 5, 6, 7, 9, 10, 11]);
  });
});

describe("Pad", () => {
  const x = Tensor.f32([1, 3], [1, 2, 3]);
  const pad = (mode: string, pads: number[], extra: (Tensor | undefined)[] = [], opset = 19) =>
    vals(run("Pad", [x, i64(pads), ...extra], { mode: str(mode) }, opset));
  it("constant, reflect, edge and wrap", () => {
    expect(pad("constant", [0, 2, 0, 1], [Tensor.f32([], [9])])).toEqual([9, 9, 1, 2, 3, 9]);
    expect(pad("reflect", [0, 2, 0, 2])).toEqual([3, 2, 1, 2, 3, 2, 1]);
    expect(pad("edge", [0, 2, 0, 1])).toEqual([1, 1, 1, 2, 3, 3]);
    expect(pad("wrap", [0, 2, 0, 2])).toEqual([2, 3, 1, 2, 3, 1, 2]);
  });
  it("negative pads crop before padding", () => {
    expect(pad("constant", [0, -1, 0, 1])).toEqual([2, 3, 0]);
    expect(pad("wrap", [0, -1, 0, 1])).toEqual([2, 3, 2]);
    expect(pad("edge", [0, 1, 0, -2])).toEqual([1, 1]);
  });
  it("axes input (opset 18), attributes before opset 11, other dtypes", () => {
    const y = run("Pad", [iota([2, 2]), i64([1, 0]), Tensor.f32([], [7]), i64([-1])], {}, 18);
    expect(y.shape).toEqual([2, 3]);
    expect(vals(y)).toEqual([7, 0, 1, 7, 2, 3]);
    expect(vals(run("Pad", [x], { pads: ints([1, 0, 0, 0]), value: { type: "float", value: 5 } }, 2))).toEqual([5, 5, 5, 1, 2, 3]);
    const s = run("Pad", [new Tensor("string", [2], ["a", "b"]), i64([1, 1]), new Tensor("string", [], ["-"])], {}, 13);
    expect(s.data).toEqual(["-", "a", "b", "-"]);
    expect(bigs(run("Pad", [i64([5n, 6n]), i64([0, 1]), undefined], { mode: str("edge") }, 13))).toEqual([5n, 6n, 6n]);
  });
});

describe("Split", () => {
  const x = iota([7]);
  it("num_outputs splits unevenly (opset 18)", () => {
    const ys = runAll("Split", [x], { num_outputs: int(3) }, 18, 3);
    expect(ys.map((t) => vals(t))).toEqual([[0, 1, 2], [3, 4, 5], [6]]);
  });
  it("split sizes as input (>= 13) or attribute (< 13)", () => {
    expect(runAll("Split", [x, i64([2, 5])], {}, 13, 2).map(vals)).toEqual([[0, 1], [2, 3, 4, 5, 6]]);
    expect(runAll("Split", [x], { split: ints([6, 1]) }, 11, 2).map(vals)).toEqual([[0, 1, 2, 3, 4, 5], [6]]);
    const m = runAll("Split", [iota([2, 4])], { axis: int(-1) }, 11, 2);
    expect(m.map((t) => t.shape)).toEqual([[2, 2], [2, 2]]);
    expect(m.map(vals)).toEqual([[0, 1, 4, 5], [2, 3, 6, 7]]);
  });
});

describe("reshaping", () => {
  it("Reshape: 0 copies, -1 infers, allowzero keeps zeros", () => {
    const x = iota([2, 3, 4]);
    const y = run("Reshape", [x, i64([0, -1])], {}, 14);
    expect(y.shape).toEqual([2, 12]);
    expect(y.data).toBe(x.data); // storage is shared
    expect(run("Reshape", [iota([0, 3]), i64([3, 0])], { allowzero: int(1) }, 14).shape).toEqual([3, 0]);
    expect(run("Reshape", [iota([0, 3]), i64([0, 3])], {}, 14).shape).toEqual([0, 3]);
    expect(() => run("Reshape", [x, i64([5, -1])], {}, 14)).toThrow();
  });
  it("Squeeze / Unsqueeze: attribute before opset 13, input after", () => {
    const x = iota([1, 3, 1]);
    expect(run("Squeeze", [x], { axes: ints([0]) }, 11).shape).toEqual([3, 1]);
    expect(run("Squeeze", [x, i64([-1])], {}, 13).shape).toEqual([1, 3]);
    expect(run("Squeeze", [x], {}, 13).shape).toEqual([3]);
    expect(run("Unsqueeze", [iota([3])], { axes: ints([0, -1]) }, 11).shape).toEqual([1, 3, 1]);
    expect(run("Unsqueeze", [iota([2, 3]), i64([1, 3])], {}, 13).shape).toEqual([2, 1, 3, 1]);
  });
  it("Flatten with negative and zero axis", () => {
    expect(run("Flatten", [iota([2, 3, 4])], { axis: int(-1) }).shape).toEqual([6, 4]);
    expect(run("Flatten", [iota([2, 3, 4])], { axis: int(0) }).shape).toEqual([1, 24]);
  });
  it("Transpose any dtype; DepthToSpace DCR vs CRD; SpaceToDepth inverts DCR", () => {
    const t = run("Transpose", [i64([1, 2, 3, 4, 5, 6], [2, 3])]);
    expect(t.shape).toEqual([3, 2]);
    expect(bigs(t)).toEqual([1n, 4n, 2n, 5n, 3n, 6n]);
    const x = iota([1, 8, 1, 1]);
    expect(vals(run("DepthToSpace", [x], { blocksize: int(2) }))).toEqual([0, 2, 4, 6, 1, 3, 5, 7]);
    expect(vals(run("DepthToSpace", [x], { blocksize: int(2), mode: str("CRD") }))).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    const img = iota([1, 2, 4, 6]);
    const d = run("SpaceToDepth", [img], { blocksize: int(2) });
    expect(d.shape).toEqual([1, 8, 2, 3]);
    expect(vals(run("DepthToSpace", [d], { blocksize: int(2) }))).toEqual(vals(img));
  });
});

describe("Concat, Expand, Tile", () => {
  it("Concat on a negative axis with an empty input", () => {
    const y = run("Concat", [iota([2, 1]), iota([2, 0]), Tensor.f32([2, 2], [7, 8, 9, 10])], { axis: int(-1) });
    expect(y.shape).toEqual([2, 3]);
    expect(vals(y)).toEqual([0, 7, 8, 1, 9, 10]);
  });
  it("Expand broadcasts both ways; Tile repeats", () => {
    const y = run("Expand", [Tensor.f32([3, 1], [1, 2, 3]), i64([2, 1, 2])]);
    expect(y.shape).toEqual([2, 3, 2]);
    expect(vals(y)).toEqual([1, 1, 2, 2, 3, 3, 1, 1, 2, 2, 3, 3]);
    const t = run("Tile", [Tensor.f32([2, 2], [1, 2, 3, 4]), i64([2, 1])]);
    expect(vals(t)).toEqual([1, 2, 3, 4, 1, 2, 3, 4]);
    expect(run("Tile", [iota([2, 3]), i64([0, 2])]).shape).toEqual([0, 6]);
  });
});

describe("gather and scatter", () => {
  const x = iota([3, 4]);
  it("Gather with negative and N-D indices", () => {
    const y = run("Gather", [x, i64([-1, 0, 1, 1], [2, 2])], { axis: int(1) });
    expect(y.shape).toEqual([3, 2, 2]);
    expect(vals(y).slice(0, 4)).toEqual([3, 0, 1, 1]);
    expect(vals(run("Gather", [x, i64([2], [])]))).toEqual([8, 9, 10, 11]);
    expect(() => run("Gather", [x, i64([3])])).toThrow(/out of range/);
  });
  it("GatherElements and GatherND with batch_dims", () => {
    expect(vals(run("GatherElements", [x, i64([3, 0, -1, 1, 0, 0], [3, 2])], { axis: int(1) }))).toEqual([3, 0, 7, 5, 8, 8]);
    const d = iota([2, 2, 3]);
    const y = run("GatherND", [d, i64([1, 2, 0, 0], [2, 1, 2])], { batch_dims: int(1) });
    expect(y.shape).toEqual([2, 1]);
    expect(vals(y)).toEqual([5, 6]);
    expect(vals(run("GatherND", [d, i64([1, 0], [1, 2])]))).toEqual([6, 7, 8]);
  });
  it("ScatterND and ScatterElements with reductions", () => {
    const base = Tensor.f32([4], [1, 1, 1, 1]);
    const idx = i64([1, 3, 1], [3, 1]);
    const upd = Tensor.f32([3], [5, 6, 7]);
    expect(vals(run("ScatterND", [base, idx, upd]))).toEqual([1, 7, 1, 6]);
    expect(vals(run("ScatterND", [base, idx, upd], { reduction: str("add") }, 16))).toEqual([1, 13, 1, 7]);
    expect(vals(run("ScatterND", [base, idx, upd], { reduction: str("mul") }, 16))).toEqual([1, 35, 1, 6]);
    const se = run("ScatterElements", [Tensor.f32([2, 2], [0, 0, 0, 0]), i64([1, 1, 0, 1], [2, 2]), Tensor.f32([2, 2], [3, 4, 5, 6])], { axis: int(1), reduction: str("max") }, 18);
    expect(vals(se)).toEqual([0, 4, 5, 6]);
    expect(bigs(run("ScatterElements", [i64([1, 2, 3]), i64([-1]), i64([9])]))).toEqual([1n, 2n, 9n]);
    expect(vals(base)).toEqual([1, 1, 1, 1]); // inputs are not modified
  });
});

describe("constants and shapes", () => {
  it("Shape start/end and Size", () => {
    const x = iota([2, 3, 4, 5]);
    expect(bigs(run("Shape", [x], { start: int(-3), end: int(-1) }, 15))).toEqual([3n, 4n]);
    expect(bigs(run("Shape", [x], { start: int(10) }, 15))).toEqual([]);
    const s = run("Size", [x]);
    expect(s.shape).toEqual([]);
    expect(bigs(s)).toEqual([120n]);
  });
  it("Constant attribute kinds", () => {
    const c = (attrs: Record<string, AttrValue>) => run("Constant", [], attrs);
    expect(c({ value_float: { type: "float", value: 1.5 } }).dtype).toBe("float32");
    expect(c({ value_floats: { type: "floats", value: [1, 2] } }).shape).toEqual([2]);
    expect(bigs(c({ value_int: int(7) }))).toEqual([7n]);
    expect(bigs(c({ value_ints: ints([1, 2, 3]) }))).toEqual([1n, 2n, 3n]);
    expect(c({ value_string: str("hi") }).data).toEqual(["hi"]);
    expect(c({ value_strings: { type: "strings", value: ["a", "b"] } }).shape).toEqual([2]);
  });
  it("ConstantOfShape", () => {
    const y = run("ConstantOfShape", [i64([2, 3])], { value: { type: "tensor", value: i64([5n]) } });
    expect(y.dtype).toBe("int64");
    expect(bigs(y)).toEqual([5n, 5n, 5n, 5n, 5n, 5n]);
    const z = run("ConstantOfShape", [i64([])]);
    expect(z.shape).toEqual([]);
    expect(vals(z)).toEqual([0]);
  });
  it("Range in float and int64", () => {
    expect(vals(run("Range", [Tensor.f32([], [1]), Tensor.f32([], [2]), Tensor.f32([], [0.25])]))).toEqual([1, 1.25, 1.5, 1.75]);
    expect(bigs(run("Range", [i64([10], []), i64([-3], []), i64([-4], [])]))).toEqual([10n, 6n, 2n, -2n]);
    expect(vals(run("Range", [T("int32", [], [0]), T("int32", [], [5]), T("int32", [], [-1])]))).toEqual([]);
  });
  it("EyeLike with k and dtype", () => {
    const y = run("EyeLike", [iota([2, 3])], { k: int(1), dtype: int(7) });
    expect(y.dtype).toBe("int64");
    expect(bigs(y)).toEqual([0n, 1n, 0n, 0n, 0n, 1n]);
  });
});

describe("selection", () => {
  it("TopK keeps lower indices first on ties", () => {
    const x = Tensor.f32([4], [1, 3, 3, 2]);
    const [v, i] = runAll("TopK", [x, i64([2])], {}, 11, 2);
    expect(vals(v!)).toEqual([3, 3]);
    expect(bigs(i!)).toEqual([1n, 2n]);
    const [v2, i2] = runAll("TopK", [x, i64([2])], { largest: int(0) }, 11, 2);
    expect(vals(v2!)).toEqual([1, 2]);
    expect(bigs(i2!)).toEqual([0n, 3n]);
    const [v3] = runAll("TopK", [iota([3, 2])], { k: int(1), axis: int(0) }, 1, 2);
    expect(vals(v3!)).toEqual([4, 5]);
  });
  it("NonZero lists coordinates in row-major order", () => {
    const y = run("NonZero", [T("int32", [2, 2], [0, 3, 4, 0])]);
    expect(y.shape).toEqual([2, 2]);
    expect(bigs(y)).toEqual([0n, 1n, 1n, 0n]);
  });
  it("OneHot with negative indices and an axis", () => {
    const y = run("OneHot", [i64([0, -1, 5]), Tensor.f32([], [3]), Tensor.f32([2], [-1, 1])], { axis: int(0) });
    expect(y.shape).toEqual([3, 3]);
    expect(vals(y)).toEqual([1, -1, -1, -1, -1, -1, -1, 1, -1]);
  });
  it("Trilu upper/lower with k", () => {
    const x = Tensor.f32([2, 3], [1, 2, 3, 4, 5, 6]);
    expect(vals(run("Trilu", [x]))).toEqual([1, 2, 3, 0, 5, 6]);
    expect(vals(run("Trilu", [x, i64([1], [])]))).toEqual([0, 2, 3, 0, 0, 6]);
    expect(vals(run("Trilu", [x, i64([-1], [])], { upper: int(0) }))).toEqual([0, 0, 0, 4, 0, 0]);
  });
  it("CumSum exclusive / reverse", () => {
    const x = Tensor.f32([4], [1, 2, 3, 4]);
    const a = i64([0], []);
    expect(vals(run("CumSum", [x, a]))).toEqual([1, 3, 6, 10]);
    expect(vals(run("CumSum", [x, a], { exclusive: int(1) }))).toEqual([0, 1, 3, 6]);
    expect(vals(run("CumSum", [x, a], { reverse: int(1) }))).toEqual([10, 9, 7, 4]);
    expect(vals(run("CumSum", [x, a], { reverse: int(1), exclusive: int(1) }))).toEqual([9, 7, 4, 0]);
  });
  it("ReverseSequence per batch", () => {
    const x = Tensor.f32([3, 2], [1, 10, 2, 20, 3, 30]); // [time, batch]
    expect(vals(run("ReverseSequence", [x, i64([3, 2])]))).toEqual([3, 20, 2, 10, 1, 30]);
  });
});
