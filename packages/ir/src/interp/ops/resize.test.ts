import { describe, expect, it } from "vitest";
import { Node, type AttrValue } from "../../graph.js";
import { Tensor } from "../../tensor.js";
import { kernels } from "./resize.js";

function run(op: string, inputs: (Tensor | undefined)[], attrs: Record<string, AttrValue>, opset: number): Tensor {
  const n = new Node({ opType: op, inputs: inputs.map((t, i) => (t ? `i${i}` : "")), outputs: ["y"], attrs });
  return kernels[op]!(inputs, n, { opset, runSubgraph: () => { throw new Error("no subgraphs"); } })[0]!;
}
const s = (value: string): AttrValue => ({ type: "string", value });
const ints = (value: number[]): AttrValue => ({ type: "ints", value });
const int = (value: number): AttrValue => ({ type: "int", value });
const scales = (...v: number[]) => Tensor.f32([v.length], v);
const sizes = (...v: number[]) => Tensor.i64([v.length], v);
const vals = (t: Tensor) => Array.from(t.toNumbers());
function expectClose(got: Tensor, want: number[], shape: number[], tol = 1e-6): void {
  expect(got.shape).toEqual(shape);
  const g = vals(got);
  g.forEach((v, k) => expect(Math.abs(v - want[k]!)).toBeLessThanOrEqual(tol * (1 + Math.abs(want[k]!))));
}

const row = Tensor.f32([1, 4], [1, 2, 3, 4]);

describe("Resize (opset 18/19 features)", () => {
  it("antialias widens the linear filter when downsampling", () => {
    // scale 0.5: triangle of half-width 2 input pixels, weights 1/8, 3/8, 3/8, 1/8 around
    // x = 0.5 and x = 2.5; the edge is replicated
    const y = run("Resize", [row, undefined, scales(0.5)], { mode: s("linear"), antialias: int(1), axes: ints([1]) }, 18);
    expectClose(y, [1.625, 3.375], [1, 2]);
    const plain = run("Resize", [row, undefined, scales(0.5)], { mode: s("linear"), axes: ints([1]) }, 18);
    expectClose(plain, [1.5, 3.5], [1, 2]);
  });

  it("antialias keeps constants constant (weights are normalised), cubic too", () => {
    const c = Tensor.f32([1, 1, 6, 6], new Array(36).fill(3));
    for (const mode of ["linear", "cubic"]) {
      const y = run("Resize", [c, undefined, undefined, sizes(2, 3)], { mode: s(mode), antialias: int(1), axes: ints([2, 3]) }, 18);
      expectClose(y, new Array(6).fill(3), [1, 1, 2, 3]);
    }
  });

  it("antialias does nothing when upsampling", () => {
    const a = run("Resize", [row, undefined, scales(1, 2)], { mode: s("cubic"), antialias: int(1) }, 18);
    const b = run("Resize", [row, undefined, scales(1, 2)], { mode: s("cubic") }, 18);
    expect(vals(a)).toEqual(vals(b));
  });

  it("axes with sizes and negative axes", () => {
    const x = Tensor.f32([1, 1, 2, 2], [1, 2, 3, 4]);
    const y = run("Resize", [x, undefined, undefined, sizes(4, 4)], { axes: ints([-2, -1]) }, 18);
    expectClose(y, [1, 1, 2, 2, 1, 1, 2, 2, 3, 3, 4, 4, 3, 3, 4, 4], [1, 1, 4, 4]);
  });

  it("keep_aspect_ratio_policy not_larger / not_smaller", () => {
    const x = Tensor.f32([1, 1, 2, 4], [1, 2, 3, 4, 5, 6, 7, 8]);
    const nl = run("Resize", [x, undefined, undefined, sizes(4, 4)], { axes: ints([2, 3]), keep_aspect_ratio_policy: s("not_larger") }, 18);
    expectClose(nl, [1, 2, 3, 4, 5, 6, 7, 8], [1, 1, 2, 4]);
    const ns = run("Resize", [x, undefined, undefined, sizes(4, 4)], { axes: ints([2, 3]), keep_aspect_ratio_policy: s("not_smaller") }, 18);
    expect(ns.shape).toEqual([1, 1, 4, 8]);
    expect(vals(ns).slice(0, 8)).toEqual([1, 1, 2, 2, 3, 3, 4, 4]);
    // scale min(5/3, 7/3) = 5/3 on [3, 3]: round_half_up(5/3 * 3) = 5 on both axes
    const x3 = Tensor.f32([3, 3], new Array(9).fill(0));
    expect(run("Resize", [x3, undefined, undefined, sizes(5, 7)], { keep_aspect_ratio_policy: s("not_larger") }, 18).shape).toEqual([5, 5]);
  });

  it("half_pixel_symmetric centres the fractional output", () => {
    // scale 0.6 on 4: output width 2.4 -> 2; offset = 2 * (1 - 2/2.4)
    const y = run("Resize", [row, undefined, scales(1, 0.6)], { mode: s("linear"), coordinate_transformation_mode: s("half_pixel_symmetric") }, 19);
    const sc = Math.fround(0.6), off = 2 * (1 - 2 / (sc * 4));
    expectClose(y, [off + 0.5 / sc - 0.5 + 1, off + 1.5 / sc - 0.5 + 1], [1, 2]);
    const hp = run("Resize", [row, undefined, scales(1, 0.6)], { mode: s("linear") }, 19);
    expectClose(hp, [0.5 / sc - 0.5 + 1, 1.5 / sc - 0.5 + 1], [1, 2]);
  });

  it("tf_crop_and_resize with scales: floor(in * scale) outputs, extrapolation outside the input", () => {
    const x = Tensor.f32([1, 1, 1, 4], [1, 2, 3, 4]);
    const roi = Tensor.f32([8], [0, 0, 0, 0.5, 1, 1, 1, 1.5]);
    const y = run("Resize", [x, roi, scales(1, 1, 1, 0.5)], {
      mode: s("linear"), coordinate_transformation_mode: s("tf_crop_and_resize"), extrapolation_value: { type: "float", value: 10 },
    }, 13);
    // x_original = 0.5*3 + x * 1.0 * 3 / (2 - 1): 1.5 -> 2.5, 4.5 -> outside
    expectClose(y, [2.5, 10], [1, 1, 1, 2]);
  });

  it("integer and float16 inputs keep their dtype", () => {
    const u = Tensor.fromNumbers("uint8", [1, 2], [10, 250]);
    const yu = run("Resize", [u, undefined, scales(1, 2)], { mode: s("nearest") }, 13);
    expect(yu.dtype).toBe("uint8");
    expect(vals(yu)).toEqual([10, 10, 250, 250]);
    const h = Tensor.fromNumbers("float16", [1, 2], [1, 2]);
    const yh = run("Resize", [h, undefined, scales(1, 2)], { mode: s("linear") }, 13);
    expect(yh.dtype).toBe("float16");
    expect(vals(yh)).toEqual([1, 1.25, 1.75, 2]);
  });
});

describe("Upsample and Resize-10 (legacy rules)", () => {
  it("Upsample-7 linear with attribute scales (asymmetric, edge clamped)", () => {
    const x = Tensor.f32([1, 1, 2, 2], [1, 2, 3, 4]);
    const y = run("Upsample", [x], { mode: s("linear"), scales: { type: "floats", value: [1, 1, 2, 2] } }, 7);
    expectClose(y, [1, 1.5, 2, 2, 2, 2.5, 3, 3, 3, 3.5, 4, 4, 3, 3.5, 4, 4], [1, 1, 4, 4]);
  });
  it("Resize-10 nearest floors when upsampling and takes the ceiling when downsampling", () => {
    expect(vals(run("Resize", [row, scales(1, 1.5)], { mode: s("nearest") }, 10))).toEqual([1, 1, 2, 3, 3, 4]);
    expect(vals(run("Resize", [row, scales(1, 0.6)], { mode: s("nearest") }, 10))).toEqual([1, 3]);
    expect(vals(run("Upsample", [row, scales(1, 2)], { mode: s("nearest") }, 9))).toEqual([1, 1, 2, 2, 3, 3, 4, 4]);
  });
});
