import { describe, expect, it } from "vitest";
import { Node, type AttrValue } from "../../graph.js";
import { Tensor } from "../../tensor.js";
import type { KernelContext } from "../types.js";
import { kernels } from "./pool.js";

const ctx: KernelContext = { opset: 19, runSubgraph: () => { throw new Error("no subgraphs"); } };

type Attrs = Record<string, number | number[] | string>;
function run(op: string, inputs: Tensor[], attrs: Attrs = {}, nOut = 1): Tensor[] {
  const a: Record<string, AttrValue> = {};
  for (const [k, v] of Object.entries(attrs)) {
    a[k] = typeof v === "string" ? { type: "string", value: v } : Array.isArray(v) ? { type: "ints", value: v } : { type: "int", value: v };
  }
  const outputs = ["y", "indices"].slice(0, nOut);
  const n = new Node({ opType: op, inputs: inputs.map((_, i) => `i${i}`), outputs, attrs: a });
  return kernels[op]!(inputs, n, ctx);
}
const vals = (t: Tensor) => Array.from(t.toNumbers());

describe("MaxPool", () => {
  it("dilated windows with indices", () => {
    const x = Tensor.f32([1, 1, 4, 4], Array.from({ length: 16 }, (_, i) => i + 1));
    const [y, idx] = run("MaxPool", [x], { kernel_shape: [2, 2], dilations: [2, 2] }, 2);
    // window (0,0) reads (0,0),(0,2),(2,0),(2,2) -> 11 at flat index 10
    expect(y!.shape).toEqual([1, 1, 2, 2]);
    expect(vals(y!)).toEqual([11, 12, 15, 16]);
    expect(idx!.dtype).toBe("int64");
    expect(vals(idx!)).toEqual([10, 11, 14, 15]);
  });

  it("storage_order=1 gives column-major indices", () => {
    const x = Tensor.f32([1, 1, 2, 3], [1, 5, 2, 3, 4, 6]);
    const [y0, i0] = run("MaxPool", [x], { kernel_shape: [2, 2] }, 2);
    expect(vals(y0!)).toEqual([5, 6]);
    expect(vals(i0!)).toEqual([1, 5]);
    const [, i1] = run("MaxPool", [x], { kernel_shape: [2, 2], storage_order: 1 }, 2);
    // (0,1) -> 0 + 1*2 = 2, (1,2) -> 1 + 2*2 = 5
    expect(vals(i1!)).toEqual([2, 5]);
  });

  it("indices count the batch and channel offsets", () => {
    const x = Tensor.f32([2, 1, 1, 2], [1, 2, 4, 3]);
    const [, idx] = run("MaxPool", [x], { kernel_shape: [1, 2] }, 2);
    expect(vals(idx!)).toEqual([1, 2]);
  });

  it("ceil_mode keeps the partial last window", () => {
    const x = Tensor.f32([1, 1, 5], [1, 2, 3, 4, 5]);
    const [y, idx] = run("MaxPool", [x], { kernel_shape: [2], strides: [2], ceil_mode: 1 }, 2);
    expect(vals(y!)).toEqual([2, 4, 5]);
    expect(vals(idx!)).toEqual([1, 3, 4]);
    expect(vals(run("MaxPool", [x], { kernel_shape: [2], strides: [2] })[0]!)).toEqual([2, 4]);
  });

  it("ceil_mode drops a window that would start in the end padding", () => {
    const x = Tensor.f32([1, 1, 2], [1, 2]);
    const [y] = run("MaxPool", [x], { kernel_shape: [2], strides: [3], pads: [0, 1], ceil_mode: 1 });
    expect(y!.shape).toEqual([1, 1, 1]);
    expect(vals(y!)).toEqual([2]);
  });

  it("int8 and 3-D", () => {
    const x = Tensor.fromNumbers("int8", [1, 1, 4], [-5, -3, -7, -1]);
    const [y] = run("MaxPool", [x], { kernel_shape: [2], strides: [2] });
    expect(y!.dtype).toBe("int8");
    expect(vals(y!)).toEqual([-3, -1]);
    const x3 = Tensor.f32([1, 1, 2, 2, 3], [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
    const [y3, i3] = run("MaxPool", [x3], { kernel_shape: [2, 2, 2] }, 2);
    expect(y3!.shape).toEqual([1, 1, 1, 1, 2]);
    expect(vals(y3!)).toEqual([10, 11]);
    expect(vals(i3!)).toEqual([10, 11]);
  });

  it("SAME_LOWER pads the start", () => {
    const x = Tensor.f32([1, 1, 3], [1, 3, 2]);
    expect(vals(run("MaxPool", [x], { kernel_shape: [2], auto_pad: "SAME_LOWER" })[0]!)).toEqual([1, 3, 3]);
    expect(vals(run("MaxPool", [x], { kernel_shape: [2], auto_pad: "SAME_UPPER" })[0]!)).toEqual([3, 3, 2]);
  });
});

describe("AveragePool", () => {
  const x = Tensor.f32([1, 1, 4], [1, 2, 3, 4]);
  it("dilations with and without count_include_pad", () => {
    const attrs = { kernel_shape: [2], dilations: [2], pads: [1, 1] };
    // windows read positions (-1,1), (0,2), (1,3), (2,4)
    expect(vals(run("AveragePool", [x], { ...attrs, count_include_pad: 1 })[0]!)).toEqual([1, 2, 3, 1.5]);
    expect(vals(run("AveragePool", [x], attrs)[0]!)).toEqual([2, 2, 3, 3]);
  });

  it("count_include_pad counts the padding but not what ceil_mode adds beyond it", () => {
    const x5 = Tensor.f32([1, 1, 5], [1, 2, 3, 4, 5]);
    const [y] = run("AveragePool", [x5], { kernel_shape: [2], strides: [2], ceil_mode: 1, count_include_pad: 1 });
    expect(vals(y!)).toEqual([1.5, 3.5, 5]);
    const [y2] = run("AveragePool", [x5], { kernel_shape: [3], strides: [2], pads: [1, 1], count_include_pad: 1 });
    // windows [-1..1], [1..3], [3..5]; the pad positions count as zeros
    expect(vals(y2!).map((v) => +v.toFixed(5))).toEqual([1, 3, 3]);
  });

  it("float64 keeps its dtype", () => {
    const [y] = run("AveragePool", [Tensor.fromNumbers("float64", [1, 1, 4], [1, 2, 3, 4])], { kernel_shape: [2] });
    expect(y!.dtype).toBe("float64");
    expect(vals(y!)).toEqual([1.5, 2.5, 3.5]);
  });
});

describe("LpPool and global pools", () => {
  const x = Tensor.f32([1, 1, 4], [3, 4, 0, -5]);
  it("LpPool p=2 and p=1", () => {
    expect(vals(run("LpPool", [x], { kernel_shape: [2], strides: [2] })[0]!)).toEqual([5, 5]);
    expect(vals(run("LpPool", [x], { kernel_shape: [2], strides: [2], p: 1 })[0]!)).toEqual([7, 5]);
  });
  it("GlobalLpPool, GlobalAveragePool, GlobalMaxPool over 3 spatial axes", () => {
    expect(vals(run("GlobalLpPool", [x])[0]!)[0]).toBeCloseTo(Math.sqrt(50), 5);
    const x3 = Tensor.f32([1, 2, 1, 2, 2], [1, 2, 3, 4, -1, -2, -3, -8]);
    const [avg] = run("GlobalAveragePool", [x3]);
    expect(avg!.shape).toEqual([1, 2, 1, 1, 1]);
    expect(vals(avg!)).toEqual([2.5, -3.5]);
    expect(vals(run("GlobalMaxPool", [x3])[0]!)).toEqual([4, -1]);
  });
});

describe("MaxUnpool", () => {
  it("scatters MaxPool's maxima back", () => {
    const x = Tensor.f32([1, 1, 2, 4], [1, 8, 3, 4, 5, 2, 7, 6]);
    const [y, idx] = run("MaxPool", [x], { kernel_shape: [2, 2], strides: [2, 2] }, 2);
    const [u] = run("MaxUnpool", [y!, idx!], { kernel_shape: [2, 2], strides: [2, 2] });
    expect(u!.shape).toEqual([1, 1, 2, 4]);
    expect(vals(u!)).toEqual([0, 8, 0, 0, 0, 0, 7, 0]);
  });
});
