/**
 * MaxPool (with Indices), AveragePool, LpPool, their Global* forms and MaxUnpool. Spatial ranks 1-3
 * are handled as 3-D (leading axes of size 1). Padded positions never enter a max or a sum.
 */
import { Tensor, shapeSize } from "../../tensor.js";
import type { Node } from "../../graph.js";
import type { KernelTable } from "../types.js";
import { intRange, isFloat, type DType } from "../../dtype.js";
import { allocFor, fail, need, slidingWindow, tensorFrom, ints, type FArr } from "./util-a.js";

type Num = ArrayLike<number>;

/** Input values as numbers: typed arrays of numbers are used as they are. */
function values(t: Tensor): Num {
  if (t.dtype === "float16" || t.dtype === "bfloat16" || t.dtype === "int64" || t.dtype === "uint64") return t.toNumbers();
  if (t.dtype === "string") throw new Error("pooling of a string tensor");
  return t.data as Num;
}

/** Per-axis window tables: for output o, kernel taps e in [lo[o], hi[o]) read input base[o] + e*d. */
interface AxisTab {
  I: number;
  O: number;
  d: number;
  lo: Int32Array;
  hi: Int32Array;
  base: Int32Array;
  /** Taps inside the padded extent [-padB, I + padE) (count_include_pad divisor). */
  padCount: Int32Array;
}

function axisTab(I: number, O: number, k: number, s: number, d: number, pb: number, pe: number): AxisTab {
  const lo = new Int32Array(O), hi = new Int32Array(O), base = new Int32Array(O), padCount = new Int32Array(O);
  for (let o = 0; o < O; o++) {
    const b = o * s - pb;
    base[o] = b;
    // b + e*d in [0, I)
    let l = b >= 0 ? 0 : Math.ceil(-b / d);
    let h = Math.floor((I - 1 - b) / d) + 1;
    if (h > k) h = k;
    if (l > k) l = k;
    if (h < l) h = l;
    lo[o] = l;
    hi[o] = h;
    // b + e*d in [-pb, I + pe)
    let pl = b >= -pb ? 0 : Math.ceil((-pb - b) / d);
    let ph = Math.floor((I + pe - 1 - b) / d) + 1;
    if (ph > k) ph = k;
    if (pl > k) pl = k;
    padCount[o] = Math.max(0, ph - pl);
  }
  return { I, O, d, lo, hi, base, padCount };
}

interface PoolSetup {
  N: number;
  C: number;
  outShape: number[];
  tabs: [AxisTab, AxisTab, AxisTab];
}

function setup(node: Node, X: Tensor): PoolSetup {
  const nsp = X.rank - 2;
  if (nsp < 1 || nsp > 3) fail(node, `input rank ${X.rank} is not supported (1-3 spatial axes)`);
  const kernel = node.ints("kernel_shape", []);
  if (kernel.length !== nsp) fail(node, `kernel_shape [${kernel}] does not match ${nsp} spatial axes`);
  const ceil = node.int("ceil_mode", 0) === 1;
  const inSp = X.shape.slice(2);
  const w = slidingWindow(node, inSp, kernel, ceil);
  const tabs: AxisTab[] = [];
  for (let i = 0; i < 3 - nsp; i++) tabs.push(axisTab(1, 1, 1, 1, 1, 0, 0));
  for (let i = 0; i < nsp; i++) {
    tabs.push(axisTab(inSp[i]!, w.out[i]!, kernel[i]!, w.strides[i]!, w.dilations[i]!, w.padB[i]!, w.padE[i]!));
  }
  return { N: X.shape[0]!, C: X.shape[1]!, outShape: [X.shape[0]!, X.shape[1]!, ...w.out], tabs: tabs as [AxisTab, AxisTab, AxisTab] };
}

function lowest(dt: DType): number {
  return isFloat(dt) ? -Infinity : intRange(dt)[0];
}

function maxPool(inputs: (Tensor | undefined)[], node: Node): Tensor[] {
  const X = need(inputs, 0, node, "X");
  const { N, C, outShape, tabs } = setup(node, X);
  const [td, th, tw] = tabs;
  const x = values(X);
  const y = allocFor(X.dtype, shapeSize(outShape));
  const wantIdx = node.outputs.length > 1 && node.outputs[1] !== "";
  const idx = wantIdx ? new Float64Array(y.length) : undefined;
  const colMajor = node.int("storage_order", 0) === 1;
  const ID = td.I, IH = th.I, IW = tw.I;
  const inP = ID * IH * IW;
  const low = lowest(X.dtype);
  let out = 0;
  for (let nc = 0; nc < N * C; nc++) {
    const chan = nc * inP;
    for (let od = 0; od < td.O; od++) {
      for (let oh = 0; oh < th.O; oh++) {
        for (let ow = 0; ow < tw.O; ow++, out++) {
          let best = low, bestAt = -1;
          for (let a = td.lo[od]!; a < td.hi[od]!; a++) {
            const id = td.base[od]! + a * td.d;
            for (let b = th.lo[oh]!; b < th.hi[oh]!; b++) {
              const ih = th.base[oh]! + b * th.d;
              const row = chan + (id * IH + ih) * IW;
              for (let e = tw.lo[ow]!; e < tw.hi[ow]!; e++) {
                const iw = tw.base[ow]! + e * tw.d;
                const v = x[row + iw]!;
                if (v > best || bestAt < 0 || (v !== v && best === best)) {
                  best = v;
                  bestAt = colMajor ? id + ID * (ih + IH * iw) : (id * IH + ih) * IW + iw;
                }
              }
            }
          }
          y[out] = best;
          if (idx) idx[out] = bestAt < 0 ? -1 : chan + bestAt;
        }
      }
    }
  }
  const res = [tensorFrom(X.dtype, outShape, y)];
  if (idx) res.push(Tensor.fromNumbers("int64", outShape, idx));
  return res;
}

function averagePool(inputs: (Tensor | undefined)[], node: Node): Tensor[] {
  const X = need(inputs, 0, node, "X");
  const { N, C, outShape, tabs } = setup(node, X);
  const includePad = node.int("count_include_pad", 0) === 1;
  const [td, th, tw] = tabs;
  const x = values(X);
  const y = allocFor(X.dtype, shapeSize(outShape));
  const IH = th.I, IW = tw.I;
  const inP = td.I * IH * IW;
  let out = 0;
  for (let nc = 0; nc < N * C; nc++) {
    const chan = nc * inP;
    for (let od = 0; od < td.O; od++) {
      for (let oh = 0; oh < th.O; oh++) {
        for (let ow = 0; ow < tw.O; ow++, out++) {
          let sum = 0;
          for (let a = td.lo[od]!; a < td.hi[od]!; a++) {
            const id = td.base[od]! + a * td.d;
            for (let b = th.lo[oh]!; b < th.hi[oh]!; b++) {
              const row = chan + (id * IH + th.base[oh]! + b * th.d) * IW + tw.base[ow]!;
              for (let e = tw.lo[ow]!; e < tw.hi[ow]!; e++) sum += x[row + e * tw.d]!;
            }
          }
          const count = includePad
            ? td.padCount[od]! * th.padCount[oh]! * tw.padCount[ow]!
            : (td.hi[od]! - td.lo[od]!) * (th.hi[oh]! - th.lo[oh]!) * (tw.hi[ow]! - tw.lo[ow]!);
          y[out] = count > 0 ? sum / count : NaN;
        }
      }
    }
  }
  return [tensorFrom(X.dtype, outShape, y)];
}

function lpPool(inputs: (Tensor | undefined)[], node: Node): Tensor[] {
  const X = need(inputs, 0, node, "X");
  const { N, C, outShape, tabs } = setup(node, X);
  const p = node.float("p", 2);
  const [td, th, tw] = tabs;
  const x = values(X);
  const y = allocFor(X.dtype, shapeSize(outShape));
  const IH = th.I, IW = tw.I;
  const inP = td.I * IH * IW;
  let out = 0;
  for (let nc = 0; nc < N * C; nc++) {
    const chan = nc * inP;
    for (let od = 0; od < td.O; od++) {
      for (let oh = 0; oh < th.O; oh++) {
        for (let ow = 0; ow < tw.O; ow++, out++) {
          let sum = 0;
          for (let a = td.lo[od]!; a < td.hi[od]!; a++) {
            const id = td.base[od]! + a * td.d;
            for (let b = th.lo[oh]!; b < th.hi[oh]!; b++) {
              const row = chan + (id * IH + th.base[oh]! + b * th.d) * IW + tw.base[ow]!;
              for (let e = tw.lo[ow]!; e < tw.hi[ow]!; e++) sum += Math.abs(x[row + e * tw.d]!) ** p;
            }
          }
          y[out] = sum ** (1 / p);
        }
      }
    }
  }
  return [tensorFrom(X.dtype, outShape, y)];
}

type GlobalKind = "avg" | "max" | "lp";

function globalPool(inputs: (Tensor | undefined)[], node: Node, kind: GlobalKind): Tensor[] {
  const X = need(inputs, 0, node, "X");
  if (X.rank < 2) fail(node, `input must have rank >= 2`);
  const N = X.shape[0]!, C = X.shape[1]!;
  const S = shapeSize(X.shape.slice(2));
  const outShape = [N, C, ...X.shape.slice(2).map(() => 1)];
  const x = values(X);
  const y: FArr = allocFor(X.dtype, N * C);
  const p = node.float("p", 2);
  const low = lowest(X.dtype);
  for (let nc = 0; nc < N * C; nc++) {
    const o = nc * S;
    if (kind === "max") {
      let m = S > 0 ? x[o]! : low;
      for (let i = 1; i < S; i++) {
        const v = x[o + i]!;
        if (v > m || v !== v) m = v;
      }
      y[nc] = m;
    } else if (kind === "avg") {
      let s = 0;
      for (let i = 0; i < S; i++) s += x[o + i]!;
      y[nc] = s / S;
    } else {
      let s = 0;
      for (let i = 0; i < S; i++) s += Math.abs(x[o + i]!) ** p;
      y[nc] = s ** (1 / p);
    }
  }
  return [tensorFrom(X.dtype, outShape, y)];
}

function maxUnpool(inputs: (Tensor | undefined)[], node: Node): Tensor[] {
  const X = need(inputs, 0, node, "X");
  const I = need(inputs, 1, node, "I");
  const nsp = X.rank - 2;
  const kernel = node.ints("kernel_shape", []);
  const strides = node.ints("strides", []);
  const pads = node.ints("pads", []);
  // Indices address the unpooled tensor of the default shape; a larger output_shape pads its end.
  const natural = [X.shape[0]!, X.shape[1]!];
  for (let i = 0; i < nsp; i++) {
    natural.push((X.shape[2 + i]! - 1) * (strides[i] ?? 1) - (pads[i] ?? 0) - (pads[i + nsp] ?? 0) + (kernel[i] ?? 1));
  }
  const outShape = inputs[2] ? ints(inputs[2]) : natural;
  if (outShape.length !== X.rank || outShape.some((d, i) => d < natural[i]!)) {
    fail(node, `output_shape [${outShape}] is smaller than the unpooled shape [${natural}]`);
  }
  const x = values(X);
  const y = allocFor(X.dtype, shapeSize(outShape));
  const where = I.toNumbers();
  const total = shapeSize(natural);
  for (let i = 0; i < where.length; i++) {
    let k = where[i]!;
    if (k < 0 || k >= total) fail(node, `index ${k} is outside the unpooled tensor of ${total} elements`);
    // re-address k from the natural shape to the output shape
    let off = 0, mul = 1;
    for (let d = natural.length - 1; d >= 0; d--) {
      const c = k % natural[d]!;
      k = (k - c) / natural[d]!;
      off += c * mul;
      mul *= outShape[d]!;
    }
    y[off] = x[i]!;
  }
  return [tensorFrom(X.dtype, outShape, y)];
}

export const kernels: KernelTable = {
  MaxPool: (inputs, node) => maxPool(inputs, node),
  AveragePool: (inputs, node) => averagePool(inputs, node),
  LpPool: (inputs, node) => lpPool(inputs, node),
  GlobalAveragePool: (inputs, node) => globalPool(inputs, node, "avg"),
  GlobalMaxPool: (inputs, node) => globalPool(inputs, node, "max"),
  GlobalLpPool: (inputs, node) => globalPool(inputs, node, "lp"),
  MaxUnpool: (inputs, node) => maxUnpool(inputs, node),
};
