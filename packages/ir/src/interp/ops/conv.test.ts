import { describe, expect, it } from "vitest";
import { Node, type AttrValue } from "../../graph.js";
import { Tensor, shapeSize, stridesOf } from "../../tensor.js";
import type { KernelContext } from "../types.js";
import { kernels } from "./conv.js";

const ctx: KernelContext = { opset: 17, runSubgraph: () => { throw new Error("no subgraphs"); } };

type Attrs = Record<string, number | number[] | string>;
function node(op: string, attrs: Attrs = {}, nIn = 3): Node {
  const a: Record<string, AttrValue> = {};
  for (const [k, v] of Object.entries(attrs)) {
    a[k] = typeof v === "string" ? { type: "string", value: v } : Array.isArray(v) ? { type: "ints", value: v } : { type: "int", value: v };
  }
  return new Node({ opType: op, inputs: Array.from({ length: nIn }, (_, i) => `i${i}`), outputs: ["y"], attrs: a });
}
function run(op: string, inputs: (Tensor | undefined)[], attrs: Attrs = {}): Tensor {
  return kernels[op]!(inputs, node(op, attrs, inputs.length), ctx)[0]!;
}

let seed = 12345;
function rand(): number {
  seed = (seed * 1103515245 + 12345) % 2147483648;
  return seed / 2147483648 - 0.5;
}
function rnd(shape: number[]): Tensor {
  return Tensor.f32(shape, Array.from({ length: shapeSize(shape) }, rand));
}

function expectClose(got: Tensor, want: ArrayLike<number>, shape: number[], tol = 1e-5): void {
  expect(got.shape).toEqual(shape);
  const g = got.toNumbers();
  expect(g.length).toBe(want.length);
  for (let i = 0; i < g.length; i++) {
    const a = g[i]!, b = want[i]!;
    if (Number.isNaN(a) || Number.isNaN(b) || !Number.isFinite(b)) {
      if (!Object.is(a, b) && !(Number.isNaN(a) && Number.isNaN(b))) throw new Error(`element ${i}: got ${a}, want ${b}`);
      continue;
    }
    if (!(Math.abs(a - b) <= tol * (1 + Math.abs(b)))) {
      throw new Error(`element ${i}: got ${g[i]}, want ${want[i]}`);
    }
  }
}

interface Geo { strides: number[]; dil: number[]; padB: number[]; padE: number[]; group: number }

/** Conv straight from its definition: every output sums over its window, skipping padding. */
function naiveConv(x: Tensor, w: Tensor, b: Tensor | undefined, g: Geo): { y: Float64Array; shape: number[] } {
  const [N, C] = x.shape as number[];
  const M = w.shape[0]!;
  const sp = x.shape.slice(2), ks = w.shape.slice(2);
  const n = sp.length;
  const out = sp.map((d, i) => Math.floor((d + g.padB[i]! + g.padE[i]! - (g.dil[i]! * (ks[i]! - 1) + 1)) / g.strides[i]!) + 1);
  const shape = [N!, M, ...out];
  const y = new Float64Array(shapeSize(shape));
  const xs = stridesOf(x.shape), ws = stridesOf(w.shape);
  const xv = x.toNumbers(), wv = w.toNumbers(), bv = b?.toNumbers();
  const Cg = C! / g.group, Mg = M / g.group;
  const outIdx = new Array<number>(n).fill(0);
  let o = 0;
  for (let nn = 0; nn < N!; nn++) {
    for (let m = 0; m < M; m++) {
      const grp = Math.floor(m / Mg);
      for (let p = 0; p < shapeSize(out); p++) {
        let r = p;
        for (let i = n - 1; i >= 0; i--) { outIdx[i] = r % out[i]!; r = Math.floor(r / out[i]!); }
        let s = bv ? bv[m]! : 0;
        for (let c = 0; c < Cg; c++) {
          for (let kq = 0; kq < shapeSize(ks); kq++) {
            let kr = kq, xo = nn * xs[0]! + (grp * Cg + c) * xs[1]!, wo = m * ws[0]! + c * ws[1]!, ok = true;
            for (let i = n - 1; i >= 0; i--) {
              const k = kr % ks[i]!; kr = Math.floor(kr / ks[i]!);
              const pos = outIdx[i]! * g.strides[i]! - g.padB[i]! + k * g.dil[i]!;
              if (pos < 0 || pos >= sp[i]!) ok = false;
              xo += pos * xs[2 + i]!;
              wo += k * ws[2 + i]!;
            }
            if (ok) s += xv[xo]! * wv[wo]!;
          }
        }
        y[o++] = s;
      }
    }
  }
  return { y, shape };
}

/** ConvTranspose from its definition: each input element scatters x * w into the output. */
function naiveConvTranspose(x: Tensor, w: Tensor, b: Tensor | undefined, g: Geo, out: number[]): { y: Float64Array; shape: number[] } {
  const [N, C] = x.shape as number[];
  const Mg = w.shape[1]!, M = Mg * g.group, Cg = C! / g.group;
  const sp = x.shape.slice(2), ks = w.shape.slice(2), n = sp.length;
  const shape = [N!, M, ...out];
  const y = new Float64Array(shapeSize(shape));
  const ys = stridesOf(shape), xs = stridesOf(x.shape), ws = stridesOf(w.shape);
  const xv = x.toNumbers(), wv = w.toNumbers();
  for (let nn = 0; nn < N!; nn++) {
    for (let c = 0; c < C!; c++) {
      const grp = Math.floor(c / Cg);
      for (let p = 0; p < shapeSize(sp); p++) {
        const inIdx: number[] = [];
        let r = p;
        for (let i = n - 1; i >= 0; i--) { inIdx[i] = r % sp[i]!; r = Math.floor(r / sp[i]!); }
        const xval = xv[nn * xs[0]! + c * xs[1]! + p]!;
        for (let mg = 0; mg < Mg; mg++) {
          for (let kq = 0; kq < shapeSize(ks); kq++) {
            let kr = kq, yo = nn * ys[0]! + (grp * Mg + mg) * ys[1]!, wo = c * ws[0]! + mg * ws[1]!, ok = true;
            for (let i = n - 1; i >= 0; i--) {
              const k = kr % ks[i]!; kr = Math.floor(kr / ks[i]!);
              const pos = inIdx[i]! * g.strides[i]! - g.padB[i]! + k * g.dil[i]!;
              if (pos < 0 || pos >= out[i]!) ok = false;
              yo += pos * ys[2 + i]!;
              wo += k * ws[2 + i]!;
            }
            if (ok) y[yo] += xval * wv[wo]!;
          }
        }
      }
    }
  }
  if (b) {
    const bv = b.toNumbers(), S = shapeSize(out);
    for (let i = 0; i < y.length; i++) y[i] += bv[Math.floor(i / S) % M]!;
  }
  return { y, shape };
}

describe("Conv", () => {
  it("depthwise 3x3 with padding, worked by hand", () => {
    // channel 0 = 1..9, channel 1 = all 1; weights: ch0 picks the centre tap, ch1 sums its window
    const x = Tensor.f32([1, 2, 3, 3], [1, 2, 3, 4, 5, 6, 7, 8, 9, ...new Array(9).fill(1)]);
    const w = Tensor.f32([2, 1, 3, 3], [0, 0, 0, 0, 2, 0, 0, 0, 0, ...new Array(9).fill(1)]);
    const b = Tensor.f32([2], [0.5, -1]);
    const y = run("Conv", [x, w, b], { group: 2, pads: [1, 1, 1, 1] });
    // ch1: window counts of a 3x3 grid of ones (4 at corners, 6 at edges, 9 in the middle), minus 1
    expectClose(y, [2.5, 4.5, 6.5, 8.5, 10.5, 12.5, 14.5, 16.5, 18.5, 3, 5, 3, 5, 8, 5, 3, 5, 3], [1, 2, 3, 3]);
  });

  it("depthwise with channel multiplier 2 and stride 2", () => {
    const x = Tensor.f32([1, 1, 4, 4], Array.from({ length: 16 }, (_, i) => i));
    // output channel 0: top-left tap; output channel 1: bottom-right tap of a 2x2 kernel
    const w = Tensor.f32([2, 1, 2, 2], [1, 0, 0, 0, 0, 0, 0, 1]);
    const y = run("Conv", [x, w], { group: 1, strides: [2, 2] });
    expectClose(y, [0, 2, 8, 10, 5, 7, 13, 15], [1, 2, 2, 2]);
  });

  it("grouped conv with dilation, worked by hand", () => {
    // 4 input channels in 2 groups; group 0 = channels {0,1}, group 1 = {2,3}. 2x2 kernel, dilation 2 on 4x4.
    const plane = (v: number) => Array.from({ length: 16 }, (_, i) => v * (i + 1));
    const x = Tensor.f32([1, 4, 4, 4], [...plane(1), ...plane(10), ...plane(100), ...plane(0)]);
    // output 0 (group 0): taps (0,0) of ch0 and (1,1) of ch1; output 1 (group 1): tap (0,1) of ch2
    const w = Tensor.f32([2, 2, 2, 2], [1, 0, 0, 0, 0, 0, 0, 1, 0, 1, 0, 0, 0, 0, 0, 0]);
    const y = run("Conv", [x, w], { group: 2, dilations: [2, 2] });
    // out0[i][j] = x0[i][j] + x1[i+2][j+2] = (4i+j+1) + 10*(4(i+2)+(j+2)+1)
    // out1[i][j] = x2[i][j+2] = 100*(4i+j+3)
    const want: number[] = [];
    for (let i = 0; i < 2; i++) for (let j = 0; j < 2; j++) want.push(4 * i + j + 1 + 10 * (4 * (i + 2) + j + 3));
    for (let i = 0; i < 2; i++) for (let j = 0; j < 2; j++) want.push(100 * (4 * i + j + 3));
    expectClose(y, want, [1, 2, 2, 2]);
  });

  it("1-D conv with SAME_UPPER and SAME_LOWER padding", () => {
    const x = Tensor.f32([1, 1, 4], [1, 2, 3, 4]);
    const w = Tensor.f32([1, 1, 2], [1, 10]);
    // total pad 1: SAME_UPPER pads the end, SAME_LOWER the start
    expectClose(run("Conv", [x, w], { auto_pad: "SAME_UPPER" }), [21, 32, 43, 4], [1, 1, 4]);
    expectClose(run("Conv", [x, w], { auto_pad: "SAME_LOWER" }), [10, 21, 32, 43], [1, 1, 4]);
  });

  const cases: { name: string; x: number[]; w: number[]; attrs: Attrs; bias?: boolean }[] = [
    { name: "3x3 pad 1, 10 outputs", x: [2, 5, 9, 8], w: [10, 5, 3, 3], attrs: { pads: [1, 1, 1, 1] }, bias: true },
    { name: "stride 2, asymmetric pads", x: [1, 3, 11, 7], w: [6, 3, 3, 2], attrs: { strides: [2, 2], pads: [0, 1, 2, 0] } },
    { name: "groups 3, dilation 2", x: [1, 6, 10, 9], w: [9, 2, 3, 3], attrs: { group: 3, dilations: [2, 2], pads: [2, 1, 2, 1] }, bias: true },
    { name: "pointwise 1x1", x: [2, 7, 6, 5], w: [5, 7, 1, 1], attrs: {}, bias: true },
    { name: "1x1 with stride", x: [1, 4, 7, 7], w: [3, 4, 1, 1], attrs: { strides: [2, 3] } },
    { name: "im2col with K > 384 (k blocking), many columns", x: [1, 50, 40, 21], w: [7, 50, 3, 3], attrs: { pads: [1, 1, 1, 1], strides: [2, 1] } },
    { name: "depthwise 5x5 stride 2 dilation 2", x: [1, 4, 13, 12], w: [4, 1, 5, 5], attrs: { group: 4, strides: [2, 2], dilations: [2, 2], pads: [4, 4, 3, 3] }, bias: true },
    { name: "1-D", x: [2, 3, 17], w: [4, 3, 5], attrs: { strides: [3], pads: [2, 1], dilations: [2] }, bias: true },
    { name: "3-D", x: [1, 2, 5, 6, 4], w: [3, 2, 3, 2, 3], attrs: { pads: [1, 0, 1, 1, 1, 1], strides: [1, 2, 1] }, bias: true },
    { name: "3-D depthwise", x: [1, 2, 4, 5, 6], w: [2, 1, 2, 3, 3], attrs: { group: 2, pads: [0, 1, 1, 1, 1, 1] } },
    // 3x3 stride-1 convs with >= 4 channels take the Winograd path
    { name: "Winograd: 2 groups of 8->6, odd 13x11 output, batch 2", x: [2, 16, 13, 11], w: [12, 8, 3, 3], attrs: { group: 2, pads: [1, 1, 1, 1] }, bias: true },
    { name: "Winograd: several tile chunks", x: [1, 64, 60, 60], w: [5, 64, 3, 3], attrs: { pads: [1, 1, 1, 1] }, bias: true },
    { name: "Winograd: asymmetric pads, no padding at the end", x: [1, 4, 17, 16], w: [4, 4, 3, 3], attrs: { pads: [2, 0, 0, 1] } },
  ];
  for (const c of cases) {
    it(`matches the definition: ${c.name}`, () => {
      const x = rnd(c.x), w = rnd(c.w), b = c.bias ? rnd([c.w[0]!]) : undefined;
      const n = c.x.length - 2;
      const pads = (c.attrs.pads as number[] | undefined) ?? new Array(2 * n).fill(0);
      const g: Geo = {
        strides: (c.attrs.strides as number[] | undefined) ?? new Array(n).fill(1),
        dil: (c.attrs.dilations as number[] | undefined) ?? new Array(n).fill(1),
        padB: pads.slice(0, n), padE: pads.slice(n), group: (c.attrs.group as number | undefined) ?? 1,
      };
      const want = naiveConv(x, w, b, g);
      const y = run("Conv", b ? [x, w, b] : [x, w], c.attrs);
      expectClose(y, want.y, want.shape, 1e-5);
    });
  }

  it("float64 and float16 inputs keep their dtype", () => {
    const x = rnd([1, 3, 6, 6]), w = rnd([4, 3, 3, 3]);
    const want = naiveConv(x, w, undefined, { strides: [1, 1], dil: [1, 1], padB: [0, 0], padE: [0, 0], group: 1 });
    const x64 = Tensor.fromNumbers("float64", x.shape, x.toNumbers()), w64 = Tensor.fromNumbers("float64", w.shape, w.toNumbers());
    const y64 = run("Conv", [x64, w64]);
    expect(y64.dtype).toBe("float64");
    expectClose(y64, want.y, want.shape, 1e-12);
    const x16 = Tensor.fromNumbers("float16", x.shape, x.toNumbers()), w16 = Tensor.fromNumbers("float16", w.shape, w.toNumbers());
    const y16 = run("Conv", [x16, w16]);
    expect(y16.dtype).toBe("float16");
    expectClose(y16, want.y, want.shape, 5e-3);
  });

  it("non-finite inputs give what the direct form gives (no Winograd mixing)", () => {
    const x = rnd([1, 4, 10, 10]), w = rnd([4, 4, 3, 3]);
    const xd = x.data as Float32Array;
    xd[55] = Infinity;
    xd[123] = NaN;
    xd[270] = -Infinity;
    const want = naiveConv(x, w, undefined, { strides: [1, 1], dil: [1, 1], padB: [1, 1], padE: [1, 1], group: 1 });
    expectClose(run("Conv", [x, w], { pads: [1, 1, 1, 1] }), want.y, want.shape);
  });

  it("rejects channel counts that do not fit the groups", () => {
    expect(() => run("Conv", [rnd([1, 3, 4, 4]), rnd([2, 2, 3, 3])], { group: 2 })).toThrow(/group/);
  });
});

describe("ConvTranspose", () => {
  it("stride 2, worked by hand", () => {
    const x = Tensor.f32([1, 1, 2, 2], [1, 2, 3, 4]);
    const w = Tensor.f32([1, 1, 2, 2], [1, 1, 1, 1]);
    // each input spreads over its own 2x2 block
    expectClose(run("ConvTranspose", [x, w], { strides: [2, 2] }), [1, 1, 2, 2, 1, 1, 2, 2, 3, 3, 4, 4, 3, 3, 4, 4], [1, 1, 4, 4]);
  });

  const cases: { name: string; x: number[]; w: number[]; attrs: Attrs; out: number[]; padB: number[]; bias?: boolean }[] = [
    { name: "group 2, dilation 2, stride 2, pads", x: [2, 4, 3, 4], w: [4, 3, 3, 2], attrs: { group: 2, dilations: [2, 1], strides: [2, 3], pads: [1, 0, 2, 1] }, out: [2 * 2 + 5 - 3, 3 * 3 + 2 - 1], padB: [1, 0], bias: true },
    { name: "output_padding", x: [1, 2, 3, 3], w: [2, 3, 3, 3], attrs: { strides: [2, 2], output_padding: [1, 0] }, out: [8, 7], padB: [0, 0] },
    { name: "output_shape (odd padding goes first)", x: [1, 1, 3, 3], w: [1, 2, 3, 3], attrs: { strides: [2, 2], output_shape: [5, 6] }, out: [5, 6], padB: [1, 1] },
    { name: "SAME_UPPER", x: [1, 1, 3, 4], w: [1, 1, 3, 3], attrs: { strides: [2, 2], auto_pad: "SAME_UPPER" }, out: [6, 8], padB: [0, 0] },
    { name: "SAME_LOWER", x: [1, 1, 3, 4], w: [1, 1, 3, 3], attrs: { strides: [2, 2], auto_pad: "SAME_LOWER" }, out: [6, 8], padB: [1, 1] },
    { name: "1-D", x: [1, 2, 5], w: [2, 3, 4], attrs: { strides: [3], pads: [1, 2] }, out: [3 * 4 + 4 - 3], padB: [1], bias: true },
    { name: "3-D", x: [1, 2, 2, 3, 2], w: [2, 2, 2, 2, 3], attrs: { strides: [2, 1, 2] }, out: [4, 4, 5], padB: [0, 0, 0] },
  ];
  for (const c of cases) {
    it(`matches the definition: ${c.name}`, () => {
      const x = rnd(c.x), w = rnd(c.w), group = (c.attrs.group as number | undefined) ?? 1;
      const b = c.bias ? rnd([c.w[1]! * group]) : undefined;
      const n = c.x.length - 2;
      const g: Geo = {
        strides: (c.attrs.strides as number[] | undefined) ?? new Array(n).fill(1),
        dil: (c.attrs.dilations as number[] | undefined) ?? new Array(n).fill(1),
        padB: c.padB, padE: [], group,
      };
      const want = naiveConvTranspose(x, w, b, g, c.out);
      expectClose(run("ConvTranspose", b ? [x, w, b] : [x, w], c.attrs), want.y, want.shape, 1e-5);
    });
  }
});

describe("ConvInteger", () => {
  it("subtracts a scalar x zero point and per-channel w zero points", () => {
    const x = Tensor.fromNumbers("uint8", [1, 1, 2, 3], [10, 20, 30, 40, 50, 60]);
    const w = Tensor.fromNumbers("int8", [2, 1, 1, 2], [1, 2, -3, 4]);
    const xz = Tensor.fromNumbers("uint8", [], [10]);
    const wz = Tensor.fromNumbers("int8", [2], [0, 1]);
    const y = run("ConvInteger", [x, w, xz, wz]);
    expect(y.dtype).toBe("int32");
    // x - 10 = [[0,10,20],[30,40,50]]; w0 = [1,2], w1 - 1 = [-4,3]
    expect(Array.from(y.toNumbers())).toEqual([20, 50, 110, 140, 30, 20, 0, -10]);
    expect(y.shape).toEqual([1, 2, 2, 2]);
  });

  it("pads with the zero point (padding contributes nothing)", () => {
    const x = Tensor.fromNumbers("uint8", [1, 1, 1, 2], [5, 7]);
    const w = Tensor.fromNumbers("uint8", [1, 1, 1, 3], [1, 1, 1]);
    const y = run("ConvInteger", [x, w, Tensor.fromNumbers("uint8", [], [5])], { pads: [0, 1, 0, 1] });
    expect(Array.from(y.toNumbers())).toEqual([2, 2]);
  });
});

describe("Conv speed", () => {
  it("1x32x160x160, 3x3, 32 outputs", () => {
    const x = rnd([1, 32, 160, 160]), w = rnd([32, 32, 3, 3]), b = rnd([32]);
    run("Conv", [x, w, b], { pads: [1, 1, 1, 1] });
    const t0 = performance.now();
    const reps = 3;
    for (let i = 0; i < reps; i++) run("Conv", [x, w, b], { pads: [1, 1, 1, 1] });
    const ms = (performance.now() - t0) / reps;
    const t1 = performance.now();
    run("Conv", [x, rnd([32, 32, 1, 1]), b]);
    const ms1 = performance.now() - t1;
    const t2 = performance.now();
    run("Conv", [x, rnd([32, 1, 3, 3]), b], { pads: [1, 1, 1, 1], group: 32 });
    const ms2 = performance.now() - t2;
    console.log(`Conv 1x32x160x160: 3x3->32 ${ms.toFixed(1)} ms, 1x1->32 ${ms1.toFixed(1)} ms, depthwise 3x3 ${ms2.toFixed(1)} ms`);
  });
});
