/**
 * Conv, ConvTranspose, ConvInteger. Spatial ranks 1-3 are handled as 3-D (leading axes of size 1).
 * Conv packs im2col blocks straight into the GEMM's panels (1x1 convs read the input directly);
 * grouped convs with one input channel per group (depthwise) use direct loops.
 */
import { Tensor, shapeSize } from "../../tensor.js";
import type { Node } from "../../graph.js";
import type { KernelTable } from "../types.js";
import {
  type FArr, type PackB, type Window,
  allocFor, fail, floats, gemm, gemmPrepackedB, need, slidingWindow, stridedPackB, tensorFrom, validRange, GEMM_NR,
} from "./util-a.js";

/** Geometry of a conv, always as 3 spatial axes [D, H, W]. */
export interface ConvGeom {
  N: number;
  C: number;
  M: number;
  group: number;
  /** Input spatial sizes. */
  I: [number, number, number];
  /** Output spatial sizes. */
  O: [number, number, number];
  k: [number, number, number];
  s: [number, number, number];
  d: [number, number, number];
  /** Padding at the start of each axis. */
  p: [number, number, number];
}

function to3(v: readonly number[], fill: number): [number, number, number] {
  const r = [fill, fill, fill];
  for (let i = 0; i < v.length; i++) r[3 - v.length + i] = v[i]!;
  return r as [number, number, number];
}

/** Geometry of a Conv node from the shapes of X and W. */
export function convGeom(node: Node, xShape: readonly number[], wShape: readonly number[]): { g: ConvGeom; win: Window } {
  const nsp = xShape.length - 2;
  if (nsp < 1 || nsp > 3) fail(node, `input rank ${xShape.length} is not supported (1-3 spatial axes)`);
  if (wShape.length !== xShape.length) fail(node, `weight rank ${wShape.length} differs from input rank ${xShape.length}`);
  const group = node.int("group", 1);
  const C = xShape[1]!;
  const M = wShape[0]!;
  if (group < 1 || C % group !== 0 || M % group !== 0) fail(node, `group ${group} does not divide channels ${C} / ${M}`);
  if (wShape[1]! * group !== C) fail(node, `weight has ${wShape[1]} input channels per group, input has ${C} in ${group} groups`);
  const kernel = wShape.slice(2);
  const win = slidingWindow(node, xShape.slice(2), kernel);
  const g: ConvGeom = {
    N: xShape[0]!, C, M, group,
    I: to3(xShape.slice(2), 1), O: to3(win.out, 1), k: to3(kernel, 1),
    s: to3(win.strides, 1), d: to3(win.dilations, 1), p: to3(win.padB, 0),
  };
  return { g, win };
}

/**
 * y[N, M, O] = conv(x[N, C, I], w[M, C/group, k]) + bias. `y` must be zeroed; it may be
 * Float32Array or Float64Array, sums are formed in float64.
 */
export function convForward(g: ConvGeom, x: FArr, w: FArr, bias: FArr | undefined, y: FArr): void {
  const { N, C, M, group } = g;
  const Cg = (C / group) | 0, Mg = (M / group) | 0;
  const kk = g.k[0] * g.k[1] * g.k[2];
  const K = Cg * kk;
  const inP = g.I[0] * g.I[1] * g.I[2];
  const P = g.O[0] * g.O[1] * g.O[2];
  if (bias) {
    for (let n = 0; n < N; n++) for (let m = 0; m < M; m++) y.fill(bias[m]!, (n * M + m) * P, (n * M + m + 1) * P);
  }
  if (P === 0 || M === 0) return;
  const pointwise = kk === 1 && g.s.every((v) => v === 1) && g.p.every((v) => v === 0) && g.O.every((v, i) => v === g.I[i]);
  if (Cg === 1 && !pointwise) {
    depthwise(g, x, w, y);
    return;
  }
  if (useWinograd(g, x, w)) {
    winograd3x3(g, x, w, y);
    return;
  }
  const im2col = pointwise ? undefined : new Im2col(g);
  for (let n = 0; n < N; n++) {
    for (let gi = 0; gi < group; gi++) {
      const xOff = (n * C + gi * Cg) * inP;
      const wOff = gi * Mg * K;
      const yOff = (n * M + gi * Mg) * P;
      const pack: PackB = im2col ? im2col.packer(x, xOff) : stridedPackB(x, xOff, inP, 1);
      gemm(Mg, P, K, w, wOff, K, 1, pack, y, yOff, P);
    }
  }
}

/** Packs blocks of the (virtual) im2col matrix [Cg*kd*kh*kw, OD*OH*OW] into GEMM panels. */
class Im2col {
  private readonly kc: Int32Array;
  private readonly ka: Int32Array;
  private readonly kb: Int32Array;
  private readonly ke: Int32Array;
  /** Valid output-column range [lo, hi) for each kernel column e. */
  private readonly owLo: Int32Array;
  private readonly owHi: Int32Array;
  constructor(private readonly g: ConvGeom) {
    const Cg = (g.C / g.group) | 0;
    const [kd, kh, kw] = g.k;
    const K = Cg * kd * kh * kw;
    this.kc = new Int32Array(K);
    this.ka = new Int32Array(K);
    this.kb = new Int32Array(K);
    this.ke = new Int32Array(K);
    let r = 0;
    for (let c = 0; c < Cg; c++) {
      for (let a = 0; a < kd; a++) {
        for (let b = 0; b < kh; b++) {
          for (let e = 0; e < kw; e++, r++) {
            this.kc[r] = c; this.ka[r] = a; this.kb[r] = b; this.ke[r] = e;
          }
        }
      }
    }
    this.owLo = new Int32Array(kw);
    this.owHi = new Int32Array(kw);
    for (let e = 0; e < kw; e++) {
      const [lo, hi] = validRange(e * g.d[2], g.s[2], g.p[2], g.I[2], g.O[2]);
      this.owLo[e] = lo;
      this.owHi[e] = hi;
    }
  }

  packer(x: FArr, xOff: number): PackB {
    return (k0, k1, n0, n1, dst) => this.pack(x, xOff, k0, k1, n0, n1, dst);
  }

  private pack(x: FArr, xOff: number, k0: number, k1: number, n0: number, n1: number, dst: Float64Array): void {
    const g = this.g;
    const [ID, IH, IW] = g.I;
    const [, OH, OW] = g.O;
    const [sd, sh, sw] = g.s;
    const [dd, dh, dw] = g.d;
    const [pd, ph, pw] = g.p;
    const inP = ID * IH * IW;
    const kc = k1 - k0;
    const NR = GEMM_NR;
    const panel = NR * kc;
    dst.fill(0, 0, Math.ceil((n1 - n0) / NR) * panel);
    const od0 = Math.floor(n0 / (OH * OW)) | 0;
    const oh0 = (Math.floor(n0 / OW) % OH) | 0;
    const ow0 = n0 % OW;
    for (let k = k0; k < k1; k++) {
      const chan = xOff + this.kc[k]! * inP;
      const offD = this.ka[k]! * dd - pd;
      const offH = this.kb[k]! * dh - ph;
      const e = this.ke[k]!;
      const lo = this.owLo[e]!, hi = this.owHi[e]!;
      const offW = e * dw - pw;
      const kRow = (k - k0) * NR;
      let od = od0, oh = oh0, ow = ow0;
      let p = n0;
      while (p < n1) {
        const rowLen = Math.min(n1 - p, OW - ow);
        const id = od * sd + offD;
        const ih = oh * sh + offH;
        if (id >= 0 && id < ID && ih >= 0 && ih < IH) {
          const from = ow > lo ? ow : lo;
          const to = ow + rowLen < hi ? ow + rowLen : hi;
          const src = chan + (id * IH + ih) * IW + offW;
          let j = p - n0 + (from - ow);
          for (let o = from; o < to; o++, j++) {
            dst[(j >> 2) * panel + kRow + (j & 3)] = x[src + o * sw]!;
          }
        }
        p += rowLen;
        ow = 0;
        if (++oh === OH) {
          oh = 0;
          od++;
        }
      }
    }
  }
}

function allFinite(v: FArr): boolean {
  for (let i = 0; i < v.length; i++) if (!Number.isFinite(v[i]!)) return false;
  return true;
}

/**
 * Winograd F(2x2, 3x3) applies to 2-D 3x3 convs with stride 1 and dilation 1 that are big enough to
 * gain from it. It mixes the inputs of a tile, so non-finite values (whose sums differ from the
 * direct form: inf - inf) take the direct path.
 */
function useWinograd(g: ConvGeom, x: FArr, w: FArr): boolean {
  const Cg = (g.C / g.group) | 0;
  return (
    g.k[0] === 1 && g.k[1] === 3 && g.k[2] === 3 && g.I[0] === 1 && g.O[0] === 1 &&
    g.s[1] === 1 && g.s[2] === 1 && g.d[1] === 1 && g.d[2] === 1 &&
    Cg >= 4 && g.M / g.group >= 4 && g.O[1] * g.O[2] >= 64 &&
    allFinite(x) && allFinite(w)
  );
}

/**
 * 3x3 conv as Winograd F(2x2, 3x3): per 2x2 output tile, Y = A' [ sum_c (G g G') * (B' d B) ] A,
 * where d is the 4x4 input tile. The sum over channels is 16 GEMMs (one per tile position), which
 * takes 16 instead of 36 multiplications per tile. The transforms only add, subtract and halve
 * and everything runs in float64, so the results differ from the direct sums only at float64
 * rounding level, far below what the float32 output can show.
 */
function winograd3x3(g: ConvGeom, x: FArr, w: FArr, y: FArr): void {
  const { N, C, M, group } = g;
  const Cg = (C / group) | 0, Mg = (M / group) | 0;
  const IH = g.I[1], IW = g.I[2], OH = g.O[1], OW = g.O[2];
  const ph = g.p[1], pw = g.p[2];
  const inP = IH * IW, P = OH * OW;
  const TH = Math.ceil(OH / 2), TW = Math.ceil(OW / 2), T = TH * TW;
  // tiles per chunk: keep the transformed inputs near 4 MB
  const TC = Math.ceil(Math.min(T, Math.max(16, Math.floor((4 << 20) / (128 * Cg)))) / 4) * 4;
  const U = new Float64Array(16 * Mg * Cg);
  // V[xi] is the GEMM's B (Cg x tiles), stored packed: (c, j) at (j >> 2) * 4Cg + 4c + (j & 3)
  const V = new Float64Array(16 * Cg * TC);
  const Mx = new Float64Array(16 * Mg * TC);
  const d = new Float64Array(16);
  // a border tile, zero-padded; same array type as x so the loads below stay monomorphic
  const border: FArr = x instanceof Float32Array ? new Float32Array(16) : new Float64Array(16);
  for (let gi = 0; gi < group; gi++) {
    // U[xi][m][c] = (G g G')[xi] with G = [1 0 0; .5 .5 .5; .5 -.5 .5; 0 0 1]
    for (let m = 0; m < Mg; m++) {
      for (let c = 0; c < Cg; c++) {
        const o = ((gi * Mg + m) * Cg + c) * 9;
        for (let col = 0; col < 3; col++) {
          // t = G * g[:, col]
          const a = w[o + col]!, b = w[o + 3 + col]!, e = w[o + 6 + col]!;
          d[col] = a;
          d[4 + col] = 0.5 * (a + b + e);
          d[8 + col] = 0.5 * (a - b + e);
          d[12 + col] = e;
        }
        for (let r = 0; r < 4; r++) {
          const a = d[r * 4]!, b = d[r * 4 + 1]!, e = d[r * 4 + 2]!;
          const o4 = (r * 4 * Mg + m) * Cg + c, st = Mg * Cg;
          U[o4] = a;
          U[o4 + st] = 0.5 * (a + b + e);
          U[o4 + 2 * st] = 0.5 * (a - b + e);
          U[o4 + 3 * st] = e;
        }
      }
    }
    for (let n = 0; n < N; n++) {
      const xOff = (n * C + gi * Cg) * inP;
      const yOff = (n * M + gi * Mg) * P;
      for (let t0 = 0; t0 < T; t0 += TC) {
        const tc = Math.min(TC, T - t0);
        // V[xi][c][j] = (B' d B)[xi], B' = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1]
        const step = Cg * TC;
        for (let c = 0; c < Cg; c++) {
          const chan = xOff + c * inP;
          let th = Math.floor(t0 / TW) | 0, tw = t0 - th * TW;
          for (let j = 0; j < tc; j++) {
            const ih0 = 2 * th - ph, iw0 = 2 * tw - pw;
            let s = x, i0: number, rs = IW;
            if (ih0 >= 0 && ih0 + 4 <= IH && iw0 >= 0 && iw0 + 4 <= IW) {
              i0 = chan + ih0 * IW + iw0;
            } else {
              for (let r = 0; r < 4; r++) {
                const ih = ih0 + r;
                for (let q = 0; q < 4; q++) {
                  const iw = iw0 + q;
                  border[r * 4 + q] = ih >= 0 && ih < IH && iw >= 0 && iw < IW ? x[chan + ih * IW + iw]! : 0;
                }
              }
              s = border;
              i0 = 0;
              rs = 4;
            }
            const i1 = i0 + rs, i2 = i1 + rs, i3 = i2 + rs;
            // rows of B' d
            const a0 = s[i0]! - s[i2]!, a1 = s[i0 + 1]! - s[i2 + 1]!, a2 = s[i0 + 2]! - s[i2 + 2]!, a3 = s[i0 + 3]! - s[i2 + 3]!;
            const b0 = s[i1]! + s[i2]!, b1 = s[i1 + 1]! + s[i2 + 1]!, b2 = s[i1 + 2]! + s[i2 + 2]!, b3 = s[i1 + 3]! + s[i2 + 3]!;
            const c0 = s[i2]! - s[i1]!, c1 = s[i2 + 1]! - s[i1 + 1]!, c2 = s[i2 + 2]! - s[i1 + 2]!, c3 = s[i2 + 3]! - s[i1 + 3]!;
            const e0 = s[i1]! - s[i3]!, e1 = s[i1 + 1]! - s[i3 + 1]!, e2 = s[i1 + 2]! - s[i3 + 2]!, e3 = s[i1 + 3]! - s[i3 + 3]!;
            // times B, into the packed panels of the 16 GEMMs
            let o = (j >> 2) * 4 * Cg + c * 4 + (j & 3);
            V[o] = a0 - a2; o += step; V[o] = a1 + a2; o += step; V[o] = a2 - a1; o += step; V[o] = a1 - a3; o += step;
            V[o] = b0 - b2; o += step; V[o] = b1 + b2; o += step; V[o] = b2 - b1; o += step; V[o] = b1 - b3; o += step;
            V[o] = c0 - c2; o += step; V[o] = c1 + c2; o += step; V[o] = c2 - c1; o += step; V[o] = c1 - c3; o += step;
            V[o] = e0 - e2; o += step; V[o] = e1 + e2; o += step; V[o] = e2 - e1; o += step; V[o] = e1 - e3;
            if (++tw === TW) {
              tw = 0;
              th++;
            }
          }
        }
        Mx.fill(0);
        for (let xi = 0; xi < 16; xi++) {
          gemmPrepackedB(Mg, tc, Cg, U, xi * Mg * Cg, Cg, 1, V, xi * Cg * TC, Mx, xi * Mg * TC, TC);
        }
        // Y tile = A' m A, A' = [1 1 1 0; 0 1 -1 -1]
        const ms = Mg * TC;
        for (let m = 0; m < Mg; m++) {
          const yc = yOff + m * P;
          let th = Math.floor(t0 / TW) | 0, tw = t0 - th * TW;
          for (let j = 0; j < tc; j++) {
            let o = m * TC + j;
            const m0 = Mx[o]!, m1 = Mx[(o += ms)]!, m2 = Mx[(o += ms)]!, m3 = Mx[(o += ms)]!;
            const m4 = Mx[(o += ms)]!, m5 = Mx[(o += ms)]!, m6 = Mx[(o += ms)]!, m7 = Mx[(o += ms)]!;
            const m8 = Mx[(o += ms)]!, m9 = Mx[(o += ms)]!, m10 = Mx[(o += ms)]!, m11 = Mx[(o += ms)]!;
            const m12 = Mx[(o += ms)]!, m13 = Mx[(o += ms)]!, m14 = Mx[(o += ms)]!, m15 = Mx[(o += ms)]!;
            // rows of A' m
            const p0 = m0 + m4 + m8, p1 = m1 + m5 + m9, p2 = m2 + m6 + m10, p3 = m3 + m7 + m11;
            const q0 = m4 - m8 - m12, q1 = m5 - m9 - m13, q2 = m6 - m10 - m14, q3 = m7 - m11 - m15;
            const oh = 2 * th, ow = 2 * tw;
            const yy = yc + oh * OW + ow;
            const right = ow + 1 < OW;
            y[yy] += p0 + p1 + p2;
            if (right) y[yy + 1] += p1 - p2 - p3;
            if (oh + 1 < OH) {
              y[yy + OW] += q0 + q1 + q2;
              if (right) y[yy + OW + 1] += q1 - q2 - q3;
            }
            if (++tw === TW) {
              tw = 0;
              th++;
            }
          }
        }
      }
    }
  }
}

/**
 * Grouped conv with one input channel per group (depthwise): direct loops, one output row at a
 * time (accumulated in float64 in a row buffer that stays in cache). `y` holds the bias already.
 */
function depthwise(g: ConvGeom, x: FArr, w: FArr, y: FArr): void {
  const { N, C, M } = g;
  const Mg = (M / g.group) | 0;
  const [ID, IH, IW] = g.I;
  const [OD, OH, OW] = g.O;
  const [kd, kh, kw] = g.k;
  const [sd, sh, sw] = g.s;
  const [dd, dh, dw] = g.d;
  const [pd, ph, pw] = g.p;
  const kk = kd * kh * kw;
  const inP = ID * IH * IW;
  const P = OD * OH * OW;
  const acc = new Float64Array(OW);
  const owLo = new Int32Array(kw), owHi = new Int32Array(kw);
  for (let e = 0; e < kw; e++) {
    const [lo, hi] = validRange(e * dw, sw, pw, IW, OW);
    owLo[e] = lo;
    owHi[e] = hi;
  }
  // output columns where every tap of a kernel row reads inside the input
  let A = 0, B = OW;
  for (let e = 0; e < kw; e++) {
    A = Math.max(A, owLo[e]!);
    B = Math.min(B, owHi[e]!);
  }
  if (B < A) B = A;
  for (let n = 0; n < N; n++) {
    for (let m = 0; m < M; m++) {
      const chan = (n * C + ((m / Mg) | 0)) * inP;
      const yOff = (n * M + m) * P;
      const w0 = m * kk;
      for (let od = 0; od < OD; od++) {
        for (let oh = 0; oh < OH; oh++) {
          const dst = yOff + (od * OH + oh) * OW;
          for (let i = 0; i < OW; i++) acc[i] = y[dst + i]!;
          for (let a = 0; a < kd; a++) {
            const id = od * sd - pd + a * dd;
            if (id < 0 || id >= ID) continue;
            for (let b = 0; b < kh; b++) {
              const ih = oh * sh - ph + b * dh;
              if (ih < 0 || ih >= IH) continue;
              const row = chan + (id * IH + ih) * IW - pw;
              const wi = w0 + (a * kh + b) * kw;
              if (kw === 3) {
                // all three taps valid on [A, B): one pass; the edges tap by tap
                const wa = w[wi]!, wb = w[wi + 1]!, wc = w[wi + 2]!;
                for (let ow = A; ow < B; ow++) {
                  const i = row + ow * sw;
                  acc[ow] += wa * x[i]! + wb * x[i + dw]! + wc * x[i + 2 * dw]!;
                }
                edges(acc, x, w, wi, row, kw, dw, sw, owLo, owHi, A, B);
              } else if (kw === 5) {
                const wa = w[wi]!, wb = w[wi + 1]!, wc = w[wi + 2]!, wd = w[wi + 3]!, we = w[wi + 4]!;
                for (let ow = A; ow < B; ow++) {
                  const i = row + ow * sw;
                  acc[ow] += wa * x[i]! + wb * x[i + dw]! + wc * x[i + 2 * dw]! + wd * x[i + 3 * dw]! + we * x[i + 4 * dw]!;
                }
                edges(acc, x, w, wi, row, kw, dw, sw, owLo, owHi, A, B);
              } else {
                for (let e = 0; e < kw; e++) {
                  const wv = w[wi + e]!;
                  const src = row + e * dw;
                  const hi = owHi[e]!;
                  for (let ow = owLo[e]!; ow < hi; ow++) acc[ow] += wv * x[src + ow * sw]!;
                }
              }
            }
          }
          for (let i = 0; i < OW; i++) y[dst + i] = acc[i]!;
        }
      }
    }
  }
}

/** The taps of one kernel row at output columns outside [A, B) (where some taps fall off the input). */
function edges(acc: Float64Array, x: FArr, w: FArr, wi: number, row: number, kw: number, dw: number, sw: number, owLo: Int32Array, owHi: Int32Array, A: number, B: number): void {
  for (let e = 0; e < kw; e++) {
    const wv = w[wi + e]!;
    const src = row + e * dw;
    const lo = owLo[e]!, hi = owHi[e]!;
    for (let ow = lo; ow < hi && ow < A; ow++) acc[ow] += wv * x[src + ow * sw]!;
    for (let ow = Math.max(lo, B); ow < hi; ow++) acc[ow] += wv * x[src + ow * sw]!;
  }
}

function conv(inputs: (Tensor | undefined)[], node: Node): Tensor[] {
  const X = need(inputs, 0, node, "X");
  const W = need(inputs, 1, node, "W");
  const B = inputs[2];
  const { g, win } = convGeom(node, X.shape, W.shape);
  if (B && B.size !== g.M) fail(node, `bias has ${B.size} values, expected ${g.M}`);
  const outShape = [g.N, g.M, ...win.out];
  const y = allocFor(X.dtype, shapeSize(outShape));
  convForward(g, floats(X), floats(W), B ? floats(B) : undefined, y);
  return [tensorFrom(X.dtype, outShape, y)];
}

function zeroPoint(t: Tensor | undefined): Float64Array {
  return t ? t.toNumbers() : new Float64Array([0]);
}

function convInteger(inputs: (Tensor | undefined)[], node: Node): Tensor[] {
  const X = need(inputs, 0, node, "x");
  const W = need(inputs, 1, node, "w");
  const { g, win } = convGeom(node, X.shape, W.shape);
  const xz = zeroPoint(inputs[2]);
  const wz = zeroPoint(inputs[3]);
  if (xz.length !== 1) fail(node, `x_zero_point must be a scalar`);
  if (wz.length !== 1 && wz.length !== g.M) fail(node, `w_zero_point must be a scalar or have ${g.M} values`);
  const x = X.toNumbers();
  const zx = xz[0]!;
  for (let i = 0; i < x.length; i++) x[i] -= zx;
  const w = W.toNumbers();
  const per = W.size / g.M;
  for (let m = 0; m < g.M; m++) {
    const z = wz.length === 1 ? wz[0]! : wz[m]!;
    for (let i = m * per; i < (m + 1) * per; i++) w[i] -= z;
  }
  const outShape = [g.N, g.M, ...win.out];
  const y = new Float64Array(shapeSize(outShape));
  convForward(g, x, w, undefined, y);
  return [new Tensor("int32", outShape, Int32Array.from(y, Math.round))];
}

/** Geometry of a ConvTranspose node: output sizes and start pads per spatial axis. */
export function convTransposeGeom(node: Node, xShape: readonly number[], wShape: readonly number[]): ConvGeom {
  const nsp = xShape.length - 2;
  if (nsp < 1 || nsp > 3) fail(node, `input rank ${xShape.length} is not supported (1-3 spatial axes)`);
  if (wShape.length !== xShape.length) fail(node, `weight rank ${wShape.length} differs from input rank ${xShape.length}`);
  const group = node.int("group", 1);
  const C = xShape[1]!;
  if (wShape[0] !== C) fail(node, `weight has ${wShape[0]} input channels, input has ${C}`);
  if (C % group !== 0) fail(node, `group ${group} does not divide ${C} input channels`);
  const M = wShape[1]! * group;
  const inSp = xShape.slice(2);
  const kernel = wShape.slice(2);
  const strides = node.ints("strides", []);
  const dil = node.ints("dilations", []);
  const outPad = node.ints("output_padding", []);
  let outShape = node.ints("output_shape", []);
  if (outShape.length === nsp + 2) outShape = outShape.slice(2);
  const autoPad = node.str("auto_pad", "NOTSET");
  const pads = node.ints("pads", []);
  const out: number[] = [], padB: number[] = [];
  for (let i = 0; i < nsp; i++) {
    const s = strides[i] ?? 1, d = dil[i] ?? 1, op = outPad[i] ?? 0;
    const full = s * (inSp[i]! - 1) + op + (kernel[i]! - 1) * d + 1;
    if (outShape.length || autoPad === "SAME_UPPER" || autoPad === "SAME_LOWER") {
      const o = outShape.length ? outShape[i]! : inSp[i]! * s;
      const total = full - o;
      const half = Math.floor(total / 2);
      // ONNX: SAME_UPPER puts the odd pad at the end, otherwise at the start
      padB.push(autoPad === "SAME_UPPER" ? half : total - half);
      out.push(o);
    } else {
      const pb = autoPad === "VALID" ? 0 : pads[i] ?? 0;
      const pe = autoPad === "VALID" ? 0 : pads[i + nsp] ?? 0;
      padB.push(pb);
      out.push(full - pb - pe);
    }
    if (out[i]! < 0) fail(node, `negative output size on spatial axis ${i}`);
  }
  return {
    N: xShape[0]!, C, M, group,
    I: to3(inSp, 1), O: to3(out, 1), k: to3(kernel, 1),
    s: to3(Array.from({ length: nsp }, (_, i) => strides[i] ?? 1), 1),
    d: to3(Array.from({ length: nsp }, (_, i) => dil[i] ?? 1), 1),
    p: to3(padB, 0),
  };
}

/**
 * y[N, M, O] = convTranspose(x[N, C, I], w[C, M/group, k]) + bias; `y` must be zeroed. Per block of
 * input rows, cols = w' x (a GEMM) holds every tap's contribution, which is then scattered into the
 * output (col2im). Where windows overlap, contributions are summed in float64 first.
 */
export function convTransposeForward(g: ConvGeom, x: FArr, w: FArr, bias: FArr | undefined, y: FArr): void {
  const { N, C, M, group } = g;
  const Cg = (C / group) | 0, Mg = (M / group) | 0;
  const [ID, IH, IW] = g.I;
  const [OD, OH, OW] = g.O;
  const [kd, kh, kw] = g.k;
  const [sd, sh, sw] = g.s;
  const [dd, dh, dw] = g.d;
  const [pd, ph, pw] = g.p;
  const kk = kd * kh * kw;
  const R = Mg * kk;
  const inP = ID * IH * IW;
  const P = OD * OH * OW;
  if (bias) {
    for (let n = 0; n < N; n++) for (let m = 0; m < M; m++) y.fill(bias[m]!, (n * M + m) * P, (n * M + m + 1) * P);
  }
  if (P === 0 || inP === 0) return;
  const overlap = (kd - 1) * dd + 1 > sd || (kh - 1) * dh + 1 > sh || (kw - 1) * dw + 1 > sw;
  const acc = overlap ? new Float64Array(Mg * P) : undefined;
  const rows = ID * IH;
  const rowsPerBlock = Math.max(1, Math.floor((1 << 20) / 8 / (R * IW)));
  const cols = new Float64Array(R * Math.min(rows, rowsPerBlock) * IW);
  const iwLo = new Int32Array(kw), iwHi = new Int32Array(kw);
  for (let e = 0; e < kw; e++) {
    const [lo, hi] = validRange(e * dw, sw, pw, OW, IW);
    iwLo[e] = lo;
    iwHi[e] = hi;
  }
  for (let n = 0; n < N; n++) {
    for (let gi = 0; gi < group; gi++) {
      const xOff = (n * C + gi * Cg) * inP;
      const yOff = (n * M + gi * Mg) * P;
      const out: FArr = acc ?? y;
      const outOff = acc ? 0 : yOff;
      if (acc) acc.fill(0);
      for (let r0 = 0; r0 < rows; r0 += rowsPerBlock) {
        const r1 = Math.min(rows, r0 + rowsPerBlock);
        const chunk = (r1 - r0) * IW;
        cols.fill(0, 0, R * chunk);
        // cols[r, p] = sum_c w[gi*Cg + c, r] * x[c, r0*IW + p]
        gemm(R, chunk, Cg, w, gi * Cg * R, 1, R, stridedPackB(x, xOff + r0 * IW, inP, 1), cols, 0, chunk);
        for (let r = 0; r < R; r++) {
          const mg = (r / kk) | 0;
          let t = r - mg * kk;
          const e = t % kw;
          t = (t - e) / kw;
          const b = t % kh;
          const a = (t - b) / kh;
          const lo = iwLo[e]!, hi = iwHi[e]!;
          const offW = e * dw - pw;
          for (let row = r0; row < r1; row++) {
            const id = (row / IH) | 0, ih = row - id * IH;
            const od = id * sd - pd + a * dd;
            if (od < 0 || od >= OD) continue;
            const oh = ih * sh - ph + b * dh;
            if (oh < 0 || oh >= OH) continue;
            const src = r * chunk + (row - r0) * IW;
            const dst = outOff + mg * P + (od * OH + oh) * OW + offW;
            for (let iw = lo; iw < hi; iw++) out[dst + iw * sw] += cols[src + iw]!;
          }
        }
      }
      if (acc) for (let i = 0; i < Mg * P; i++) y[yOff + i] += acc[i]!;
    }
  }
}

function convTranspose(inputs: (Tensor | undefined)[], node: Node): Tensor[] {
  const X = need(inputs, 0, node, "X");
  const W = need(inputs, 1, node, "W");
  const B = inputs[2];
  const g = convTransposeGeom(node, X.shape, W.shape);
  if (B && B.size !== g.M) fail(node, `bias has ${B.size} values, expected ${g.M}`);
  const nsp = X.rank - 2;
  const outShape = [g.N, g.M, ...g.O.slice(3 - nsp)];
  const y = allocFor(X.dtype, shapeSize(outShape));
  convTransposeForward(g, floats(X), floats(W), B ? floats(B) : undefined, y);
  return [tensorFrom(X.dtype, outShape, y)];
}

export const kernels: KernelTable = {
  Conv: (inputs, node) => conv(inputs, node),
  ConvTranspose: (inputs, node) => convTranspose(inputs, node),
  ConvInteger: (inputs, node) => convInteger(inputs, node),
};
