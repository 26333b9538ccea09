/**
 * BatchNormalization, LayerNormalization, InstanceNormalization, GroupNormalization, LRN.
 * Statistics are computed in float64 and the results rounded once to the output dtype.
 */
import { Tensor, shapeSize } from "../../tensor.js";
import { dtypeFromOnnx, type DType } from "../../dtype.js";
import type { Node } from "../../graph.js";
import type { KernelTable } from "../types.js";
import { allocFor, broadcastOffsets, fail, floats, need, normAxis, tensorFrom } from "./util-a.js";

function batchNorm(inputs: (Tensor | undefined)[], node: Node, opset: number): Tensor[] {
  const X = need(inputs, 0, node, "X");
  const scale = floats(need(inputs, 1, node, "scale"));
  const bias = floats(need(inputs, 2, node, "B"));
  const meanT = need(inputs, 3, node, "mean");
  const varT = need(inputs, 4, node, "var");
  const mean = floats(meanT), vari = floats(varT);
  const eps = node.float("epsilon", 1e-5);
  if (X.rank < 2) fail(node, `input must have rank >= 2`);
  const N = X.shape[0]!, C = X.shape[1]!;
  const S = shapeSize(X.shape.slice(2));
  const x = floats(X);
  const y = allocFor(X.dtype, X.size);
  const training = opset >= 14 && node.int("training_mode", 0) === 1;
  // opset 7-8 with spatial=0: statistics of shape [C, D1, ...], one set per element of a sample
  const perElement = scale.length !== C && scale.length === C * S;
  if (perElement) {
    const F = C * S;
    for (let n = 0; n < N; n++) {
      for (let f = 0; f < F; f++) {
        const i = n * F + f;
        y[i] = (x[i]! - mean[f]!) / Math.sqrt(vari[f]! + eps) * scale[f]! + bias[f]!;
      }
    }
    return [tensorFrom(X.dtype, X.shape, y)];
  }
  if (scale.length !== C || bias.length !== C || mean.length !== C || vari.length !== C) {
    fail(node, `scale, B, mean and var must have ${C} values`);
  }
  let useMean: ArrayLike<number> = mean, useVar: ArrayLike<number> = vari;
  let outMean: Float64Array | undefined, outVar: Float64Array | undefined;
  if (training) {
    const bm = new Float64Array(C), bv = new Float64Array(C);
    const cnt = N * S;
    for (let c = 0; c < C; c++) {
      let s = 0;
      for (let n = 0; n < N; n++) for (let i = (n * C + c) * S, e = i + S; i < e; i++) s += x[i]!;
      const m = s / cnt;
      let q = 0;
      for (let n = 0; n < N; n++) {
        for (let i = (n * C + c) * S, e = i + S; i < e; i++) {
          const d = x[i]! - m;
          q += d * d;
        }
      }
      bm[c] = m;
      bv[c] = q / cnt;
    }
    const mom = node.float("momentum", 0.9);
    outMean = new Float64Array(C);
    outVar = new Float64Array(C);
    for (let c = 0; c < C; c++) {
      outMean[c] = mean[c]! * mom + bm[c]! * (1 - mom);
      outVar[c] = vari[c]! * mom + bv[c]! * (1 - mom);
    }
    useMean = bm;
    useVar = bv;
  }
  for (let c = 0; c < C; c++) {
    const k = scale[c]! / Math.sqrt(useVar[c]! + eps);
    const m = useMean[c]!, b = bias[c]!;
    for (let n = 0; n < N; n++) {
      for (let i = (n * C + c) * S, e = i + S; i < e; i++) y[i] = (x[i]! - m) * k + b;
    }
  }
  const res = [tensorFrom(X.dtype, X.shape, y)];
  if (outMean && outVar) {
    res.push(tensorFrom(meanT.dtype, meanT.shape, outMean), tensorFrom(varT.dtype, varT.shape, outVar));
  }
  return res;
}

function stashType(node: Node, fallback: DType): DType {
  const code = node.int("stash_type", 1);
  const dt = dtypeFromOnnx(code);
  return dt ?? fallback;
}

function layerNorm(inputs: (Tensor | undefined)[], node: Node): Tensor[] {
  const X = need(inputs, 0, node, "X");
  const Sc = need(inputs, 1, node, "Scale");
  const Bt = inputs[2];
  const axis = normAxis(node.int("axis", -1), X.rank, node);
  const eps = node.float("epsilon", 1e-5);
  const normShape = X.shape.slice(axis);
  const D = shapeSize(normShape);
  const R = shapeSize(X.shape.slice(0, axis));
  const x = floats(X);
  const sc = floats(Sc);
  const scOff = broadcastOffsets(Sc.shape, normShape, node);
  const b = Bt ? floats(Bt) : undefined;
  const bOff = Bt ? broadcastOffsets(Bt.shape, normShape, node) : undefined;
  const y = allocFor(X.dtype, X.size);
  const meanOut = new Float64Array(R), invOut = new Float64Array(R);
  for (let r = 0; r < R; r++) {
    const o = r * D;
    let s = 0;
    for (let i = 0; i < D; i++) s += x[o + i]!;
    const m = s / D;
    let q = 0;
    for (let i = 0; i < D; i++) {
      const d = x[o + i]! - m;
      q += d * d;
    }
    const inv = 1 / Math.sqrt(q / D + eps);
    meanOut[r] = m;
    invOut[r] = inv;
    if (b && bOff) {
      for (let i = 0; i < D; i++) y[o + i] = (x[o + i]! - m) * inv * sc[scOff[i]!]! + b[bOff[i]!]!;
    } else {
      for (let i = 0; i < D; i++) y[o + i] = (x[o + i]! - m) * inv * sc[scOff[i]!]!;
    }
  }
  const statShape = [...X.shape.slice(0, axis), ...normShape.map(() => 1)];
  const U = stashType(node, "float32");
  return [
    tensorFrom(X.dtype, X.shape, y),
    tensorFrom(U, statShape, meanOut),
    tensorFrom(U, statShape, invOut),
  ];
}

function instanceNorm(inputs: (Tensor | undefined)[], node: Node): Tensor[] {
  const X = need(inputs, 0, node, "input");
  const sc = floats(need(inputs, 1, node, "scale"));
  const b = floats(need(inputs, 2, node, "B"));
  const eps = node.float("epsilon", 1e-5);
  if (X.rank < 2) fail(node, `input must have rank >= 2`);
  const N = X.shape[0]!, C = X.shape[1]!;
  if (sc.length !== C || b.length !== C) fail(node, `scale and B must have ${C} values`);
  const S = shapeSize(X.shape.slice(2));
  const x = floats(X);
  const y = allocFor(X.dtype, X.size);
  for (let n = 0; n < N; n++) {
    for (let c = 0; c < C; c++) {
      const o = (n * C + c) * S;
      let s = 0;
      for (let i = 0; i < S; i++) s += x[o + i]!;
      const m = s / S;
      let q = 0;
      for (let i = 0; i < S; i++) {
        const d = x[o + i]! - m;
        q += d * d;
      }
      const k = sc[c]! / Math.sqrt(q / S + eps);
      for (let i = 0; i < S; i++) y[o + i] = (x[o + i]! - m) * k + b[c]!;
    }
  }
  return [tensorFrom(X.dtype, X.shape, y)];
}

function groupNorm(inputs: (Tensor | undefined)[], node: Node): Tensor[] {
  const X = need(inputs, 0, node, "X");
  const sc = floats(need(inputs, 1, node, "scale"));
  const b = floats(need(inputs, 2, node, "bias"));
  const G = node.int("num_groups", 0);
  const eps = node.float("epsilon", 1e-5);
  if (X.rank < 2) fail(node, `input must have rank >= 2`);
  const N = X.shape[0]!, C = X.shape[1]!;
  if (G < 1 || C % G !== 0) fail(node, `num_groups ${G} does not divide ${C} channels`);
  // opset 18: scale/bias per group; opset 21: per channel
  const perChannel = sc.length === C;
  if (!perChannel && sc.length !== G) fail(node, `scale must have ${C} (or ${G}) values`);
  if (b.length !== sc.length) fail(node, `bias must have as many values as scale`);
  const S = shapeSize(X.shape.slice(2));
  const Cg = C / G;
  const x = floats(X);
  const y = allocFor(X.dtype, X.size);
  for (let n = 0; n < N; n++) {
    for (let g = 0; g < G; g++) {
      const o = (n * C + g * Cg) * S;
      const len = Cg * S;
      let s = 0;
      for (let i = 0; i < len; i++) s += x[o + i]!;
      const m = s / len;
      let q = 0;
      for (let i = 0; i < len; i++) {
        const d = x[o + i]! - m;
        q += d * d;
      }
      const inv = 1 / Math.sqrt(q / len + eps);
      for (let c = 0; c < Cg; c++) {
        const k = perChannel ? g * Cg + c : g;
        const a = sc[k]! * inv, bb = b[k]!;
        for (let i = o + c * S, e = i + S; i < e; i++) y[i] = (x[i]! - m) * a + bb;
      }
    }
  }
  return [tensorFrom(X.dtype, X.shape, y)];
}

function lrn(inputs: (Tensor | undefined)[], node: Node): Tensor[] {
  const X = need(inputs, 0, node, "X");
  const alpha = node.float("alpha", 1e-4);
  const beta = node.float("beta", 0.75);
  const bias = node.float("bias", 1);
  const size = node.int("size", 0);
  if (size < 1) fail(node, `size must be positive`);
  if (X.rank < 2) fail(node, `input must have rank >= 2`);
  const N = X.shape[0]!, C = X.shape[1]!;
  const S = shapeSize(X.shape.slice(2));
  const before = Math.floor((size - 1) / 2), after = Math.ceil((size - 1) / 2);
  const x = floats(X);
  const y = allocFor(X.dtype, X.size);
  const k = alpha / size;
  for (let n = 0; n < N; n++) {
    for (let c = 0; c < C; c++) {
      const c0 = Math.max(0, c - before), c1 = Math.min(C - 1, c + after);
      const o = (n * C + c) * S;
      for (let i = 0; i < S; i++) {
        let sq = 0;
        for (let cc = c0; cc <= c1; cc++) {
          const v = x[(n * C + cc) * S + i]!;
          sq += v * v;
        }
        y[o + i] = x[o + i]! / (bias + k * sq) ** beta;
      }
    }
  }
  return [tensorFrom(X.dtype, X.shape, y)];
}

export const kernels: KernelTable = {
  BatchNormalization: (inputs, node, ctx) => batchNorm(inputs, node, ctx.opset),
  LayerNormalization: (inputs, node) => layerNorm(inputs, node),
  InstanceNormalization: (inputs, node) => instanceNorm(inputs, node),
  GroupNormalization: (inputs, node) => groupNorm(inputs, node),
  LRN: (inputs, node) => lrn(inputs, node),
};
