/**
 * RNN, GRU and LSTM (forward / reverse / bidirectional, layout 0 and 1, sequence_lens, clip,
 * the optional activations). Computed in float64, results rounded once to the input dtype.
 */
import { Tensor } from "../../tensor.js";
import type { Node } from "../../graph.js";
import type { KernelTable } from "../types.js";
import { fail, gemm, need, stridedPackB, tensorFrom } from "./util-a.js";

interface Act {
  name: string;
  alpha: number;
  beta: number;
}

/** Which of alpha / beta an activation takes, and their defaults (those of the ONNX ops). */
const ACT_PARAMS: Record<string, [number | undefined, number | undefined]> = {
  relu: [undefined, undefined],
  tanh: [undefined, undefined],
  sigmoid: [undefined, undefined],
  affine: [1, 0],
  leakyrelu: [0.01, undefined],
  thresholdedrelu: [1, undefined],
  scaledtanh: [1, 1],
  hardsigmoid: [0.2, 0.5],
  elu: [1, undefined],
  softsign: [undefined, undefined],
  softplus: [undefined, undefined],
};

/** The activations of every direction: `perDir` per direction, alpha/beta consumed in order. */
function activations(node: Node, defaults: string[], numDir: number): Act[] {
  let names = node.strs("activations") ?? [];
  if (!names.length) names = defaults;
  if (names.length === defaults.length && numDir === 2) names = [...names, ...names];
  if (names.length !== defaults.length * numDir) {
    fail(node, `expected ${defaults.length * numDir} activations, got ${names.length}`);
  }
  const alphas = node.floats("activation_alpha", []);
  const betas = node.floats("activation_beta", []);
  let ia = 0, ib = 0;
  return names.map((n) => {
    const name = n.toLowerCase();
    const p = ACT_PARAMS[name];
    if (!p) fail(node, `unknown activation '${n}'`);
    let alpha = 0, beta = 0;
    if (p[0] !== undefined) alpha = ia < alphas.length ? alphas[ia++]! : p[0];
    if (p[1] !== undefined) beta = ib < betas.length ? betas[ib++]! : p[1];
    return { name, alpha, beta };
  });
}

/** In place: v[o..o+n) = act(clip(v)). */
function apply(act: Act, v: Float64Array, o: number, n: number, clip: number): void {
  const e = o + n;
  if (clip > 0) {
    for (let i = o; i < e; i++) {
      const x = v[i]!;
      v[i] = x > clip ? clip : x < -clip ? -clip : x;
    }
  }
  const { alpha, beta } = act;
  switch (act.name) {
    case "sigmoid":
      for (let i = o; i < e; i++) v[i] = 1 / (1 + Math.exp(-v[i]!));
      return;
    case "tanh":
      for (let i = o; i < e; i++) v[i] = Math.tanh(v[i]!);
      return;
    case "relu":
      for (let i = o; i < e; i++) v[i] = Math.max(0, v[i]!);
      return;
    case "affine":
      for (let i = o; i < e; i++) v[i] = alpha * v[i]! + beta;
      return;
    case "leakyrelu":
      for (let i = o; i < e; i++) {
        const x = v[i]!;
        v[i] = x >= 0 ? x : alpha * x;
      }
      return;
    case "thresholdedrelu":
      for (let i = o; i < e; i++) {
        const x = v[i]!;
        v[i] = x > alpha ? x : 0;
      }
      return;
    case "scaledtanh":
      for (let i = o; i < e; i++) v[i] = alpha * Math.tanh(beta * v[i]!);
      return;
    case "hardsigmoid":
      for (let i = o; i < e; i++) v[i] = Math.min(1, Math.max(0, alpha * v[i]! + beta));
      return;
    case "elu":
      for (let i = o; i < e; i++) {
        const x = v[i]!;
        v[i] = x >= 0 ? x : alpha * (Math.exp(x) - 1);
      }
      return;
    case "softsign":
      for (let i = o; i < e; i++) v[i] = v[i]! / (1 + Math.abs(v[i]!));
      return;
    case "softplus":
      for (let i = o; i < e; i++) {
        const x = v[i]!;
        v[i] = x > 0 ? x + Math.log1p(Math.exp(-x)) : Math.log1p(Math.exp(x));
      }
      return;
  }
}

type Kind = "rnn" | "gru" | "lstm";

function recurrent(inputs: (Tensor | undefined)[], node: Node, kind: Kind): Tensor[] {
  const G = kind === "rnn" ? 1 : kind === "gru" ? 3 : 4;
  const Xt = need(inputs, 0, node, "X");
  const Wt = need(inputs, 1, node, "W");
  const Rt = need(inputs, 2, node, "R");
  const Bt = inputs[3];
  const lensT = inputs[4];
  const h0T = inputs[5];
  const c0T = kind === "lstm" ? inputs[6] : undefined;
  const Pt = kind === "lstm" ? inputs[7] : undefined;
  const layout = node.int("layout", 0);
  const direction = node.str("direction", "forward");
  if (direction !== "forward" && direction !== "reverse" && direction !== "bidirectional") fail(node, `unknown direction '${direction}'`);
  const numDir = direction === "bidirectional" ? 2 : 1;
  if (Xt.rank !== 3) fail(node, `X must be 3-D`);
  const [S, Bn, I] = layout === 0 ? [Xt.shape[0]!, Xt.shape[1]!, Xt.shape[2]!] : [Xt.shape[1]!, Xt.shape[0]!, Xt.shape[2]!];
  const H = node.int("hidden_size", Rt.shape[2] ?? 0);
  if (Wt.shape[0] !== numDir || Wt.shape[1] !== G * H || Wt.shape[2] !== I) fail(node, `W has shape [${Wt.shape}], expected [${numDir},${G * H},${I}]`);
  if (Rt.shape[0] !== numDir || Rt.shape[1] !== G * H || Rt.shape[2] !== H) fail(node, `R has shape [${Rt.shape}], expected [${numDir},${G * H},${H}]`);
  const clip = node.float("clip", 0);
  const inputForget = kind === "lstm" && node.int("input_forget", 0) === 1;
  const linearBeforeReset = kind === "gru" && node.int("linear_before_reset", 0) === 1;
  const acts = activations(node, kind === "rnn" ? ["Tanh"] : kind === "gru" ? ["Sigmoid", "Tanh"] : ["Sigmoid", "Tanh", "Tanh"], numDir);
  const nAct = kind === "rnn" ? 1 : kind === "gru" ? 2 : 3;

  // X as [S, B, I]
  const xr = Xt.toNumbers();
  let X = xr;
  if (layout !== 0) {
    X = new Float64Array(xr.length);
    for (let b = 0; b < Bn; b++) for (let s = 0; s < S; s++) X.set(xr.subarray((b * S + s) * I, (b * S + s + 1) * I), (s * Bn + b) * I);
  }
  const W = Wt.toNumbers(), R = Rt.toNumbers();
  const Bv = Bt ? Bt.toNumbers() : new Float64Array(numDir * 2 * G * H);
  const P = Pt ? Pt.toNumbers() : undefined;
  const lens = new Int32Array(Bn).fill(S);
  if (lensT) {
    const l = lensT.toNumbers();
    for (let b = 0; b < Bn; b++) {
      if (l[b]! < 0 || l[b]! > S) fail(node, `sequence_lens[${b}] = ${l[b]} is outside [0, ${S}]`);
      lens[b] = l[b]!;
    }
  }
  /** [numDir, B, H] from an initial state input (layout-dependent). */
  const state = (t: Tensor | undefined): Float64Array => {
    const out = new Float64Array(numDir * Bn * H);
    if (!t) return out;
    const v = t.toNumbers();
    if (layout === 0) return v;
    for (let b = 0; b < Bn; b++) for (let d = 0; d < numDir; d++) out.set(v.subarray((b * numDir + d) * H, (b * numDir + d + 1) * H), (d * Bn + b) * H);
    return out;
  };
  const h0 = state(h0T), c0 = state(c0T);
  const Y = new Float64Array(S * numDir * Bn * H); // [S, numDir, B, H]
  const Yh = new Float64Array(numDir * Bn * H);
  const Yc = new Float64Array(numDir * Bn * H);
  const GH = G * H;

  for (let d = 0; d < numDir; d++) {
    const reverse = direction === "reverse" || d === 1;
    const wOff = d * GH * I, rOff = d * GH * H, bOff = d * 2 * GH;
    // XW[s, b, :] = X[s, b] W^T + Wb (+ Rb except GRU's hidden gate)
    const XW = new Float64Array(S * Bn * GH);
    gemm(S * Bn, GH, I, X, 0, I, 1, stridedPackB(W, wOff, 1, I), XW, 0, GH);
    for (let r = 0; r < S * Bn; r++) {
      for (let j = 0; j < GH; j++) {
        const rb = kind === "gru" && j >= 2 * H ? 0 : Bv[bOff + GH + j]!;
        XW[r * GH + j] += Bv[bOff + j]! + rb;
      }
    }
    const h = h0.slice(d * Bn * H, (d + 1) * Bn * H);
    const c = c0.slice(d * Bn * H, (d + 1) * Bn * H);
    const HR = new Float64Array(Bn * GH);
    const g = new Float64Array(GH);
    const rh = new Float64Array(H);
    const [fAct, gAct, hAct] = [acts[d * nAct]!, acts[d * nAct + 1], acts[d * nAct + 2]];
    for (let step = 0; step < S; step++) {
      HR.fill(0);
      gemm(Bn, GH, H, h, 0, H, 1, stridedPackB(R, rOff, 1, H), HR, 0, GH);
      for (let b = 0; b < Bn; b++) {
        const len = lens[b]!;
        if (step >= len) continue;
        const t = reverse ? len - 1 - step : step;
        const xw = (t * Bn + b) * GH;
        const ho = b * H;
        for (let j = 0; j < GH; j++) g[j] = XW[xw + j]! + HR[b * GH + j]!;
        if (kind === "rnn") {
          apply(fAct, g, 0, H, clip);
          for (let k = 0; k < H; k++) h[ho + k] = g[k]!;
        } else if (kind === "gru") {
          // gates z, r, h
          apply(fAct, g, 0, 2 * H, clip);
          const rbh = bOff + GH + 2 * H;
          if (linearBeforeReset) {
            for (let k = 0; k < H; k++) {
              g[2 * H + k] = XW[xw + 2 * H + k]! + g[H + k]! * (HR[b * GH + 2 * H + k]! + Bv[rbh + k]!);
            }
          } else {
            for (let k = 0; k < H; k++) rh[k] = g[H + k]! * h[ho + k]!;
            for (let k = 0; k < H; k++) {
              let s = XW[xw + 2 * H + k]! + Bv[rbh + k]!;
              const rr = rOff + (2 * H + k) * H;
              for (let m = 0; m < H; m++) s += rh[m]! * R[rr + m]!;
              g[2 * H + k] = s;
            }
          }
          apply(gAct!, g, 2 * H, H, clip);
          for (let k = 0; k < H; k++) {
            const z = g[k]!;
            h[ho + k] = (1 - z) * g[2 * H + k]! + z * h[ho + k]!;
          }
        } else {
          // gates i, o, f, c; peepholes P[i, o, f]
          const pOff = d * 3 * H;
          if (P) {
            for (let k = 0; k < H; k++) {
              g[k] += P[pOff + k]! * c[ho + k]!;
              g[2 * H + k] += P[pOff + 2 * H + k]! * c[ho + k]!;
            }
          }
          apply(fAct, g, 0, H, clip);
          if (inputForget) {
            for (let k = 0; k < H; k++) g[2 * H + k] = 1 - g[k]!;
          } else {
            apply(fAct, g, 2 * H, H, clip);
          }
          apply(gAct!, g, 3 * H, H, clip);
          for (let k = 0; k < H; k++) c[ho + k] = g[2 * H + k]! * c[ho + k]! + g[k]! * g[3 * H + k]!;
          if (P) for (let k = 0; k < H; k++) g[H + k] += P[pOff + H + k]! * c[ho + k]!;
          apply(fAct, g, H, H, clip);
          // h = o * hAct(clip(C)); the cell state itself is not clipped
          for (let k = 0; k < H; k++) g[3 * H + k] = c[ho + k]!;
          apply(hAct!, g, 3 * H, H, clip);
          for (let k = 0; k < H; k++) h[ho + k] = g[H + k]! * g[3 * H + k]!;
        }
        Y.set(h.subarray(ho, ho + H), ((t * numDir + d) * Bn + b) * H);
      }
    }
    for (let b = 0; b < Bn; b++) {
      if (lens[b] === 0) continue; // states of empty sequences are zero
      Yh.set(h.subarray(b * H, (b + 1) * H), (d * Bn + b) * H);
      Yc.set(c.subarray(b * H, (b + 1) * H), (d * Bn + b) * H);
    }
  }

  const dt = Xt.dtype;
  let yOut: Tensor, yhOut: Tensor, ycOut: Tensor;
  if (layout === 0) {
    yOut = tensorFrom(dt, [S, numDir, Bn, H], Y);
    yhOut = tensorFrom(dt, [numDir, Bn, H], Yh);
    ycOut = tensorFrom(dt, [numDir, Bn, H], Yc);
  } else {
    const y1 = new Float64Array(Y.length);
    for (let s = 0; s < S; s++) {
      for (let d = 0; d < numDir; d++) {
        for (let b = 0; b < Bn; b++) y1.set(Y.subarray(((s * numDir + d) * Bn + b) * H, ((s * numDir + d) * Bn + b + 1) * H), ((b * S + s) * numDir + d) * H);
      }
    }
    const swap = (v: Float64Array) => {
      const o = new Float64Array(v.length);
      for (let d = 0; d < numDir; d++) for (let b = 0; b < Bn; b++) o.set(v.subarray((d * Bn + b) * H, (d * Bn + b + 1) * H), (b * numDir + d) * H);
      return o;
    };
    yOut = tensorFrom(dt, [Bn, S, numDir, H], y1);
    yhOut = tensorFrom(dt, [Bn, numDir, H], swap(Yh));
    ycOut = tensorFrom(dt, [Bn, numDir, H], swap(Yc));
  }
  return kind === "lstm" ? [yOut, yhOut, ycOut] : [yOut, yhOut];
}

export const kernels: KernelTable = {
  RNN: (inputs, node) => recurrent(inputs, node, "rnn"),
  GRU: (inputs, node) => recurrent(inputs, node, "gru"),
  LSTM: (inputs, node) => recurrent(inputs, node, "lstm"),
};
