/**
 * SmoothQuant (TPU-MLIR `--sq`, spec sophgo.md §2.6) as a pure IR transform: migrate activation
 * outliers of a LayerNorm's output into the weights of the MatMul/Gemm ops that read it, with
 * s_j = max|X_j|^α / max|W_j|^(1−α) per input channel j (the last dim).
 *
 * Targets: a `LayerNormalization` over the last axis, or the decomposed pattern exporters emit
 * (ReduceMean → Sub → Pow → ReduceMean → Add(eps) → Sqrt → Div, then Mul(gamma) → Add(beta)): there
 * the final Add(beta) is "the LayerNorm" (its name is the target's name, its output the value to
 * measure) and the Mul(gamma)/Add(beta) constants are what get divided by s. The LayerNorm output
 * must be read by MatMul (constant 2-D weight [C, N], as input A) / Gemm (transA = 0, constant B)
 * ops and otherwise only by Shape. Ops between the LayerNorm and the MatMuls are NOT looked through
 * (no Reshape/Squeeze/Slice/Concat/Transpose): such LayerNorms are left alone.
 * When the output is also read by something else (e.g. a residual Add), or gamma/beta are shared,
 * a `Mul` node `Mul_after_<ln>` with weight `<ln>_scaled_weight` (= 1/s; all ones before the
 * factor is folded in) is inserted in front of the MatMuls instead.
 *
 * Edits the graph in place but never writes into an existing tensor (see equalize.ts): run it on
 * `g.clone()` to keep the original.
 */
import { GraphError, InputMismatchError, Node, Tensor, type Executor, type Feeds, type Graph } from "@q/ir";
import { OrtExecutor } from "@q/ort";
import { constRef, type ConstRef } from "./equalize.js";

export interface SmoothQuantOptions {
  /** Migration strength α in [0, 1] (default 0.5). */
  alpha?: number;
  log?: (line: string) => void;
}

export interface ChannelAbsMax {
  /** max |x| over all samples and all positions, per index of the last dim. */
  absmaxPerChannel: Float32Array;
}

/** One LayerNorm that SmoothQuant can smooth. */
export interface SmoothTarget {
  /** Name used in `smoothed` and for the inserted Mul: the LayerNorm node (or the Add(beta) of a decomposed one). */
  name: string;
  /** The value whose per-channel absmax `smoothQuant` needs (the LayerNorm output). */
  value: string;
  kind: "LayerNormalization" | "decomposed";
  /** Channels (last dim). */
  channels: number;
  /** Reading MatMul/Gemm nodes. */
  matmuls: Node[];
  /** gamma/beta can take s directly (false: a Mul is inserted). */
  foldIntoNorm: boolean;
}

interface TargetInternal extends SmoothTarget {
  node: Node;
  gamma?: ConstRef;
  beta?: ConstRef;
  weights: { ref: ConstRef; transposed: boolean }[];
}

function floatConst(g: Graph, name: string | undefined, prod: Map<string, Node>): ConstRef | undefined {
  if (!name) return undefined;
  const r = constRef(g, name, prod);
  return r && (r.tensor.dtype === "float32" || r.tensor.dtype === "float64") ? r : undefined;
}

/** A per-channel vector constant of the last dim: [C] or [1, …, 1, C]. */
function channelVector(r: ConstRef | undefined): number | undefined {
  if (!r) return undefined;
  const s = r.tensor.shape;
  if (!s.length || s.slice(0, -1).some((d) => d !== 1)) return undefined;
  return s[s.length - 1];
}

function soleReader(g: Graph, cons: Map<string, Node[]>, v: string): boolean {
  return (cons.get(v) ?? []).length === 1 && !g.outputs.some((o) => o.name === v);
}

function findTargets(g: Graph): TargetInternal[] {
  const prod = g.producers();
  const cons = g.consumers();
  const out: TargetInternal[] = [];
  for (const n of g.nodes) {
    if (n.domain !== "") continue;
    let kind: SmoothTarget["kind"];
    let gamma: ConstRef | undefined;
    let beta: ConstRef | undefined;
    let gammaName = "", betaName = "", C: number | undefined;
    if (n.opType === "LayerNormalization") {
      if (n.int("axis", -1) !== -1 || n.outputs.slice(1).some((o) => o)) continue;
      kind = "LayerNormalization";
      gammaName = n.inputs[1] ?? "";
      betaName = n.inputs[2] ?? "";
      gamma = floatConst(g, gammaName, prod);
      beta = betaName ? floatConst(g, betaName, prod) : undefined;
      C = channelVector(gamma);
      if (!gamma || C === undefined || (betaName && channelVector(beta) !== C)) continue;
    } else if (n.opType === "Add") {
      // decomposed: Add(Mul(Div(Sub(x, ReduceMean x), Sqrt(…)), gamma), beta)
      const bi = n.inputs.findIndex((i) => floatConst(g, i, prod));
      if (bi < 0 || n.inputs.length !== 2) continue;
      const mul = prod.get(n.inputs[1 - bi]!);
      if (!mul || mul.opType !== "Mul" || mul.inputs.length !== 2) continue;
      const gi = mul.inputs.findIndex((i) => floatConst(g, i, prod));
      if (gi < 0) continue;
      const div = prod.get(mul.inputs[1 - gi]!);
      const sub = div && div.opType === "Div" ? prod.get(div.inputs[0]!) : undefined;
      const rm = sub && sub.opType === "Sub" ? prod.get(sub.inputs[1]!) : undefined;
      if (!rm || rm.opType !== "ReduceMean" || rm.inputs[0] !== sub!.inputs[0]) continue;
      if (!soleReader(g, cons, mul.outputs[0]!)) continue;
      kind = "decomposed";
      betaName = n.inputs[bi]!;
      gammaName = mul.inputs[gi]!;
      beta = floatConst(g, betaName, prod);
      gamma = floatConst(g, gammaName, prod);
      C = channelVector(gamma);
      if (C === undefined || channelVector(beta) !== C) continue;
    } else continue;

    const value = n.outputs[0]!;
    const readers = cons.get(value) ?? [];
    const matmuls: Node[] = [];
    const weights: TargetInternal["weights"] = [];
    let others = g.outputs.some((o) => o.name === value);
    for (const r of readers) {
      if (r.domain !== "") { others = true; continue; }
      if (r.opType === "Shape") continue; // reads the shape only
      let w: ConstRef | undefined;
      let transposed = false;
      if (r.opType === "MatMul" && r.inputs[0] === value && r.inputs[1] !== value) {
        w = floatConst(g, r.inputs[1], prod);
        if (w && (w.tensor.rank !== 2 || w.tensor.shape[0] !== C)) w = undefined;
      } else if (r.opType === "Gemm" && r.inputs[0] === value && r.int("transA", 0) === 0 && !r.inputs.slice(1).includes(value)) {
        w = floatConst(g, r.inputs[1], prod);
        transposed = r.int("transB", 0) !== 0;
        if (w && (w.tensor.rank !== 2 || w.tensor.shape[transposed ? 1 : 0] !== C)) w = undefined;
      }
      if (w && soleReader(g, cons, r.inputs[1]!)) {
        matmuls.push(r);
        weights.push({ ref: w, transposed });
      } else others = true;
    }
    if (!matmuls.length) continue;
    const own = (nm: string) => !nm || soleReader(g, cons, nm);
    const foldIntoNorm = !others && own(gammaName) && own(betaName);
    const t: TargetInternal = { name: n.label, value, kind, channels: C, matmuls, foldIntoNorm, node: n, weights };
    if (gamma) t.gamma = gamma;
    if (beta) t.beta = beta;
    out.push(t);
  }
  return out;
}

/** The LayerNorms `smoothQuant` would smooth; measure `value` of each with `channelAbsMax`. */
export function smoothQuantTargets(g: Graph): SmoothTarget[] {
  return findTargets(g).map(({ name, value, kind, channels, matmuls, foldIntoNorm }) => ({ name, value, kind, channels, matmuls, foldIntoNorm }));
}

/** max|W_j| per input channel j of a weight [C, N] (or [N, C] when transposed). */
export function weightInputChannelAbsMax(w: Tensor, transposed = false): Float64Array {
  const d = w.data as Float32Array | Float64Array;
  const [R, K] = [w.shape[0]!, w.shape[1]!];
  const C = transposed ? K : R;
  const m = new Float64Array(C);
  for (let r = 0; r < R; r++) {
    for (let k = 0; k < K; k++) {
      const v = Math.abs(d[r * K + k]!);
      const j = transposed ? k : r;
      if (v > m[j]!) m[j] = v;
    }
  }
  return m;
}

/** s_j = a_j^α / w_j^(1−α); degenerate channels (a or w ≤ 1e-8, non-finite) get 1. */
export function smoothingFactors(act: ArrayLike<number>, w: ArrayLike<number>, alpha: number): Float64Array {
  const s = new Float64Array(act.length);
  for (let j = 0; j < s.length; j++) {
    const a = act[j]!, b = w[j]!;
    const v = a > 1e-8 && b > 1e-8 ? a ** alpha / b ** (1 - alpha) : 1;
    s[j] = Number.isFinite(v) && v > 0 ? Math.min(Math.max(v, 1e-5), 1e5) : 1;
  }
  return s;
}

function scaled(t: Tensor, f: (i: number, v: number) => number): Tensor {
  const d = t.data as Float32Array | Float64Array;
  const o = t.dtype === "float64" ? new Float64Array(d.length) : new Float32Array(d.length);
  for (let i = 0; i < d.length; i++) o[i] = f(i, d[i]!);
  return new Tensor(t.dtype === "float64" ? "float64" : "float32", [...t.shape], o);
}

/**
 * Smooth every target LayerNorm (see file comment) whose output has an entry in `act` (keyed by
 * the value name `SmoothTarget.value`; targets without one are skipped). Returns the names of
 * the LayerNorms smoothed.
 */
export function smoothQuant(g: Graph, act: Map<string, ChannelAbsMax>, opts: SmoothQuantOptions = {}): { smoothed: string[] } {
  const alpha = opts.alpha ?? 0.5;
  if (!(alpha >= 0 && alpha <= 1)) throw new GraphError(`smoothQuant: alpha must be in [0, 1], got ${alpha}`);
  const smoothed: string[] = [];
  for (const t of findTargets(g)) {
    const a = act.get(t.value)?.absmaxPerChannel;
    if (!a) continue;
    if (a.length !== t.channels) {
      throw new InputMismatchError(`smoothQuant: activation statistics of '${t.value}' have ${a.length} channels, the LayerNorm '${t.name}' has ${t.channels}`);
    }
    const wmax = new Float64Array(t.channels);
    for (const w of t.weights) {
      const m = weightInputChannelAbsMax(w.ref.tensor, w.transposed);
      for (let j = 0; j < m.length; j++) if (m[j]! > wmax[j]!) wmax[j] = m[j]!;
    }
    const s = smoothingFactors(a, wmax, alpha);
    const C = t.channels;
    if (t.foldIntoNorm) {
      t.gamma!.set(scaled(t.gamma!.tensor, (i, v) => v / s[i % C]!));
      if (t.beta) t.beta.set(scaled(t.beta.tensor, (i, v) => v / s[i % C]!));
    } else {
      const wName = g.uniqueName(`${t.name}_scaled_weight`);
      const ones = Tensor.f32([C], new Float32Array(C).fill(1)); // "<ln>_scaled_weight", then s folded in
      g.initializers.set(wName, scaled(ones, (i, v) => v / s[i]!));
      const outName = g.uniqueName(`${t.value}_smoothed`);
      const mul = new Node({ name: `Mul_after_${t.name}`, opType: "Mul", inputs: [t.value, wName], outputs: [outName] });
      g.insertNode(mul, t.node);
      for (const m of t.matmuls) m.inputs[0] = outName;
      const vi = g.valueInfo.get(t.value);
      if (vi) g.valueInfo.set(outName, { ...vi, name: outName });
    }
    for (const w of t.weights) {
      const K = w.ref.tensor.shape[1]!;
      w.ref.set(scaled(w.ref.tensor, (i, v) => v * s[w.transposed ? i % K : Math.floor(i / K)]!));
    }
    smoothed.push(t.name);
    opts.log?.(`smoothquant: ${t.name} (${t.kind}, ${C} channels) -> ${t.matmuls.map((m) => m.label).join(", ")}${t.foldIntoNorm ? "" : ` via Mul_after_${t.name}`}`);
  }
  return { smoothed };
}

/**
 * Per-channel (last dim) max |x| of `values` over every sample, with one executor run per sample.
 * Without `executor`, one ONNX Runtime session exposing `values` is created and released.
 */
export async function channelAbsMax(g: Graph, values: string[], samples: AsyncIterable<Feeds> | Iterable<Feeds>, executor?: Executor): Promise<Map<string, ChannelAbsMax>> {
  const out = new Map<string, ChannelAbsMax>();
  if (!values.length) return out;
  const ex = executor ?? (await OrtExecutor.create(g, { expose: values }));
  try {
    for await (const feeds of samples) {
      const res = await ex.run(feeds, { outputs: values });
      for (const v of values) {
        const t = res[v];
        if (!t || t.rank === 0) throw new InputMismatchError(`channelAbsMax: no tensor value for '${v}'`);
        const C = t.shape[t.rank - 1]!;
        let e = out.get(v);
        if (!e) out.set(v, (e = { absmaxPerChannel: new Float32Array(C) }));
        const m = e.absmaxPerChannel;
        if (m.length !== C) throw new InputMismatchError(`channelAbsMax: '${v}' has last dim ${C} in one sample and ${m.length} in another`);
        const d = t.toFloat32();
        for (let i = 0; i < d.length; i++) {
          const x = Math.abs(d[i]!);
          const j = i % C;
          if (x > m[j]!) m[j] = x;
        }
      }
    }
  } finally {
    if (!executor) await ex.dispose();
  }
  return out;
}
