/**
 * Threshold tuning after calibration: TPU-MLIR's `SimpleTuner` (run_calibration with tune_num > 0).
 *
 * Ops are visited in graph order. For every op E that reads at least one calibrated value, each
 * calibrated input T not tuned yet (or, when all are, the first one) gets candidate thresholds
 * th_i = th_T + i·(absmax_T − th_T)/steps, i = 0..steps (only when absmax_T − th_T > 0.01), and the
 * candidate with the lowest distance
 *
 *     distance(th) = mean over tune samples of ‖y_fp − y_q‖₂ / ‖y_fp‖₁
 *
 * wins, where y_fp is E's fp32 output in the float model and y_q is E evaluated on its fp32
 * reference inputs with T fake-quantized at th (q = clip(round(x·127/th), −128, 127)·th/127) and
 * with its weights fake-quantized. A threshold only ever increases: final = max(previous, best).
 *
 * Which ops are evaluated: TPU-MLIR's tuner walks every tensor of the top-level MLIR (all op types,
 * `top.Input` excepted) and invokes the op on its own (`invoke_at`), so any op with a calibrated
 * input is an evaluated op here too (Conv, Gemm, MatMul, Add, Mul, Concat, pooling, Relu, Reshape,
 * ...). Ops with subgraphs (If/Loop/Scan) and ops whose first output is not float32 are skipped;
 * an op ONNX Runtime cannot run on its own is skipped with a log line. `opTypes` restricts the set.
 *
 * Weights: the constant weight operand of Conv / ConvTranspose / Gemm / MatMul is fake-quantized
 * once per op, per output channel, symmetric int8 (127 levels, threshold = channel abs-max); bias
 * and other constants stay float (TPU-MLIR keeps bias in int32, i.e. practically exact).
 *
 * Deliberate differences from the TPU-MLIR source (the spec's semantics are followed):
 * - TPU-MLIR keeps the last candidate whose distance beat the *previous candidate's* (not the best
 *   so far) and fake-quantizes *every* input of E with T's candidate; here the lowest distance wins
 *   and only T is fake-quantized (the other inputs are fed in fp32).
 * - TPU-MLIR starts the candidates from the untuned threshold even when T is re-tuned by a later
 *   op; here too (`initial`), and the result is max(current tuned value, best).
 * - Rounding is half away from zero (std::round), numpy's round is half to even; ties are rare.
 *
 * Evaluation runs on ONNX Runtime: one session over the whole model fetches the fp32 reference
 * values of the tune samples once, then one single-node session per evaluated op serves every
 * candidate and sample (candidates differ only in the fed, fake-quantized input).
 */
import { Tensor, type Feeds, type Graph, type Node } from "@q/ir";
import { OrtExecutor } from "@q/ort";
import { prepareForCalibration } from "./collect.js";
import type { CaliEntry } from "./calibrate.js";

export interface TuneOptions {
  /** Candidates per tuned value minus one (`debug_cmd tune_steps=N`; default 21). */
  steps?: number;
  /** Weight bits for the fake-quantized weights (only 8 is supported). */
  weightBits?: 8;
  /** Only evaluate these op types (default: every op type). */
  opTypes?: ReadonlySet<string>;
  /** Smallest absmax − th gap worth tuning (`debug_cmd min_tuned_diff`; default 0.01). */
  minDiff?: number;
  /** Progress / debug lines. */
  log?: (line: string) => void;
}

export interface TuneRecord {
  /** The evaluated op (node name or first output). */
  op: string;
  opType: string;
  /** The tuned value. */
  value: string;
  /** Threshold candidates started from, best candidate, and the value's threshold afterwards. */
  from: number;
  best: number;
  after: number;
  /** Distance at the starting threshold and at the best candidate. */
  distanceFrom: number;
  distanceBest: number;
}

export interface TuneResult {
  /** The entries with tuned thresholds (same order; min/max unchanged). */
  entries: CaliEntry[];
  /** How many entries' thresholds changed. */
  tuned: number;
  /** One record per (evaluated op, tuned value) visit that had candidates. */
  records: TuneRecord[];
  seconds: number;
}

/** Round half away from zero. */
const roundAway = (v: number): number => (v < 0 ? -Math.floor(-v + 0.5) : Math.floor(v + 0.5));

/** Fake-quantize `x` symmetric int8 with threshold `th` (127 levels, clip to [−128, 127]) into `out`. */
export function fakeQuantInto(x: Float32Array, th: number, out: Float32Array): Float32Array {
  const s = 127 / th;
  const inv = th / 127;
  for (let i = 0; i < x.length; i++) {
    let q = roundAway(x[i]! * s);
    if (q > 127) q = 127;
    else if (q < -128) q = -128;
    out[i] = q * inv;
  }
  return out;
}

/**
 * Fake-quantize a weight per channel along `axis` (symmetric, 2^(bits−1)−1 levels, threshold =
 * the channel's abs-max).
 */
export function fakeQuantPerChannel(w: Tensor, axis: number, bits = 8): Tensor {
  const data = w.toFloat32();
  const shape = w.shape;
  const ax = axis < 0 ? axis + shape.length : axis;
  const outer = shape.slice(0, ax).reduce((a, b) => a * b, 1);
  const ch = shape[ax] ?? 1;
  const inner = shape.slice(ax + 1).reduce((a, b) => a * b, 1);
  const qmax = 2 ** (bits - 1) - 1;
  const amax = new Float64Array(ch);
  for (let o = 0; o < outer; o++) {
    for (let c = 0; c < ch; c++) {
      const base = (o * ch + c) * inner;
      for (let k = 0; k < inner; k++) amax[c] = Math.max(amax[c]!, Math.abs(data[base + k]!));
    }
  }
  const out = new Float32Array(data.length);
  for (let o = 0; o < outer; o++) {
    for (let c = 0; c < ch; c++) {
      const th = amax[c]!;
      const base = (o * ch + c) * inner;
      if (th === 0) continue; // all zeros stay zeros
      const s = qmax / th;
      const inv = th / qmax;
      for (let k = 0; k < inner; k++) {
        let q = roundAway(data[base + k]! * s);
        if (q > qmax) q = qmax;
        else if (q < -qmax - 1) q = -qmax - 1;
        out[base + k] = q * inv;
      }
    }
  }
  return new Tensor("float32", [...shape], out);
}

/** The constant weight operand of an op and its output-channel axis, if it has one. */
function weightOperand(n: Node, g: Graph): { name: string; axis: number } | undefined {
  const w = n.inputs[1];
  if (!w || !g.initializers.has(w)) {
    // MatMul may carry its constant as the first operand (W·x): its output channel is axis −2
    if (n.opType === "MatMul" && n.inputs[0] && g.initializers.has(n.inputs[0])) return { name: n.inputs[0], axis: -2 };
    return undefined;
  }
  const rank = g.initializers.get(w)!.shape.length;
  switch (n.opType) {
    case "Conv":
      return { name: w, axis: 0 };
    case "ConvTranspose":
      return { name: w, axis: 1 };
    case "Gemm":
      return { name: w, axis: n.int("transB", 0) ? 0 : 1 };
    case "MatMul":
      return rank >= 2 ? { name: w, axis: -1 } : undefined;
    default:
      return undefined;
  }
}

/** One visit of the tuner: evaluated op and the value whose threshold it tunes. */
interface Visit {
  node: Node;
  target: string;
}

interface Plan {
  work: Graph;
  /** Evaluated ops in graph order with the calibrated values they read. */
  ops: { node: Node; reads: string[] }[];
  visits: Visit[];
}

function plan(g: Graph, entries: CaliEntry[], opTypes?: ReadonlySet<string>): Plan {
  const work = prepareForCalibration(g);
  const calibrated = new Set(entries.map((e) => e.name));
  const isF32 = (v: string) => (work.initializers.get(v)?.dtype ?? work.info(v)?.dtype) === "float32";
  const ops: Plan["ops"] = [];
  const visits: Visit[] = [];
  const tuned = new Set<string>();
  for (const n of work.topoSort()) {
    if (opTypes && !opTypes.has(n.opType)) continue;
    if (n.subgraphs().length) continue;
    const out = n.outputs[0];
    if (!out || !isF32(out)) continue;
    const reads = [...new Set(n.inputs.filter((v) => v && calibrated.has(v) && !work.initializers.has(v)))];
    if (!reads.length) continue;
    ops.push({ node: n, reads });
    const fresh = reads.filter((v) => !tuned.has(v));
    for (const t of fresh.length ? fresh : [reads[0]!]) {
      visits.push({ node: n, target: t });
      tuned.add(t);
    }
  }
  return { work, ops, visits };
}

/** fp32 reference values (inputs and first output of every evaluated op) per tune sample, from one session. */
async function referenceValues(work: Graph, ops: Plan["ops"], samples: Feeds[]): Promise<Map<string, Tensor>[]> {
  const graphInputs = new Set(work.inputs.map((i) => i.name));
  const need = new Set<string>();
  for (const { node } of ops) {
    for (const v of node.inputs) if (v && !work.initializers.has(v)) need.add(v);
    need.add(node.outputs[0]!);
  }
  const fetch = [...need].filter((v) => !graphInputs.has(v));
  if (!fetch.length) return samples.map((feeds) => new Map([...need].filter((v) => feeds[v]).map((v) => [v, feeds[v]!])));
  const ex = await OrtExecutor.create(work, { expose: fetch });
  try {
    const out: Map<string, Tensor>[] = [];
    for (const feeds of samples) {
      const res = await ex.run(feeds, { outputs: fetch });
      const m = new Map<string, Tensor>();
      for (const v of need) {
        const t = graphInputs.has(v) ? feeds[v] : res[v];
        if (t) m.set(v, t);
      }
      out.push(m);
    }
    return out;
  } finally {
    await ex.dispose();
  }
}

/** Evaluates one op on its own (single-node ONNX Runtime session, weights fake-quantized once). */
class OpEvaluator {
  private scratch = new Map<string, Float32Array>();
  private constructor(
    readonly node: Node,
    private readonly ex: OrtExecutor,
    private readonly inputs: string[],
    private readonly output: string,
  ) {}

  static async create(work: Graph, node: Node, weightBits: number): Promise<OpEvaluator> {
    const inputs = [...new Set(node.inputs.filter((v) => v && !work.initializers.has(v)))];
    const output = node.outputs[0]!;
    const sub = work.extract(inputs, [output]);
    const w = weightOperand(node, work);
    if (w) sub.initializers.set(w.name, fakeQuantPerChannel(work.initializers.get(w.name)!, w.axis, weightBits));
    const ex = await OrtExecutor.create(sub, { reuseOutputs: true, optimization: "basic" });
    return new OpEvaluator(node, ex, inputs, output);
  }

  /** Mean ‖y_fp − y_q‖₂ / ‖y_fp‖₁ over the samples with `target` fake-quantized at `th` (th ≤ 0: not quantized). */
  async distance(refs: Map<string, Tensor>[], target: string, th: number): Promise<number> {
    let sum = 0;
    let count = 0;
    for (const ref of refs) {
      const feeds: Feeds = {};
      for (const v of this.inputs) {
        const t = ref.get(v)!;
        if (v === target && th > 0 && t.dtype === "float32") {
          const x = t.data as Float32Array;
          let buf = this.scratch.get(v);
          if (!buf || buf.length !== x.length) this.scratch.set(v, (buf = new Float32Array(x.length)));
          feeds[v] = new Tensor("float32", t.shape, fakeQuantInto(x, th, buf));
        } else feeds[v] = t;
      }
      const yq = (await this.ex.run(feeds))[this.output]!.data as Float32Array;
      const yf = ref.get(this.output)!.toFloat32();
      let d2 = 0;
      let n1 = 0;
      for (let i = 0; i < yf.length; i++) {
        const d = yf[i]! - yq[i]!;
        d2 += d * d;
        n1 += Math.abs(yf[i]!);
      }
      if (n1 > 0) sum += Math.sqrt(d2) / n1;
      count++;
    }
    return count ? sum / count : 0;
  }

  dispose(): Promise<void> {
    return this.ex.dispose();
  }
}

async function gather(samples: Feeds[] | AsyncIterable<Feeds>): Promise<Feeds[]> {
  if (Array.isArray(samples)) return samples;
  const out: Feeds[] = [];
  for await (const s of samples) out.push(s);
  return out;
}

const absmaxOf = (e: CaliEntry): number => Math.max(Math.abs(e.min), Math.abs(e.max));

/**
 * Tune the thresholds of `entries` (from `calibrate()` on the same model) on the tune samples.
 * `g` is the model as given to `calibrate()` (it is prepared the same way here).
 */
export async function tuneThresholds(
  g: Graph,
  entries: CaliEntry[],
  tuneSamples: Feeds[] | AsyncIterable<Feeds>,
  opts: TuneOptions = {},
): Promise<TuneResult> {
  const t0 = performance.now();
  const steps = opts.steps ?? 21;
  const minDiff = opts.minDiff ?? 0.01;
  const bits = opts.weightBits ?? 8;
  const log = opts.log ?? (() => {});
  const out = entries.map((e) => ({ ...e }));
  const byName = new Map(out.map((e) => [e.name, e]));
  const initial = new Map(entries.map((e) => [e.name, e.threshold]));
  const samples = await gather(tuneSamples);
  const records: TuneRecord[] = [];
  if (!samples.length || steps < 1) return { entries: out, tuned: 0, records, seconds: 0 };

  const { work, ops, visits } = plan(g, entries, opts.opTypes);
  // only ops with at least one value that has room to move need evaluating
  const hasRoom = (v: string) => {
    const e = byName.get(v)!;
    return absmaxOf(e) - initial.get(v)! > minDiff;
  };
  const active = visits.filter((v) => hasRoom(v.target));
  const activeNodes = new Set(active.map((v) => v.node));
  if (!active.length) {
    log(`tune: nothing to tune (${visits.length} visits, no value with absmax − th > ${minDiff})`);
    return { entries: out, tuned: 0, records, seconds: (performance.now() - t0) / 1000 };
  }
  const refs = await referenceValues(work, ops.filter((o) => activeNodes.has(o.node)), samples);
  log(`tune: ${samples.length} samples, ${visits.length} visits over ${ops.length} ops, ${active.length} with room to tune`);

  let i = 0;
  while (i < active.length) {
    const node = active[i]!.node;
    const mine: Visit[] = [];
    while (i < active.length && active[i]!.node === node) mine.push(active[i++]!);
    let ev: OpEvaluator;
    try {
      ev = await OpEvaluator.create(work, node, bits);
    } catch (err) {
      log(`tune: skip ${node.label} (${node.opType}): ${err instanceof Error ? err.message.split("\n")[0] : String(err)}`);
      continue;
    }
    try {
      for (const { target } of mine) {
        const e = byName.get(target)!;
        const th0 = initial.get(target)!;
        const step = (absmaxOf(e) - th0) / steps;
        let best = th0;
        let bestD = Infinity;
        let d0 = NaN;
        for (let k = 0; k <= steps; k++) {
          const th = th0 + k * step;
          const d = await ev.distance(refs, target, th);
          if (k === 0) d0 = d;
          if (d < bestD) {
            bestD = d;
            best = th;
          }
        }
        const before = e.threshold;
        if (best > e.threshold) e.threshold = best;
        records.push({ op: node.label, opType: node.opType, value: target, from: th0, best, after: e.threshold, distanceFrom: d0, distanceBest: bestD });
        log(`tune: ${node.opType} ${node.label} <- ${target}: th ${before.toPrecision(6)} -> ${e.threshold.toPrecision(6)} (best ${best.toPrecision(6)}), distance ${d0.toExponential(4)} -> ${bestD.toExponential(4)}`);
      }
    } catch (err) {
      log(`tune: skip ${node.label} (${node.opType}): ${err instanceof Error ? err.message.split("\n")[0] : String(err)}`);
    } finally {
      await ev.dispose();
    }
  }
  const tuned = out.filter((e, k) => e.threshold !== entries[k]!.threshold).length;
  const seconds = (performance.now() - t0) / 1000;
  log(`tune: ${tuned} thresholds changed in ${seconds.toFixed(2)} s`);
  return { entries: out, tuned, records, seconds };
}

/**
 * Distance of every (evaluated op, tuned value) pair the tuner visits, with the thresholds of
 * `entries`: for checking a tuned table against an untuned one (same visits, same samples).
 */
export async function tuneDistances(
  g: Graph,
  entries: CaliEntry[],
  tuneSamples: Feeds[] | AsyncIterable<Feeds>,
  opts: Pick<TuneOptions, "weightBits" | "opTypes"> = {},
): Promise<{ op: string; value: string; distance: number }[]> {
  const samples = await gather(tuneSamples);
  const { work, ops, visits } = plan(g, entries, opts.opTypes);
  const th = new Map(entries.map((e) => [e.name, e.threshold]));
  const refs = await referenceValues(work, ops, samples);
  const out: { op: string; value: string; distance: number }[] = [];
  const evs = new Map<Node, OpEvaluator>();
  try {
    for (const v of visits) {
      let ev = evs.get(v.node);
      if (!ev) {
        try {
          ev = await OpEvaluator.create(work, v.node, opts.weightBits ?? 8);
        } catch {
          continue;
        }
        evs.set(v.node, ev);
      }
      out.push({ op: v.node.label, value: v.target, distance: await ev.distance(refs, v.target, th.get(v.target)!) });
    }
  } finally {
    for (const ev of evs.values()) await ev.dispose();
  }
  return out;
}
