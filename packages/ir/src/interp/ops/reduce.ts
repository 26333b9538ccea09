/**
 * Reductions (ReduceSum and friends) and ArgMax/ArgMin. Values are accumulated in float64 (ints
 * exactly up to 2^53; int64/uint64 sums, products and extrema use bigints) and written back in
 * the input's dtype. Reducing over an empty set gives the identity of the reduction: 0 for sums,
 * 1 for products, -inf / +inf (or the dtype's limits) for max / min, NaN for the mean.
 */
import { intRange, isBig, isFloat, type DType } from "../../dtype.js";
import type { Node } from "../../graph.js";
import { Tensor, shapeSize } from "../../tensor.js";
import type { Kernel, KernelTable } from "../types.js";
import { around, broadcastPlan, fail, floatData, fromFloats, ints, need, normAxes, normAxis, type FArr } from "./util.js";

const SUM = 0, PROD = 1, MAX = 2, MIN = 3, ABS_SUM = 4, SQ_SUM = 5;

/** One reduction pass over the middle dimension of [outer, len, inner]. */
function pass(src: FArr, outer: number, len: number, inner: number, op: number): Float64Array {
  const out = new Float64Array(outer * inner);
  const init = op === PROD ? 1 : op === MAX ? -Infinity : op === MIN ? Infinity : 0;
  if (init !== 0) out.fill(init);
  if (inner === 1) {
    for (let o = 0; o < outer; o++) {
      const b = o * len, e = b + len;
      let acc = init;
      switch (op) {
        case SUM: for (let q = b; q < e; q++) acc += src[q]!; break;
        case PROD: for (let q = b; q < e; q++) acc *= src[q]!; break;
        case MAX: for (let q = b; q < e; q++) acc = Math.max(acc, src[q]!); break;
        case MIN: for (let q = b; q < e; q++) acc = Math.min(acc, src[q]!); break;
        case ABS_SUM: for (let q = b; q < e; q++) acc += Math.abs(src[q]!); break;
        case SQ_SUM: for (let q = b; q < e; q++) { const v = src[q]!; acc += v * v; } break;
      }
      out[o] = acc;
    }
    return out;
  }
  for (let o = 0; o < outer; o++) {
    const ob = o * inner;
    for (let j = 0; j < len; j++) {
      const row = (o * len + j) * inner;
      switch (op) {
        case SUM: for (let i = 0; i < inner; i++) out[ob + i] += src[row + i]!; break;
        case PROD: for (let i = 0; i < inner; i++) out[ob + i] *= src[row + i]!; break;
        case MAX: for (let i = 0; i < inner; i++) out[ob + i] = Math.max(out[ob + i]!, src[row + i]!); break;
        case MIN: for (let i = 0; i < inner; i++) out[ob + i] = Math.min(out[ob + i]!, src[row + i]!); break;
        case ABS_SUM: for (let i = 0; i < inner; i++) out[ob + i] += Math.abs(src[row + i]!); break;
        case SQ_SUM: for (let i = 0; i < inner; i++) { const v = src[row + i]!; out[ob + i] += v * v; } break;
      }
    }
  }
  return out;
}

/**
 * Reduce `v` (of `shape`) over the sorted `axes`: adjacent reduced axes are merged and each run is
 * reduced in one pass, innermost first. `op` applies to the first pass; later passes combine.
 */
function reduceValues(v: FArr, shape: readonly number[], axes: readonly number[], op: number): Float64Array {
  // runs of consecutive reduced axes
  const runs: [number, number][] = [];
  for (const a of axes) {
    const last = runs[runs.length - 1];
    if (last && last[1] === a) last[1] = a + 1;
    else runs.push([a, a + 1]);
  }
  let cur: FArr = v;
  const sh = [...shape];
  let first = true;
  for (let r = runs.length - 1; r >= 0; r--) {
    const [s, e] = runs[r]!;
    const outer = shapeSize(sh.slice(0, s));
    const len = shapeSize(sh.slice(s, e));
    const inner = shapeSize(sh.slice(e));
    const o = first ? op : op === ABS_SUM || op === SQ_SUM ? SUM : op;
    cur = pass(cur, outer, len, inner, o);
    sh.splice(s, e - s, 1);
    first = false;
  }
  if (first) {
    // no axes: apply the elementwise part of the op only
    const out = new Float64Array(v.length);
    for (let i = 0; i < v.length; i++) out[i] = op === ABS_SUM ? Math.abs(v[i]!) : op === SQ_SUM ? v[i]! * v[i]! : v[i]!;
    return out;
  }
  return cur as Float64Array;
}

function bigReduce(x: Tensor, axes: readonly number[], op: number): BigInt64Array {
  const src = x.data as BigInt64Array;
  const kept = x.shape.map((d, i) => (axes.includes(i) ? 1 : d));
  const out = new BigInt64Array(shapeSize(kept));
  const init = op === PROD ? 1n : 0n;
  out.fill(init);
  const seen = new Uint8Array(out.length);
  const rank = x.rank;
  const ks = new Array<number>(rank);
  let acc = 1;
  for (let i = rank - 1; i >= 0; i--) { ks[i] = acc; acc *= kept[i]!; }
  for (const a of axes) ks[a] = 0; // reduced axes do not move the output position
  const ctr = new Array<number>(rank).fill(0);
  for (let n = 0; n < src.length; n++) {
    let o = 0;
    for (let a = 0; a < rank; a++) o += ctr[a]! * ks[a]!;
    let v = src[n]!;
    if (op === ABS_SUM && v < 0n) v = -v;
    if (op === SQ_SUM) v = v * v;
    const c = out[o]!;
    if (op === MAX) out[o] = !seen[o] || v > c ? v : c;
    else if (op === MIN) out[o] = !seen[o] || v < c ? v : c;
    else if (op === PROD) out[o] = c * v;
    else out[o] = c + v;
    seen[o] = 1;
    for (let a = rank - 1; a >= 0; a--) {
      if (++ctr[a]! < x.shape[a]!) break;
      ctr[a] = 0;
    }
  }
  if (op === MAX || op === MIN) {
    const [lo, hi] = x.dtype === "uint64" ? [0n, 18446744073709551615n] : [-9223372036854775808n, 9223372036854775807n];
    for (let i = 0; i < out.length; i++) if (!seen[i]) out[i] = op === MAX ? lo : hi;
  }
  return out;
}

const KINDS = ["ReduceSum", "ReduceMean", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL1", "ReduceL2", "ReduceLogSum", "ReduceLogSumExp", "ReduceSumSquare"] as const;
type Kind = (typeof KINDS)[number];

function reduceAxes(inputs: (Tensor | undefined)[], node: Node, opset: number, name: Kind): number[] | undefined {
  const since = name === "ReduceSum" ? 13 : 18;
  if (opset >= since) return inputs[1] ? ints(inputs[1]) : undefined;
  return node.ints("axes");
}

function toDtype(dt: DType, shape: number[], v: Float64Array): Tensor {
  if (dt === "float64") return new Tensor(dt, shape, v);
  if (dt === "float32") return new Tensor(dt, shape, Float32Array.from(v));
  if (isFloat(dt)) return fromFloats(dt, shape, v);
  // integers: empty max/min give the dtype's limits
  const [lo, hi] = intRange(dt);
  for (let i = 0; i < v.length; i++) {
    const x = v[i]!;
    if (x === -Infinity) v[i] = lo;
    else if (x === Infinity) v[i] = hi;
  }
  return Tensor.fromNumbers(dt, shape, v);
}

function reduce(name: Kind): Kernel {
  return (inputs, node, ctx) => {
    const x = need(inputs, 0, name);
    const keep = node.int("keepdims", 1) !== 0;
    let axes = reduceAxes(inputs, node, ctx.opset, name);
    if (!axes || axes.length === 0) {
      if (node.int("noop_with_empty_axes", 0) !== 0) return [x];
      axes = [...Array(x.rank).keys()];
    }
    axes = normAxes(axes, x.rank).sort((a, b) => a - b);
    const red = new Set(axes);
    const shape = keep ? x.shape.map((d, i) => (red.has(i) ? 1 : d)) : x.shape.filter((_, i) => !red.has(i));
    if (isBig(x.dtype) && name !== "ReduceMean" && name !== "ReduceL2" && name !== "ReduceLogSum" && name !== "ReduceLogSumExp") {
      const op = name === "ReduceSum" ? SUM : name === "ReduceProd" ? PROD : name === "ReduceMax" ? MAX : name === "ReduceMin" ? MIN : name === "ReduceL1" ? ABS_SUM : SQ_SUM;
      return [new Tensor(x.dtype, shape, bigReduce(x, axes, op))];
    }
    const v = floatData(x);
    let count = 1;
    for (const a of axes) count *= x.shape[a]!;
    let out: Float64Array;
    switch (name) {
      case "ReduceSum": out = reduceValues(v, x.shape, axes, SUM); break;
      case "ReduceProd": out = reduceValues(v, x.shape, axes, PROD); break;
      case "ReduceMax": out = reduceValues(v, x.shape, axes, MAX); break;
      case "ReduceMin": out = reduceValues(v, x.shape, axes, MIN); break;
      case "ReduceL1": out = reduceValues(v, x.shape, axes, ABS_SUM); break;
      case "ReduceSumSquare": out = reduceValues(v, x.shape, axes, SQ_SUM); break;
      case "ReduceMean":
        out = reduceValues(v, x.shape, axes, SUM);
        for (let i = 0; i < out.length; i++) out[i] = out[i]! / count;
        break;
      case "ReduceL2":
        out = reduceValues(v, x.shape, axes, SQ_SUM);
        for (let i = 0; i < out.length; i++) out[i] = Math.sqrt(out[i]!);
        break;
      case "ReduceLogSum":
        out = reduceValues(v, x.shape, axes, SUM);
        for (let i = 0; i < out.length; i++) out[i] = Math.log(out[i]!);
        break;
      case "ReduceLogSumExp": {
        // shift by the max for stability: log(sum(exp(x - m))) + m
        const m = reduceValues(v, x.shape, axes, MAX);
        for (let i = 0; i < m.length; i++) if (!Number.isFinite(m[i]!)) m[i] = 0;
        const kshape = x.shape.map((d, i) => (red.has(i) ? 1 : d));
        const p = broadcastPlan([x.shape, kshape], x.shape);
        const e = new Float64Array(v.length);
        const om = p.offs[1]!, sm = p.steps[1]!;
        let k = 0;
        for (let r = 0; r < p.rows; r++) {
          let j = om[r]!;
          for (let i = 0; i < p.inner; i++, k++, j += sm) e[k] = Math.exp(v[k]! - m[j]!);
        }
        out = reduceValues(e, x.shape, axes, SUM);
        for (let i = 0; i < out.length; i++) out[i] = Math.log(out[i]!) + m[i]!;
        break;
      }
    }
    return [toDtype(x.dtype, shape, out)];
  };
}

function argReduce(name: "ArgMax" | "ArgMin"): Kernel {
  const isMax = name === "ArgMax";
  return (inputs, node) => {
    const x = need(inputs, 0, name);
    const axis = normAxis(node.int("axis", 0), x.rank);
    const keep = node.int("keepdims", 1) !== 0;
    const last = node.int("select_last_index", 0) !== 0;
    const [outer, len, inner] = around(x.shape, axis);
    if (len === 0) fail(`${name}: cannot reduce an empty axis`);
    const shape = keep ? x.shape.map((d, i) => (i === axis ? 1 : d)) : x.shape.filter((_, i) => i !== axis);
    const out = new BigInt64Array(outer * inner);
    const v: ArrayLike<number | bigint> = isBig(x.dtype) ? (x.data as BigInt64Array) : floatData(x);
    for (let o = 0; o < outer; o++) {
      for (let i = 0; i < inner; i++) {
        const base = o * len * inner + i;
        let best = v[base]!, bi = 0;
        for (let j = 1; j < len; j++) {
          const c = v[base + j * inner]!;
          const better = isMax ? (last ? c >= best : c > best) : last ? c <= best : c < best;
          if (better) { best = c; bi = j; }
        }
        out[o * inner + i] = BigInt(bi);
      }
    }
    return [new Tensor("int64", shape, out)];
  };
}

export const kernels: KernelTable = {
  ...Object.fromEntries(KINDS.map((k) => [k, reduce(k)])),
  ArgMax: argReduce("ArgMax"),
  ArgMin: argReduce("ArgMin"),
};
