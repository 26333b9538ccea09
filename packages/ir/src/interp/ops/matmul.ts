/** MatMul, Gemm, MatMulInteger, Einsum. Products are summed in float64 (see util-a's gemm). */
import { Tensor, shapeSize, stridesOf } from "../../tensor.js";
import type { Node } from "../../graph.js";
import type { KernelTable } from "../types.js";
import {
  type FArr, allocFor, broadcastOffsets, broadcastShapes, fail, floats, gemm, need, stridedPackB, tensorFrom,
} from "./util-a.js";

/**
 * numpy matmul of a (shape as) and b (shape bs) into a fresh array of the result; 1-D operands are
 * promoted and their axis removed from the result, batch axes broadcast.
 */
export function matmulValues(node: Node, a: FArr, as: readonly number[], b: FArr, bs: readonly number[], out: (n: number) => FArr): { shape: number[]; y: FArr } {
  if (as.length === 0 || bs.length === 0) fail(node, `operands must have rank >= 1`);
  const a2 = as.length === 1 ? [1, as[0]!] : as;
  const b2 = bs.length === 1 ? [bs[0]!, 1] : bs;
  const M = a2[a2.length - 2]!, K = a2[a2.length - 1]!;
  const K2 = b2[b2.length - 2]!, N = b2[b2.length - 1]!;
  if (K !== K2) fail(node, `inner dimensions differ: [${as}] x [${bs}]`);
  const aBatch = a2.slice(0, -2), bBatch = b2.slice(0, -2);
  const batch = broadcastShapes(aBatch, bBatch, node);
  const nb = shapeSize(batch);
  const aOffs = broadcastOffsets(aBatch, batch, node);
  const bOffs = broadcastOffsets(bBatch, batch, node);
  const y = out(nb * M * N);
  for (let i = 0; i < nb; i++) {
    gemm(M, N, K, a, aOffs[i]! * M * K, K, 1, stridedPackB(b, bOffs[i]! * K * N, N, 1), y, i * M * N, N);
  }
  const shape = [...batch];
  if (as.length > 1) shape.push(M);
  if (bs.length > 1) shape.push(N);
  return { shape, y };
}

function matmul(inputs: (Tensor | undefined)[], node: Node): Tensor[] {
  const A = need(inputs, 0, node, "A");
  const B = need(inputs, 1, node, "B");
  const { shape, y } = matmulValues(node, floats(A), A.shape, floats(B), B.shape, (n) => allocFor(A.dtype, n));
  return [tensorFrom(A.dtype, shape, y)];
}

function gemmOp(inputs: (Tensor | undefined)[], node: Node): Tensor[] {
  const A = need(inputs, 0, node, "A");
  const B = need(inputs, 1, node, "B");
  const Cin = inputs[2];
  if (A.rank !== 2 || B.rank !== 2) fail(node, `A and B must be 2-D, got [${A.shape}] and [${B.shape}]`);
  const alpha = node.float("alpha", 1);
  const beta = node.float("beta", 1);
  const tA = node.int("transA", 0) !== 0, tB = node.int("transB", 0) !== 0;
  const M = tA ? A.shape[1]! : A.shape[0]!;
  const K = tA ? A.shape[0]! : A.shape[1]!;
  const K2 = tB ? B.shape[1]! : B.shape[0]!;
  const N = tB ? B.shape[0]! : B.shape[1]!;
  if (K !== K2) fail(node, `inner dimensions differ: A' is ${M}x${K}, B' is ${K2}x${N}`);
  const ab = new Float64Array(M * N);
  const a = floats(A), b = floats(B);
  gemm(M, N, K, a, 0, tA ? 1 : K, tA ? M : 1, stridedPackB(b, 0, tB ? 1 : N, tB ? K : 1), ab, 0, N);
  const y = allocFor(A.dtype, M * N);
  if (Cin && beta !== 0) {
    const c = floats(Cin);
    const offs = broadcastOffsets(Cin.shape, [M, N], node);
    for (let i = 0; i < M * N; i++) y[i] = alpha * ab[i]! + beta * c[offs[i]!]!;
  } else {
    for (let i = 0; i < M * N; i++) y[i] = alpha * ab[i]!;
  }
  return [tensorFrom(A.dtype, [M, N], y)];
}

/** x - zero point, where the zero point broadcasts to x (per-row zero points given as [M] too). */
function shifted(node: Node, x: Tensor, zp: Tensor | undefined, perRow: boolean): Float64Array {
  const v = x.toNumbers();
  if (!zp) return v;
  const z = zp.toNumbers();
  if (z.length === 1) {
    const z0 = z[0]!;
    for (let i = 0; i < v.length; i++) v[i] -= z0;
    return v;
  }
  let zs = zp.shape;
  // a vector of per-row zero points of A [.., M, K] broadcasts as [M, 1]
  if (perRow && zs.length === 1 && x.rank >= 2) zs = [zs[0]!, 1];
  const offs = broadcastOffsets(zs, x.shape, node);
  for (let i = 0; i < v.length; i++) v[i] -= z[offs[i]!]!;
  return v;
}

function matmulInteger(inputs: (Tensor | undefined)[], node: Node): Tensor[] {
  const A = need(inputs, 0, node, "A");
  const B = need(inputs, 1, node, "B");
  const a = shifted(node, A, inputs[2], true);
  const b = shifted(node, B, inputs[3], false);
  const { shape, y } = matmulValues(node, a, A.shape, b, B.shape, (n) => new Float64Array(n));
  return [new Tensor("int32", shape, Int32Array.from(y, Math.round))];
}

// ---------------------------------------------------------------------------------------------
// Einsum
// ---------------------------------------------------------------------------------------------

/** Labels of a term's axes; `ell` ellipsis axes get labels of the last `ell` of "0".."total-1". */
function termLabels(node: Node, term: string, ell: number, total: number): string[] {
  const parts = term.split("...");
  if (parts.length > 2) fail(node, `term '${term}' has more than one ellipsis`);
  const out: string[] = [];
  parts.forEach((part, i) => {
    if (i === 1) for (let k = 0; k < ell; k++) out.push(String(total - ell + k));
    for (const ch of part) {
      if (!/[A-Za-z]/.test(ch)) fail(node, `bad character '${ch}' in equation`);
      out.push(ch);
    }
  });
  return out;
}

/** Number of axes the ellipsis of `term` stands for in an input of rank `rank`. */
function ellipsisRank(node: Node, term: string, rank: number): number {
  const letters = term.replace("...", "").length;
  if (!term.includes("...")) {
    if (letters !== rank) fail(node, `term '${term}' has ${letters} labels for an input of rank ${rank}`);
    return 0;
  }
  if (letters > rank) fail(node, `term '${term}' has more labels than the input's rank ${rank}`);
  return rank - letters;
}

function einsum(inputs: (Tensor | undefined)[], node: Node): Tensor[] {
  const eq = node.str("equation", "").replace(/\s+/g, "");
  const ts = inputs.map((t, i) => t ?? fail(node, `input ${i} is missing`));
  if (!ts.length) fail(node, `needs at least one input`);
  const [lhs, rhs] = eq.split("->") as [string, string | undefined];
  const terms = lhs.split(",");
  if (terms.length !== ts.length) fail(node, `equation '${eq}' has ${terms.length} terms for ${ts.length} inputs`);
  const ells = terms.map((t, i) => ellipsisRank(node, t, ts[i]!.rank));
  const nEll = Math.max(0, ...ells);
  const labels = terms.map((t, i) => termLabels(node, t, ells[i]!, nEll));
  // sizes of every label (ellipsis axes broadcast)
  const size = new Map<string, number>();
  labels.forEach((ls, i) => {
    ls.forEach((l, ax) => {
      const d = ts[i]!.shape[ax]!;
      const prev = size.get(l);
      const isEll = /^[0-9]/.test(l);
      if (prev === undefined || (isEll && prev === 1)) size.set(l, d);
      else if (prev !== d && !(isEll && d === 1)) fail(node, `label '${l}' has sizes ${prev} and ${d}`);
    });
  });
  let outLabels: string[];
  const ellLabels = Array.from({ length: nEll }, (_, i) => String(i));
  if (rhs !== undefined) {
    outLabels = termLabels(node, rhs, rhs.includes("...") ? nEll : 0, nEll);
    for (const l of outLabels) if (!size.has(l)) fail(node, `output label '${l}' is not in any input`);
    if (new Set(outLabels).size !== outLabels.length) fail(node, `output labels repeat in '${rhs}'`);
  } else {
    const count = new Map<string, number>();
    for (const ls of labels) for (const l of ls) if (!/^[0-9]/.test(l)) count.set(l, (count.get(l) ?? 0) + 1);
    outLabels = [...ellLabels, ...[...count].filter(([, c]) => c === 1).map(([l]) => l).sort()];
  }
  const sumLabels = [...size.keys()].filter((l) => !outLabels.includes(l));
  const all = [...outLabels, ...sumLabels];
  const dims = all.map((l) => size.get(l)!);
  // per input, per loop label, the stride (0 where absent or broadcast)
  const strides = ts.map((t, i) => {
    const st = stridesOf(t.shape);
    return all.map((l) => {
      let s = 0;
      labels[i]!.forEach((m, ax) => {
        if (m === l && t.shape[ax] !== 1) s += st[ax]!;
      });
      return s;
    });
  });
  const vals = ts.map((t) => floats(t));
  const outShape = outLabels.map((l) => size.get(l)!);
  const nOut = shapeSize(outShape);
  const nSum = shapeSize(sumLabels.map((l) => size.get(l)!));
  const y = new Float64Array(nOut);
  const L = all.length, nIn = ts.length;
  const idx = new Int32Array(L);
  const off = new Float64Array(nIn);
  const st = strides.map((s) => Int32Array.from(s));
  const total = nOut * nSum;
  for (let it = 0; it < total; it++) {
    let p = 1;
    for (let i = 0; i < nIn; i++) p *= vals[i]![off[i]!]!;
    y[Math.floor(it / nSum)] += p;
    for (let d = L - 1; d >= 0; d--) {
      idx[d]++;
      for (let i = 0; i < nIn; i++) off[i] += st[i]![d]!;
      if (idx[d]! < dims[d]!) break;
      for (let i = 0; i < nIn; i++) off[i] -= st[i]![d]! * dims[d]!;
      idx[d] = 0;
    }
  }
  return [tensorFrom(ts[0]!.dtype, outShape, y)];
}

export const kernels: KernelTable = {
  MatMul: (inputs, node) => matmul(inputs, node),
  Gemm: (inputs, node) => gemmOp(inputs, node),
  MatMulInteger: (inputs, node) => matmulInteger(inputs, node),
  Einsum: (inputs, node) => einsum(inputs, node),
};
