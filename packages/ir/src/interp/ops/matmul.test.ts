import { describe, expect, it } from "vitest";
import { Node, type AttrValue } from "../../graph.js";
import { Tensor, shapeSize } from "../../tensor.js";
import type { KernelContext } from "../types.js";
import { kernels } from "./matmul.js";

const ctx: KernelContext = { opset: 17, runSubgraph: () => { throw new Error("no subgraphs"); } };

function run(op: string, inputs: (Tensor | undefined)[], attrs: Record<string, AttrValue> = {}): Tensor {
  const n = new Node({ opType: op, inputs: inputs.map((t, i) => (t ? `i${i}` : "")), outputs: ["y"], attrs });
  return kernels[op]!(inputs, n, ctx)[0]!;
}
const vals = (t: Tensor) => Array.from(t.toNumbers());

let seed = 7;
function rnd(shape: number[]): Tensor {
  return Tensor.f32(shape, Array.from({ length: shapeSize(shape) }, () => {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    return seed / 2147483648 - 0.5;
  }));
}

/** Reference 2-D product of row-major matrices. */
function mm(a: ArrayLike<number>, b: ArrayLike<number>, M: number, K: number, N: number, aOff = 0, bOff = 0): number[] {
  const y = new Array<number>(M * N).fill(0);
  for (let i = 0; i < M; i++) for (let j = 0; j < N; j++) for (let k = 0; k < K; k++) y[i * N + j] += a[aOff + i * K + k]! * b[bOff + k * N + j]!;
  return y;
}

function expectClose(got: number[], want: number[], tol = 1e-5): void {
  expect(got.length).toBe(want.length);
  for (let i = 0; i < got.length; i++) {
    if (Math.abs(got[i]! - want[i]!) > tol * (1 + Math.abs(want[i]!))) throw new Error(`element ${i}: got ${got[i]}, want ${want[i]}`);
  }
}

describe("MatMul", () => {
  it("1-D operands follow numpy", () => {
    const v = Tensor.f32([3], [1, 2, 3]);
    const m = Tensor.f32([3, 2], [1, 2, 3, 4, 5, 6]);
    const vm = run("MatMul", [v, m]);
    expect(vm.shape).toEqual([2]);
    expect(vals(vm)).toEqual([22, 28]);
    const mv = run("MatMul", [Tensor.f32([2, 3], [1, 2, 3, 4, 5, 6]), v]);
    expect(mv.shape).toEqual([2]);
    expect(vals(mv)).toEqual([14, 32]);
    const vv = run("MatMul", [v, v]);
    expect(vv.shape).toEqual([]);
    expect(vals(vv)).toEqual([14]);
    // batched matrix times a vector
    const bv = run("MatMul", [Tensor.f32([2, 1, 3], [1, 0, 0, 0, 0, 1]), v]);
    expect(bv.shape).toEqual([2, 1]);
    expect(vals(bv)).toEqual([1, 3]);
  });

  it("broadcasts batch axes", () => {
    const a = rnd([2, 1, 3, 4]), b = rnd([5, 4, 2]);
    const y = run("MatMul", [a, b]);
    expect(y.shape).toEqual([2, 5, 3, 2]);
    const av = a.toNumbers(), bv = b.toNumbers();
    const want: number[] = [];
    for (let i = 0; i < 2; i++) for (let j = 0; j < 5; j++) want.push(...mm(av, bv, 3, 4, 2, i * 12, j * 8));
    expectClose(vals(y), want);
  });

  it("large operands (blocked over k and columns, ragged edges)", () => {
    const M = 37, K = 500, N = 301;
    const a = rnd([M, K]), b = rnd([K, N]);
    expectClose(vals(run("MatMul", [a, b])), mm(a.toNumbers(), b.toNumbers(), M, K, N), 1e-5);
  });

  it("int32, int64 and float16 keep their dtype", () => {
    const a = Tensor.fromNumbers("int32", [2, 2], [1, 2, 3, 4]);
    const y = run("MatMul", [a, a]);
    expect(y.dtype).toBe("int32");
    expect(vals(y)).toEqual([7, 10, 15, 22]);
    const y64 = run("MatMul", [Tensor.fromNumbers("int64", [1, 2], [3, -4]), Tensor.fromNumbers("int64", [2, 1], [5, 6])]);
    expect(y64.dtype).toBe("int64");
    expect(vals(y64)).toEqual([-9]);
    const h = Tensor.fromNumbers("float16", [2, 2], [0.5, 1, 1.5, 2]);
    const yh = run("MatMul", [h, h]);
    expect(yh.dtype).toBe("float16");
    expect(vals(yh)).toEqual([1.75, 2.5, 3.75, 5.5]);
  });

  it("rejects mismatched inner dimensions", () => {
    expect(() => run("MatMul", [rnd([2, 3]), rnd([4, 2])])).toThrow(/inner/);
  });
});

describe("Gemm", () => {
  const A = Tensor.f32([2, 3], [1, 2, 3, 4, 5, 6]);
  const B = Tensor.f32([3, 2], [1, 0, 0, 1, 1, 1]);
  it("alpha, beta and a row-vector C", () => {
    const y = run("Gemm", [A, B, Tensor.f32([2], [10, 20])], { alpha: { type: "float", value: 2 }, beta: { type: "float", value: 0.5 } });
    // A·B = [[4,5],[10,11]]
    expect(vals(y)).toEqual([13, 20, 25, 32]);
  });
  it("transA, transB, column C and no C", () => {
    const At = Tensor.f32([3, 2], [1, 4, 2, 5, 3, 6]);
    const Bt = Tensor.f32([2, 3], [1, 0, 1, 0, 1, 1]);
    const y = run("Gemm", [At, Bt, Tensor.f32([2, 1], [1, -1])], { transA: { type: "int", value: 1 }, transB: { type: "int", value: 1 } });
    expect(vals(y)).toEqual([5, 6, 9, 10]);
    const y2 = run("Gemm", [A, B]);
    expect(y2.shape).toEqual([2, 2]);
    expect(vals(y2)).toEqual([4, 5, 10, 11]);
  });
});

describe("MatMulInteger", () => {
  it("per-row A and per-column B zero points", () => {
    const A = Tensor.fromNumbers("uint8", [2, 2], [3, 4, 10, 12]);
    const B = Tensor.fromNumbers("int8", [2, 3], [1, 2, 3, -1, -2, -3]);
    const az = Tensor.fromNumbers("uint8", [2], [2, 10]);
    const bz = Tensor.fromNumbers("int8", [3], [0, 1, -1]);
    const y = run("MatMulInteger", [A, B, az, bz]);
    expect(y.dtype).toBe("int32");
    // A - az = [[1,2],[0,2]]; B - bz = [[1,1,4],[-1,-3,-2]]
    expect(vals(y)).toEqual([-1, -5, 0, -2, -6, -4]);
  });
  it("scalar zero points and no zero points", () => {
    const A = Tensor.fromNumbers("uint8", [1, 2], [200, 100]);
    const B = Tensor.fromNumbers("uint8", [2, 1], [255, 0]);
    expect(vals(run("MatMulInteger", [A, B]))).toEqual([51000]);
    expect(vals(run("MatMulInteger", [A, B, Tensor.fromNumbers("uint8", [], [100]), Tensor.fromNumbers("uint8", [], [128])]))).toEqual([100 * 127]);
  });
});

describe("Einsum", () => {
  const eq = (s: string): Record<string, AttrValue> => ({ equation: { type: "string", value: s } });
  const a = Tensor.f32([2, 3], [1, 2, 3, 4, 5, 6]);
  const b = Tensor.f32([3, 2], [1, 0, 0, 1, 1, 1]);
  it("matrix product, explicit and implicit", () => {
    expect(vals(run("Einsum", [a, b], eq("ij,jk->ik")))).toEqual([4, 5, 10, 11]);
    expect(vals(run("Einsum", [a, b], eq("ij,jk")))).toEqual([4, 5, 10, 11]);
    // implicit output is alphabetical: "ba" contracts a, keeps... b then j? -> output labels sorted
    const y = run("Einsum", [a, b], eq("ba,ac"));
    expect(y.shape).toEqual([2, 2]);
    expect(vals(y)).toEqual([4, 5, 10, 11]);
  });
  it("transpose, diagonal, trace, sum, outer product", () => {
    const t = run("Einsum", [a], eq("ij->ji"));
    expect(t.shape).toEqual([3, 2]);
    expect(vals(t)).toEqual([1, 4, 2, 5, 3, 6]);
    const sq = Tensor.f32([3, 3], [1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(vals(run("Einsum", [sq], eq("ii->i")))).toEqual([1, 5, 9]);
    const tr = run("Einsum", [sq], eq("ii"));
    expect(tr.shape).toEqual([]);
    expect(vals(tr)).toEqual([15]);
    expect(vals(run("Einsum", [a], eq("ij->")))).toEqual([21]);
    const o = run("Einsum", [Tensor.f32([2], [1, 2]), Tensor.f32([3], [1, 10, 100])], eq("i,j->ij"));
    expect(vals(o)).toEqual([1, 10, 100, 2, 20, 200]);
  });
  it("ellipsis with broadcasting", () => {
    const x = rnd([2, 1, 2, 3]), y = rnd([4, 3, 2]);
    const r = run("Einsum", [x, y], eq("...ij,...jk->...ik"));
    expect(r.shape).toEqual([2, 4, 2, 2]);
    const xv = x.toNumbers(), yv = y.toNumbers();
    const want: number[] = [];
    for (let i = 0; i < 2; i++) for (let j = 0; j < 4; j++) want.push(...mm(xv, yv, 2, 3, 2, i * 6, j * 6));
    expectClose(vals(r), want);
    // implicit form puts the ellipsis axes first
    const d = run("Einsum", [Tensor.f32([2, 2, 2], [1, 2, 3, 4, 5, 6, 7, 8])], eq("...ii"));
    expect(d.shape).toEqual([2]);
    expect(vals(d)).toEqual([5, 13]);
  });
  it("three operands", () => {
    const r = run("Einsum", [Tensor.f32([2], [1, 2]), Tensor.f32([2, 2], [1, 2, 3, 4]), Tensor.f32([2], [1, 1])], eq("i,ij,j->"));
    expect(vals(r)).toEqual([1 * (1 + 2) + 2 * (3 + 4)]);
  });
});
