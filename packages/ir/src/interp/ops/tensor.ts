/**
 * Shape and data-movement kernels. They move elements as raw words (any dtype, strings too), so
 * they never round or convert values. Reshape-like ops share the input's storage.
 */
import { dtypeFromOnnx, isBig, type DType } from "../../dtype.js";
import type { Node } from "../../graph.js";
import { Tensor, shapeSize, stridesOf } from "../../tensor.js";
import type { KernelTable } from "../types.js";
import {
  alloc, around, broadcastShape, broadcastTo, copyRun, fail, fillRun, floatData, fromFloats, i64, ints, materialize,
  need, normAxes, normAxis, sameShape, transpose, wordsOf,
} from "./util.js";

// ---------------------------------------------------------------------------------------------
// reshaping

function reshape(x: Tensor, dims: readonly number[], allowzero: boolean): Tensor {
  const out: number[] = [];
  let neg = -1;
  for (let i = 0; i < dims.length; i++) {
    let d = dims[i]!;
    if (d === 0 && !allowzero) {
      if (i >= x.rank) fail(`Reshape: shape[${i}] is 0 (copy) but the input has rank ${x.rank}`);
      d = x.shape[i]!;
    }
    if (d === -1) {
      if (neg >= 0) fail(`Reshape: shape [${dims.join(",")}] has more than one -1`);
      neg = i;
      out.push(1);
    } else {
      if (d < 0) fail(`Reshape: invalid dimension ${d} in [${dims.join(",")}]`);
      out.push(d);
    }
  }
  if (neg >= 0) {
    const known = shapeSize(out);
    if (known === 0) {
      if (x.size !== 0) fail(`Reshape: cannot infer -1 in [${dims.join(",")}] for ${x.size} elements`);
      out[neg] = 0;
    } else {
      if (x.size % known !== 0) fail(`Reshape: cannot reshape [${x.shape.join(",")}] into [${dims.join(",")}]`);
      out[neg] = x.size / known;
    }
  }
  if (shapeSize(out) !== x.size) fail(`Reshape: cannot reshape [${x.shape.join(",")}] (${x.size} elements) into [${out.join(",")}]`);
  return new Tensor(x.dtype, out, x.data);
}

function axesFrom(inputs: (Tensor | undefined)[], node: Node, opset: number, since: number, idx = 1): number[] | undefined {
  if (opset >= since) return inputs[idx] ? ints(inputs[idx]!) : undefined;
  return node.ints("axes");
}

function squeeze(x: Tensor, axes: number[] | undefined): Tensor {
  let keep: number[];
  if (!axes || axes.length === 0) {
    keep = x.shape.filter((d) => d !== 1);
  } else {
    const ax = new Set(normAxes(axes, x.rank));
    for (const a of ax) if (x.shape[a] !== 1) fail(`Squeeze: dimension ${a} of [${x.shape.join(",")}] is not 1`);
    keep = x.shape.filter((_, i) => !ax.has(i));
  }
  return new Tensor(x.dtype, keep, x.data);
}

function unsqueeze(x: Tensor, axes: number[]): Tensor {
  const r = x.rank + axes.length;
  const ax = new Set(normAxes(axes, r));
  const out: number[] = [];
  let j = 0;
  for (let i = 0; i < r; i++) out.push(ax.has(i) ? 1 : x.shape[j++]!);
  return new Tensor(x.dtype, out, x.data);
}

// ---------------------------------------------------------------------------------------------
// concat / split / slice / pad

function concat(ts: Tensor[], axisAttr: number): Tensor {
  if (!ts.length) fail("Concat needs at least one input");
  const first = ts[0]!;
  const rank = first.rank;
  const axis = normAxis(axisAttr, rank);
  const shape = [...first.shape];
  let total = 0;
  for (const t of ts) {
    if (t.rank !== rank || t.shape.some((d, i) => i !== axis && d !== shape[i])) {
      fail(`Concat: input shapes ${ts.map((x) => `[${x.shape.join(",")}]`).join(", ")} differ outside axis ${axis}`);
    }
    total += t.shape[axis]!;
  }
  shape[axis] = total;
  const out = alloc(first.dtype, shape);
  const dst = wordsOf(out.data).w;
  const [outer, , inner] = around(shape, axis);
  let acc = 0;
  for (const t of ts) {
    const { w, k } = wordsOf(t.data);
    const run = t.shape[axis]! * inner;
    if (run === 0) continue;
    for (let o = 0; o < outer; o++) copyRun(w, o * run, dst, (o * total + acc) * inner, run, k);
    acc += t.shape[axis]!;
  }
  return out;
}

function split(x: Tensor, node: Node, inputs: (Tensor | undefined)[], opset: number): Tensor[] {
  const axis = normAxis(node.int("axis", 0), x.rank);
  const dim = x.shape[axis]!;
  const nOut = node.outputs.length;
  let sizes: number[] | undefined;
  if (opset >= 13) sizes = inputs[1] ? ints(inputs[1]) : undefined;
  else sizes = node.ints("split") ?? (inputs[1] ? ints(inputs[1]) : undefined);
  if (!sizes || sizes.length === 0) {
    const num = opset >= 18 && node.has("num_outputs") ? node.int("num_outputs", nOut) : nOut;
    const chunk = Math.ceil(dim / num);
    sizes = [];
    for (let i = 0; i < num; i++) sizes.push(Math.max(0, Math.min(chunk, dim - chunk * i)));
  }
  if (sizes.reduce((a, b) => a + b, 0) !== dim) fail(`Split: sizes [${sizes.join(",")}] do not add up to dimension ${dim}`);
  const [outer, , inner] = around(x.shape, axis);
  const { w, k } = wordsOf(x.data);
  const outs: Tensor[] = [];
  let acc = 0;
  for (const s of sizes) {
    const shape = [...x.shape];
    shape[axis] = s;
    const t = alloc(x.dtype, shape);
    const dst = wordsOf(t.data).w;
    const run = s * inner;
    if (run > 0) for (let o = 0; o < outer; o++) copyRun(w, (o * dim + acc) * inner, dst, o * run, run, k);
    acc += s;
    outs.push(t);
  }
  return outs;
}

function slice(x: Tensor, starts: number[], ends: number[], axesIn: number[] | undefined, stepsIn: number[] | undefined): Tensor {
  const rank = x.rank;
  const axes = axesIn ?? starts.map((_, i) => i);
  const steps = stepsIn ?? starts.map(() => 1);
  if (ends.length !== starts.length || axes.length !== starts.length || steps.length !== starts.length) {
    fail(`Slice: starts, ends, axes and steps have different lengths`);
  }
  const strides = stridesOf(x.shape);
  const shape = [...x.shape];
  const st = [...strides];
  let off = 0;
  const seen = new Set<number>();
  for (let i = 0; i < axes.length; i++) {
    const a = normAxis(axes[i]!, rank, "Slice axis");
    if (seen.has(a)) fail(`Slice: axis ${axes[i]} repeats`);
    seen.add(a);
    const dim = x.shape[a]!;
    const step = steps[i]!;
    if (step === 0) fail("Slice: step 0");
    let s = starts[i]!, e = ends[i]!;
    if (s < 0) s += dim;
    if (e < 0) e += dim;
    let n: number;
    if (step > 0) {
      s = Math.min(Math.max(s, 0), dim);
      e = Math.min(Math.max(e, 0), dim);
      n = e > s ? Math.ceil((e - s) / step) : 0;
    } else {
      s = Math.min(Math.max(s, 0), dim - 1);
      e = Math.min(Math.max(e, -1), dim - 1);
      n = s > e ? Math.ceil((s - e) / -step) : 0;
    }
    shape[a] = n;
    if (n > 0) off += s * strides[a]!;
    st[a] = strides[a]! * step;
  }
  if (shapeSize(shape) === 0) return alloc(x.dtype, shape);
  return materialize(x, off, st, shape);
}

const PAD_MODES = new Set(["constant", "reflect", "edge", "wrap"]);

function pad(x: Tensor, pads: number[], mode: string, cval: Tensor | number | undefined, axesIn?: number[]): Tensor {
  if (!PAD_MODES.has(mode)) fail(`Pad: unknown mode '${mode}'`);
  const rank = x.rank;
  const axes = axesIn ? normAxes(axesIn, rank) : [...Array(rank).keys()];
  if (pads.length !== 2 * axes.length) fail(`Pad: ${pads.length} pads for ${axes.length} axes`);
  const begin = new Array<number>(rank).fill(0), end = new Array<number>(rank).fill(0);
  axes.forEach((a, i) => {
    begin[a] = pads[i]!;
    end[a] = pads[i + axes.length]!;
  });
  // negative pads crop first; the positive ones then pad the cropped tensor
  const skip = begin.map((b) => Math.max(0, -b));
  const kept = x.shape.map((d, i) => d - skip[i]! - Math.max(0, -end[i]!));
  if (kept.some((d) => d < 0)) fail(`Pad: pads [${pads.join(",")}] crop [${x.shape.join(",")}] below zero`);
  const before = begin.map((b) => Math.max(0, b));
  const shape = kept.map((d, i) => d + before[i]! + Math.max(0, end[i]!));
  const out = alloc(x.dtype, shape);
  if (out.size === 0) return out;
  // the padding value as words of the dtype
  const cv = alloc(x.dtype, [1]);
  if (cval !== undefined && typeof cval === "object") {
    if (cval.size > 0) copyRun(wordsOf(cval.data).w, 0, wordsOf(cv.data).w, 0, 1, wordsOf(cval.data).k);
  } else if (cval !== undefined && cval !== 0 && x.dtype !== "string") {
    cv.setFromNumbers([cval]);
  }
  const { w: src, k } = wordsOf(x.data);
  const { w: cw } = wordsOf(cv.data);
  const dst = wordsOf(out.data).w;
  // per-axis maps: output index -> input index, or -1 for the constant
  const maps = shape.map((n, a) => {
    const dim = kept[a]!;
    const m = new Int32Array(n);
    for (let i = 0; i < n; i++) {
      let j = i - before[a]!;
      if (j < 0 || j >= dim) {
        if (mode === "constant") j = -1;
        else if (dim === 0) fail(`Pad: mode '${mode}' cannot pad an empty dimension`);
        else if (mode === "edge") j = j < 0 ? 0 : dim - 1;
        else if (mode === "wrap") j = ((j % dim) + dim) % dim;
        else if (dim === 1) j = 0;
        else {
          const period = 2 * (dim - 1);
          j = ((j % period) + period) % period;
          if (j >= dim) j = period - j;
        }
      }
      m[i] = j < 0 ? j : j + skip[a]!;
    }
    return m;
  });
  const xs = stridesOf(x.shape);
  if (rank === 0) {
    copyRun(src, 0, dst, 0, 1, k);
    return out;
  }
  const last = rank - 1;
  const innerOut = shape[last]!;
  const im = maps[last]!;
  const lo = before[last]!, hi = before[last]! + kept[last]!;
  const rows = out.size / innerOut;
  const ctr = new Array<number>(rank).fill(0);
  let o = 0;
  for (let r = 0; r < rows; r++) {
    let base = 0, isConst = false;
    for (let a = 0; a < last; a++) {
      const j = maps[a]![ctr[a]!]!;
      if (j < 0) { isConst = true; break; }
      base += j * xs[a]!;
    }
    if (isConst) {
      fillRun(dst, o, innerOut, cw, k);
    } else {
      for (let i = 0; i < lo; i++) {
        const j = im[i]!;
        if (j < 0) fillRun(dst, o + i, 1, cw, k);
        else copyRun(src, base + j, dst, o + i, 1, k);
      }
      if (hi > lo) copyRun(src, base + skip[last]!, dst, o + lo, hi - lo, k);
      for (let i = hi; i < innerOut; i++) {
        const j = im[i]!;
        if (j < 0) fillRun(dst, o + i, 1, cw, k);
        else copyRun(src, base + j, dst, o + i, 1, k);
      }
    }
    o += innerOut;
    for (let a = last - 1; a >= 0; a--) {
      if (++ctr[a]! < shape[a]!) break;
      ctr[a] = 0;
    }
  }
  return out;
}

function padKernel(inputs: (Tensor | undefined)[], node: Node, opset: number): Tensor {
  const x = need(inputs, 0, "Pad");
  const mode = node.str("mode", "constant");
  if (opset < 11) {
    const pads = node.ints("pads") ?? node.ints("paddings") ?? fail("Pad: missing pads attribute");
    return pad(x, pads, mode, node.float("value", 0));
  }
  const pads = ints(need(inputs, 1, "Pad"));
  const axes = opset >= 18 && inputs[3] ? ints(inputs[3]) : undefined;
  return pad(x, pads, mode, inputs[2], axes);
}

// ---------------------------------------------------------------------------------------------
// gather / scatter

function indexList(t: Tensor, dim: number, what: string): Float64Array {
  const v = ints(t);
  const out = new Float64Array(v.length);
  for (let i = 0; i < v.length; i++) {
    let j = v[i]!;
    if (j < 0) j += dim;
    if (!(j >= 0 && j < dim)) fail(`${what}: index ${v[i]} is out of range for dimension ${dim}`);
    out[i] = j;
  }
  return out;
}

function gather(x: Tensor, indices: Tensor, axisAttr: number): Tensor {
  const axis = normAxis(axisAttr, x.rank);
  const dim = x.shape[axis]!;
  const idx = indexList(indices, dim, "Gather");
  const shape = [...x.shape.slice(0, axis), ...indices.shape, ...x.shape.slice(axis + 1)];
  const out = alloc(x.dtype, shape);
  const [outer, , inner] = around(x.shape, axis);
  const { w, k } = wordsOf(x.data);
  const dst = wordsOf(out.data).w;
  const n = idx.length;
  let o = 0;
  if (inner === 1 && k === 1) {
    for (let b = 0; b < outer; b++) {
      const base = b * dim;
      for (let t = 0; t < n; t++) dst[o++] = w[base + idx[t]!];
    }
  } else {
    for (let b = 0; b < outer; b++) {
      for (let t = 0; t < n; t++) {
        copyRun(w, (b * dim + idx[t]!) * inner, dst, o, inner, k);
        o += inner;
      }
    }
  }
  return out;
}

/** For each element of `shape` (row-major), the offset into a tensor of `full` strides, with `axis` replaced by idx. */
function elementsOffsets(shape: readonly number[], dataShape: readonly number[], axis: number, idx: Float64Array, what: string): Float64Array {
  const ds = stridesOf(dataShape);
  const n = shapeSize(shape);
  const offs = new Float64Array(n);
  const rank = shape.length;
  const ctr = new Array<number>(rank).fill(0);
  const dim = dataShape[axis]!;
  for (let i = 0; i < n; i++) {
    let j = idx[i]!;
    if (j < 0) j += dim;
    if (!(j >= 0 && j < dim)) fail(`${what}: index ${idx[i]} is out of range for dimension ${dim}`);
    let off = 0;
    for (let a = 0; a < rank; a++) off += (a === axis ? j : ctr[a]!) * ds[a]!;
    offs[i] = off;
    for (let a = rank - 1; a >= 0; a--) {
      if (++ctr[a]! < shape[a]!) break;
      ctr[a] = 0;
    }
  }
  return offs;
}

function gatherElements(x: Tensor, indices: Tensor, axisAttr: number): Tensor {
  const axis = normAxis(axisAttr, x.rank);
  if (indices.rank !== x.rank) fail(`GatherElements: indices rank ${indices.rank} != data rank ${x.rank}`);
  const offs = elementsOffsets(indices.shape, x.shape, axis, Float64Array.from(ints(indices)), "GatherElements");
  const out = alloc(x.dtype, indices.shape);
  const { w, k } = wordsOf(x.data);
  const dst = wordsOf(out.data).w;
  for (let i = 0; i < offs.length; i++) copyRun(w, offs[i]!, dst, i, 1, k);
  return out;
}

function gatherND(x: Tensor, indices: Tensor, b: number): Tensor {
  const q = indices.rank, r = x.rank;
  const m = indices.shape[q - 1]!;
  if (b + m > r) fail(`GatherND: index depth ${m} + batch_dims ${b} exceeds data rank ${r}`);
  for (let i = 0; i < b; i++) if (indices.shape[i] !== x.shape[i]) fail("GatherND: batch dimensions differ");
  const shape = [...indices.shape.slice(0, q - 1), ...x.shape.slice(b + m)];
  const out = alloc(x.dtype, shape);
  const ds = stridesOf(x.shape);
  const inner = shapeSize(x.shape.slice(b + m));
  const batches = shapeSize(x.shape.slice(0, b));
  const batchStride = shapeSize(x.shape.slice(b));
  const per = shapeSize(indices.shape.slice(b, q - 1));
  const idx = ints(indices);
  const { w, k } = wordsOf(x.data);
  const dst = wordsOf(out.data).w;
  let o = 0, p = 0;
  for (let bi = 0; bi < batches; bi++) {
    for (let t = 0; t < per; t++) {
      let off = bi * batchStride;
      for (let j = 0; j < m; j++) {
        const dim = x.shape[b + j]!;
        let v = idx[p++]!;
        if (v < 0) v += dim;
        if (!(v >= 0 && v < dim)) fail(`GatherND: index ${idx[p - 1]} is out of range for dimension ${dim}`);
        off += v * ds[b + j]!;
      }
      copyRun(w, off, dst, o, inner, k);
      o += inner;
    }
  }
  return out;
}

type Reduction = "none" | "add" | "mul" | "max" | "min";

/** Numeric storage for scatter reductions: a copy of data as numbers or bigints. */
function scatterApply(out: Tensor, offs: Float64Array, runs: number, updates: Tensor, red: Reduction): void {
  const n = offs.length;
  if (red === "none") {
    const { w, k } = wordsOf(updates.data);
    const dst = wordsOf(out.data).w;
    for (let i = 0; i < n; i++) copyRun(w, i * runs, dst, offs[i]!, runs, k);
    return;
  }
  if (isBig(out.dtype)) {
    const d = out.data as BigInt64Array, u = updates.data as BigInt64Array;
    for (let i = 0; i < n; i++) {
      for (let j = 0; j < runs; j++) {
        const p = offs[i]! + j, v = u[i * runs + j]!, c = d[p]!;
        d[p] = red === "add" ? c + v : red === "mul" ? c * v : red === "max" ? (v > c ? v : c) : v < c ? v : c;
      }
    }
    return;
  }
  const d = floatData(out) as Float64Array | Float32Array;
  const work = d === out.data ? d : Float64Array.from(d);
  const u = floatData(updates);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < runs; j++) {
      const p = offs[i]! + j, v = u[i * runs + j]!, c = work[p]!;
      work[p] = red === "add" ? c + v : red === "mul" ? c * v : red === "max" ? Math.max(c, v) : Math.min(c, v);
    }
  }
  if (work !== out.data) out.setFromNumbers(work);
}

function reduction(node: Node): Reduction {
  const r = node.str("reduction", "none");
  if (r !== "none" && r !== "add" && r !== "mul" && r !== "max" && r !== "min") fail(`unknown reduction '${r}'`);
  return r;
}

function scatterElements(x: Tensor, indices: Tensor, updates: Tensor, axisAttr: number, red: Reduction): Tensor {
  const axis = normAxis(axisAttr, x.rank);
  if (!sameShape(indices.shape, updates.shape)) fail("ScatterElements: indices and updates shapes differ");
  const offs = elementsOffsets(indices.shape, x.shape, axis, Float64Array.from(ints(indices)), "ScatterElements");
  const out = x.clone();
  scatterApply(out, offs, 1, updates, red);
  return out;
}

function scatterND(x: Tensor, indices: Tensor, updates: Tensor, red: Reduction): Tensor {
  const q = indices.rank;
  const m = indices.shape[q - 1]!;
  const ds = stridesOf(x.shape);
  const inner = shapeSize(x.shape.slice(m));
  const n = shapeSize(indices.shape.slice(0, q - 1));
  if (updates.size !== n * inner) fail("ScatterND: updates shape does not match indices and data");
  const idx = ints(indices);
  const offs = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    let off = 0;
    for (let j = 0; j < m; j++) {
      const dim = x.shape[j]!;
      let v = idx[i * m + j]!;
      if (v < 0) v += dim;
      if (!(v >= 0 && v < dim)) fail(`ScatterND: index ${idx[i * m + j]} is out of range for dimension ${dim}`);
      off += v * ds[j]!;
    }
    offs[i] = off;
  }
  const out = x.clone();
  scatterApply(out, offs, inner, updates, red);
  return out;
}

// ---------------------------------------------------------------------------------------------
// constants and shapes

function constant(node: Node): Tensor {
  const t = node.tensor("value") ?? node.tensor("sparse_value");
  if (t) return t;
  const a = node.attrs;
  if (a.has("value_float")) return Tensor.f32([], [node.float("value_float", 0)]);
  if (a.has("value_floats")) {
    const v = node.floats("value_floats", []);
    return Tensor.f32([v.length], v);
  }
  if (a.has("value_int")) return i64([], [node.int("value_int", 0)]);
  if (a.has("value_ints")) {
    const v = node.ints("value_ints", []);
    return i64([v.length], v);
  }
  if (a.has("value_string")) return new Tensor("string", [], [node.str("value_string", "")]);
  if (a.has("value_strings")) {
    const v = node.strs("value_strings") ?? [];
    return new Tensor("string", [v.length], [...v]);
  }
  return fail("Constant: no value attribute");
}

function constantOfShape(shapeT: Tensor | undefined, node: Node): Tensor {
  const shape = shapeT ? ints(shapeT) : [];
  const v = node.tensor("value") ?? Tensor.f32([1], [0]);
  if (shape.some((d) => d < 0)) fail(`ConstantOfShape: negative dimension in [${shape.join(",")}]`);
  const out = alloc(v.dtype, shape);
  const { w, k } = wordsOf(v.data);
  if (v.size > 0) fillRun(wordsOf(out.data).w, 0, out.size, w, k);
  return out;
}

function tile(x: Tensor, reps: number[]): Tensor {
  if (reps.length !== x.rank) fail(`Tile: ${reps.length} repeats for rank ${x.rank}`);
  const st = stridesOf(x.shape);
  const shape: number[] = [], strides: number[] = [];
  for (let i = 0; i < x.rank; i++) {
    shape.push(reps[i]!, x.shape[i]!);
    strides.push(0, st[i]!);
  }
  const outShape = x.shape.map((d, i) => d * reps[i]!);
  if (shapeSize(outShape) === 0) return alloc(x.dtype, outShape);
  return materialize(x, 0, strides, shape).reshape(outShape);
}

function range(start: Tensor, limit: Tensor, delta: Tensor): Tensor {
  const dt = start.dtype;
  if (isBig(dt)) {
    const s = (start.data as BigInt64Array)[0]!, l = (limit.data as BigInt64Array)[0]!, d = (delta.data as BigInt64Array)[0]!;
    if (d === 0n) fail("Range: delta is 0");
    const diff = l - s;
    let n = diff / d;
    if (n * d !== diff && (diff > 0n) === (d > 0n)) n += 1n;
    if (n < 0n) n = 0n;
    const out = alloc(dt, [Number(n)]);
    const o = out.data as BigInt64Array;
    for (let i = 0; i < o.length; i++) o[i] = s + BigInt(i) * d;
    return out;
  }
  const s = start.scalar(), l = limit.scalar(), d = delta.scalar();
  if (d === 0) fail("Range: delta is 0");
  const n = Math.max(Math.ceil((l - s) / d), 0);
  const v = new Float64Array(n);
  const f32 = dt === "float32";
  for (let i = 0; i < n; i++) v[i] = f32 ? Math.fround(s + Math.fround(i * d)) : s + i * d;
  return Tensor.fromNumbers(dt, [n], v);
}

function topK(x: Tensor, k: number, node: Node): Tensor[] {
  const axis = normAxis(node.int("axis", -1), x.rank);
  const largest = node.int("largest", 1) !== 0;
  const dim = x.shape[axis]!;
  if (k < 0 || k > dim) fail(`TopK: k=${k} is out of range for dimension ${dim}`);
  const [outer, , inner] = around(x.shape, axis);
  const shape = [...x.shape];
  shape[axis] = k;
  const vals = alloc(x.dtype, shape);
  const idxOut = new BigInt64Array(outer * k * inner);
  const v: ArrayLike<number | bigint> = isBig(x.dtype) ? (x.data as BigInt64Array) : floatData(x);
  const { w, k: kw } = wordsOf(x.data);
  const dst = wordsOf(vals.data).w;
  const order = new Array<number>(dim);
  for (let o = 0; o < outer; o++) {
    for (let i = 0; i < inner; i++) {
      const base = o * dim * inner + i;
      for (let j = 0; j < dim; j++) order[j] = j;
      // stable sort: ties keep the lower index first; NaN counts as the largest value
      order.sort((p, q) => {
        const a = v[base + p * inner]!, b = v[base + q * inner]!;
        const an = a !== a, bn = b !== b;
        if (an || bn) return an && bn ? p - q : largest ? (an ? -1 : 1) : an ? 1 : -1;
        if (a === b) return p - q;
        return largest ? (a > b ? -1 : 1) : a < b ? -1 : 1;
      });
      for (let j = 0; j < k; j++) {
        const dOff = (o * k + j) * inner + i;
        copyRun(w, base + order[j]! * inner, dst, dOff, 1, kw);
        idxOut[dOff] = BigInt(order[j]!);
      }
    }
  }
  return [vals, new Tensor("int64", shape, idxOut)];
}

function nonZero(x: Tensor): Tensor {
  const n = x.size;
  const nz: number[] = [];
  if (x.dtype === "string") {
    const s = x.data as string[];
    for (let i = 0; i < n; i++) if (s[i] !== "") nz.push(i);
  } else if (isBig(x.dtype)) {
    const b = x.data as BigInt64Array;
    for (let i = 0; i < n; i++) if (b[i] !== 0n) nz.push(i);
  } else {
    const v = floatData(x);
    for (let i = 0; i < n; i++) if (v[i] !== 0) nz.push(i);
  }
  const rank = Math.max(x.rank, 1);
  const shape = x.rank === 0 ? [1] : x.shape;
  const st = stridesOf(shape);
  const out = new BigInt64Array(rank * nz.length);
  nz.forEach((flat, j) => {
    for (let a = 0; a < rank; a++) out[a * nz.length + j] = BigInt(Math.floor(flat / st[a]!) % shape[a]!);
  });
  return new Tensor("int64", [rank, nz.length], out);
}

function oneHot(indices: Tensor, depthT: Tensor, values: Tensor, axisAttr: number): Tensor {
  const depth = Math.trunc(depthT.scalar());
  if (!(depth > 0)) fail(`OneHot: depth ${depth} must be positive`);
  const r = indices.rank;
  const axis = normAxis(axisAttr, r + 1);
  const shape = [...indices.shape.slice(0, axis), depth, ...indices.shape.slice(axis)];
  const out = alloc(values.dtype, shape);
  const { w, k } = wordsOf(values.data);
  const dst = wordsOf(out.data).w;
  const on = alloc(values.dtype, [1]);
  copyRun(w, 1, wordsOf(on.data).w, 0, 1, k);
  fillRun(dst, 0, out.size, w, k); // off value everywhere
  const idx = ints(indices);
  let outer = 1;
  for (let i = 0; i < axis; i++) outer *= indices.shape[i]!;
  const inner = indices.size / Math.max(outer, 1);
  for (let o = 0; o < outer; o++) {
    for (let i = 0; i < inner; i++) {
      let j = idx[o * inner + i]!;
      if (j < 0) j += depth;
      if (j >= 0 && j < depth) copyRun(wordsOf(on.data).w, 0, dst, (o * depth + j) * inner + i, 1, k);
    }
  }
  return out;
}

function trilu(x: Tensor, kT: Tensor | undefined, upper: boolean): Tensor {
  if (x.rank < 2) fail("Trilu: input rank must be at least 2");
  const k = kT ? ints(kT)[0]! : 0;
  const n = x.shape[x.rank - 2]!, m = x.shape[x.rank - 1]!;
  const out = x.clone();
  const { w, k: kw } = wordsOf(out.data);
  const zero = wordsOf(alloc(x.dtype, [1]).data).w;
  const mats = x.size / Math.max(n * m, 1);
  for (let b = 0; b < mats; b++) {
    for (let i = 0; i < n; i++) {
      for (let j = 0; j < m; j++) {
        const keep = upper ? j - i >= k : j - i <= k;
        if (!keep) fillRun(w, (b * n + i) * m + j, 1, zero, kw);
      }
    }
  }
  return out;
}

function depthToSpace(x: Tensor, b: number, mode: string): Tensor {
  if (x.rank !== 4) fail("DepthToSpace: input must be 4-D");
  const [N, C, H, W] = x.shape as [number, number, number, number];
  if (C % (b * b) !== 0) fail(`DepthToSpace: channels ${C} not divisible by blocksize^2 ${b * b}`);
  const c = C / (b * b);
  let view: number[], perm: number[];
  if (mode === "DCR") {
    view = [N, b, b, c, H, W];
    perm = [0, 3, 4, 1, 5, 2];
  } else if (mode === "CRD") {
    view = [N, c, b, b, H, W];
    perm = [0, 1, 4, 2, 5, 3];
  } else {
    return fail(`DepthToSpace: unknown mode '${mode}'`);
  }
  return transpose(x.reshape(view), perm).reshape([N, c, H * b, W * b]);
}

function spaceToDepth(x: Tensor, b: number): Tensor {
  if (x.rank !== 4) fail("SpaceToDepth: input must be 4-D");
  const [N, C, H, W] = x.shape as [number, number, number, number];
  if (H % b !== 0 || W % b !== 0) fail(`SpaceToDepth: spatial size ${H}x${W} not divisible by blocksize ${b}`);
  return transpose(x.reshape([N, C, H / b, b, W / b, b]), [0, 3, 5, 1, 2, 4]).reshape([N, C * b * b, H / b, W / b]);
}

function eyeLike(x: Tensor, node: Node): Tensor {
  if (x.rank !== 2) fail("EyeLike: input must be 2-D");
  let dt: DType = x.dtype;
  if (node.has("dtype")) dt = dtypeFromOnnx(node.int("dtype", 1)) ?? fail(`EyeLike: unsupported dtype ${node.int("dtype", 0)}`);
  const k = node.int("k", 0);
  const [n, m] = x.shape as [number, number];
  const v = new Float64Array(n * m);
  for (let i = 0; i < n; i++) {
    const j = i + k;
    if (j >= 0 && j < m) v[i * m + j] = 1;
  }
  return Tensor.fromNumbers(dt, [n, m], v);
}

function cumSum(x: Tensor, axisT: Tensor, node: Node): Tensor {
  const axis = normAxis(ints(axisT)[0]!, x.rank);
  const exclusive = node.int("exclusive", 0) !== 0, reverse = node.int("reverse", 0) !== 0;
  const [outer, n, inner] = around(x.shape, axis);
  if (isBig(x.dtype)) {
    const a = x.data as BigInt64Array;
    const out = alloc(x.dtype, x.shape);
    const o = out.data as BigInt64Array;
    for (let b = 0; b < outer; b++) {
      for (let i = 0; i < inner; i++) {
        let acc = 0n;
        for (let t = 0; t < n; t++) {
          const j = reverse ? n - 1 - t : t;
          const p = (b * n + j) * inner + i;
          if (exclusive) { o[p] = acc; acc += a[p]!; } else { acc += a[p]!; o[p] = acc; }
        }
      }
    }
    return out;
  }
  const a = floatData(x);
  const o = new Float64Array(a.length);
  for (let b = 0; b < outer; b++) {
    for (let i = 0; i < inner; i++) {
      let acc = 0;
      for (let t = 0; t < n; t++) {
        const j = reverse ? n - 1 - t : t;
        const p = (b * n + j) * inner + i;
        if (exclusive) { o[p] = acc; acc += a[p]!; } else { acc += a[p]!; o[p] = acc; }
      }
    }
  }
  if (x.dtype === "float32") return new Tensor("float32", x.shape, Float32Array.from(o));
  return fromFloats(x.dtype, x.shape, o);
}

function reverseSequence(x: Tensor, lens: Tensor, node: Node): Tensor {
  const timeAxis = node.int("time_axis", 0), batchAxis = node.int("batch_axis", 1);
  if (!((timeAxis === 0 && batchAxis === 1) || (timeAxis === 1 && batchAxis === 0))) {
    fail("ReverseSequence: time_axis and batch_axis must be 0 and 1");
  }
  const T = x.shape[timeAxis]!, B = x.shape[batchAxis]!;
  const inner = shapeSize(x.shape.slice(2));
  const L = ints(lens);
  const out = x.clone();
  const { w, k } = wordsOf(x.data);
  const dst = wordsOf(out.data).w;
  const at = (t: number, b: number) => (timeAxis === 0 ? t * B + b : b * T + t) * inner;
  for (let b = 0; b < B; b++) {
    const len = Math.min(Math.max(L[b]!, 0), T);
    for (let t = 0; t < len; t++) copyRun(w, at(len - 1 - t, b), dst, at(t, b), inner, k);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------

export const kernels: KernelTable = {
  Reshape: (inputs, node, ctx) => {
    const x = need(inputs, 0, "Reshape");
    const dims = ctx.opset >= 5 ? ints(need(inputs, 1, "Reshape")) : node.ints("shape") ?? fail("Reshape: no shape");
    return [reshape(x, dims, node.int("allowzero", 0) !== 0)];
  },
  Flatten: (inputs, node) => {
    const x = need(inputs, 0, "Flatten");
    let axis = node.int("axis", 1);
    if (axis < 0) axis += x.rank;
    if (axis < 0 || axis > x.rank) fail(`Flatten: axis ${node.int("axis", 1)} out of range for rank ${x.rank}`);
    const outer = shapeSize(x.shape.slice(0, axis));
    return [new Tensor(x.dtype, [outer, shapeSize(x.shape.slice(axis))], x.data)];
  },
  Transpose: (inputs, node) => {
    const x = need(inputs, 0, "Transpose");
    const perm = node.ints("perm") ?? [...Array(x.rank).keys()].reverse();
    if (perm.length !== x.rank || new Set(normAxes(perm, x.rank)).size !== x.rank) fail(`Transpose: bad perm [${perm.join(",")}]`);
    const p = normAxes(perm, x.rank);
    if (p.every((v, i) => v === i)) return [x];
    return [transpose(x, p)];
  },
  Squeeze: (inputs, node, ctx) => [squeeze(need(inputs, 0, "Squeeze"), axesFrom(inputs, node, ctx.opset, 13))],
  Unsqueeze: (inputs, node, ctx) => {
    const axes = axesFrom(inputs, node, ctx.opset, 13) ?? fail("Unsqueeze: axes are required");
    return [unsqueeze(need(inputs, 0, "Unsqueeze"), axes)];
  },
  // Concat-1 defaults axis to 1; from opset 4 it is required
  Concat: (inputs, node, ctx) => [concat(inputs.filter((t): t is Tensor => !!t), node.int("axis", ctx.opset < 4 ? 1 : 0))],
  Split: (inputs, node, ctx) => split(need(inputs, 0, "Split"), node, inputs, ctx.opset),
  Slice: (inputs, node, ctx) => {
    const x = need(inputs, 0, "Slice");
    if (ctx.opset < 10) {
      const starts = node.ints("starts") ?? fail("Slice: starts missing");
      const ends = node.ints("ends") ?? fail("Slice: ends missing");
      return [slice(x, starts, ends, node.ints("axes"), undefined)];
    }
    return [slice(
      x, ints(need(inputs, 1, "Slice")), ints(need(inputs, 2, "Slice")),
      inputs[3] ? ints(inputs[3]) : undefined, inputs[4] ? ints(inputs[4]) : undefined,
    )];
  },
  Pad: (inputs, node, ctx) => [padKernel(inputs, node, ctx.opset)],
  Gather: (inputs, node) => [gather(need(inputs, 0, "Gather"), need(inputs, 1, "Gather"), node.int("axis", 0))],
  GatherElements: (inputs, node) => [gatherElements(need(inputs, 0, "GatherElements"), need(inputs, 1, "GatherElements"), node.int("axis", 0))],
  GatherND: (inputs, node) => [gatherND(need(inputs, 0, "GatherND"), need(inputs, 1, "GatherND"), node.int("batch_dims", 0))],
  ScatterND: (inputs, node) => [scatterND(need(inputs, 0, "ScatterND"), need(inputs, 1, "ScatterND"), need(inputs, 2, "ScatterND"), reduction(node))],
  ScatterElements: (inputs, node) => [scatterElements(
    need(inputs, 0, "ScatterElements"), need(inputs, 1, "ScatterElements"), need(inputs, 2, "ScatterElements"), node.int("axis", 0), reduction(node),
  )],
  Scatter: (inputs, node) => [scatterElements(need(inputs, 0, "Scatter"), need(inputs, 1, "Scatter"), need(inputs, 2, "Scatter"), node.int("axis", 0), "none")],
  Shape: (inputs, node) => {
    const x = need(inputs, 0, "Shape");
    const r = x.rank;
    const clampEnd = (v: number) => Math.min(Math.max(v < 0 ? v + r : v, 0), r);
    const s = clampEnd(node.int("start", 0)), e = clampEnd(node.int("end", r));
    const dims = x.shape.slice(s, Math.max(s, e));
    return [i64([dims.length], dims)];
  },
  Size: (inputs) => [i64([], [need(inputs, 0, "Size").size])],
  Constant: (_inputs, node) => [constant(node)],
  ConstantOfShape: (inputs, node) => [constantOfShape(inputs[0], node)],
  Expand: (inputs) => {
    const x = need(inputs, 0, "Expand");
    const shape = broadcastShape([x.shape, ints(need(inputs, 1, "Expand"))]);
    return [broadcastTo(x, shape)];
  },
  Tile: (inputs) => [tile(need(inputs, 0, "Tile"), ints(need(inputs, 1, "Tile")))],
  Range: (inputs) => [range(need(inputs, 0, "Range"), need(inputs, 1, "Range"), need(inputs, 2, "Range"))],
  TopK: (inputs, node, ctx) => {
    const k = ctx.opset >= 10 ? ints(need(inputs, 1, "TopK"))[0]! : node.int("k", 0);
    return topK(need(inputs, 0, "TopK"), k, node);
  },
  NonZero: (inputs) => [nonZero(need(inputs, 0, "NonZero"))],
  OneHot: (inputs, node) => [oneHot(need(inputs, 0, "OneHot"), need(inputs, 1, "OneHot"), need(inputs, 2, "OneHot"), node.int("axis", -1))],
  Trilu: (inputs, node) => [trilu(need(inputs, 0, "Trilu"), inputs[1], node.int("upper", 1) !== 0)],
  DepthToSpace: (inputs, node) => [depthToSpace(need(inputs, 0, "DepthToSpace"), node.int("blocksize", 0), node.str("mode", "DCR"))],
  SpaceToDepth: (inputs, node) => [spaceToDepth(need(inputs, 0, "SpaceToDepth"), node.int("blocksize", 0))],
  EyeLike: (inputs, node) => [eyeLike(need(inputs, 0, "EyeLike"), node)],
  CumSum: (inputs, node) => [cumSum(need(inputs, 0, "CumSum"), need(inputs, 1, "CumSum"), node)],
  ReverseSequence: (inputs, node) => [reverseSequence(need(inputs, 0, "ReverseSequence"), need(inputs, 1, "ReverseSequence"), node)],
};
