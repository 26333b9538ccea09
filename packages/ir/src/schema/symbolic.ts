import { isFloat, isInteger, type DType } from "../dtype.js";
import type { Dim } from "../graph.js";
import { Tensor, shapeSize, stridesOf } from "../tensor.js";
import { allKnown, broadcastShapes, dimProd, normAxis } from "./dims.js";
import type { InferContext, SymValue, TypeShape } from "./types.js";
import { shapeRange } from "./helpers.js";

/**
 * Partial evaluation of shape computations. Values of small tensors are followed element by
 * element, each a number, a symbolic dim name (e.g. the batch 'N' read by Shape) or null. This is
 * what lets Reshape(x, Concat(Unsqueeze(Gather(Shape(x), 0)), [-1, 768])) get the shape
 * [N, ?, 768] without running the model.
 */

/** Largest element count followed as a partial value. */
export const SYM_CAP = 4096;

const INT64_MAX = 2n ** 63n - 1n;
const INT64_MIN = -(2n ** 63n);

export function symScalar(v: Dim): SymValue {
  return { shape: [], values: [v] };
}

export function symIsConst(s: SymValue): boolean {
  return s.values.every((v) => typeof v === "number");
}

/** A partial value from a constant tensor (undefined for big or string tensors). */
export function tensorToSym(t: Tensor, cap = SYM_CAP): SymValue | undefined {
  if (t.dtype === "string" || t.size > cap) return undefined;
  return { shape: [...t.shape], values: Array.from(t.toNumbers()) };
}

/** A constant tensor from a fully known partial value (int64 values clamped to its range). */
export function symToTensor(dtype: DType, s: SymValue): Tensor | undefined {
  if (dtype === "string" || !symIsConst(s)) return undefined;
  const vals = s.values as number[];
  if (dtype === "int64" || dtype === "uint64") {
    const t = Tensor.zeros(dtype, s.shape);
    const d = t.data as BigInt64Array;
    for (let i = 0; i < vals.length; i++) {
      const v = vals[i]!;
      let b = BigInt(Number.isFinite(v) ? Math.trunc(v) : v > 0 ? Number.MAX_SAFE_INTEGER : 0);
      if (b > INT64_MAX) b = INT64_MAX;
      if (b < INT64_MIN) b = INT64_MIN;
      d[i] = b;
    }
    return t;
  }
  return Tensor.fromNumbers(dtype, s.shape, vals);
}

/** Integer list from a partial value, when every element is known. */
export function symInts(s: SymValue | undefined): number[] | undefined {
  if (!s || !symIsConst(s)) return undefined;
  return s.values as number[];
}

/** Values of `s` broadcast to `shape` (numpy rules; shapes already checked). */
function expandTo(s: SymValue, shape: number[]): Dim[] {
  const n = shapeSize(shape);
  if (s.values.length === n && s.shape.length === shape.length) return s.values;
  const r = shape.length;
  const off = r - s.shape.length;
  const inStr = stridesOf(s.shape);
  const outStr = stridesOf(shape);
  const out = new Array<Dim>(n);
  for (let i = 0; i < n; i++) {
    let src = 0;
    for (let a = off; a < r; a++) {
      const d = s.shape[a - off]!;
      if (d === 1) continue;
      const idx = Math.floor(i / outStr[a]!) % shape[a]!;
      src += idx * inStr[a - off]!;
    }
    out[i] = s.values[src]!;
  }
  return out;
}

type Fn = (xs: Dim[]) => Dim;

function mapN(ins: SymValue[], f: Fn): SymValue | undefined {
  const shape = broadcastShapes(ins.map((s) => s.shape)) as number[] | undefined;
  if (!shape || shapeSize(shape) > SYM_CAP) return undefined;
  const vals = ins.map((s) => expandTo(s, shape));
  const n = shapeSize(shape);
  const out = new Array<Dim>(n);
  const xs = new Array<Dim>(ins.length);
  for (let i = 0; i < n; i++) {
    for (let k = 0; k < ins.length; k++) xs[k] = vals[k]![i]!;
    out[i] = f(xs);
  }
  return { shape, values: out };
}

/** Cast one number to `dt` the way a Cast kernel does. */
export function castNumber(v: number, dt: DType | undefined): number {
  if (!dt) return v;
  if (dt === "bool") return v !== 0 ? 1 : 0;
  if (dt === "float32") return Math.fround(v);
  if (isFloat(dt)) return v;
  if (!Number.isFinite(v)) return v;
  return Math.trunc(v);
}

function numeric(f: (a: number, b: number) => number, sym?: (a: Dim, b: Dim) => Dim): (xs: Dim[]) => Dim {
  return (xs) => {
    const a = xs[0]!;
    const b = xs[1]!;
    if (typeof a === "number" && typeof b === "number") return f(a, b);
    return sym ? sym(a, b) : null;
  };
}

function intDiv(a: number, b: number): number {
  if (b === 0) return 0;
  return Math.trunc(a / b);
}

function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** Evaluate a binary/n-ary elementwise op on partial values. */
function binary(op: string, dt: DType | undefined, fmod: number): Fn | undefined {
  const isInt = dt ? isInteger(dt) : false;
  const fix = (v: number) => (isInt ? Math.trunc(v) : v);
  switch (op) {
    case "Add":
      return numeric((a, b) => a + b, (a, b) => (a === 0 ? b : b === 0 ? a : null));
    case "Sub":
      return numeric((a, b) => a - b, (a, b) => (b === 0 ? a : a === b && a !== null ? 0 : null));
    case "Mul":
      return numeric((a, b) => a * b, (a, b) => (a === 1 ? b : b === 1 ? a : a === 0 || b === 0 ? 0 : null));
    case "Div":
      return numeric((a, b) => (isInt ? intDiv(a, b) : a / b), (a, b) => (b === 1 ? a : a === b && a !== null ? 1 : null));
    case "Mod":
      return numeric((a, b) => {
        if (b === 0) return 0;
        if (fmod || !isInt) return fmod ? a % b : a - Math.floor(a / b) * b;
        const r = a % b;
        return r !== 0 && (r < 0) !== (b < 0) ? r + b : r;
      });
    case "Pow":
      return numeric((a, b) => fix(a ** b), (a, b) => (b === 1 ? a : b === 0 ? 1 : null));
    case "Max":
    case "Min":
      return (xs) => {
        if (xs.every((x) => typeof x === "number")) return op === "Max" ? Math.max(...(xs as number[])) : Math.min(...(xs as number[]));
        return xs.every((x) => x === xs[0]) ? xs[0]! : null;
      };
    case "Equal":
      return numeric((a, b) => (a === b ? 1 : 0), (a, b) => (a !== null && a === b ? 1 : null));
    case "Less":
      return numeric((a, b) => (a < b ? 1 : 0));
    case "LessOrEqual":
      return numeric((a, b) => (a <= b ? 1 : 0));
    case "Greater":
      return numeric((a, b) => (a > b ? 1 : 0));
    case "GreaterOrEqual":
      return numeric((a, b) => (a >= b ? 1 : 0));
    case "And":
      return numeric((a, b) => (a && b ? 1 : 0), (a, b) => (a === 0 || b === 0 ? 0 : null));
    case "Or":
      return numeric((a, b) => (a || b ? 1 : 0), (a, b) => (a === 1 || b === 1 ? 1 : null));
    case "Xor":
      return numeric((a, b) => ((a ? 1 : 0) ^ (b ? 1 : 0)));
    default:
      return undefined;
  }
}

function unary(op: string): ((x: number) => number) | undefined {
  switch (op) {
    case "Neg": return (x) => -x;
    case "Abs": return Math.abs;
    case "Floor": return Math.floor;
    case "Ceil": return Math.ceil;
    case "Round": return roundHalfEven;
    case "Sqrt": return Math.sqrt;
    case "Reciprocal": return (x) => 1 / x;
    case "Sign": return Math.sign;
    case "Not": return (x) => (x ? 0 : 1);
    case "Relu": return (x) => Math.max(0, x);
    case "Exp": return Math.exp;
    case "Log": return Math.log;
    default: return undefined;
  }
}

function reshapeTo(s: SymValue | undefined, out: TypeShape | undefined): SymValue | undefined {
  if (!s || !out || !allKnown(out.shape)) return undefined;
  if (shapeSize(out.shape) !== s.values.length) return undefined;
  return { shape: [...out.shape], values: s.values };
}

/** General slicing of a partial value: per axis start, step, count. */
function sliceSym(s: SymValue, starts: number[], steps: number[], counts: number[]): SymValue {
  const r = s.shape.length;
  const inStr = stridesOf(s.shape);
  const shape = counts;
  const n = shapeSize(shape);
  const outStr = stridesOf(shape);
  const values = new Array<Dim>(n);
  for (let i = 0; i < n; i++) {
    let src = 0;
    for (let a = 0; a < r; a++) {
      const idx = Math.floor(i / outStr[a]!) % shape[a]!;
      src += (starts[a]! + idx * steps[a]!) * inStr[a]!;
    }
    values[i] = s.values[src]!;
  }
  return { shape, values };
}

function transposeSym(s: SymValue, perm: number[]): SymValue {
  const shape = perm.map((p) => s.shape[p]!);
  const inStr = stridesOf(s.shape);
  const outStr = stridesOf(shape);
  const n = s.values.length;
  const values = new Array<Dim>(n);
  for (let i = 0; i < n; i++) {
    let src = 0;
    for (let a = 0; a < shape.length; a++) src += (Math.floor(i / outStr[a]!) % shape[a]!) * inStr[perm[a]!]!;
    values[i] = s.values[src]!;
  }
  return { shape, values };
}

function concatSym(parts: SymValue[], axis: number): SymValue | undefined {
  const first = parts[0]!;
  const r = first.shape.length;
  if (r === 0) return undefined;
  const ax = normAxis(axis, r);
  const shape = [...first.shape];
  shape[ax] = parts.reduce((acc, p) => acc + p.shape[ax]!, 0);
  const outer = shapeSize(shape.slice(0, ax));
  const values: Dim[] = [];
  for (let o = 0; o < outer; o++) {
    for (const p of parts) {
      const inner = shapeSize(p.shape.slice(ax));
      for (let k = 0; k < inner; k++) values.push(p.values[o * inner + k]!);
    }
  }
  return { shape, values };
}

/** Slice parameters of one axis, clamped as ONNX Slice does. */
export function sliceParams(dim: number, start: number, end: number, step: number): { start: number; count: number } {
  if (step === 0) throw new RangeError("Slice step cannot be 0");
  let s = start < 0 ? start + dim : start;
  let e = end < 0 ? end + dim : end;
  if (step > 0) {
    s = Math.min(Math.max(s, 0), dim);
    e = Math.min(Math.max(e, 0), dim);
    return { start: s, count: Math.max(0, Math.ceil((e - s) / step)) };
  }
  s = Math.min(Math.max(s, 0), dim - 1);
  e = Math.min(Math.max(e, -1), dim - 1);
  return { start: s, count: Math.max(0, Math.ceil((s - e) / -step)) };
}

/** Slice arguments from attributes (opset < 10) or inputs; undefined when not constant. */
export function sliceArgs(ctx: InferContext, rank: number): { starts: number[]; ends: number[]; axes: number[]; steps: number[] } | undefined {
  let starts: number[] | undefined;
  let ends: number[] | undefined;
  let axes: number[] | undefined;
  let steps: number[] | undefined;
  if (ctx.opset < 10) {
    starts = ctx.node.ints("starts");
    ends = ctx.node.ints("ends");
    axes = ctx.node.ints("axes");
  } else {
    starts = symInts(ctx.partial(1));
    ends = symInts(ctx.partial(2));
    if (ctx.has(3)) {
      axes = symInts(ctx.partial(3));
      if (!axes) return undefined;
    }
    if (ctx.has(4)) {
      steps = symInts(ctx.partial(4));
      if (!steps) return undefined;
    }
  }
  if (!starts || !ends || starts.length !== ends.length) return undefined;
  axes = (axes ?? starts.map((_, i) => i)).map((a) => normAxis(a, rank, "Slice axis"));
  steps = steps ?? starts.map(() => 1);
  return { starts, ends, axes, steps };
}

/** Axes of Squeeze/Unsqueeze/Reduce*: attribute before `inputSince`, second input from then on. */
export function axesArg(ctx: InferContext, inputSince: number): number[] | undefined | null {
  if (ctx.opset < inputSince) return ctx.node.ints("axes");
  if (!ctx.has(1)) return undefined;
  const v = symInts(ctx.partial(1));
  return v ?? null; // null: given but not constant
}

export type SymEval = (ctx: InferContext, outs: TypeShape[]) => (SymValue | undefined)[] | undefined;

function reduceSym(ctx: InferContext, outs: TypeShape[], combine: (xs: Dim[]) => Dim): (SymValue | undefined)[] | undefined {
  const x = ctx.partial(0);
  if (!x) return undefined;
  const r = x.shape.length;
  const since = ctx.node.opType === "ReduceSum" ? 13 : 18;
  const axesIn = axesArg(ctx, since);
  if (axesIn === null) return undefined;
  const keep = ctx.node.int("keepdims", 1) !== 0;
  let axes: number[];
  if (!axesIn || axesIn.length === 0) {
    if (ctx.opset >= since && ctx.node.int("noop_with_empty_axes", 0)) return [x];
    axes = x.shape.map((_, i) => i);
  } else axes = axesIn.map((a) => normAxis(a, r));
  const outShape = x.shape.map((d, i) => (axes.includes(i) ? 1 : d));
  const groups = new Map<number, Dim[]>();
  const str = stridesOf(x.shape);
  const ostr = stridesOf(outShape);
  for (let i = 0; i < x.values.length; i++) {
    let o = 0;
    for (let a = 0; a < r; a++) if (!axes.includes(a)) o += (Math.floor(i / str[a]!) % x.shape[a]!) * ostr[a]!;
    let g = groups.get(o);
    if (!g) groups.set(o, (g = []));
    g.push(x.values[i]!);
  }
  const n = shapeSize(outShape);
  const values = new Array<Dim>(n);
  for (let o = 0; o < n; o++) values[o] = combine(groups.get(o) ?? []);
  const shape = keep ? outShape : x.shape.filter((_, i) => !axes.includes(i));
  const sv = { shape, values };
  return [outs[0] && allKnown(outs[0].shape) && shapeSize(outs[0].shape) === n ? { shape: [...outs[0].shape], values } : sv];
}

const allNum = (xs: Dim[]): xs is number[] => xs.every((x) => typeof x === "number");

/** Partial evaluators for the ops that show up in shape computations (ai.onnx domain). */
export const SYM_EVAL: Record<string, SymEval> = {
  Shape(ctx) {
    const s = ctx.inputs[0]?.shape;
    if (!s) return undefined;
    const [start, end] = shapeRange(ctx, s.length);
    const values = s.slice(start, end);
    return [{ shape: [values.length], values }];
  },
  Size(ctx) {
    const s = ctx.inputs[0]?.shape;
    if (!s) return undefined;
    return [symScalar(dimProd(s))];
  },
  Identity: (ctx) => [ctx.partial(0)],
  Cast(ctx, outs) {
    const x = ctx.partial(0);
    if (!x) return undefined;
    const dt = outs[0]?.dtype;
    return [{ shape: x.shape, values: x.values.map((v) => (typeof v === "number" ? castNumber(v, dt) : dt === "bool" ? null : v)) }];
  },
  CastLike(ctx, outs) {
    return SYM_EVAL.Cast!(ctx, outs);
  },
  Reshape: (ctx, outs) => [reshapeTo(ctx.partial(0), outs[0])],
  Flatten: (ctx, outs) => [reshapeTo(ctx.partial(0), outs[0])],
  Squeeze: (ctx, outs) => [reshapeTo(ctx.partial(0), outs[0])],
  Unsqueeze: (ctx, outs) => [reshapeTo(ctx.partial(0), outs[0])],
  Gather(ctx) {
    const data = ctx.partial(0);
    const idx = ctx.partial(1);
    const ii = symInts(idx);
    if (!data || !idx || !ii || data.shape.length === 0) return undefined;
    const r = data.shape.length;
    const axis = normAxis(ctx.node.int("axis", 0), r);
    const shape = [...data.shape.slice(0, axis), ...idx.shape, ...data.shape.slice(axis + 1)];
    if (shapeSize(shape) > SYM_CAP) return undefined;
    const outer = shapeSize(data.shape.slice(0, axis));
    const inner = shapeSize(data.shape.slice(axis + 1));
    const dim = data.shape[axis]!;
    const values: Dim[] = [];
    for (let o = 0; o < outer; o++) {
      for (let j of ii) {
        if (j < 0) j += dim;
        if (j < 0 || j >= dim) return undefined;
        for (let k = 0; k < inner; k++) values.push(data.values[(o * dim + j) * inner + k]!);
      }
    }
    return [{ shape, values }];
  },
  Concat(ctx) {
    const parts: SymValue[] = [];
    for (let i = 0; i < ctx.node.inputs.length; i++) {
      if (!ctx.has(i)) continue;
      const p = ctx.partial(i);
      if (!p) return undefined;
      parts.push(p);
    }
    if (!parts.length) return undefined;
    return [concatSym(parts, ctx.node.int("axis", 0))];
  },
  Slice(ctx) {
    const x = ctx.partial(0);
    if (!x || x.shape.length === 0) return undefined;
    const a = sliceArgs(ctx, x.shape.length);
    if (!a) return undefined;
    const starts = x.shape.map(() => 0);
    const steps = x.shape.map(() => 1);
    const counts = [...x.shape];
    a.axes.forEach((ax, i) => {
      const p = sliceParams(x.shape[ax]!, a.starts[i]!, a.ends[i]!, a.steps[i]!);
      starts[ax] = p.start;
      steps[ax] = a.steps[i]!;
      counts[ax] = p.count;
    });
    return [sliceSym(x, starts, steps, counts)];
  },
  Transpose(ctx) {
    const x = ctx.partial(0);
    if (!x) return undefined;
    const r = x.shape.length;
    const perm = ctx.node.ints("perm") ?? x.shape.map((_, i) => r - 1 - i);
    return [transposeSym(x, perm)];
  },
  Split(ctx, outs) {
    const x = ctx.partial(0);
    if (!x || x.shape.length === 0) return undefined;
    const axis = normAxis(ctx.node.int("axis", 0), x.shape.length);
    const res: (SymValue | undefined)[] = [];
    let off = 0;
    for (const o of outs) {
      const len = o?.shape?.[axis];
      if (typeof len !== "number") return res;
      const starts = x.shape.map((_, i) => (i === axis ? off : 0));
      const counts = x.shape.map((d, i) => (i === axis ? len : d));
      res.push(sliceSym(x, starts, x.shape.map(() => 1), counts));
      off += len;
    }
    return res;
  },
  Where(ctx) {
    const c = ctx.partial(0);
    const a = ctx.partial(1);
    const b = ctx.partial(2);
    if (!c || !a || !b) return undefined;
    return [mapN([c, a, b], (xs) => (xs[0] === null || typeof xs[0] === "string" ? (xs[1] === xs[2] ? xs[1]! : null) : xs[0] ? xs[1]! : xs[2]!))];
  },
  ConstantOfShape(ctx, outs) {
    const shape = symInts(ctx.partial(0));
    if (!shape || shapeSize(shape) > SYM_CAP) return undefined;
    const t = ctx.node.tensor("value");
    const v = t ? t.scalar() : 0;
    return [{ shape: [...shape], values: new Array<Dim>(shapeSize(shape)).fill(castNumber(v, outs[0]?.dtype)) }];
  },
  Range(ctx) {
    const s = ctx.partial(0)?.values[0];
    const l = ctx.partial(1)?.values[0];
    const d = ctx.partial(2)?.values[0];
    if (typeof s !== "number" || typeof l !== "number" || typeof d !== "number" || d === 0) return undefined;
    const n = Math.max(Math.ceil((l - s) / d), 0);
    if (n > SYM_CAP) return undefined;
    const values: Dim[] = [];
    for (let i = 0; i < n; i++) values.push(s + i * d);
    return [{ shape: [n], values }];
  },
  Expand(ctx, outs) {
    const x = ctx.partial(0);
    const o = outs[0]?.shape;
    if (!x || !allKnown(o) || shapeSize(o) > SYM_CAP) return undefined;
    return [{ shape: [...o], values: expandTo(x, o) }];
  },
  Tile(ctx, outs) {
    const x = ctx.partial(0);
    const o = outs[0]?.shape;
    if (!x || !allKnown(o) || shapeSize(o) > SYM_CAP || o.length !== x.shape.length) return undefined;
    const inStr = stridesOf(x.shape);
    const outStr = stridesOf(o);
    const n = shapeSize(o);
    const values = new Array<Dim>(n);
    for (let i = 0; i < n; i++) {
      let src = 0;
      for (let a = 0; a < o.length; a++) src += ((Math.floor(i / outStr[a]!) % o[a]!) % x.shape[a]!) * inStr[a]!;
      values[i] = x.values[src]!;
    }
    return [{ shape: [...o], values }];
  },
  ReduceProd: (ctx, outs) => reduceSym(ctx, outs, (xs) => dimProd(xs)),
  ReduceSum: (ctx, outs) => reduceSym(ctx, outs, (xs) => (allNum(xs) ? xs.reduce((a, b) => a + b, 0) : xs.filter((x) => x !== 0).length === 1 ? xs.find((x) => x !== 0)! : null)),
  ReduceMax: (ctx, outs) => reduceSym(ctx, outs, (xs) => (allNum(xs) ? Math.max(...xs) : null)),
  ReduceMin: (ctx, outs) => reduceSym(ctx, outs, (xs) => (allNum(xs) ? Math.min(...xs) : null)),
};

for (const op of ["Add", "Sub", "Mul", "Div", "Mod", "Pow", "Max", "Min", "Sum", "Equal", "Less", "LessOrEqual", "Greater", "GreaterOrEqual", "And", "Or", "Xor"]) {
  SYM_EVAL[op] = (ctx, outs) => {
    const ins: SymValue[] = [];
    for (let i = 0; i < ctx.node.inputs.length; i++) {
      const p = ctx.partial(i);
      if (!p) return undefined;
      ins.push(p);
    }
    if (!ins.length) return undefined;
    const dt = ctx.inputs[0]?.dtype ?? outs[0]?.dtype;
    const f = binary(op === "Sum" ? "Add" : op, dt, ctx.node.int("fmod", 0));
    if (!f) return undefined;
    // n-ary ops (Max, Min, Sum) fold left pairwise; Max/Min take all at once
    if (ins.length > 2 && (op === "Sum")) {
      let acc: SymValue | undefined = ins[0]!;
      for (let k = 1; k < ins.length && acc; k++) acc = mapN([acc, ins[k]!], f);
      return [acc];
    }
    const res = mapN(ins, f);
    if (!res) return undefined;
    const odt = outs[0]?.dtype;
    if (odt && isInteger(odt)) res.values = res.values.map((v) => (typeof v === "number" ? castNumber(v, odt) : v));
    return [res];
  };
}

for (const op of ["Neg", "Abs", "Floor", "Ceil", "Round", "Sqrt", "Reciprocal", "Sign", "Not", "Relu", "Exp", "Log"]) {
  const f = unary(op)!;
  SYM_EVAL[op] = (ctx, outs) => {
    const x = ctx.partial(0);
    if (!x) return undefined;
    const dt = outs[0]?.dtype;
    const keepSym = op === "Abs" || op === "Floor" || op === "Ceil" || op === "Round" || op === "Relu";
    return [{ shape: x.shape, values: x.values.map((v) => (typeof v === "number" ? castNumber(f(v), dt) : keepSym ? v : null)) }];
  };
}
