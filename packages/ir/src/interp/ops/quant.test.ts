import { describe, expect, it } from "vitest";
import { Tensor } from "../../tensor.js";
import type { AttrValue } from "../../graph.js";
import type { DType } from "../../dtype.js";
import { runAll as runAt, vals, int, T } from "./test-helpers.js";
const run = (op: string, inputs: (Tensor | undefined)[], attrs: Record<string, AttrValue> = {}, opset = 21) => runAt(op, inputs, attrs, opset)[0]!;
const runAll = (op: string, inputs: (Tensor | undefined)[], attrs: Record<string, AttrValue> = {}, opset = 21, nOut = 1) => runAt(op, inputs, attrs, opset, nOut);

const s = (v: number) => Tensor.f32([], [v]);

describe("QuantizeLinear", () => {
  it("rounds ties to even", () => {
    const x = Tensor.f32([6], [2.5, 3.5, -2.5, -3.5, 0.5, -0.5]);
    expect(vals(run("QuantizeLinear", [x, s(1), T("int8", [], [0])], {}, 13))).toEqual([2, 4, -2, -4, 0, 0]);
    // 0.25 / 0.1 in float32 is 2.5 exactly -> 2; plus zero point 10
    expect(vals(run("QuantizeLinear", [Tensor.f32([2], [0.25, 0.35]), s(0.1), T("uint8", [], [10])], {}, 13))).toEqual([12, 14]);
  });
  it("saturates to the output type; uint8 without a zero point", () => {
    const x = Tensor.f32([4], [-1000, -3, 3, 1000]);
    const u = run("QuantizeLinear", [x, s(1)], {}, 13);
    expect(u.dtype).toBe("uint8");
    expect(vals(u)).toEqual([0, 0, 3, 255]);
    const cases: [DType, number[]][] = [
      ["int8", [-128, -3, 3, 127]], ["int16", [-1000, -3, 3, 1000]], ["uint16", [0, 0, 3, 1000]],
      ["int4", [-8, -3, 3, 7]], ["uint4", [0, 0, 3, 15]], ["int32", [-1000, -3, 3, 1000]],
    ];
    for (const [dt, want] of cases) {
      const y = run("QuantizeLinear", [x, s(1), T(dt, [], [0])]);
      expect(y.dtype).toBe(dt);
      expect(vals(y)).toEqual(want);
    }
  });
  it("output_dtype picks the type when there is no zero point (opset 21)", () => {
    const y = run("QuantizeLinear", [Tensor.f32([2], [-9, 9]), s(1)], { output_dtype: int(22) });
    expect(y.dtype).toBe("int4");
    expect(vals(y)).toEqual([-8, 7]);
  });
  it("per-axis", () => {
    const x = Tensor.f32([2, 3], [1, 2, 3, 4, 5, 6]);
    const y = run("QuantizeLinear", [x, Tensor.f32([3], [1, 2, 4]), T("int8", [3], [0, 1, 2])], { axis: int(1) }, 13);
    expect(vals(y)).toEqual([1, 2, 3, 4, 3, 4]); // 1/1, 2/2+1, 3/4=0.75->1 +2, 4/1, 5/2=2.5->2 +1, 6/4=1.5->2 +2
    const z = run("QuantizeLinear", [x, Tensor.f32([2], [1, 0.5])], { axis: int(0) }, 13);
    expect(vals(z)).toEqual([1, 2, 3, 8, 10, 12]);
  });
  it("blocked (opset 21), last block shorter", () => {
    // x [2, 5], blocks of 2 along axis 1 -> scale [2, 3]
    const x = Tensor.f32([2, 5], [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    const sc = Tensor.f32([2, 3], [1, 2, 4, 0.5, 1, 10]);
    const y = run("QuantizeLinear", [x, sc, T("int8", [2, 3], [0, 0, 0, 1, 1, 1])], { axis: int(1), block_size: int(2) });
    expect(vals(y)).toEqual([1, 2, 2, 2, 1, 13, 15, 9, 10, 2]);
  });
  it("float16 scale: division in float16, f16 input", () => {
    const y = run("QuantizeLinear", [T("float16", [2], [1, 3]), T("float16", [], [2]), T("int8", [], [0])]);
    expect(vals(y)).toEqual([0, 2]); // 0.5 -> 0, 1.5 -> 2
  });
});

describe("DequantizeLinear", () => {
  it("per-tensor, per-axis and blocked", () => {
    expect(vals(run("DequantizeLinear", [T("uint8", [3], [0, 128, 255]), s(0.5), T("uint8", [], [128])], {}, 13))).toEqual([-64, 0, 63.5]);
    const pa = run("DequantizeLinear", [T("int8", [2, 2], [1, 2, 3, 4]), Tensor.f32([2], [10, 100]), T("int8", [2], [1, 0])], { axis: int(0) }, 13);
    expect(vals(pa)).toEqual([0, 10, 300, 400]);
    const bl = run("DequantizeLinear", [T("int8", [1, 3], [1, 2, 3]), Tensor.f32([1, 2], [2, 5])], { axis: int(1), block_size: int(2) });
    expect(vals(bl)).toEqual([2, 4, 15]);
  });
  it("int32 and int4 inputs; the output has the scale's dtype", () => {
    expect(vals(run("DequantizeLinear", [T("int32", [2], [-100000, 7]), s(0.5)]))).toEqual([-50000, 3.5]);
    expect(vals(run("DequantizeLinear", [T("int4", [2], [-8, 7]), s(2), T("int4", [], [-1])]))).toEqual([-14, 16]);
    const h = run("DequantizeLinear", [T("int8", [1], [3]), T("float16", [], [0.1])]);
    expect(h.dtype).toBe("float16");
    expect(vals(h)).toEqual([Tensor.fromNumbers("float16", [], [3 * 0.0999755859375]).scalar()]);
  });
});

describe("DynamicQuantizeLinear", () => {
  it("uint8 with the range widened to include 0", () => {
    const [y, sc, zp] = runAll("DynamicQuantizeLinear", [Tensor.f32([6], [0, 2, -3, -2.5, 1.34, 0.5])], {}, 11, 3);
    expect(sc!.scalar()).toBeCloseTo(5 / 255, 7);
    expect(vals(zp!)).toEqual([153]);
    expect(vals(y!)).toEqual([153, 255, 0, 26, 221, 179]); // 0.5 / scale = 25.5 -> 26 (even)
    const [y2, , zp2] = runAll("DynamicQuantizeLinear", [Tensor.f32([2], [1, 2])], {}, 11, 3);
    expect(vals(zp2!)).toEqual([0]);
    // scale = fround(2/255); 1/scale = 127.4999924 in float32 -> 127
    expect(vals(y2!)).toEqual([127, 255]);
  });
});

describe("QLinearMatMul", () => {
  it("requantizes the integer product", () => {
    // (a - 0) @ (b - 1) = 2*0 + 4*2 = 8; 8 * 0.5 * 0.5 / 0.5 = 4; + 3
    const y = run("QLinearMatMul", [
      T("uint8", [1, 2], [2, 4]), s(0.5), T("uint8", [], [0]),
      T("uint8", [2, 1], [1, 3]), s(0.5), T("uint8", [], [1]),
      s(0.5), T("uint8", [], [3]),
    ], {}, 10);
    expect(y.shape).toEqual([1, 1]);
    expect(vals(y)).toEqual([7]);
  });
});
