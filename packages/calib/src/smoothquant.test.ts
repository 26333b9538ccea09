import { describe, expect, it } from "vitest";
import { resolve } from "node:path";
import { GraphBuilder, InputMismatchError, Tensor, type Feeds, type Graph } from "@q/ir";
import { OrtExecutor } from "@q/ort";
import { readOnnx } from "@q/frontends-onnx";
import { constRef } from "./equalize.js";
import { channelAbsMax, smoothingFactors, smoothQuant, smoothQuantTargets, weightInputChannelAbsMax } from "./smoothquant.js";
import { HAVE_SHARED, SHARED, SKIP_SHARED_MSG, randomFloats } from "../../../tools/testing/shared-models.js";

const rand = randomFloats;

function relDiff(a: Tensor, b: Tensor): number {
  const x = a.toFloat32();
  const y = b.toFloat32();
  let lo = Infinity, hi = -Infinity, md = 0;
  for (let i = 0; i < x.length; i++) {
    lo = Math.min(lo, x[i]!);
    hi = Math.max(hi, x[i]!);
    md = Math.max(md, Math.abs(x[i]! - y[i]!));
  }
  return md / Math.max(hi - lo, 1e-12);
}

function spread(r: ArrayLike<number>): number {
  let lo = Infinity, hi = 0;
  for (let i = 0; i < r.length; i++) if (r[i]! > 1e-6) { lo = Math.min(lo, r[i]!); hi = Math.max(hi, r[i]!); }
  return hi / lo;
}

async function runOrt(g: Graph, feeds: Feeds, outputs?: string[]): Promise<Record<string, Tensor>> {
  const ex = await OrtExecutor.create(g, outputs ? { expose: outputs } : {});
  try {
    return await ex.run(feeds, outputs ? { outputs: [...g.outputs.map((o) => o.name), ...outputs] } : {});
  } finally {
    await ex.dispose();
  }
}

const C = 8;
/**
 * LN (gamma with outliers on some channels) -> MatMul [C,6] and Gemm(transB) [5,C] (input [8,C]);
 * residual: input [2,4,C], the Gemm reads the LN through a Reshape, and a residual Add reads it too.
 */
function lnGraph(residual: boolean): { g: Graph; ln: string; outs: string[] } {
  const b = new GraphBuilder();
  const x = b.input("x", "float32", residual ? [2, 4, C] : [8, C]);
  const gamma = b.initializer("gamma", Tensor.f32([C], Array.from({ length: C }, (_, j) => (j % 3 === 0 ? 20 : 0.5) * (1 + j / 10))));
  const beta = b.initializer("beta", Tensor.f32([C], rand(C, 2)));
  const ln = b.op1("LayerNormalization", [x, gamma, beta], { axis: -1, epsilon: 1e-5 });
  const m1 = b.op1("MatMul", [ln, b.initializer("w1", Tensor.f32([C, 6], rand(C * 6, 3)))]);
  const m2 = b.op1("Gemm", [residual ? b.op1("Reshape", [ln, b.ints("shp", [8, C])]) : ln, b.initializer("w2", Tensor.f32([5, C], rand(5 * C, 4)))], { transB: 1 });
  const outs = [m1, m2];
  if (residual) outs.push(b.add(ln, x));
  for (const o of outs) b.output(o);
  const g = b.build();
  return { g, ln: g.nodes.find((n) => n.opType === "LayerNormalization")!.outputs[0]!, outs };
}

const samples = (n: number, seed: number, shape: number[]): Feeds[] =>
  Array.from({ length: n }, (_, i) => ({ x: Tensor.f32(shape, [...rand(shape.reduce((a, b) => a * b, 1), seed + i)].map((v) => v * 3)) }));

describe("smoothQuant: factors", () => {
  it("s_j = a_j^α / w_j^(1−α), degenerate channels 1", () => {
    expect(Array.from(smoothingFactors([4, 1, 0, 9], [1, 4, 2, 1e-9], 0.5))).toEqual([2, 0.5, 1, 1]);
    const s = smoothingFactors([8], [2], 0.75); // 8^0.75 / 2^0.25
    expect(s[0]).toBeCloseTo(8 ** 0.75 / 2 ** 0.25, 12);
    expect(Array.from(weightInputChannelAbsMax(Tensor.f32([2, 3], [1, -5, 2, 3, 0, -4])))).toEqual([5, 4]);
    expect(Array.from(weightInputChannelAbsMax(Tensor.f32([2, 3], [1, -5, 2, 3, 0, -4]), true))).toEqual([3, 5, 4]);
  });
});

describe("smoothQuant on a synthetic LayerNormalization -> MatMul graph", () => {
  it("folds s into gamma/beta and the MatMul rows: outputs unchanged, activation channels balanced", async () => {
    const { g, ln, outs } = lnGraph(false);
    const targets = smoothQuantTargets(g);
    expect(targets.map((t) => [t.value, t.kind, t.channels, t.foldIntoNorm])).toEqual([[ln, "LayerNormalization", C, true]]);
    expect(targets[0]!.matmuls.map((m) => m.opType)).toEqual(["MatMul", "Gemm"]);
    const data = samples(3, 10, [8, C]);
    const act = await channelAbsMax(g, [ln], data);
    const a0 = act.get(ln)!.absmaxPerChannel;
    expect(a0).toHaveLength(C);
    const w2t = weightInputChannelAbsMax(g.initializers.get("w2")!, true);
    const w0 = weightInputChannelAbsMax(g.initializers.get("w1")!).map((v, j) => Math.max(v, w2t[j]!));
    const orig = g.clone();
    const r = smoothQuant(g, act);
    expect(r.smoothed).toEqual([targets[0]!.name]);
    expect(g.nodes).toHaveLength(orig.nodes.length);
    // the original graph (tensors shared by clone) is untouched
    expect(orig.initializers.get("gamma")!.toArray()).not.toEqual(g.initializers.get("gamma")!.toArray());
    for (const f of data) {
      const y0 = await runOrt(orig, f);
      const y1 = await runOrt(g, f);
      for (const o of outs) expect(relDiff(y0[o]!, y1[o]!), o).toBeLessThanOrEqual(1e-4);
    }
    const a1 = (await channelAbsMax(g, [ln], data)).get(ln)!.absmaxPerChannel;
    const w2n = weightInputChannelAbsMax(g.initializers.get("w2")!, true);
    const w1 = weightInputChannelAbsMax(g.initializers.get("w1")!).map((v, j) => Math.max(v, w2n[j]!));
    expect(spread(a1)).toBeLessThan(spread(a0) / 2);
    expect(spread(w1)).toBeGreaterThan(spread(w0)); // the weights absorbed the outliers
    // α = 0.5: every channel ends balanced, a_j' = w_j' = sqrt(a_j w_j)
    for (let j = 0; j < C; j++) expect(a1[j]! / w1[j]!).toBeCloseTo(1, 4);
  });

  it("inserts Mul_after_<ln> with <ln>_scaled_weight when the LayerNorm also feeds a residual Add", async () => {
    const { g, ln, outs } = lnGraph(true);
    const [t] = smoothQuantTargets(g);
    expect(t!.foldIntoNorm).toBe(false);
    const data = samples(2, 20, [2, 4, C]);
    const act = await channelAbsMax(g, [ln], data);
    const orig = g.clone();
    expect(smoothQuant(g, act, { alpha: 0.6 }).smoothed).toEqual([t!.name]);
    const mul = g.nodes.find((n) => n.name === `Mul_after_${t!.name}`)!;
    expect(mul.opType).toBe("Mul");
    expect(mul.inputs).toEqual([ln, `${t!.name}_scaled_weight`]);
    // the Gemm reads the LN output through a Reshape (not looked through): only w1 counts
    expect(t!.matmuls.map((m) => m.opType)).toEqual(["MatMul"]);
    const sExp = smoothingFactors(act.get(ln)!.absmaxPerChannel, weightInputChannelAbsMax(orig.initializers.get("w1")!), 0.6);
    expect(g.initializers.get("w2")).toBe(orig.initializers.get("w2"));
    const inv = g.initializers.get(`${t!.name}_scaled_weight`)!.toArray();
    inv.forEach((v, j) => expect(v * sExp[j]!).toBeCloseTo(1, 5));
    expect(g.initializers.get("gamma")).toBe(orig.initializers.get("gamma")); // LN left alone
    const add = g.nodes.find((n) => n.opType === "Add")!;
    expect(add.inputs).toContain(ln);
    for (const f of data) {
      const y0 = await runOrt(orig, f);
      const y1 = await runOrt(g, f, [mul.outputs[0]!]);
      for (const o of outs) expect(relDiff(y0[o]!, y1[o]!), o).toBeLessThanOrEqual(1e-4);
    }
    const a1 = (await channelAbsMax(g, [mul.outputs[0]!], data)).get(mul.outputs[0]!)!.absmaxPerChannel;
    expect(spread(a1)).toBeLessThan(spread(act.get(ln)!.absmaxPerChannel));
  });

  it("rejects statistics with the wrong channel count and bad alpha; skips targets without statistics", () => {
    const { g, ln } = lnGraph(false);
    expect(() => smoothQuant(g, new Map([[ln, { absmaxPerChannel: new Float32Array(3) }]]))).toThrow(InputMismatchError);
    expect(() => smoothQuant(g, new Map(), { alpha: 2 })).toThrow(/alpha/);
    expect(smoothQuant(g, new Map()).smoothed).toEqual([]);
  });
});

describe.skipIf(!HAVE_SHARED)(`smoothQuant on PP-OCRv4 rec (SVTR) (${HAVE_SHARED ? "shared models" : SKIP_SHARED_MSG})`, () => {
  it("smooths the decomposed LayerNorms feeding MatMuls; outputs unchanged, activation ranges balanced", async () => {
    const g0 = await readOnnx(resolve(SHARED, "transformer/ppocrv4-rec-svtr/ch_PP-OCRv4_rec_infer.onnx"));
    expect(g0.nodes.some((n) => n.opType === "LayerNormalization")).toBe(false); // exported decomposed
    const targets = smoothQuantTargets(g0);
    expect(targets.length).toBe(4); // the 5th (final) LayerNorm feeds a Reshape: not looked through
    for (const t of targets) expect(t.kind).toBe("decomposed");
    const data = samples(3, 40, [1, 3, 48, 320]);
    const values = targets.map((t) => t.value);
    const act = await channelAbsMax(g0, values, data);
    const g = g0.clone();
    const lines: string[] = [];
    const r = smoothQuant(g, act, { log: (l) => lines.push(l) });
    expect(r.smoothed).toEqual(targets.map((t) => t.name));
    expect(lines).toHaveLength(4);
    let worst = 0;
    for (const f of data) {
      const y0 = await runOrt(g0, f);
      const y1 = await runOrt(g, f);
      for (const o of g0.outputs) worst = Math.max(worst, relDiff(y0[o.name]!, y1[o.name]!));
    }
    expect(worst).toBeLessThanOrEqual(1e-4);
    const act1 = await channelAbsMax(g, values, data);
    const p0 = g0.producers();
    const p1 = g.producers();
    const report: string[] = [];
    for (const t of targets) {
      const sa0 = spread(act.get(t.value)!.absmaxPerChannel);
      const sa1 = spread(act1.get(t.value)!.absmaxPerChannel);
      const wn = t.matmuls[0]!.inputs[1]!;
      const sw0 = spread(weightInputChannelAbsMax(constRef(g0, wn, p0)!.tensor));
      const sw1 = spread(weightInputChannelAbsMax(constRef(g, wn, p1)!.tensor));
      expect(sa1, t.name).toBeLessThan(sa0);
      report.push(`${t.name}: act spread ${sa0.toFixed(1)} -> ${sa1.toFixed(1)}, weight spread ${sw0.toFixed(1)} -> ${sw1.toFixed(1)}`);
    }
    console.log(`svtr: max output diff / range ${worst.toExponential(2)}\n${report.join("\n")}`);
  });
});
