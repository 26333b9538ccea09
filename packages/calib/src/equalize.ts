/**
 * Weight equalization (TPU-MLIR `--we`, spec sophgo.md §2.7) and BatchNormalization folding, as
 * pure IR transforms. Both edit the graph they are given IN PLACE (nodes, attributes and the
 * initializer map) but never write into an existing tensor's data: changed weights are new Tensor
 * objects. So `g.clone()` (which shares tensors) followed by a transform leaves the original graph
 * untouched — pass a clone when the float model must stay as it was.
 */
import { GraphError, Tensor, type Graph, type Node } from "@q/ir";

/**
 * A constant value: an initializer or the `value` of a Constant node, with a way to replace it
 * (`set` also updates `tensor`).
 */
export interface ConstRef {
  /** The current value (read live, so two refs to one constant never go stale). */
  readonly tensor: Tensor;
  set(t: Tensor): void;
}

function ref(get: () => Tensor, set: (t: Tensor) => void): ConstRef {
  return {
    get tensor() {
      return get();
    },
    set,
  };
}

/**
 * The constant behind value `name` (initializer, or output of a Constant node with a tensor
 * `value`), or undefined when it is computed at run time.
 */
export function constRef(g: Graph, name: string, producers?: Map<string, Node>): ConstRef | undefined {
  if (!name) return undefined;
  const init = g.initializers.get(name);
  if (init) return ref(() => g.initializers.get(name)!, (t) => void g.initializers.set(name, t));
  const p = (producers ?? g.producers()).get(name);
  if (p && p.opType === "Constant" && p.domain === "" && p.attrs.get("value")?.type === "tensor") {
    return ref(() => p.tensor("value")!, (t) => void p.setTensor("value", t));
  }
  return undefined;
}

/** A float constant read only by one node (safe to rewrite without affecting anyone else). */
function ownConst(g: Graph, name: string | undefined, prod: Map<string, Node>, cons: Map<string, Node[]>): ConstRef | undefined {
  if (!name) return undefined;
  const r = constRef(g, name, prod);
  if (!r || (r.tensor.dtype !== "float32" && r.tensor.dtype !== "float64")) return undefined;
  if ((cons.get(name) ?? []).length !== 1) return undefined;
  if (g.outputs.some((o) => o.name === name)) return undefined;
  return r;
}

function f64(t: Tensor): Float64Array {
  return Float64Array.from(t.data as Float32Array | Float64Array);
}

function makeLike(t: Tensor, values: Float64Array, shape: readonly number[] = t.shape): Tensor {
  if (t.dtype === "float64") return new Tensor("float64", [...shape], Float64Array.from(values));
  return new Tensor("float32", [...shape], Float32Array.from(values));
}

function isGraphOutput(g: Graph, name: string): boolean {
  return g.outputs.some((o) => o.name === name);
}

// ---------------------------------------------------------------------------------------------
// BatchNormalization folding

/**
 * Fold every inference-mode BatchNormalization that directly follows a Conv into that Conv's
 * weight and bias: W'[o] = W[o]·k[o], b'[o] = (b[o] − mean[o])·k[o] + beta[o] with
 * k = gamma/√(var+eps). The Conv then writes the BN's output value and the BN node is removed.
 * Skipped (left as is): a Conv output read by anything else or that is a graph output, a BN with
 * training outputs or `spatial=0`, non-constant or shared weights/parameters. In place (see file
 * comment). Returns the names of the BN nodes folded.
 */
export function foldBatchNorm(g: Graph): { folded: string[] } {
  const folded: string[] = [];
  const prod = g.producers();
  const cons = g.consumers();
  for (const bn of [...g.nodes]) {
    if (bn.opType !== "BatchNormalization" || bn.domain !== "") continue;
    if (bn.outputs.slice(1).some((o) => o !== "") || bn.int("training_mode", 0) !== 0 || bn.int("spatial", 1) !== 1) continue;
    const x = bn.inputs[0]!;
    const conv = prod.get(x);
    if (!conv || conv.opType !== "Conv" || conv.domain !== "" || conv.outputs[0] !== x) continue;
    if ((cons.get(x) ?? []).length !== 1 || isGraphOutput(g, x)) continue;
    const w = ownConst(g, conv.inputs[1], prod, cons);
    if (!w || w.tensor.rank < 3) continue;
    const bRef = conv.inputs[2] ? ownConst(g, conv.inputs[2], prod, cons) : undefined;
    if (conv.inputs[2] && !bRef) continue;
    const params = [1, 2, 3, 4].map((i) => constRef(g, bn.inputs[i] ?? "", prod));
    if (params.some((p) => !p || p.tensor.dtype === "string")) continue;
    const [gamma, beta, mean, vari] = params.map((p) => p!.tensor.toNumbers());
    const O = w.tensor.shape[0]!;
    if ([gamma, beta, mean, vari].some((a) => a!.length !== O && a!.length !== 1)) continue;
    const at = (a: Float64Array, o: number) => (a.length === 1 ? a[0]! : a[o]!);
    const eps = bn.float("epsilon", 1e-5);
    const W = f64(w.tensor);
    const inner = W.length / O;
    const b = bRef ? f64(bRef.tensor) : new Float64Array(O);
    if (b.length !== O) continue;
    const nb = new Float64Array(O);
    for (let o = 0; o < O; o++) {
      const k = at(gamma!, o) / Math.sqrt(at(vari!, o) + eps);
      for (let p = o * inner, e = p + inner; p < e; p++) W[p] = W[p]! * k;
      nb[o] = (b[o]! - at(mean!, o)) * k + at(beta!, o);
    }
    w.set(makeLike(w.tensor, W));
    if (bRef) bRef.set(makeLike(bRef.tensor, nb, [O]));
    else {
      const bn_ = g.uniqueName(`${conv.name || conv.outputs[0]}_bias`);
      g.initializers.set(bn_, makeLike(w.tensor, nb, [O]));
      conv.inputs[2] = bn_;
    }
    conv.outputs[0] = bn.outputs[0]!;
    g.valueInfo.delete(x);
    g.removeNode(bn);
    prod.set(bn.outputs[0]!, conv);
    folded.push(bn.label);
  }
  return { folded };
}

// ---------------------------------------------------------------------------------------------
// Weight equalization

export interface WeightEqualizationOptions {
  /** Stop when ‖ΔW1‖+‖ΔW2‖ (Frobenius) of every pair in a sweep is below this (default 1e-4). */
  tol?: number;
  /** Most sweeps over all pairs (default 100). */
  maxIter?: number;
  log?: (line: string) => void;
}

export interface EqualizedPair {
  /** Name (label) of the first Conv, whose output channels are scaled down by s. */
  first: string;
  /** Name (label) of the second Conv, whose input channels are scaled up by s. */
  second: string;
  /** Sweeps that changed this pair's weights by ‖ΔW1‖+‖ΔW2‖ ≥ tol (0: already balanced). */
  iterations: number;
}

/** Activations between the two Convs that commute with a positive per-channel scale. */
const POS_HOMOGENEOUS = new Set(["Relu", "PRelu", "LeakyRelu"]);

interface Pair {
  c1: Node;
  c2: Node;
  w1: ConstRef;
  b1?: ConstRef;
  w2: ConstRef;
}

/** Conv pairs eligible for equalization (see weightEqualization). */
export function equalizationPairs(g: Graph): { first: Node; second: Node }[] {
  return findPairs(g).map((p) => ({ first: p.c1, second: p.c2 }));
}

function onlyConsumer(g: Graph, cons: Map<string, Node[]>, v: string): Node | undefined {
  const l = cons.get(v) ?? [];
  if (l.length !== 1 || isGraphOutput(g, v)) return undefined;
  return l[0];
}

function findPairs(g: Graph): Pair[] {
  const prod = g.producers();
  const cons = g.consumers();
  const pairs: Pair[] = [];
  for (const c1 of g.nodes) {
    if (c1.opType !== "Conv" || c1.domain !== "") continue;
    let next = onlyConsumer(g, cons, c1.outputs[0]!);
    let via = c1.outputs[0]!;
    if (next && next.domain === "" && POS_HOMOGENEOUS.has(next.opType) && next.inputs[0] === via) {
      if (next.opType === "PRelu" && !constRef(g, next.inputs[1] ?? "", prod)) next = undefined; // slope must be fixed
      else {
        via = next.outputs[0]!;
        next = onlyConsumer(g, cons, via);
      }
    }
    const c2 = next;
    if (!c2 || c2.opType !== "Conv" || c2.domain !== "" || c2.inputs[0] !== via || c2.inputs.slice(1).includes(via)) continue;
    const w1 = ownConst(g, c1.inputs[1], prod, cons);
    const w2 = ownConst(g, c2.inputs[1], prod, cons);
    if (!w1 || !w2 || w1.tensor.rank < 3 || w2.tensor.rank < 3) continue;
    const b1 = c1.inputs[2] ? ownConst(g, c1.inputs[2], prod, cons) : undefined;
    if (c1.inputs[2] && !b1) continue;
    const C = w1.tensor.shape[0]!;
    const g2 = c2.int("group", 1);
    if (g2 < 1 || C % g2 !== 0 || w2.tensor.shape[1]! * g2 !== C || w2.tensor.shape[0]! % g2 !== 0) continue;
    pairs.push(b1 ? { c1, c2, w1, w2, b1 } : { c1, c2, w1, w2 });
  }
  return pairs;
}

/** r1[i] = max|W1[i,…]| over the output channels i of the first conv. */
export function outputChannelRanges(w1: Tensor): Float64Array {
  const C = w1.shape[0]!;
  const d = w1.data as Float32Array | Float64Array;
  const inner = d.length / C;
  const r = new Float64Array(C);
  for (let c = 0; c < C; c++) {
    let m = 0;
    for (let p = c * inner, e = p + inner; p < e; p++) {
      const v = Math.abs(d[p]!);
      if (v > m) m = v;
    }
    r[c] = m;
  }
  return r;
}

/**
 * r2[i] = max|W2[o, i mod Cg, …]| over the output channels o of the group that reads input
 * channel i (W2 is [O, C/group, k…]; for a depthwise conv each channel maps to its own outputs).
 */
export function inputChannelRanges(w2: Tensor, group: number): Float64Array {
  const [O, Cg] = [w2.shape[0]!, w2.shape[1]!];
  const k = w2.size / (O * Cg);
  const Og = O / group;
  const d = w2.data as Float32Array | Float64Array;
  const r = new Float64Array(Cg * group);
  for (let o = 0; o < O; o++) {
    const base = Math.floor(o / Og) * Cg;
    for (let li = 0; li < Cg; li++) {
      let m = r[base + li]!;
      for (let p = (o * Cg + li) * k, e = p + k; p < e; p++) {
        const v = Math.abs(d[p]!);
        if (v > m) m = v;
      }
      r[base + li] = m;
    }
  }
  return r;
}

/** s = r1/√(r1·r2) with ranges < 1e-6 taken as 0 and inf/nan → 1 (TPU-MLIR's formula). */
export function equalizationScales(r1: Float64Array, r2: Float64Array): Float64Array {
  const s = new Float64Array(r1.length);
  for (let i = 0; i < s.length; i++) {
    const a = r1[i]! < 1e-6 ? 0 : r1[i]!;
    const b = r2[i]! < 1e-6 ? 0 : r2[i]!;
    const v = a / Math.sqrt(a * b);
    s[i] = Number.isFinite(v) && v > 0 ? v : 1;
  }
  return s;
}

/** One equalization step on a pair; returns ‖ΔW1‖+‖ΔW2‖. */
function step(p: Pair): number {
  const g2 = p.c2.int("group", 1);
  const W1 = p.w1.tensor;
  const W2 = p.w2.tensor;
  const s = equalizationScales(outputChannelRanges(W1), inputChannelRanges(W2, g2));
  const C = W1.shape[0]!;
  const d1 = f64(W1);
  const inner1 = d1.length / C;
  let n1 = 0;
  for (let c = 0; c < C; c++) {
    const sc = s[c]!;
    for (let q = c * inner1, e = q + inner1; q < e; q++) {
      const v = d1[q]! / sc;
      n1 += (v - d1[q]!) ** 2;
      d1[q] = v;
    }
  }
  const [O, Cg] = [W2.shape[0]!, W2.shape[1]!];
  const k = W2.size / (O * Cg);
  const Og = O / g2;
  const d2 = f64(W2);
  let n2 = 0;
  for (let o = 0; o < O; o++) {
    const base = Math.floor(o / Og) * Cg;
    for (let li = 0; li < Cg; li++) {
      const sc = s[base + li]!;
      for (let q = (o * Cg + li) * k, e = q + k; q < e; q++) {
        const v = d2[q]! * sc;
        n2 += (v - d2[q]!) ** 2;
        d2[q] = v;
      }
    }
  }
  p.w1.set(makeLike(W1, d1));
  p.w2.set(makeLike(W2, d2));
  if (p.b1) {
    const b = f64(p.b1.tensor);
    if (b.length === C) {
      for (let c = 0; c < C; c++) b[c] = b[c]! / s[c]!;
      p.b1.set(makeLike(p.b1.tensor, b));
    }
  }
  return Math.sqrt(n1) + Math.sqrt(n2);
}

/**
 * TPU-MLIR's `--we`: for each Conv whose output is read only by one Conv (directly, or through
 * one Relu / PRelu (constant slope) / LeakyRelu, which commute with positive per-channel
 * scaling), balance the per-channel weight ranges: per input channel i of the second conv,
 * s = √(r1/r2), W1[i] /= s, b1[i] /= s, W2[:,i] *= s (groups respected). Sweeps over all pairs
 * repeat until every pair's ‖ΔW1‖+‖ΔW2‖ < tol, or maxIter sweeps. The float function is unchanged
 * (up to rounding). Conv→BatchNormalization pairs are NOT seen through: call `foldBatchNorm(g)`
 * first to make them eligible. Weights must be constant (initializer or Constant node), float, and
 * read by that conv only. In place (see file comment).
 */
export function weightEqualization(g: Graph, opts: WeightEqualizationOptions = {}): { pairs: EqualizedPair[] } {
  const tol = opts.tol ?? 1e-4;
  const maxIter = opts.maxIter ?? 100;
  if (!(tol >= 0) || !(maxIter >= 1)) throw new GraphError(`weightEqualization: bad options tol=${tol} maxIter=${maxIter}`);
  const pairs = findPairs(g);
  const iters = new Array<number>(pairs.length).fill(0);
  for (let it = 1; it <= maxIter && pairs.length; it++) {
    let moved = false;
    pairs.forEach((p, i) => {
      const d = step(p);
      if (d >= tol) {
        moved = true;
        iters[i] = it;
      }
    });
    if (!moved) break;
  }
  const out = pairs.map((p, i) => ({ first: p.c1.label, second: p.c2.label, iterations: iters[i]! }));
  for (const p of out) opts.log?.(`weight equalization: ${p.first} -> ${p.second} (${p.iterations} iteration${p.iterations === 1 ? "" : "s"})`);
  return { pairs: out };
}
