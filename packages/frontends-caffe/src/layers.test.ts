/**
 * Layer semantics on small synthetic nets: each graph runs on both executors and is compared with a
 * direct implementation of what Caffe computes (pooling rounding and divisors, BatchNorm's factor
 * blob, Eltwise coefficients, Crop/Slice/Reshape/Flatten/Permute, Deconvolution, LRN, Interp...).
 */
import { describe, expect, it } from "vitest";
import { Tensor, type Graph } from "@q/ir";
import { decodeCaffe } from "./index.js";
import { encodeCaffemodel, maxAbs, randn, runBoth, type TestLayer } from "./test-util.js";

const F = "t.prototxt", M = "t.caffemodel";

function net(input: number[], body: string, weights?: TestLayer[]): Graph {
  const text = `name: "t"\ninput: "data"\ninput_shape { ${input.map((d) => `dim: ${d}`).join(" ")} }\n${body}`;
  return decodeCaffe(text, weights ? encodeCaffemodel(weights) : undefined, { prototxtFile: F, caffemodelFile: M });
}

async function expectBoth(g: Graph, x: Tensor, want: Record<string, { shape: number[]; data: ArrayLike<number> }>, tol = 1e-5) {
  const { ref, ort } = await runBoth(g, { data: x });
  for (const [name, w] of Object.entries(want)) {
    for (const [who, r] of [["reference", ref], ["ort", ort]] as const) {
      const got = r[name];
      expect(got, `${who}: output ${name}`).toBeDefined();
      expect(got!.shape, `${who}: ${name} shape`).toEqual(w.shape);
      expect(maxAbs(got!.toFloat32(), w.data), `${who}: ${name}`).toBeLessThan(tol);
    }
  }
}

/** Caffe's pooling, written from the layer's definition. */
function caffePool(x: Tensor, o: { ave: boolean; kh: number; kw: number; sh: number; sw: number; ph: number; pw: number; floor?: boolean }) {
  const [N, C, H, W] = x.shape as [number, number, number, number];
  const rnd = o.floor ? Math.floor : Math.ceil;
  let OH = rnd((H + 2 * o.ph - o.kh) / o.sh) + 1, OW = rnd((W + 2 * o.pw - o.kw) / o.sw) + 1;
  if (o.ph || o.pw) {
    if ((OH - 1) * o.sh >= H + o.ph) OH--;
    if ((OW - 1) * o.sw >= W + o.pw) OW--;
  }
  const xd = x.toFloat32();
  const y = new Float32Array(N * C * OH * OW);
  for (let nc = 0; nc < N * C; nc++) {
    for (let oh = 0; oh < OH; oh++) {
      for (let ow = 0; ow < OW; ow++) {
        let hs = oh * o.sh - o.ph, ws = ow * o.sw - o.pw;
        let he = Math.min(hs + o.kh, H + o.ph), we = Math.min(ws + o.kw, W + o.pw);
        const size = (he - hs) * (we - ws);
        hs = Math.max(hs, 0); ws = Math.max(ws, 0); he = Math.min(he, H); we = Math.min(we, W);
        let acc = o.ave ? 0 : -Infinity;
        for (let h = hs; h < he; h++) for (let w = ws; w < we; w++) {
          const v = xd[(nc * H + h) * W + w]!;
          acc = o.ave ? acc + v : Math.max(acc, v);
        }
        y[(nc * OH + oh) * OW + ow] = o.ave ? acc / size : acc;
      }
    }
  }
  return { shape: [N, C, OH, OW], data: y };
}

describe("Pooling: Caffe's output size, last-window clipping and AVE divisor", () => {
  const cases: [string, number[], string, Parameters<typeof caffePool>[1]][] = [
    ["MAX k2 s2 (LeNet)", [1, 2, 8, 8], "pool: MAX kernel_size: 2 stride: 2", { ave: false, kh: 2, kw: 2, sh: 2, sw: 2, ph: 0, pw: 0 }],
    ["MAX k3 s2 p1 ceil", [1, 2, 6, 7], "pool: MAX kernel_size: 3 stride: 2 pad: 1", { ave: false, kh: 3, kw: 3, sh: 2, sw: 2, ph: 1, pw: 1 }],
    ["AVE k3 s2 p1: ceil window past H+pad gets the smaller divisor", [2, 3, 6, 7], "pool: AVE kernel_size: 3 stride: 2 pad: 1", { ave: true, kh: 3, kw: 3, sh: 2, sw: 2, ph: 1, pw: 1 }],
    ["AVE k2 s2 no pad, ceil: partial last window", [1, 2, 5, 5], "pool: AVE kernel_size: 2 stride: 2", { ave: true, kh: 2, kw: 2, sh: 2, sw: 2, ph: 0, pw: 0 }],
    ["AVE k2 s3 p1: last window dropped (starts in the padding)", [1, 1, 5, 5], "pool: AVE kernel_size: 2 stride: 3 pad: 1", { ave: true, kh: 2, kw: 2, sh: 3, sw: 3, ph: 1, pw: 1 }],
    ["AVE k3 s2 p1 round_mode FLOOR", [1, 2, 6, 7], "pool: AVE kernel_size: 3 stride: 2 pad: 1 round_mode: FLOOR", { ave: true, kh: 3, kw: 3, sh: 2, sw: 2, ph: 1, pw: 1, floor: true }],
    ["AVE kernel_h/w stride_h/w pad_h/w", [1, 2, 9, 7], "pool: AVE kernel_h: 3 kernel_w: 2 stride_h: 2 stride_w: 1 pad_h: 1 pad_w: 0", { ave: true, kh: 3, kw: 2, sh: 2, sw: 1, ph: 1, pw: 0 }],
    ["MAX k3 s3 p2 (pad only on one axis used)", [1, 1, 10, 11], "pool: MAX kernel_size: 3 stride: 3 pad: 2", { ave: false, kh: 3, kw: 3, sh: 3, sw: 3, ph: 2, pw: 2 }],
  ];
  for (const [what, shape, params, o] of cases) {
    it(what, async () => {
      const g = net(shape, `layer { name: "p" type: "Pooling" bottom: "data" top: "p" pooling_param { ${params} } }`);
      const x = randn(shape, 7);
      const want = caffePool(x, o);
      expect(g.outputs[0]!.shape).toEqual(want.shape);
      await expectBoth(g, x, { p: want });
    });
  }

  it("global pooling (AVE and MAX)", async () => {
    const g = net([1, 3, 5, 4], `
layer { name: "a" type: "Pooling" bottom: "data" top: "a" pooling_param { pool: AVE global_pooling: true } }
layer { name: "m" type: "Pooling" bottom: "data" top: "m" pooling_param { pool: MAX global_pooling: true } }`);
    const x = randn([1, 3, 5, 4], 3);
    await expectBoth(g, x, {
      a: caffePool(x, { ave: true, kh: 5, kw: 4, sh: 1, sw: 1, ph: 0, pw: 0 }),
      m: caffePool(x, { ave: false, kh: 5, kw: 4, sh: 1, sw: 1, ph: 0, pw: 0 }),
    });
  });

  it("refuses STOCHASTIC pooling", () => {
    expect(() => net([1, 1, 4, 4], `layer { name: "p" type: "Pooling" bottom: "data" top: "p" pooling_param { pool: STOCHASTIC kernel_size: 2 } }`)).toThrow(/layer 'p' \(Pooling\).*STOCHASTIC/);
  });
});

describe("normalization and arithmetic layers", () => {
  it("BatchNorm divides its statistics by blob[2] (0 means 0), Scale applies gamma/beta; in-place blobs get SSA names", async () => {
    const C = 3;
    const mean = [0.2, -0.4, 1.0], vari = [0.5, 2.0, 0.25], gamma = [1.5, -0.5, 2], beta = [0.1, 0.2, -0.3];
    const body = `
layer { name: "bn" type: "BatchNorm" bottom: "data" top: "data2" batch_norm_param { use_global_stats: true eps: 0.001 } }
layer { name: "sc" type: "Scale" bottom: "data2" top: "data2" scale_param { bias_term: true } }
layer { name: "relu" type: "ReLU" bottom: "data2" top: "data2" relu_param { negative_slope: 0.1 } }
layer { name: "bn0" type: "BatchNorm" bottom: "data" top: "z" }`;
    const weights: TestLayer[] = [
      { name: "bn", blobs: [{ shape: [C], data: mean.map((m) => m * 4) }, { shape: [C], data: vari.map((v) => v * 4) }, { shape: [1], data: [4] }] },
      { name: "sc", blobs: [{ shape: [C], data: gamma }, { shape: [C], data: beta }] },
      { name: "bn0", blobs: [{ shape: [1, C, 1, 1], data: [1, 2, 3] }, { shape: [1, C, 1, 1], data: [1, 1, 1] }, { shape: [1], data: [0] }] },
    ];
    const g = net([2, C, 2, 3], body, weights);
    expect(g.outputs.map((o) => o.name)).toEqual(["data2", "z"]);
    expect(g.nodes.map((n) => n.outputs[0])).toEqual(expect.arrayContaining(["data2#0", "data2#1", "data2", "z"]));
    const x = randn([2, C, 2, 3], 11);
    const xd = x.toFloat32();
    const y = new Float32Array(xd.length), z = new Float32Array(xd.length);
    for (let i = 0; i < xd.length; i++) {
      const c = Math.floor(i / 6) % C;
      const v = ((xd[i]! - mean[c]!) / Math.sqrt(vari[c]! + 0.001)) * gamma[c]! + beta[c]!;
      y[i] = v > 0 ? v : 0.1 * v;
      z[i] = xd[i]! / Math.sqrt(0 + 1e-5);
    }
    await expectBoth(g, x, { data2: { shape: [2, C, 2, 3], data: y }, z: { shape: [2, C, 2, 3], data: z } }, 1e-3);
  });

  it("BatchNorm with use_global_stats false normalizes with the batch statistics", async () => {
    const g = net([2, 2, 3, 3], `layer { name: "bn" type: "BatchNorm" bottom: "data" top: "y" batch_norm_param { use_global_stats: false } }`, [
      { name: "bn", blobs: [{ shape: [2], data: [0, 0] }, { shape: [2], data: [1, 1] }, { shape: [1], data: [1] }] },
    ]);
    const x = randn([2, 2, 3, 3], 5);
    const xd = x.toFloat32();
    const y = new Float32Array(xd.length);
    for (let c = 0; c < 2; c++) {
      const idx: number[] = [];
      for (let n = 0; n < 2; n++) for (let k = 0; k < 9; k++) idx.push(n * 18 + c * 9 + k);
      const m = idx.reduce((a, i) => a + xd[i]!, 0) / idx.length;
      const v = idx.reduce((a, i) => a + (xd[i]! - m) ** 2, 0) / idx.length;
      for (const i of idx) y[i] = (xd[i]! - m) / Math.sqrt(v + 1e-5);
    }
    await expectBoth(g, x, { y: { shape: [2, 2, 3, 3], data: y } }, 1e-4);
  });

  it("Eltwise SUM with coeffs, PROD, MAX; Power; PReLU (per channel and shared)", async () => {
    const body = `
layer { name: "e1" type: "Eltwise" bottom: "data" bottom: "p" bottom: "data" top: "sum" eltwise_param { operation: SUM coeff: 0.5 coeff: -1 coeff: 2 } }
layer { name: "pw" type: "Power" bottom: "data" top: "p" power_param { power: 2 scale: 0.5 shift: 1.5 } }
layer { name: "e2" type: "Eltwise" bottom: "data" bottom: "p" top: "prod" eltwise_param { operation: PROD } }
layer { name: "e3" type: "Eltwise" bottom: "data" bottom: "p" top: "max" eltwise_param { operation: MAX } }
layer { name: "pr" type: "PReLU" bottom: "data" top: "pr" }
layer { name: "prs" type: "PReLU" bottom: "data" top: "prs" prelu_param { channel_shared: true } }`;
    // layers run in file order in Caffe: e1 reads "p" before Power writes it, so move Power first
    const text = body.split("\n").filter(Boolean);
    const ordered = [text[1]!, text[0]!, ...text.slice(2)].join("\n");
    const g = net([1, 2, 2, 2], ordered, [
      { name: "pr", blobs: [{ shape: [2], data: [0.1, 0.3] }] },
      { name: "prs", blobs: [{ shape: [1], data: [0.2] }] },
    ]);
    const x = randn([1, 2, 2, 2], 9);
    const xd = x.toFloat32();
    const p = Array.from(xd, (v) => (1.5 + 0.5 * v) ** 2);
    await expectBoth(g, x, {
      sum: { shape: [1, 2, 2, 2], data: Array.from(xd, (v, i) => 0.5 * v - p[i]! + 2 * v) },
      prod: { shape: [1, 2, 2, 2], data: Array.from(xd, (v, i) => v * p[i]!) },
      max: { shape: [1, 2, 2, 2], data: Array.from(xd, (v, i) => Math.max(v, p[i]!)) },
      pr: { shape: [1, 2, 2, 2], data: Array.from(xd, (v, i) => (v > 0 ? v : v * (i < 4 ? 0.1 : 0.3))) },
      prs: { shape: [1, 2, 2, 2], data: Array.from(xd, (v) => (v > 0 ? v : v * 0.2)) },
    });
  });

  it("LRN across and within channels", async () => {
    const shape = [1, 5, 4, 4];
    const g = net(shape, `
layer { name: "a" type: "LRN" bottom: "data" top: "a" lrn_param { local_size: 3 alpha: 0.5 beta: 0.75 k: 2 } }
layer { name: "w" type: "LRN" bottom: "data" top: "w" lrn_param { local_size: 3 alpha: 0.5 beta: 0.75 norm_region: WITHIN_CHANNEL } }`);
    const x = randn(shape, 4);
    const xd = x.toFloat32();
    const at = (c: number, h: number, w: number) => (c < 0 || c >= 5 || h < 0 || h >= 4 || w < 0 || w >= 4 ? 0 : xd[(c * 4 + h) * 4 + w]!);
    const a = new Float32Array(xd.length), w = new Float32Array(xd.length);
    for (let c = 0; c < 5; c++) for (let h = 0; h < 4; h++) for (let q = 0; q < 4; q++) {
      let s = 0;
      for (let d = -1; d <= 1; d++) s += at(c + d, h, q) ** 2;
      a[(c * 4 + h) * 4 + q] = at(c, h, q) / (2 + (0.5 / 3) * s) ** 0.75;
      let s2 = 0;
      for (let dh = -1; dh <= 1; dh++) for (let dw = -1; dw <= 1; dw++) s2 += at(c, h + dh, q + dw) ** 2;
      w[(c * 4 + h) * 4 + q] = at(c, h, q) * (1 + (0.5 * s2) / 9) ** -0.75;
    }
    await expectBoth(g, x, { a: { shape, data: a }, w: { shape, data: w } });
  });
});

describe("shape layers", () => {
  it("Slice (slice_point, equal split), Split, Concat (concat_dim), Crop, Reshape (0, -1, axis/num_axes), Flatten, Permute, Softmax, Dropout", async () => {
    const shape = [2, 6, 4, 5];
    const g = net(shape, `
layer { name: "sl" type: "Slice" bottom: "data" top: "s1" top: "s2" top: "s3" slice_param { axis: 1 slice_point: 1 slice_point: 4 } }
layer { name: "eq" type: "Slice" bottom: "data" top: "e1" top: "e2" slice_param { slice_dim: 1 } }
layer { name: "sp" type: "Split" bottom: "s3" top: "s3a" top: "s3b" }
layer { name: "cat" type: "Concat" bottom: "s3a" bottom: "s1" bottom: "s3b" top: "cat" concat_param { concat_dim: 1 } }
layer { name: "ref" type: "Pooling" bottom: "e1" top: "ref" pooling_param { pool: MAX kernel_size: 2 stride: 2 } }
layer { name: "crop" type: "Crop" bottom: "cat" bottom: "ref" top: "crop" crop_param { axis: 1 offset: 1 offset: 1 offset: 2 } }
layer { name: "rs" type: "Reshape" bottom: "s2" top: "rs" reshape_param { shape { dim: 0 dim: -1 dim: 10 } } }
layer { name: "rs2" type: "Reshape" bottom: "e2" top: "rs2" reshape_param { axis: 2 num_axes: 1 shape { dim: 2 dim: 2 } } }
layer { name: "fl" type: "Flatten" bottom: "rs2" top: "fl" flatten_param { axis: 2 } }
layer { name: "pm" type: "Permute" bottom: "crop" top: "pm" permute_param { order: 0 order: 2 order: 3 } }
layer { name: "sm" type: "Softmax" bottom: "crop" top: "sm" softmax_param { axis: -1 } }
layer { name: "drop" type: "Dropout" bottom: "pm" top: "pm" dropout_param { dropout_ratio: 0.3 } }`);
    expect(g.outputs.map((o) => [o.name, o.shape])).toEqual([["rs", [2, 6, 10]], ["fl", [2, 3, 20]], ["sm", [2, 3, 2, 3]], ["pm", [2, 2, 3, 3]]]);
    const x = randn(shape, 2);
    const xd = x.toFloat32();
    const X = (n: number, c: number, h: number, w: number) => xd[((n * 6 + c) * 4 + h) * 5 + w]!;
    const ch = [4, 5, 0, 4, 5];
    const crop = (n: number, c: number, h: number, w: number) => X(n, ch[c + 1]!, h + 1, w + 2);
    const rs: number[] = [], fl: number[] = [], pm: number[] = [], sm: number[] = [];
    for (let n = 0; n < 2; n++) {
      for (let c = 1; c < 4; c++) for (let h = 0; h < 4; h++) for (let w = 0; w < 5; w++) rs.push(X(n, c, h, w));
      for (let c = 3; c < 6; c++) for (let h = 0; h < 4; h++) for (let w = 0; w < 5; w++) fl.push(X(n, c, h, w));
      for (let h = 0; h < 2; h++) for (let w = 0; w < 3; w++) for (let c = 0; c < 3; c++) pm.push(crop(n, c, h, w));
      for (let c = 0; c < 3; c++) for (let h = 0; h < 2; h++) {
        const row = [0, 1, 2].map((w) => Math.exp(crop(n, c, h, w)));
        const s = row.reduce((a, b) => a + b, 0);
        for (const v of row) sm.push(v / s);
      }
    }
    await expectBoth(g, x, {
      rs: { shape: [2, 6, 10], data: rs }, fl: { shape: [2, 3, 20], data: fl },
      pm: { shape: [2, 2, 3, 3], data: pm }, sm: { shape: [2, 3, 2, 3], data: sm },
    });
  });
});

describe("weighted layers", () => {
  it("InnerProduct with axis 2 and with transpose; Scale with axis 0/num_axes 2 and with 2 bottoms", async () => {
    const wt = Array.from({ length: 36 }, (_, i) => (i % 5) - 2);
    const g = net([2, 3, 4], `
layer { name: "ip" type: "InnerProduct" bottom: "data" top: "ip" inner_product_param { num_output: 2 axis: 2 } }
layer { name: "ipt" type: "InnerProduct" bottom: "data" top: "ipt" inner_product_param { num_output: 3 transpose: true bias_term: false } }
layer { name: "s" type: "Scale" bottom: "data" top: "s" scale_param { axis: 0 num_axes: 2 } }
layer { name: "s2" type: "Scale" bottom: "ip" bottom: "ipt" top: "s2" scale_param { axis: 0 } }`, [
      { name: "ip", blobs: [{ shape: [2, 4], data: [1, 2, 3, 4, -1, 0, 1, 0.5] }, { shape: [2], data: [0.5, -0.5] }] },
      { name: "ipt", blobs: [{ shape: [12, 3], data: wt }] },
      { name: "s", blobs: [{ shape: [2, 3], data: [1, 2, 3, 4, 5, 6] }] },
    ]);
    expect(g.outputs.map((o) => [o.name, o.shape])).toEqual([["s", [2, 3, 4]], ["s2", [2, 3, 2]]]);
    const x = randn([2, 3, 4], 8);
    const xd = x.toFloat32();
    const X = (n: number, c: number, k: number) => xd[(n * 3 + c) * 4 + k]!;
    const W1 = [[1, 2, 3, 4], [-1, 0, 1, 0.5]], b1 = [0.5, -0.5];
    const ip: number[] = [], ipt: number[] = [], sc: number[] = [], s2: number[] = [];
    for (let n = 0; n < 2; n++) for (let c = 0; c < 3; c++) for (let o = 0; o < 2; o++) ip.push(b1[o]! + [0, 1, 2, 3].reduce((a, k) => a + W1[o]![k]! * X(n, c, k), 0));
    for (let n = 0; n < 2; n++) for (let o = 0; o < 3; o++) {
      let a = 0;
      for (let k = 0; k < 12; k++) a += wt[k * 3 + o]! * xd[n * 12 + k]!;
      ipt.push(a);
    }
    for (let n = 0; n < 2; n++) for (let c = 0; c < 3; c++) for (let k = 0; k < 4; k++) sc.push(X(n, c, k) * (n * 3 + c + 1));
    for (let n = 0; n < 2; n++) for (let c = 0; c < 3; c++) for (let o = 0; o < 2; o++) s2.push(ip[(n * 3 + c) * 2 + o]! * ipt[n * 3 + c]!);
    await expectBoth(g, x, { s: { shape: [2, 3, 4], data: sc }, s2: { shape: [2, 3, 2], data: s2 } });
    expect(() => net([2, 3, 4], `layer { name: "bad" type: "Scale" bottom: "data" bottom: "data" top: "y" }`)).toThrow(/layer 'bad' \(Scale\).*does not match/);
  });

  it("Deconvolution (groups, stride, pad) follows Caffe's output size and weight layout", async () => {
    const shape = [1, 4, 3, 3];
    const g = net(shape, `layer { name: "up" type: "Deconvolution" bottom: "data" top: "up"
  convolution_param { num_output: 6 group: 2 kernel_size: 3 stride: 2 pad: 1 bias_term: true } }`, [
      { name: "up", blobs: [{ shape: [4, 3, 3, 3], data: randn([4, 3, 3, 3], 21).toFloat32() }, { shape: [6], data: [1, 2, 3, 4, 5, 6] }] },
    ]);
    const OH = 2 * (3 - 1) + 3 - 2; // s(H-1) + k - 2p = 5
    expect(g.outputs[0]!.shape).toEqual([1, 6, OH, OH]);
    const x = randn(shape, 22);
    const xd = x.toFloat32(), wd = randn([4, 3, 3, 3], 21).toFloat32();
    const y = new Float64Array(6 * OH * OH);
    for (let o = 0; o < 6; o++) for (let i = 0; i < OH * OH; i++) y[o * OH * OH + i] = o + 1;
    for (let c = 0; c < 4; c++) {
      const grp = c >> 1;
      for (let m = 0; m < 3; m++) {
        const o = grp * 3 + m;
        for (let h = 0; h < 3; h++) for (let w = 0; w < 3; w++) for (let kh = 0; kh < 3; kh++) for (let kw = 0; kw < 3; kw++) {
          const oh = h * 2 - 1 + kh, ow = w * 2 - 1 + kw;
          if (oh < 0 || ow < 0 || oh >= OH || ow >= OH) continue;
          y[(o * OH + oh) * OH + ow]! += xd[(c * 3 + h) * 3 + w]! * wd[((c * 3 + m) * 3 + kh) * 3 + kw]!;
        }
      }
    }
    await expectBoth(g, x, { up: { shape: [1, 6, OH, OH], data: y } });
  });

  it("Interp (bilinear, align corners; zoom_factor and height/width) and Upsample (nearest); Sigmoid, TanH", async () => {
    const shape = [1, 2, 3, 4];
    const g = net(shape, `
layer { name: "iz" type: "Interp" bottom: "data" top: "iz" interp_param { zoom_factor: 2 } }
layer { name: "ihw" type: "Interp" bottom: "data" top: "ihw" interp_param { height: 4 width: 7 } }
layer { name: "us" type: "Upsample" bottom: "data" top: "us" upsample_param { scale: 2 } }
layer { name: "sg" type: "Sigmoid" bottom: "data" top: "sg" }
layer { name: "th" type: "TanH" bottom: "data" top: "th" }`);
    const x = randn(shape, 31);
    const xd = x.toFloat32();
    const X = (c: number, h: number, w: number) => xd[(c * 3 + h) * 4 + w]!;
    const bil = (OH: number, OW: number) => {
      const out: number[] = [];
      for (let c = 0; c < 2; c++) for (let oh = 0; oh < OH; oh++) for (let ow = 0; ow < OW; ow++) {
        const sh = (oh * 2) / (OH - 1), sw = (ow * 3) / (OW - 1);
        const h0 = Math.min(Math.floor(sh), 1), w0 = Math.min(Math.floor(sw), 2);
        const dh = sh - h0, dw = sw - w0;
        out.push(X(c, h0, w0) * (1 - dh) * (1 - dw) + X(c, h0 + 1, w0) * dh * (1 - dw) + X(c, h0, w0 + 1) * (1 - dh) * dw + X(c, h0 + 1, w0 + 1) * dh * dw);
      }
      return out;
    };
    const us: number[] = [];
    for (let c = 0; c < 2; c++) for (let h = 0; h < 6; h++) for (let w = 0; w < 8; w++) us.push(X(c, h >> 1, w >> 1));
    await expectBoth(g, x, {
      iz: { shape: [1, 2, 5, 7], data: bil(5, 7) },
      ihw: { shape: [1, 2, 4, 7], data: bil(4, 7) },
      us: { shape: [1, 2, 6, 8], data: us },
      sg: { shape, data: Array.from(xd, (v) => 1 / (1 + Math.exp(-v))) },
      th: { shape, data: Array.from(xd, Math.tanh) },
    });
  });
});
