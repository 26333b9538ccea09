/**
 * Elementwise kernels: arithmetic with numpy broadcasting, activations, comparisons, logic,
 * Cast, Softmax-like ops over an axis. float32/float64 run on their own storage in tight loops;
 * float16/bfloat16 are computed in float32 and rounded back; 8- to 32-bit integers are computed
 * exactly in float64 and stored back with the dtype's wrap-around; int64/uint64 use bigints.
 */
import { dtypeFromOnnx, intRange, isBig, isFloat, type DType } from "../../dtype.js";
import type { Node } from "../../graph.js";
import { roundToBf16, roundToF16 } from "../../half.js";
import { Tensor } from "../../tensor.js";
import type { Kernel, KernelTable } from "../types.js";
import {
  alloc, around, bigData, bigLow32, broadcastPlan, fail, floatData, floatOut, fromFloats, need, normAxis, numbers,
  numbersToBig, halfFromNumbers, wordsOf,
  type FArr, type Plan,
} from "./util.js";

// ---------------------------------------------------------------------------------------------
// scalar math helpers

const TWO_OVER_SQRT_PI = 1.1283791670955126;
const INV_SQRT_PI = 0.5641895835477563;

/** erf(x) to double precision, slowly: a positive-term series below 2.5, a continued fraction above. */
export function erfSlow(x: number): number {
  const ax = Math.abs(x);
  if (ax < 2.5) {
    // erf(x) = 2/sqrt(pi) * exp(-x^2) * sum_n 2^n x^(2n+1) / (1*3*...*(2n+1))
    const x2 = x * x;
    let term = x, sum = x;
    for (let n = 1; n < 200; n++) {
      term *= (2 * x2) / (2 * n + 1);
      sum += term;
      if (Math.abs(term) <= 1e-17 * Math.abs(sum)) break;
    }
    return TWO_OVER_SQRT_PI * Math.exp(-x2) * sum;
  }
  if (!(ax < 6)) return Number.isNaN(x) ? x : Math.sign(x);
  // erfc(a) = exp(-a^2)/sqrt(pi) / (a + (1/2)/(a + (2/2)/(a + (3/2)/(a + ...))))
  let t = ax;
  for (let k = 60; k >= 1; k--) t = ax + k / 2 / t;
  const erfc = (Math.exp(-ax * ax) * INV_SQRT_PI) / t;
  return x < 0 ? erfc - 1 : 1 - erfc;
}

// erf by a table of erf(x0) and 2/sqrt(pi)*exp(-x0^2) every 1/32 on [0, 6] (filled with erfSlow)
// and a Taylor expansion around the nearest x0: erf(x0 + t) = erf(x0) + 2/sqrt(pi) exp(-x0^2) *
// sum_{m>=0} (-1)^m H_m(x0) t^(m+1)/(m+1)!, H_m the Hermite polynomials; |t| <= 1/64, so nine
// terms leave an error far below 1e-15.
const ERF_SCALE = 32;
const ERF_POINTS = 6 * ERF_SCALE + 1;
const ERF_TAB = new Float64Array(ERF_POINTS);
const ERF_DER = new Float64Array(ERF_POINTS);
for (let k = 0; k < ERF_POINTS; k++) {
  const x0 = k / ERF_SCALE;
  ERF_TAB[k] = erfSlow(x0);
  ERF_DER[k] = TWO_OVER_SQRT_PI * Math.exp(-x0 * x0);
}

/** erf(x), accurate to about 1e-15. */
export function erf(x: number): number {
  const ax = Math.abs(x);
  if (!(ax < 6)) return ax === ax ? (x < 0 ? -1 : 1) : x;
  const k = Math.round(ax * ERF_SCALE);
  const x0 = k / ERF_SCALE;
  const t = ax - x0;
  // m = 0 term: H_0 = 1
  let hPrev = 1, h = 2 * x0; // H_0, H_1
  let tn = t; // t^(m+1)/(m+1)!
  let sum = t;
  let sign = -1;
  for (let m = 1; m < 9; m++) {
    tn *= t / (m + 1);
    sum += sign * h * tn;
    const next = 2 * x0 * h - 2 * m * hPrev;
    hPrev = h;
    h = next;
    sign = -sign;
  }
  const r = ERF_TAB[k]! + ERF_DER[k]! * sum;
  return x < 0 ? -r : r;
}

/** Round half to even (numpy.rint). */
export function roundEven(x: number): number {
  const f = Math.floor(x);
  const d = x - f;
  let r: number;
  if (d > 0.5) r = f + 1;
  else if (d < 0.5) r = f;
  else if (d === 0.5) r = f % 2 === 0 ? f : f + 1;
  else return x; // NaN, +-Inf
  return r === 0 && x < 0 ? -0 : r; // keep the sign of zero, like rint
}

// ---------------------------------------------------------------------------------------------
// binary ops

const ADD = 0, SUB = 1, MUL = 2, DIV = 3, POW = 4, MAX = 5, MIN = 6, FMOD = 7, PMOD = 8, IDIV = 9, IMUL = 10, PRELU = 11;

/** o = a OP b over a broadcast plan, on float arrays (ints are passed as exact float64). */
function binLoop(op: number, a: FArr, b: FArr, o: FArr, p: Plan): void {
  const rows = p.rows, inner = p.inner;
  const oa = p.offs[0]!, ob = p.offs[1]!, sa = p.steps[0]!, sb = p.steps[1]!;
  let k = 0;
  for (let r = 0; r < rows; r++) {
    let i = oa[r]!, j = ob[r]!;
    const end = k + inner;
    switch (op) {
      case ADD: for (; k < end; k++, i += sa, j += sb) o[k] = a[i]! + b[j]!; break;
      case SUB: for (; k < end; k++, i += sa, j += sb) o[k] = a[i]! - b[j]!; break;
      case MUL: for (; k < end; k++, i += sa, j += sb) o[k] = a[i]! * b[j]!; break;
      case DIV: for (; k < end; k++, i += sa, j += sb) o[k] = a[i]! / b[j]!; break;
      case POW: for (; k < end; k++, i += sa, j += sb) o[k] = Math.pow(a[i]!, b[j]!); break;
      case MAX: for (; k < end; k++, i += sa, j += sb) o[k] = Math.max(a[i]!, b[j]!); break;
      case MIN: for (; k < end; k++, i += sa, j += sb) o[k] = Math.min(a[i]!, b[j]!); break;
      case FMOD: for (; k < end; k++, i += sa, j += sb) o[k] = a[i]! % b[j]!; break;
      case PMOD:
        for (; k < end; k++, i += sa, j += sb) {
          const y = b[j]!;
          let m = a[i]! % y;
          if (m !== 0 && m < 0 !== y < 0) m += y;
          o[k] = m;
        }
        break;
      case IDIV: for (; k < end; k++, i += sa, j += sb) o[k] = Math.trunc(a[i]! / b[j]!); break;
      case IMUL: for (; k < end; k++, i += sa, j += sb) o[k] = Math.imul(a[i]!, b[j]!); break;
      case PRELU:
        for (; k < end; k++, i += sa, j += sb) {
          const x = a[i]!;
          o[k] = x < 0 ? x * b[j]! : x;
        }
        break;
      default: fail(`internal: binary op ${op}`);
    }
  }
}

function bigPow(x: bigint, y: bigint): bigint {
  if (y < 0n) return x === 1n ? 1n : x === -1n ? (y % 2n === 0n ? 1n : -1n) : 0n;
  let r = 1n, b = BigInt.asIntN(64, x), e = y;
  while (e > 0n) {
    if (e & 1n) r = BigInt.asIntN(64, r * b);
    b = BigInt.asIntN(64, b * b);
    e >>= 1n;
  }
  return r;
}

function bigOp(op: number, x: bigint, y: bigint): bigint {
  switch (op) {
    case ADD: return x + y;
    case SUB: return x - y;
    case MUL: case IMUL: return x * y;
    case DIV: case IDIV: return y === 0n ? 0n : x / y;
    case POW: return bigPow(x, y);
    case MAX: return x > y ? x : y;
    case MIN: return x < y ? x : y;
    case FMOD: return y === 0n ? 0n : x % y;
    case PMOD: {
      if (y === 0n) return 0n;
      const m = x % y;
      return m !== 0n && m < 0n !== y < 0n ? m + y : m;
    }
    case PRELU: return x < 0n ? x * y : x;
    default: return fail(`internal: binary op ${op}`);
  }
}

/** Binary op with broadcasting; the output has A's dtype. */
function binary(op: number, A: Tensor, B: Tensor): Tensor {
  const p = broadcastPlan([A.shape, B.shape]);
  const dt = A.dtype;
  if (isBig(dt) && isBig(B.dtype)) {
    const a = bigData(A), b = bigData(B);
    const out = alloc(dt, p.shape);
    const o = out.data as BigInt64Array;
    const oa = p.offs[0]!, ob = p.offs[1]!, sa = p.steps[0]!, sb = p.steps[1]!;
    let k = 0;
    for (let r = 0; r < p.rows; r++) {
      let i = oa[r]!, j = ob[r]!;
      for (let e = 0; e < p.inner; e++, i += sa, j += sb) o[k++] = bigOp(op, a[i]!, b[j]!);
    }
    return out;
  }
  if (dt === "string" || B.dtype === "string") fail(`arithmetic on string tensors`);
  if (isFloat(dt)) {
    const o = floatOut(dt, p.size);
    binLoop(op, floatData(A), floatData(B), o, p);
    return fromFloats(dt, p.shape, o);
  }
  // integers (and bool) computed exactly in float64, then wrapped into the dtype
  let iop = op;
  if (op === DIV) iop = IDIV;
  else if (op === MUL && (dt === "int32" || dt === "uint32")) iop = IMUL;
  const o = new Float64Array(p.size);
  binLoop(iop, numbers(A), numbers(B), o, p);
  if (isBig(dt)) {
    // int64 base with a non-int64 operand (Pow): values are numbers here
    const out = alloc(dt, p.shape);
    for (let i = 0; i < o.length; i++) o[i] = Math.trunc(o[i]!);
    numbersToBig(o, out.data as BigInt64Array);
    return out;
  }
  return intFromNumbers(dt, p.shape, o);
}

/** Integer tensor from exact integer-valued numbers, wrapping like the C types (int4 too). */
function intFromNumbers(dt: DType, shape: readonly number[], v: Float64Array): Tensor {
  if (dt === "int4" || dt === "uint4") {
    const out = alloc(dt, shape);
    const d = out.data as Int8Array | Uint8Array;
    for (let i = 0; i < v.length; i++) {
      const x = Number.isFinite(v[i]!) ? Math.trunc(v[i]!) & 15 : 0;
      d[i] = dt === "int4" ? ((x ^ 8) - 8) : x;
    }
    return out;
  }
  return Tensor.fromNumbers(dt, shape, v);
}

function binaryKernel(op: number, name: string): Kernel {
  return (inputs) => [binary(op, need(inputs, 0, name), need(inputs, 1, name))];
}

/** Variadic ops (Max, Min, Sum, Mean) fold pairwise with broadcasting. */
function variadic(op: number, name: string, mean = false): Kernel {
  return (inputs) => {
    const ts = inputs.filter((t): t is Tensor => !!t);
    if (!ts.length) fail(`${name} needs at least one input`);
    let acc = ts[0]!;
    for (let i = 1; i < ts.length; i++) acc = binary(op, acc, ts[i]!);
    if (mean && ts.length > 1) {
      const v = floatData(acc);
      const o = floatOut(acc.dtype, v.length);
      const n = ts.length;
      for (let i = 0; i < v.length; i++) o[i] = v[i]! / n;
      acc = fromFloats(acc.dtype, acc.shape, o);
    }
    return [acc];
  };
}

// ---------------------------------------------------------------------------------------------
// comparisons and logic

const EQ = 0, GT = 1, GE = 2, LT = 3, LE = 4;

function cmpLoop(op: number, a: FArr, b: FArr, o: Uint8Array, p: Plan): void {
  const oa = p.offs[0]!, ob = p.offs[1]!, sa = p.steps[0]!, sb = p.steps[1]!;
  let k = 0;
  for (let r = 0; r < p.rows; r++) {
    let i = oa[r]!, j = ob[r]!;
    const end = k + p.inner;
    switch (op) {
      case EQ: for (; k < end; k++, i += sa, j += sb) o[k] = a[i] === b[j] ? 1 : 0; break;
      case GT: for (; k < end; k++, i += sa, j += sb) o[k] = a[i]! > b[j]! ? 1 : 0; break;
      case GE: for (; k < end; k++, i += sa, j += sb) o[k] = a[i]! >= b[j]! ? 1 : 0; break;
      case LT: for (; k < end; k++, i += sa, j += sb) o[k] = a[i]! < b[j]! ? 1 : 0; break;
      case LE: for (; k < end; k++, i += sa, j += sb) o[k] = a[i]! <= b[j]! ? 1 : 0; break;
    }
  }
}

function compare(op: number, A: Tensor, B: Tensor): Tensor {
  const p = broadcastPlan([A.shape, B.shape]);
  const o = new Uint8Array(p.size);
  if (isBig(A.dtype) || A.dtype === "string" || B.dtype === "string") {
    // exact, generic path: bigints and strings compare with the JS operators
    const a = A.data as ArrayLike<bigint | string>, b = B.data as ArrayLike<bigint | string>;
    const oa = p.offs[0]!, ob = p.offs[1]!, sa = p.steps[0]!, sb = p.steps[1]!;
    let k = 0;
    for (let r = 0; r < p.rows; r++) {
      let i = oa[r]!, j = ob[r]!;
      for (let e = 0; e < p.inner; e++, i += sa, j += sb) {
        const x = a[i]!, y = b[j]!;
        o[k++] = (op === EQ ? x === y : op === GT ? x > y : op === GE ? x >= y : op === LT ? x < y : x <= y) ? 1 : 0;
      }
    }
  } else {
    cmpLoop(op, floatData(A), floatData(B), o, p);
  }
  return new Tensor("bool", p.shape, o);
}

const AND = 0, OR = 1, XOR = 2;

function logic(op: number, A: Tensor, B: Tensor): Tensor {
  const p = broadcastPlan([A.shape, B.shape]);
  const a = A.data as Uint8Array, b = B.data as Uint8Array;
  const o = new Uint8Array(p.size);
  const oa = p.offs[0]!, ob = p.offs[1]!, sa = p.steps[0]!, sb = p.steps[1]!;
  let k = 0;
  for (let r = 0; r < p.rows; r++) {
    let i = oa[r]!, j = ob[r]!;
    const end = k + p.inner;
    if (op === AND) for (; k < end; k++, i += sa, j += sb) o[k] = a[i]! && b[j]! ? 1 : 0;
    else if (op === OR) for (; k < end; k++, i += sa, j += sb) o[k] = a[i]! || b[j]! ? 1 : 0;
    else for (; k < end; k++, i += sa, j += sb) o[k] = !a[i]! !== !b[j]! ? 1 : 0;
  }
  return new Tensor("bool", p.shape, o);
}

function where(C: Tensor, X: Tensor, Y: Tensor): Tensor {
  if (X.dtype !== Y.dtype) fail(`Where: X is ${X.dtype} but Y is ${Y.dtype}`);
  const p = broadcastPlan([C.shape, X.shape, Y.shape]);
  const out = alloc(X.dtype, p.shape);
  const c = C.data as Uint8Array;
  const wx = wordsOf(X.data), x = wx.w, y = wordsOf(Y.data).w, o = wordsOf(out.data).w;
  const oc = p.offs[0]!, ox = p.offs[1]!, oy = p.offs[2]!, sc = p.steps[0]!, sx = p.steps[1]!, sy = p.steps[2]!;
  let k = 0;
  if (wx.k === 1) {
    for (let r = 0; r < p.rows; r++) {
      let ic = oc[r]!, ix = ox[r]!, iy = oy[r]!;
      const end = k + p.inner;
      for (; k < end; k++, ic += sc, ix += sx, iy += sy) o[k] = c[ic] ? x[ix]! : y[iy]!;
    }
  } else {
    for (let r = 0; r < p.rows; r++) {
      let ic = oc[r]!, ix = ox[r]!, iy = oy[r]!;
      const end = k + p.inner;
      for (; k < end; k++, ic += sc, ix += sx, iy += sy) {
        const src = c[ic] ? x : y, s = 2 * (c[ic] ? ix : iy);
        o[2 * k] = src[s]!;
        o[2 * k + 1] = src[s + 1]!;
      }
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// unary ops: one tight loop per op over float arrays (float32/float64 storage or converted)

type UnaryLoop = (x: FArr, o: FArr, node: Node) => void;

const SELU_ALPHA = 1.67326319217681884765625;
const SELU_GAMMA = 1.05070102214813232421875;
const SQRT_2_OVER_PI = Math.sqrt(2 / Math.PI);

const UNARY: Record<string, UnaryLoop> = {
  Sqrt: (x, o) => { for (let i = 0; i < x.length; i++) o[i] = Math.sqrt(x[i]!); },
  Exp: (x, o) => { for (let i = 0; i < x.length; i++) o[i] = Math.exp(x[i]!); },
  Log: (x, o) => { for (let i = 0; i < x.length; i++) o[i] = Math.log(x[i]!); },
  Erf: (x, o) => { for (let i = 0; i < x.length; i++) o[i] = erf(x[i]!); },
  Neg: (x, o) => { for (let i = 0; i < x.length; i++) o[i] = -x[i]!; },
  Abs: (x, o) => { for (let i = 0; i < x.length; i++) o[i] = Math.abs(x[i]!); },
  Reciprocal: (x, o) => { for (let i = 0; i < x.length; i++) o[i] = 1 / x[i]!; },
  Floor: (x, o) => { for (let i = 0; i < x.length; i++) o[i] = Math.floor(x[i]!); },
  Ceil: (x, o) => { for (let i = 0; i < x.length; i++) o[i] = Math.ceil(x[i]!); },
  Round: (x, o) => { for (let i = 0; i < x.length; i++) o[i] = roundEven(x[i]!); },
  Sign: (x, o) => {
    for (let i = 0; i < x.length; i++) {
      const v = x[i]!;
      o[i] = v > 0 ? 1 : v < 0 ? -1 : v;
    }
  },
  Sin: (x, o) => { for (let i = 0; i < x.length; i++) o[i] = Math.sin(x[i]!); },
  Cos: (x, o) => { for (let i = 0; i < x.length; i++) o[i] = Math.cos(x[i]!); },
  Tan: (x, o) => { for (let i = 0; i < x.length; i++) o[i] = Math.tan(x[i]!); },
  Asin: (x, o) => { for (let i = 0; i < x.length; i++) o[i] = Math.asin(x[i]!); },
  Acos: (x, o) => { for (let i = 0; i < x.length; i++) o[i] = Math.acos(x[i]!); },
  Atan: (x, o) => { for (let i = 0; i < x.length; i++) o[i] = Math.atan(x[i]!); },
  Sinh: (x, o) => { for (let i = 0; i < x.length; i++) o[i] = Math.sinh(x[i]!); },
  Cosh: (x, o) => { for (let i = 0; i < x.length; i++) o[i] = Math.cosh(x[i]!); },
  Asinh: (x, o) => { for (let i = 0; i < x.length; i++) o[i] = Math.asinh(x[i]!); },
  Acosh: (x, o) => { for (let i = 0; i < x.length; i++) o[i] = Math.acosh(x[i]!); },
  Atanh: (x, o) => { for (let i = 0; i < x.length; i++) o[i] = Math.atanh(x[i]!); },
  Tanh: (x, o) => { for (let i = 0; i < x.length; i++) o[i] = Math.tanh(x[i]!); },
  Relu: (x, o) => {
    for (let i = 0; i < x.length; i++) {
      const v = x[i]!;
      o[i] = v < 0 ? 0 : v;
    }
  },
  LeakyRelu: (x, o, n) => {
    const alpha = n.float("alpha", 0.01);
    for (let i = 0; i < x.length; i++) {
      const v = x[i]!;
      o[i] = v < 0 ? alpha * v : v;
    }
  },
  Elu: (x, o, n) => {
    const alpha = n.float("alpha", 1);
    for (let i = 0; i < x.length; i++) {
      const v = x[i]!;
      o[i] = v < 0 ? alpha * Math.expm1(v) : v;
    }
  },
  Selu: (x, o, n) => {
    const alpha = n.float("alpha", SELU_ALPHA), gamma = n.float("gamma", SELU_GAMMA);
    for (let i = 0; i < x.length; i++) {
      const v = x[i]!;
      o[i] = v > 0 ? gamma * v : gamma * alpha * Math.expm1(v);
    }
  },
  Celu: (x, o, n) => {
    const alpha = n.float("alpha", 1);
    for (let i = 0; i < x.length; i++) {
      const v = x[i]!;
      o[i] = v > 0 ? v : alpha * Math.expm1(v / alpha);
    }
  },
  Sigmoid: (x, o) => {
    for (let i = 0; i < x.length; i++) {
      const v = x[i]!;
      if (v >= 0) o[i] = 1 / (1 + Math.exp(-v));
      else {
        const e = Math.exp(v);
        o[i] = e / (1 + e);
      }
    }
  },
  HardSigmoid: (x, o, n) => {
    const alpha = n.float("alpha", 0.2), beta = n.float("beta", 0.5);
    for (let i = 0; i < x.length; i++) {
      const v = alpha * x[i]! + beta;
      o[i] = v < 0 ? 0 : v > 1 ? 1 : v;
    }
  },
  HardSwish: (x, o) => {
    for (let i = 0; i < x.length; i++) {
      const v = x[i]!;
      const h = v / 6 + 0.5;
      o[i] = h <= 0 ? 0 : h >= 1 ? v : v * h;
    }
  },
  Softplus: (x, o) => {
    for (let i = 0; i < x.length; i++) {
      const v = x[i]!;
      o[i] = v > 0 ? v + Math.log1p(Math.exp(-v)) : Math.log1p(Math.exp(v));
    }
  },
  Softsign: (x, o) => {
    for (let i = 0; i < x.length; i++) {
      const v = x[i]!;
      o[i] = v / (1 + Math.abs(v));
    }
  },
  Mish: (x, o) => {
    for (let i = 0; i < x.length; i++) {
      const v = x[i]!;
      const sp = v > 0 ? v + Math.log1p(Math.exp(-v)) : Math.log1p(Math.exp(v));
      o[i] = v * Math.tanh(sp);
    }
  },
  Gelu: (x, o, n) => {
    const approx = n.str("approximate", "none");
    if (approx === "tanh") {
      for (let i = 0; i < x.length; i++) {
        const v = x[i]!;
        o[i] = 0.5 * v * (1 + Math.tanh(SQRT_2_OVER_PI * (v + 0.044715 * v * v * v)));
      }
    } else if (approx === "none") {
      for (let i = 0; i < x.length; i++) {
        const v = x[i]!;
        o[i] = 0.5 * v * (1 + erf(v * Math.SQRT1_2));
      }
    } else {
      fail(`Gelu: approximate='${approx}' is not 'none' or 'tanh'`);
    }
  },
  ThresholdedRelu: (x, o, n) => {
    const alpha = n.float("alpha", 1);
    for (let i = 0; i < x.length; i++) {
      const v = x[i]!;
      o[i] = v > alpha ? v : 0;
    }
  },
};

/** Ops of UNARY that also take integer inputs (computed exactly as float64). */
const INT_UNARY = new Set(["Neg", "Abs", "Sign", "Relu"]);

function unaryKernel(name: string, loop: UnaryLoop): Kernel {
  return (inputs, node) => {
    const x = need(inputs, 0, name);
    if (isFloat(x.dtype)) {
      const a = floatData(x);
      const o = floatOut(x.dtype, a.length);
      loop(a, o, node);
      return [fromFloats(x.dtype, x.shape, o)];
    }
    if (!INT_UNARY.has(name) || x.dtype === "string" || x.dtype === "bool") fail(`${name} does not take ${x.dtype} inputs`);
    if (isBig(x.dtype)) {
      const a = bigData(x);
      const out = alloc(x.dtype, x.shape);
      const o = out.data as BigInt64Array;
      for (let i = 0; i < a.length; i++) {
        const v = a[i]!;
        o[i] = name === "Neg" ? -v : name === "Abs" ? (v < 0n ? -v : v) : name === "Sign" ? (v > 0n ? 1n : v < 0n ? -1n : 0n) : v < 0n ? 0n : v;
      }
      return [out];
    }
    const o = new Float64Array(x.size);
    loop(x.toNumbers(), o, node);
    return [intFromNumbers(x.dtype, x.shape, o)];
  };
}

// ---------------------------------------------------------------------------------------------
// Clip

function clip(inputs: (Tensor | undefined)[], node: Node, opset: number): Tensor {
  const x = need(inputs, 0, "Clip");
  if (isBig(x.dtype)) {
    const lo = inputs[1] ? bigData(inputs[1]!)[0]! : undefined;
    const hi = inputs[2] ? bigData(inputs[2]!)[0]! : undefined;
    const a = bigData(x);
    const out = alloc(x.dtype, x.shape);
    const o = out.data as BigInt64Array;
    for (let i = 0; i < a.length; i++) {
      let v = a[i]!;
      if (lo !== undefined && v < lo) v = lo;
      if (hi !== undefined && v > hi) v = hi;
      o[i] = v;
    }
    return out;
  }
  let lo: number, hi: number;
  if (opset < 11) {
    lo = node.float("min", -Infinity);
    hi = node.float("max", Infinity);
  } else {
    lo = inputs[1] ? inputs[1].scalar() : -Infinity;
    hi = inputs[2] ? inputs[2].scalar() : Infinity;
  }
  const a = floatData(x);
  const o = isFloat(x.dtype) ? floatOut(x.dtype, a.length) : new Float64Array(a.length);
  for (let i = 0; i < a.length; i++) {
    let v = a[i]!;
    if (v < lo) v = lo;
    if (v > hi) v = hi;
    o[i] = v;
  }
  return isFloat(x.dtype) ? fromFloats(x.dtype, x.shape, o) : intFromNumbers(x.dtype, x.shape, o as Float64Array);
}

// ---------------------------------------------------------------------------------------------
// Softmax, LogSoftmax, Hardmax

const SOFTMAX = 0, LOGSOFTMAX = 1, HARDMAX = 2;

function softmaxLike(kind: number, name: string): Kernel {
  return (inputs, node, ctx) => {
    const x = need(inputs, 0, name);
    const rank = x.rank;
    let outer: number, n: number, inner: number;
    if (ctx.opset < 13) {
      // coerce to 2-D [prod(shape[:axis]), prod(shape[axis:])] (axis default 1); work on rows
      const axis = rank === 0 ? 0 : normAxis(node.int("axis", 1), rank);
      outer = 1;
      n = 1;
      for (let i = 0; i < rank; i++) {
        if (i < axis) outer *= x.shape[i]!;
        else n *= x.shape[i]!;
      }
      inner = 1;
    } else {
      if (rank === 0) { outer = 1; n = 1; inner = 1; }
      else [outer, n, inner] = around(x.shape, normAxis(node.int("axis", -1), rank));
    }
    const a = floatData(x);
    const o = floatOut(x.dtype, a.length);
    const tmp = new Float64Array(n);
    for (let ob = 0; ob < outer; ob++) {
      for (let ib = 0; ib < inner; ib++) {
        const base = ob * n * inner + ib;
        let m = -Infinity, mi = 0;
        for (let j = 0, q = base; j < n; j++, q += inner) {
          const v = a[q]!;
          if (v > m) { m = v; mi = j; }
        }
        if (kind === HARDMAX) {
          for (let j = 0, q = base; j < n; j++, q += inner) o[q] = j === mi ? 1 : 0;
          continue;
        }
        if (m === -Infinity || m === Infinity) m = 0;
        let s = 0;
        for (let j = 0, q = base; j < n; j++, q += inner) {
          const e = Math.exp(a[q]! - m);
          tmp[j] = e;
          s += e;
        }
        if (kind === SOFTMAX) {
          const inv = 1 / s;
          for (let j = 0, q = base; j < n; j++, q += inner) o[q] = tmp[j]! * inv;
        } else {
          const ls = Math.log(s) + m;
          for (let j = 0, q = base; j < n; j++, q += inner) o[q] = a[q]! - ls;
        }
      }
    }
    return [fromFloats(x.dtype, x.shape, o)];
  };
}

// ---------------------------------------------------------------------------------------------
// Cast

const F32 = new Float32Array(1);

/**
 * Text of a float as numpy prints it: the shortest digits that read back as the same value after
 * `round`, positional for 1e-4 <= |v| < 1e16 (with ".0" when integral), else like "1e-05".
 * Non-finite values give "NaN", "INF", "-INF" (what Cast from string reads).
 */
function shortestText(v: number, round: (x: number) => number): string {
  if (Number.isNaN(v)) return "NaN";
  if (v === Infinity) return "INF";
  if (v === -Infinity) return "-INF";
  if (v === 0) return Object.is(v, -0) ? "-0.0" : "0.0";
  let e = "";
  for (let p = 1; p <= 17; p++) {
    e = v.toExponential(p - 1);
    if (round(Number(e)) === v) break;
  }
  const [mant, expS] = e.split("e") as [string, string];
  const exp = Number(expS);
  const neg = mant.startsWith("-");
  const digits = mant.replace("-", "").replace(".", "");
  let body: string;
  if (exp >= -4 && exp < 16) {
    if (exp >= 0) {
      const int = digits.slice(0, exp + 1).padEnd(exp + 1, "0");
      const frac = digits.slice(exp + 1);
      body = `${int}.${frac || "0"}`;
    } else {
      body = `0.${"0".repeat(-exp - 1)}${digits}`;
    }
  } else {
    const m = digits.length > 1 ? `${digits[0]}.${digits.slice(1)}` : digits;
    body = `${m}e${exp < 0 ? "-" : "+"}${String(Math.abs(exp)).padStart(2, "0")}`;
  }
  return neg ? `-${body}` : body;
}

function fround(x: number): number {
  F32[0] = x;
  return F32[0]!;
}

function parseNumber(s: string): number {
  const t = s.trim();
  const l = t.toLowerCase().replace(/^\+/, "");
  if (l === "inf" || l === "infinity") return Infinity;
  if (l === "-inf" || l === "-infinity") return -Infinity;
  if (l === "nan" || l === "-nan") return NaN;
  return t === "" ? NaN : Number(t);
}

const INT64_LIMIT = 9223372036854775808; // 2^63 as a double
const UINT64_LIMIT = 18446744073709551616;

/** Convert `x` to dtype `to` as ONNX Cast does. */
export function castTensor(x: Tensor, to: DType): Tensor {
  const from = x.dtype;
  if (from === to) return x;
  const n = x.size;
  if (to === "string") {
    const out = alloc(to, x.shape);
    const o = out.data as string[];
    if (isBig(from)) {
      const b = x.data as BigInt64Array;
      for (let i = 0; i < n; i++) o[i] = String(b[i]!);
    } else {
      const v = x.toNumbers();
      const round = from === "float32" ? fround : from === "float16" ? roundToF16 : from === "bfloat16" ? roundToBf16 : null;
      for (let i = 0; i < n; i++) o[i] = from === "float64" ? shortestText(v[i]!, (z) => z) : round ? shortestText(v[i]!, round) : String(v[i]!);
    }
    return out;
  }
  if (from === "string") {
    const s = x.data as string[];
    if (isBig(to)) {
      const out = alloc(to, x.shape);
      const o = out.data as BigInt64Array;
      for (let i = 0; i < n; i++) {
        const t = s[i]!.trim();
        o[i] = /^[+-]?\d+$/.test(t) ? BigInt(t) : floatToBig(parseNumber(t), to);
      }
      return out;
    }
    const v = new Float64Array(n);
    for (let i = 0; i < n; i++) v[i] = parseNumber(s[i]!);
    return castTensor(new Tensor("float64", x.shape, v), to);
  }
  if (to === "bool") {
    const out = alloc(to, x.shape);
    const o = out.data as Uint8Array;
    if (isBig(from)) {
      const b = x.data as BigInt64Array;
      for (let i = 0; i < n; i++) o[i] = b[i] !== 0n ? 1 : 0;
    } else {
      const v = floatData(x);
      for (let i = 0; i < n; i++) o[i] = v[i] !== 0 ? 1 : 0; // NaN -> true
    }
    return out;
  }
  if (isFloat(to)) {
    if (to === "float32" || to === "float64") {
      const out = alloc(to, x.shape);
      const o = out.data as FArr;
      if (from === "float32" || from === "float64") o.set(x.data as FArr);
      else o.set(numbers(x));
      return out;
    }
    // float16 / bfloat16: each value rounded once from its float64 value
    return halfFromNumbers(to as "float16" | "bfloat16", x.shape, numbers(x));
  }
  // integer targets
  if (isBig(to)) {
    const out = alloc(to, x.shape);
    const o = out.data as BigInt64Array;
    if (isBig(from)) {
      o.set(x.data as BigInt64Array); // wraps between int64 and uint64
    } else if (isFloat(from)) {
      // truncate; NaN gives 0 and out-of-range values saturate (ONNX leaves both undefined)
      const v = floatData(x);
      const t = new Float64Array(n);
      const unsigned = to === "uint64";
      for (let i = 0; i < n; i++) {
        const f = v[i]!;
        t[i] = f !== f || (unsigned && f < 0) ? 0 : Math.trunc(f);
      }
      numbersToBig(t, o);
      for (let i = 0; i < n; i++) if (Math.abs(t[i]!) > 9007199254740991) o[i] = floatToBig(t[i]!, to);
    } else {
      numbersToBig(x.toNumbers(), o);
    }
    return out;
  }
  const [lo, hi] = intRange(to);
  if (isBig(from)) return intFromNumbers(to, x.shape, bigLow32(x)); // discard high bits
  if (isFloat(from)) {
    // truncate toward zero; out of range saturates (ONNX leaves it undefined), NaN gives 0
    const v = floatData(x);
    const o = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      const f = v[i]!;
      o[i] = f !== f ? 0 : f <= lo ? lo : f >= hi ? hi : Math.trunc(f);
    }
    return intFromNumbers(to, x.shape, o);
  }
  return intFromNumbers(to, x.shape, x.toNumbers());
}

function floatToBig(f: number, to: DType): bigint {
  if (f !== f) return 0n;
  if (to === "uint64") return f <= 0 ? 0n : f >= UINT64_LIMIT ? 18446744073709551615n : BigInt(Math.trunc(f));
  return f <= -INT64_LIMIT ? -9223372036854775808n : f >= INT64_LIMIT ? 9223372036854775807n : BigInt(Math.trunc(f));
}

// ---------------------------------------------------------------------------------------------
// small helpers for the table

function bitShift(inputs: (Tensor | undefined)[], node: Node): Tensor {
  const X = need(inputs, 0, "BitShift"), Y = need(inputs, 1, "BitShift");
  const dir = node.str("direction", "");
  if (dir !== "LEFT" && dir !== "RIGHT") fail(`BitShift: direction must be LEFT or RIGHT, got '${dir}'`);
  const left = dir === "LEFT";
  const p = broadcastPlan([X.shape, Y.shape]);
  const out = alloc(X.dtype, p.shape);
  const oa = p.offs[0]!, ob = p.offs[1]!, sa = p.steps[0]!, sb = p.steps[1]!;
  let k = 0;
  if (isBig(X.dtype)) {
    const a = bigData(X), b = bigData(Y), o = out.data as BigUint64Array;
    for (let r = 0; r < p.rows; r++) {
      let i = oa[r]!, j = ob[r]!;
      for (let e = 0; e < p.inner; e++, i += sa, j += sb) {
        const s = BigInt.asUintN(64, b[j]!);
        o[k++] = s >= 64n ? 0n : left ? BigInt.asUintN(64, BigInt.asUintN(64, a[i]!) << s) : BigInt.asUintN(64, a[i]!) >> s;
      }
    }
    return out;
  }
  const bits = X.dtype === "uint8" ? 8 : X.dtype === "uint16" ? 16 : 32;
  const a = X.toNumbers(), b = Y.toNumbers(), o = out.data as Uint32Array;
  for (let r = 0; r < p.rows; r++) {
    let i = oa[r]!, j = ob[r]!;
    for (let e = 0; e < p.inner; e++, i += sa, j += sb) {
      const s = b[j]!;
      o[k++] = s >= bits ? 0 : left ? (a[i]! << s) >>> 0 : a[i]! >>> s;
    }
  }
  return out;
}

/** Pow: the output has the base's dtype; the exponent may be of any numeric dtype. */
function pow(A: Tensor, B: Tensor): Tensor {
  // int64 base with a narrower integer exponent: exact with bigints
  if (isBig(A.dtype) && !isBig(B.dtype) && !isFloat(B.dtype)) return binary(POW, A, castTensor(B, "int64"));
  return binary(POW, A, B);
}

function dropout(inputs: (Tensor | undefined)[], node: Node, opset: number): Tensor[] {
  const x = need(inputs, 0, "Dropout");
  const wantMask = node.outputs.length > 1 && node.outputs[1] !== "";
  let ratio = 0.5, training = false;
  if (opset >= 12) {
    if (inputs[1]) ratio = inputs[1].scalar();
    if (inputs[2]) training = inputs[2].scalar() !== 0;
  }
  // before opset 12 the ratio is an attribute and the op is treated as inference (identity)
  const maskType: DType = opset >= 10 ? "bool" : x.dtype;
  if (!training || ratio === 0) {
    if (!wantMask) return [x];
    const m = alloc(maskType, x.shape);
    m.setFromNumbers(new Float64Array(x.size).fill(1));
    return [x, m];
  }
  // training mode: random mask with a small seeded generator (ONNX leaves the draws unspecified)
  let seed = (node.int("seed", 0x2545f491) >>> 0) || 1;
  const rand = () => {
    seed ^= seed << 13; seed >>>= 0;
    seed ^= seed >>> 17;
    seed ^= seed << 5; seed >>>= 0;
    return seed / 4294967296;
  };
  const a = floatData(x);
  const o = floatOut(x.dtype, a.length);
  const mask = new Uint8Array(a.length);
  const scale = 1 / (1 - ratio);
  for (let i = 0; i < a.length; i++) {
    const keep = rand() >= ratio;
    mask[i] = keep ? 1 : 0;
    o[i] = keep ? a[i]! * scale : 0;
  }
  const y = fromFloats(x.dtype, x.shape, o);
  return wantMask ? [y, new Tensor("bool", x.shape, mask)] : [y];
}

function isInf(x: Tensor, node: Node): Tensor {
  const neg = node.int("detect_negative", 1) !== 0, pos = node.int("detect_positive", 1) !== 0;
  const a = floatData(x);
  const o = new Uint8Array(a.length);
  for (let i = 0; i < a.length; i++) {
    const v = a[i]!;
    o[i] = (pos && v === Infinity) || (neg && v === -Infinity) ? 1 : 0;
  }
  return new Tensor("bool", x.shape, o);
}

function castTo(node: Node): DType {
  const code = node.int("to", 0);
  const dt = dtypeFromOnnx(code);
  if (!dt) fail(`Cast: target type ${code} is not supported (float8 and complex types are not)`);
  return dt;
}

export const kernels: KernelTable = {
  Add: binaryKernel(ADD, "Add"),
  Sub: binaryKernel(SUB, "Sub"),
  Mul: binaryKernel(MUL, "Mul"),
  Div: binaryKernel(DIV, "Div"),
  Pow: (inputs) => [pow(need(inputs, 0, "Pow"), need(inputs, 1, "Pow"))],
  Mod: (inputs, node) => {
    const A = need(inputs, 0, "Mod"), B = need(inputs, 1, "Mod");
    const fmod = node.int("fmod", 0) !== 0 || isFloat(A.dtype);
    return [binary(fmod ? FMOD : PMOD, A, B)];
  },
  PRelu: (inputs) => [binary(PRELU, need(inputs, 0, "PRelu"), need(inputs, 1, "PRelu"))],
  Max: variadic(MAX, "Max"),
  Min: variadic(MIN, "Min"),
  Sum: variadic(ADD, "Sum"),
  Mean: variadic(ADD, "Mean", true),
  ...Object.fromEntries(Object.entries(UNARY).map(([k, f]) => [k, unaryKernel(k, f)])),
  Clip: (inputs, node, ctx) => [clip(inputs, node, ctx.opset)],
  Softmax: softmaxLike(SOFTMAX, "Softmax"),
  LogSoftmax: softmaxLike(LOGSOFTMAX, "LogSoftmax"),
  Hardmax: softmaxLike(HARDMAX, "Hardmax"),
  Equal: (inputs) => [compare(EQ, need(inputs, 0, "Equal"), need(inputs, 1, "Equal"))],
  Greater: (inputs) => [compare(GT, need(inputs, 0, "Greater"), need(inputs, 1, "Greater"))],
  GreaterOrEqual: (inputs) => [compare(GE, need(inputs, 0, "GreaterOrEqual"), need(inputs, 1, "GreaterOrEqual"))],
  Less: (inputs) => [compare(LT, need(inputs, 0, "Less"), need(inputs, 1, "Less"))],
  LessOrEqual: (inputs) => [compare(LE, need(inputs, 0, "LessOrEqual"), need(inputs, 1, "LessOrEqual"))],
  Not: (inputs) => {
    const x = need(inputs, 0, "Not");
    const a = x.data as Uint8Array, o = new Uint8Array(a.length);
    for (let i = 0; i < a.length; i++) o[i] = a[i] ? 0 : 1;
    return [new Tensor("bool", x.shape, o)];
  },
  And: (inputs) => [logic(AND, need(inputs, 0, "And"), need(inputs, 1, "And"))],
  Or: (inputs) => [logic(OR, need(inputs, 0, "Or"), need(inputs, 1, "Or"))],
  Xor: (inputs) => [logic(XOR, need(inputs, 0, "Xor"), need(inputs, 1, "Xor"))],
  Where: (inputs) => [where(need(inputs, 0, "Where"), need(inputs, 1, "Where"), need(inputs, 2, "Where"))],
  IsNaN: (inputs) => {
    const x = need(inputs, 0, "IsNaN");
    const a = floatData(x), o = new Uint8Array(a.length);
    for (let i = 0; i < a.length; i++) o[i] = a[i] !== a[i] ? 1 : 0;
    return [new Tensor("bool", x.shape, o)];
  },
  IsInf: (inputs, node) => [isInf(need(inputs, 0, "IsInf"), node)],
  Cast: (inputs, node) => [castTensor(need(inputs, 0, "Cast"), castTo(node))],
  CastLike: (inputs) => [castTensor(need(inputs, 0, "CastLike"), need(inputs, 1, "CastLike").dtype)],
  BitShift: (inputs, node) => [bitShift(inputs, node)],
  Identity: (inputs) => [need(inputs, 0, "Identity")],
  Dropout: (inputs, node, ctx) => dropout(inputs, node, ctx.opset),
};
