/**
 * Resize (opsets 10-19) and Upsample (7, 9). Interpolation is separable: each resized axis gets a
 * table of (input index, weight) taps per output index, and the axes are resized one pass at a
 * time in float64; the result is rounded once to the input dtype.
 *
 * Opset 10 Resize and Upsample use the legacy rules: asymmetric coordinates, and nearest picks
 * floor(x) when upsampling, ceil(x) when downsampling (as ONNX Runtime does).
 */
import { Tensor, shapeSize } from "../../tensor.js";
import type { Node } from "../../graph.js";
import type { KernelTable } from "../types.js";
import { fail, floats, need, normAxis, tensorFrom, type FArr } from "./util-a.js";

export interface AxisTaps {
  /** Taps per output index. */
  n: number;
  /** Input index of tap t of output x: idx[x*n + t]. */
  idx: Int32Array;
  wts: Float64Array;
  /** 1 where the output takes extrapolation_value (tf_crop_and_resize outside the input). */
  extra: Uint8Array;
}

export interface AxisSpec {
  inLen: number;
  outLen: number;
  /** Scale used by the coordinate transform (given, or out/in from sizes). */
  scale: number;
  /** Output length as scale * inLen (fractional when computed from a scale), as ONNX uses it. */
  outW: number;
  roiStart: number;
  roiEnd: number;
}

export interface ResizeOptions {
  mode: "nearest" | "linear" | "cubic";
  coord: string;
  nearest: string;
  cubicA: number;
  excludeOutside: boolean;
  antialias: boolean;
  /** Legacy opset <= 10 behaviour (Upsample, Resize-10). */
  legacy: boolean;
}

/** Coordinate in the input of output index x along one axis. */
function original(x: number, a: AxisSpec, coord: string): number {
  const { inLen, outLen, scale, outW } = a;
  switch (coord) {
    case "half_pixel":
      return (x + 0.5) / scale - 0.5;
    case "half_pixel_symmetric": {
      const adjustment = outLen / outW;
      const center = inLen / 2;
      const offset = center * (1 - adjustment);
      return offset + (x + 0.5) / scale - 0.5;
    }
    case "pytorch_half_pixel":
      return outLen > 1 ? (x + 0.5) / scale - 0.5 : 0;
    case "align_corners":
      return outW === 1 ? 0 : (x * (inLen - 1)) / (outW - 1);
    case "asymmetric":
      return x / scale;
    case "tf_half_pixel_for_nn":
      return (x + 0.5) / scale;
    case "tf_crop_and_resize":
      return outW === 1
        ? 0.5 * (a.roiStart + a.roiEnd) * (inLen - 1)
        : a.roiStart * (inLen - 1) + (x * (a.roiEnd - a.roiStart) * (inLen - 1)) / (outW - 1);
    default:
      throw new Error(`Resize: unknown coordinate_transformation_mode '${coord}'`);
  }
}

function cubic(x: number, A: number): number {
  const t = Math.abs(x);
  if (t <= 1) return ((A + 2) * t - (A + 3)) * t * t + 1;
  if (t < 2) return ((A * t - 5 * A) * t + 8 * A) * t - 4 * A;
  return 0;
}

function nearestIndex(xo: number, o: ResizeOptions, scale: number): number {
  if (o.legacy) return scale < 1 ? Math.ceil(xo) : Math.trunc(xo);
  const f = Math.floor(xo);
  const frac = xo - f;
  switch (o.nearest) {
    case "round_prefer_floor":
      return frac <= 0.5 ? f : f + 1;
    case "round_prefer_ceil":
      return frac < 0.5 ? f : f + 1;
    case "floor":
      return f;
    case "ceil":
      return Math.ceil(xo);
    default:
      throw new Error(`Resize: unknown nearest_mode '${o.nearest}'`);
  }
}

/** The tap table of one axis. */
export function axisTaps(a: AxisSpec, o: ResizeOptions): AxisTaps {
  const { inLen, outLen } = a;
  const coord = o.legacy ? "asymmetric" : o.coord;
  const extra = new Uint8Array(outLen);
  if (o.mode === "nearest") {
    const idx = new Int32Array(outLen), wts = new Float64Array(outLen).fill(1);
    for (let x = 0; x < outLen; x++) {
      const xo = original(x, a, coord);
      if (coord === "tf_crop_and_resize" && (xo < 0 || xo > inLen - 1)) {
        extra[x] = 1;
        continue;
      }
      const i = nearestIndex(xo, o, a.scale);
      idx[x] = i < 0 ? 0 : i >= inLen ? inLen - 1 : i;
    }
    return { n: 1, idx, wts, extra };
  }
  // Taps at offsets start..start+n-1 from base, where x = base + ratio with ratio in (0, 1].
  const aa = o.antialias && a.scale < 1 ? a.scale : 1;
  const reach = o.mode === "linear" ? 1 : 2;
  const start = Math.floor(-reach / aa) + 1;
  const n = 2 - 2 * start;
  const idx = new Int32Array(outLen * n), wts = new Float64Array(outLen * n);
  for (let x = 0; x < outLen; x++) {
    const xo = original(x, a, coord);
    if (coord === "tf_crop_and_resize" && (xo < 0 || xo > inLen - 1)) {
      extra[x] = 1;
      continue;
    }
    const base = Math.ceil(xo) - 1;
    const ratio = xo - base;
    let sum = 0;
    for (let t = 0; t < n; t++) {
      const d = (start + t - ratio) * aa;
      const w = o.mode === "linear" ? Math.max(0, 1 - Math.abs(d)) : cubic(d, o.cubicA);
      const i = base + start + t;
      const out = i < 0 || i >= inLen;
      const k = x * n + t;
      idx[k] = i < 0 ? 0 : i >= inLen ? inLen - 1 : i;
      wts[k] = o.excludeOutside && out ? 0 : w;
      sum += wts[k]!;
    }
    if (aa !== 1 || o.excludeOutside) {
      for (let t = 0; t < n; t++) wts[x * n + t]! /= sum;
    }
  }
  return { n, idx, wts, extra };
}

function isIdentity(t: AxisTaps, inLen: number): boolean {
  const outLen = t.extra.length;
  if (outLen !== inLen) return false;
  for (let x = 0; x < outLen; x++) {
    if (t.extra[x]) return false;
    for (let k = 0; k < t.n; k++) {
      const w = t.wts[x * t.n + k]!;
      if (w === 0) continue;
      if (w !== 1 || t.idx[x * t.n + k] !== x) return false;
    }
  }
  return true;
}

/** Resize `x` of `shape` with per-axis specs (one per axis); returns float64 values and the shape. */
export function resizeValues(x: FArr, shape: readonly number[], specs: AxisSpec[], o: ResizeOptions, extrapolation: number): { y: FArr; shape: number[] } {
  let cur: FArr = x;
  const cs = [...shape];
  const order = specs.map((_, i) => i).filter((i) => specs[i]!.outLen !== shape[i] || o.coord === "tf_crop_and_resize" || specs[i]!.scale !== 1);
  // shrink first, to keep intermediates small
  order.sort((i, j) => specs[i]!.outLen / Math.max(1, shape[i]!) - specs[j]!.outLen / Math.max(1, shape[j]!));
  for (const ax of order) {
    const s = specs[ax]!;
    const taps = axisTaps(s, o);
    if (isIdentity(taps, s.inLen)) continue;
    const outer = shapeSize(cs.slice(0, ax));
    const inner = shapeSize(cs.slice(ax + 1));
    const Lin = cs[ax]!, Lout = s.outLen;
    const y = new Float64Array(outer * Lout * inner);
    const { n, idx, wts, extra } = taps;
    const nearest = o.mode === "nearest";
    if (inner === 1) {
      // the last axis: one output element per output index
      for (let ob = 0; ob < outer; ob++) {
        const src0 = ob * Lin, dst0 = ob * Lout;
        for (let xo = 0; xo < Lout; xo++) {
          if (extra[xo]) {
            y[dst0 + xo] = extrapolation;
          } else if (nearest) {
            y[dst0 + xo] = cur[src0 + idx[xo]!]!;
          } else {
            let acc = 0;
            for (let t = xo * n, e = t + n; t < e; t++) acc += wts[t]! * cur[src0 + idx[t]!]!;
            y[dst0 + xo] = acc;
          }
        }
      }
      cur = y;
      cs[ax] = Lout;
      continue;
    }
    for (let ob = 0; ob < outer; ob++) {
      const src0 = ob * Lin * inner;
      for (let xo = 0; xo < Lout; xo++) {
        const dst = (ob * Lout + xo) * inner;
        if (extra[xo]) {
          y.fill(extrapolation, dst, dst + inner);
          continue;
        }
        if (nearest) {
          const src = src0 + idx[xo]! * inner;
          for (let i = 0; i < inner; i++) y[dst + i] = cur[src + i]!;
          continue;
        }
        for (let t = 0; t < n; t++) {
          const w = wts[xo * n + t]!;
          const src = src0 + idx[xo * n + t]! * inner;
          for (let i = 0; i < inner; i++) y[dst + i] += w * cur[src + i]!;
        }
      }
    }
    cur = y;
    cs[ax] = Lout;
  }
  return { y: cur, shape: cs };
}

function resize(inputs: (Tensor | undefined)[], node: Node, opset: number, upsample: boolean): Tensor[] {
  const X = need(inputs, 0, node, "X");
  const r = X.rank;
  const legacy = upsample || opset < 11;
  let scalesIn: number[] = [], sizesIn: number[] = [], roiIn: number[] = [];
  if (upsample && opset < 9) {
    scalesIn = node.floats("scales", []);
  } else if (legacy) {
    scalesIn = Array.from(need(inputs, 1, node, "scales").toNumbers());
  } else {
    roiIn = inputs[1] ? Array.from(inputs[1].toNumbers()) : [];
    scalesIn = inputs[2] ? Array.from(inputs[2].toNumbers()) : [];
    sizesIn = inputs[3] ? Array.from(inputs[3].toNumbers()) : [];
  }
  let mode = node.str("mode", "nearest");
  if (mode === "bilinear" || mode === "trilinear") mode = "linear";
  if (mode !== "nearest" && mode !== "linear" && mode !== "cubic") fail(node, `unknown mode '${mode}'`);
  if (legacy && mode === "cubic") fail(node, `mode 'cubic' needs opset 11`);
  const axesAttr = opset >= 18 ? node.ints("axes") : undefined;
  const axes = axesAttr ? axesAttr.map((a) => normAxis(a, r, node)) : Array.from({ length: r }, (_, i) => i);
  const coord = legacy ? "asymmetric" : node.str("coordinate_transformation_mode", "half_pixel");
  if (scalesIn.length && sizesIn.length) fail(node, `only one of scales and sizes may be given`);
  if (!scalesIn.length && !sizesIn.length) fail(node, `one of scales and sizes is required`);
  const given = scalesIn.length ? scalesIn : sizesIn;
  if (given.length !== axes.length) fail(node, `${scalesIn.length ? "scales" : "sizes"} has ${given.length} values for ${axes.length} axes`);
  const specs: AxisSpec[] = X.shape.map((d) => ({ inLen: d, outLen: d, scale: 1, outW: d, roiStart: 0, roiEnd: 1 }));
  if (coord === "tf_crop_and_resize" && roiIn.length) {
    if (roiIn.length !== 2 * axes.length) fail(node, `roi has ${roiIn.length} values, expected ${2 * axes.length}`);
    axes.forEach((ax, i) => {
      specs[ax]!.roiStart = roiIn[i]!;
      specs[ax]!.roiEnd = roiIn[i + axes.length]!;
    });
  }
  if (scalesIn.length) {
    axes.forEach((ax, i) => {
      const s = scalesIn[i]!;
      if (!(s > 0)) fail(node, `scale ${s} must be positive`);
      const sp = specs[ax]!;
      sp.scale = s;
      // ONNX Runtime and ONNX's reference size the output as floor(in * scale), roi aside
      sp.outW = s * sp.inLen;
      sp.outLen = Math.floor(sp.outW);
    });
  } else {
    const policy = opset >= 18 ? node.str("keep_aspect_ratio_policy", "stretch") : "stretch";
    if (policy === "stretch") {
      axes.forEach((ax, i) => {
        const sp = specs[ax]!;
        sp.outLen = sizesIn[i]!;
        sp.outW = sp.outLen;
        sp.scale = sp.outLen / sp.inLen;
      });
    } else {
      if (policy !== "not_larger" && policy !== "not_smaller") fail(node, `unknown keep_aspect_ratio_policy '${policy}'`);
      const ratios = axes.map((ax, i) => sizesIn[i]! / specs[ax]!.inLen);
      const s = policy === "not_larger" ? Math.min(...ratios) : Math.max(...ratios);
      for (const ax of axes) {
        const sp = specs[ax]!;
        sp.scale = s;
        sp.outLen = Math.floor(s * sp.inLen + 0.5);
        sp.outW = s * sp.inLen;
      }
    }
  }
  for (const sp of specs) if (sp.outLen < 0) fail(node, `negative output size`);
  const opts: ResizeOptions = {
    mode,
    coord,
    nearest: node.str("nearest_mode", "round_prefer_floor"),
    cubicA: node.float("cubic_coeff_a", -0.75),
    excludeOutside: node.int("exclude_outside", 0) === 1,
    antialias: opset >= 18 && node.int("antialias", 0) === 1,
    legacy,
  };
  const extrapolation = node.float("extrapolation_value", 0);
  const { y, shape } = resizeValues(floats(X), X.shape, specs, opts, extrapolation);
  if (y === (X.data as unknown)) return [X];
  return [tensorFrom(X.dtype, shape, y)];
}

export const kernels: KernelTable = {
  Resize: (inputs, node, ctx) => resize(inputs, node, ctx.opset, false),
  Upsample: (inputs, node, ctx) => resize(inputs, node, ctx.opset, true),
};
