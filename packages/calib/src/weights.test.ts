import { describe, expect, it } from "vitest";
import { rng } from "../../../tools/testing/shared-models.js";
import { GraphError, Tensor, f32ToF16Bits } from "@q/ir";
import { channelScales, int8WeightScales, weightChannelAxis, weightIsSigned, weightRanges } from "./weights.js";


/** Brute force: visit every element by its multi-index. */
function bruteRanges(t: Tensor, axis: number) {
  const shape = t.shape;
  const C = shape[axis]!;
  const min = new Array<number>(C).fill(Infinity);
  const max = new Array<number>(C).fill(-Infinity);
  const vals = t.toNumbers();
  const idx = new Array<number>(shape.length).fill(0);
  for (let flat = 0; flat < vals.length; flat++) {
    let rem = flat;
    for (let d = shape.length - 1; d >= 0; d--) {
      idx[d] = rem % shape[d]!;
      rem = Math.floor(rem / shape[d]!);
    }
    const c = idx[axis]!;
    min[c] = Math.min(min[c]!, vals[flat]!);
    max[c] = Math.max(max[c]!, vals[flat]!);
  }
  return { min, max, absmax: min.map((m, c) => Math.max(Math.abs(m), Math.abs(max[c]!))) };
}

describe("weightRanges", () => {
  const r = rng(1);
  const conv = Tensor.f32([8, 3, 3, 3], Array.from({ length: 216 }, () => (r() - 0.5) * 4));
  for (const axis of [0, 1, 2, 3, -1]) {
    it(`conv weight [8,3,3,3], axis ${axis}: matches a brute-force walk`, () => {
      const a = axis < 0 ? axis + 4 : axis;
      const got = weightRanges(conv, axis);
      const want = bruteRanges(conv, a);
      expect(got.axis).toBe(a);
      expect(Array.from(got.min)).toEqual(want.min.map(Math.fround));
      expect(Array.from(got.max)).toEqual(want.max.map(Math.fround));
      expect(Array.from(got.absmax)).toEqual(want.absmax.map(Math.fround));
    });
  }
  it("reads float16 weights through their values", () => {
    const bits = Uint16Array.from([1, -2, 3, -0.5, 0.25, 6].map(f32ToF16Bits));
    const t = new Tensor("float16", [2, 3], bits);
    const g = weightRanges(t, 0);
    expect(Array.from(g.min)).toEqual([-2, -0.5]);
    expect(Array.from(g.absmax)).toEqual([3, 6]);
  });
  it("rejects a bad axis with a GraphError", () => {
    expect(() => weightRanges(conv, 4)).toThrow(GraphError);
  });
});

describe("per-channel scales", () => {
  it("int8: max(absmax/127, 1e-5) per output channel", () => {
    const w = Tensor.f32([3, 2], [1, -1.27, 0, 0, 254, 3]);
    expect(Array.from(int8WeightScales(w, 0))).toEqual([Math.fround(1.27 / 127), 1e-5, 2].map(Math.fround));
    expect(Array.from(channelScales(Float32Array.of(255, 0), { qmax: 255 }))).toEqual([1, Math.fround(1e-5)]);
  });
  it("channel axes: Conv 0, ConvTranspose 1, Gemm by transB, MatMul last", () => {
    expect(weightChannelAxis("Conv", 4)).toBe(0);
    expect(weightChannelAxis("ConvTranspose", 4)).toBe(1);
    expect(weightChannelAxis("Gemm", 2, { transB: true })).toBe(0);
    expect(weightChannelAxis("Gemm", 2)).toBe(1);
    expect(weightChannelAxis("MatMul", 3)).toBe(2);
    expect(() => weightChannelAxis("Relu", 1)).toThrow(GraphError);
  });
  it("signedness: any negative weight or a bias", () => {
    expect(weightIsSigned(Tensor.f32([2], [0, 1]))).toBe(false);
    expect(weightIsSigned(Tensor.f32([2], [0, 1]), true)).toBe(true);
    expect(weightIsSigned(Tensor.f32([2], [-0.1, 1]))).toBe(true);
  });
  it("a large Gemm weight is a few typed passes", () => {
    const n = 4096 * 1024;
    const d = new Float32Array(n);
    const r = rng(2);
    for (let i = 0; i < n; i++) d[i] = r() - 0.5;
    const w = new Tensor("float32", [4096, 1024], d);
    const t0 = performance.now();
    const s = int8WeightScales(w, 0);
    const t1 = performance.now();
    const s1 = int8WeightScales(w, 1);
    const t2 = performance.now();
    console.log(`[calib bench] int8 per-channel scales of a 4096×1024 weight: axis 0 ${(t1 - t0).toFixed(1)} ms, axis 1 ${(t2 - t1).toFixed(1)} ms`);
    expect(s.length).toBe(4096);
    expect(s1.length).toBe(1024);
  });
});
