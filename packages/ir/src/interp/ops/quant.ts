/**
 * Linear quantization kernels: QuantizeLinear / DequantizeLinear (per-tensor, per-axis and, from
 * opset 21, blocked), DynamicQuantizeLinear and QLinearMatMul.
 *
 * QuantizeLinear: y = saturate(rint(x / scale) + zero_point), the division done in the scale's
 * precision (float32 unless the scale is float16/bfloat16), rint rounding half to even.
 * DequantizeLinear: y = (x - zero_point) * scale, in the scale's dtype.
 */
import { dtypeFromOnnx, intRange, isFloat, type DType } from "../../dtype.js";
import { roundToBf16, roundToF16 } from "../../half.js";
import type { Node } from "../../graph.js";
import { Tensor, shapeSize } from "../../tensor.js";
import type { KernelTable } from "../types.js";
import { roundEven } from "./elementwise.js";
import { alloc, broadcastShape, broadcastStrides, fail, floatData, need, normAxis } from "./util.js";

const QUANT_TYPES = new Set<DType>(["uint8", "int8", "uint16", "int16", "int32", "uint4", "int4"]);

/** How scale/zero-point elements map onto x: per tensor, per axis, or per block along an axis. */
interface Granularity {
  outer: number;
  dim: number;
  inner: number;
  /** 0 per tensor, 1 per axis, 2 blocked */
  kind: number;
  block: number;
  /** scale extent along the axis (blocked) */
  sdim: number;
}

function granularity(x: Tensor, scale: Tensor, node: Node, op: string): Granularity {
  const block = node.int("block_size", 0);
  if (scale.size === 1 && block <= 0) return { outer: 1, dim: 1, inner: x.size, kind: 0, block: 0, sdim: 1 };
  const axis = normAxis(node.int("axis", 1), x.rank, `${op} axis`);
  let outer = 1, inner = 1;
  for (let i = 0; i < axis; i++) outer *= x.shape[i]!;
  for (let i = axis + 1; i < x.rank; i++) inner *= x.shape[i]!;
  const dim = x.shape[axis]!;
  if (block <= 0) {
    if (scale.rank !== 1 || scale.size !== dim) {
      fail(`${op}: per-axis scale has shape [${scale.shape.join(",")}] but axis ${axis} of x has ${dim} elements`);
    }
    return { outer, dim, inner, kind: 1, block: 0, sdim: dim };
  }
  const sdim = Math.ceil(dim / block);
  const ok = scale.rank === x.rank && scale.shape.every((d, i) => (i === axis ? d === sdim : d === x.shape[i]));
  if (!ok) fail(`${op}: blocked scale shape [${scale.shape.join(",")}] does not fit x [${x.shape.join(",")}] with block_size ${block} on axis ${axis}`);
  return { outer, dim, inner, kind: 2, block, sdim };
}

/**
 * Walk x as runs of `inner` elements sharing a scale pattern: run (o, j) starts at element
 * (o * dim + j) * inner and its element i uses scale index base + step * i.
 */
function runBase(g: Granularity, o: number, j: number): number {
  return g.kind === 0 ? 0 : g.kind === 1 ? j : (o * g.sdim + Math.floor(j / g.block)) * g.inner;
}

/** 1.5 * 2^52: (v + RNE_MAGIC) - RNE_MAGIC rounds v half to even for |v| < 2^51 (bigger values saturate anyway). */
const RNE_MAGIC = 6755399441055744;

function rounder(dt: DType): (v: number) => number {
  return dt === "float16" ? roundToF16 : dt === "bfloat16" ? roundToBf16 : dt === "float64" ? (v) => v : Math.fround;
}

function quantize(inputs: (Tensor | undefined)[], node: Node): Tensor {
  const x = need(inputs, 0, "QuantizeLinear"), scale = need(inputs, 1, "QuantizeLinear"), zp = inputs[2];
  let dt: DType = "uint8";
  if (zp) dt = zp.dtype;
  else if (node.int("output_dtype", 0) !== 0) {
    const code = node.int("output_dtype", 0);
    dt = dtypeFromOnnx(code) ?? fail(`QuantizeLinear: output_dtype ${code} is not supported`);
  }
  if (!QUANT_TYPES.has(dt)) fail(`QuantizeLinear: quantizing to ${dt} is not supported`);
  const g = granularity(x, scale, node, "QuantizeLinear");
  const sv = scale.toNumbers(), zv = zp ? zp.toNumbers() : new Float64Array(sv.length);
  const [lo, hi] = intRange(dt);
  const t = alloc(dt, x.shape);
  const out = t.data as Int8Array | Uint8Array | Int16Array | Uint16Array | Int32Array;
  const step = g.kind === 2 ? 1 : 0;
  let p = 0;
  if (scale.dtype === "float32" && (x.dtype === "float32" || x.dtype === "float16" || x.dtype === "bfloat16")) {
    // x is exact in float32; the division is rounded to float32
    const xv = floatData(x);
    for (let o = 0; o < g.outer; o++) {
      for (let j = 0; j < g.dim; j++) {
        const base = runBase(g, o, j);
        for (let i = 0; i < g.inner; i++, p++) {
          const s = base + step * i;
          let q = (Math.fround(xv[p]! / sv[s]!) + RNE_MAGIC - RNE_MAGIC) + zv[s]!;
          if (q !== q) q = 0; // NaN (e.g. 0/0)
          out[p] = q < lo ? lo : q > hi ? hi : q;
        }
      }
    }
    return t;
  }
  // other precisions: x and the quotient rounded to the scale's dtype
  const xv = x.toNumbers();
  const round = rounder(scale.dtype);
  for (let o = 0; o < g.outer; o++) {
    for (let j = 0; j < g.dim; j++) {
      const base = runBase(g, o, j);
      for (let i = 0; i < g.inner; i++, p++) {
        const s = base + step * i;
        let q = roundEven(round(round(xv[p]!) / sv[s]!)) + zv[s]!;
        if (q !== q) q = 0;
        out[p] = q < lo ? lo : q > hi ? hi : q;
      }
    }
  }
  return t;
}

function dequantize(inputs: (Tensor | undefined)[], node: Node): Tensor {
  const x = need(inputs, 0, "DequantizeLinear"), scale = need(inputs, 1, "DequantizeLinear"), zp = inputs[2];
  if (!QUANT_TYPES.has(x.dtype)) fail(`DequantizeLinear: input dtype ${x.dtype} is not supported`);
  if (!isFloat(scale.dtype)) fail(`DequantizeLinear: scale must be a float tensor, got ${scale.dtype}`);
  const g = granularity(x, scale, node, "DequantizeLinear");
  const xv = x.data as Int8Array | Uint8Array | Int16Array | Uint16Array | Int32Array;
  const sv = scale.toNumbers(), zv = zp ? zp.toNumbers() : new Float64Array(sv.length);
  const dt = scale.dtype;
  // (x - zp) is an exact integer; the product is rounded once, to the output dtype
  const o = dt === "float32" ? new Float32Array(x.size) : new Float64Array(x.size);
  const step = g.kind === 2 ? 1 : 0;
  let p = 0;
  for (let b = 0; b < g.outer; b++) {
    for (let j = 0; j < g.dim; j++) {
      const base = runBase(g, b, j);
      for (let i = 0; i < g.inner; i++, p++) {
        const s = base + step * i;
        o[p] = (xv[p]! - zv[s]!) * sv[s]!;
      }
    }
  }
  return dt === "float32" ? new Tensor("float32", x.shape, o) : Tensor.fromNumbers(dt, x.shape, o);
}

function dynamicQuantize(x: Tensor): Tensor[] {
  const v = x.toNumbers();
  let mn = 0, mx = 0;
  for (let i = 0; i < v.length; i++) {
    const a = v[i]!;
    if (a < mn) mn = a;
    if (a > mx) mx = a;
  }
  const f = Math.fround;
  const scale = f(f(mx - mn) / 255);
  let zp = scale === 0 ? 0 : roundEven(Math.min(255, Math.max(0, f(0 - f(mn / scale)))));
  if (zp !== zp) zp = 0;
  const y = new Uint8Array(v.length);
  for (let i = 0; i < v.length; i++) {
    let q = scale === 0 ? zp : roundEven(f(v[i]! / scale)) + zp;
    if (q !== q) q = 0;
    y[i] = q < 0 ? 0 : q > 255 ? 255 : q;
  }
  return [
    new Tensor("uint8", x.shape, y),
    new Tensor("float32", [], Float32Array.of(scale)),
    new Tensor("uint8", [], Uint8Array.of(zp)),
  ];
}

/** Values of a (possibly per-row / per-column) quantization parameter. */
function param(t: Tensor | undefined, n: number, what: string): Float64Array {
  if (!t) return new Float64Array(n);
  const v = t.toNumbers();
  if (v.length === 1) return new Float64Array(n).fill(v[0]!);
  if (v.length !== n) fail(`QLinearMatMul: ${what} has ${v.length} elements, expected 1 or ${n}`);
  return v;
}

function qlinearMatMul(inputs: (Tensor | undefined)[]): Tensor {
  const op = "QLinearMatMul";
  const A = need(inputs, 0, op), B = need(inputs, 3, op);
  const yzpT = inputs[7];
  const dt = yzpT ? yzpT.dtype : "uint8";
  const aShape = A.rank === 1 ? [1, A.shape[0]!] : [...A.shape];
  const bShape = B.rank === 1 ? [B.shape[0]!, 1] : [...B.shape];
  const M = aShape[aShape.length - 2]!, K = aShape[aShape.length - 1]!;
  const K2 = bShape[bShape.length - 2]!, N = bShape[bShape.length - 1]!;
  if (K !== K2) fail(`${op}: inner dimensions ${K} and ${K2} differ`);
  const aBatch = aShape.slice(0, -2), bBatch = bShape.slice(0, -2);
  const batch = broadcastShape([aBatch, bBatch]);
  const as = param(inputs[1], M, "a_scale"), az = param(inputs[2], M, "a_zero_point");
  const bs = param(inputs[4], N, "b_scale"), bz = param(inputs[5], N, "b_zero_point");
  const ys = need(inputs, 6, op).scalar(), yz = yzpT ? yzpT.scalar() : 0;
  const av = A.toNumbers(), bv = B.toNumbers();
  const nb = shapeSize(batch);
  const out = new Float64Array(nb * M * N);
  const aSt = broadcastStrides(aBatch, batch), bSt = broadcastStrides(bBatch, batch);
  const [lo, hi] = intRange(dt);
  const f = Math.fround;
  const ctr = new Array<number>(batch.length).fill(0);
  for (let b = 0; b < nb; b++) {
    let ao = 0, bo = 0;
    for (let d = 0; d < batch.length; d++) {
      ao += ctr[d]! * aSt[d]!;
      bo += ctr[d]! * bSt[d]!;
    }
    ao *= M * K;
    bo *= K * N;
    for (let i = 0; i < M; i++) {
      for (let j = 0; j < N; j++) {
        let acc = 0;
        for (let k = 0; k < K; k++) acc += (av[ao + i * K + k]! - az[i]!) * (bv[bo + k * N + j]! - bz[j]!);
        const mult = f(f(as[i]! * bs[j]!) / ys);
        let q = roundEven(f(acc * mult)) + yz;
        if (q !== q) q = 0;
        out[(b * M + i) * N + j] = q < lo ? lo : q > hi ? hi : q;
      }
    }
    for (let d = batch.length - 1; d >= 0; d--) {
      if (++ctr[d]! < batch[d]!) break;
      ctr[d] = 0;
    }
  }
  let shape = [...batch, M, N];
  if (A.rank === 1) shape = shape.filter((_, i) => i !== shape.length - 2);
  if (B.rank === 1) shape = shape.slice(0, -1);
  return Tensor.fromNumbers(dt, shape, out);
}

export const kernels: KernelTable = {
  QuantizeLinear: (inputs, node) => [quantize(inputs, node)],
  DequantizeLinear: (inputs, node) => [dequantize(inputs, node)],
  DynamicQuantizeLinear: (inputs) => dynamicQuantize(need(inputs, 0, "DynamicQuantizeLinear")),
  QLinearMatMul: (inputs) => [qlinearMatMul(inputs)],
};
