import {
  Graph, GraphError, Node, Tensor, UnknownOpError, getSchema, runNode,
  type AttrValue, type DType, type Dim, type SymValue, type TypeShape,
} from "@q/ir";
import { has, toNum, type PAttr, type PNode } from "./proto.js";
import { irDtype, shapeDims } from "./tensor.js";

export const OPSET = 17;

/** NHWC → NCHW: an IR value in this layout holds `transpose(tf_value, NCHW)`. */
export const NCHW: readonly number[] = [0, 3, 1, 2];

/**
 * A TF tensor as held in the IR. `layout` is a permutation: the IR value is
 * `transpose(tf_value, layout)` (ONNX Transpose semantics, out dim i = in dim layout[i]);
 * undefined means the IR value is the TF value as is ("plain").
 */
export interface TfVal {
  /** TF tensor name (`node` or `node:k`), used to name derived IR values. */
  tf: string;
  ir: string;
  layout?: readonly number[];
}

export function invPerm(p: readonly number[]): number[] {
  const r = new Array<number>(p.length);
  p.forEach((v, i) => (r[v] = i));
  return r;
}

export function isIdentity(p: readonly number[] | undefined): boolean {
  return !p || p.every((v, i) => v === i);
}

function samePerm(a: readonly number[] | undefined, b: readonly number[] | undefined): boolean {
  if (isIdentity(a) && isIdentity(b)) return true;
  return !!a && !!b && a.length === b.length && a.every((v, i) => v === b[i]);
}

function layoutTag(p: readonly number[]): string {
  return p.length === 4 && samePerm(p, NCHW) ? "nchw" : `perm${p.join("")}`;
}

/** Layout left after removing IR axes `removed` from a value in layout `l` (keep order of the rest). */
export function reducedLayout(l: readonly number[] | undefined, removed: ReadonlySet<number>): number[] | undefined {
  if (isIdentity(l)) return undefined;
  const rest = l!.filter((_, i) => !removed.has(i));
  const sorted = [...rest].sort((a, b) => a - b);
  const out = rest.map((v) => sorted.indexOf(v));
  return isIdentity(out) ? undefined : out;
}

export interface ConvertOptions {
  file?: string;
}

/** Conversion state: the graph being built, what is known of its values, TF → IR value map. */
export class Converter {
  readonly g = new Graph({ opsets: { "": OPSET } });
  readonly types = new Map<string, TypeShape>();
  readonly consts = new Map<string, Tensor>();
  readonly vals = new Map<string, TfVal>();
  private readonly valueNames = new Set<string>();
  private readonly nodeNames = new Set<string>();
  private readonly layoutCache = new Map<string, string>();

  constructor(readonly file?: string) {}

  uniq(base: string): string {
    let n = base;
    for (let k = 1; this.valueNames.has(n); k++) n = `${base}_${k}`;
    this.valueNames.add(n);
    return n;
  }

  private uniqNode(base: string): string {
    let n = base;
    for (let k = 1; this.nodeNames.has(n); k++) n = `${base}_${k}`;
    this.nodeNames.add(n);
    return n;
  }

  /** Reserve a name used by a graph input. */
  claim(name: string): void {
    this.valueNames.add(name);
  }

  addConst(t: Tensor, base: string): string {
    const name = this.uniq(base);
    this.consts.set(name, t);
    this.g.initializers.set(name, t);
    this.types.set(name, { dtype: t.dtype, shape: [...t.shape] });
    return name;
  }

  i64(values: number[], base: string, scalar = false): string {
    return this.addConst(Tensor.i64(scalar ? [] : [values.length], values), base);
  }

  shape(ir: string): Dim[] | undefined {
    return this.types.get(ir)?.shape;
  }

  dtype(ir: string): DType | undefined {
    return this.types.get(ir)?.dtype;
  }

  /**
   * Add one ONNX node. When every input is a constant the node is evaluated right away with the
   * reference interpreter and its outputs become initializers (so weight layout changes, shape
   * arithmetic and the like cost nothing at run time); otherwise the node is appended and its
   * output types are inferred from the IR's op schemas.
   */
  emit(op: string, inputs: string[], attrs: Record<string, AttrValue>, outBases: string[]): string[] {
    const outs = outBases.map((b) => this.uniq(b));
    const node = new Node({ name: outBases[0] ?? op, opType: op, inputs, outputs: outs, attrs });
    const present = inputs.filter((x) => x);
    let folded: (Tensor | undefined)[] | undefined;
    if (op === "Shape") {
      const s = this.shape(inputs[0]!);
      if (s && s.every((d) => typeof d === "number" && d >= 0)) folded = [Tensor.i64([s.length], s as number[])];
    } else if (present.length && present.every((x) => this.consts.has(x))) {
      try {
        folded = runNode(node, inputs.map((x) => (x ? this.consts.get(x) : undefined)), OPSET);
      } catch {
        folded = undefined;
      }
    }
    if (folded && folded.length >= outs.length && folded.every((t) => t)) {
      outs.forEach((o, j) => {
        const t = folded![j]!;
        this.consts.set(o, t);
        this.g.initializers.set(o, t);
        this.types.set(o, { dtype: t.dtype, shape: [...t.shape] });
      });
      return outs;
    }
    node.name = this.uniqNode(node.name);
    this.g.nodes.push(node);
    const schema = getSchema(op, "");
    if (schema) {
      try {
        const res = schema.infer({
          node,
          opset: OPSET,
          inputs: inputs.map((x) => (x ? { ...(this.types.get(x) ?? {}) } : {})),
          value: (i) => (inputs[i] ? this.consts.get(inputs[i]!) : undefined),
          partial: (i) => this.partial(inputs[i]),
          has: (i) => !!inputs[i],
          subgraph: () => [],
        });
        outs.forEach((o, j) => this.types.set(o, res[j] ?? {}));
      } catch {
        // left unknown; the executors report real problems with names
      }
    }
    return outs;
  }

  /** Small constants as the schemas' partial values (what shape inference follows). */
  private partial(name: string | undefined): SymValue | undefined {
    const t = name ? this.consts.get(name) : undefined;
    if (!t || t.size > 4096 || t.dtype === "string") return undefined;
    return { shape: [...t.shape], values: Array.from(t.toNumbers()) };
  }

  emit1(op: string, inputs: string[], attrs: Record<string, AttrValue>, base: string): string {
    return this.emit(op, inputs, attrs, [base])[0]!;
  }

  /** The IR value holding `v` in layout `l` (undefined = plain), adding a Transpose once. */
  to(v: TfVal, l?: readonly number[]): string {
    if (samePerm(v.layout, l)) return v.ir;
    const cur = v.layout ?? [...Array(l!.length).keys()];
    const target = l ?? [...Array(cur.length).keys()];
    const inv = invPerm(cur);
    const perm = target.map((x) => inv[x]!);
    const key = `${v.ir}|${perm.join(",")}`;
    const hit = this.layoutCache.get(key);
    if (hit) return hit;
    const name = this.emit1("Transpose", [v.ir], { perm: ints(perm) }, isIdentity(l) ? v.tf : `${v.tf}_${layoutTag(l!)}`);
    this.layoutCache.set(key, name);
    return name;
  }

  plain(v: TfVal): string {
    return this.to(v, undefined);
  }

  /** Shape of the TF tensor (undoing the layout). */
  tfShape(v: TfVal): Dim[] | undefined {
    const s = this.shape(v.ir);
    if (!s || isIdentity(v.layout)) return s;
    const inv = invPerm(v.layout!);
    return inv.map((i) => s[i]!);
  }

  rank(v: TfVal): number | undefined {
    return this.shape(v.ir)?.length;
  }

  /** Constant value of the TF tensor, when known. */
  konst(v: TfVal): Tensor | undefined {
    const t = this.consts.get(v.ir);
    if (!t || isIdentity(v.layout)) return t;
    const name = this.plain(v);
    return this.consts.get(name);
  }

  isConst(v: TfVal): boolean {
    return this.consts.has(v.ir);
  }

  /**
   * `v` made broadcast-compatible with a value of rank `l.length` held in layout `l`: numpy
   * broadcasting first prepends 1-dims to `v`, then the layout is applied to it as well.
   */
  alignTo(v: TfVal, l: readonly number[] | undefined): string {
    if (isIdentity(l)) return this.plain(v);
    const r = this.rank(v);
    if (r === 0) return v.ir;
    if (r === l!.length) return this.to(v, l);
    if (r === undefined || r > l!.length) throw new GraphError(`cannot align '${v.tf}' (rank ${r}) with a rank-${l!.length} value`, this.file);
    const p = this.plain(v);
    const axes = [...Array(l!.length - r).keys()];
    const u = this.emit1("Unsqueeze", [p, this.i64(axes, `${v.tf}/axes`)], {}, `${v.tf}/expanded`);
    return this.to({ tf: `${v.tf}/expanded`, ir: u }, l);
  }
}

export function ints(value: number[]): AttrValue {
  return { type: "ints", value };
}
export function int(value: number): AttrValue {
  return { type: "int", value };
}
export function float(value: number): AttrValue {
  return { type: "float", value };
}
export function str(value: string): AttrValue {
  return { type: "string", value };
}

/** Split `node:port` on the last ':' (port 0 when absent). */
export function parseRef(ref: string): { node: string; port: number } {
  const i = ref.lastIndexOf(":");
  if (i > 0 && /^\d+$/.test(ref.slice(i + 1))) return { node: ref.slice(0, i), port: Number(ref.slice(i + 1)) };
  return { node: ref, port: 0 };
}

export function refName(node: string, port: number): string {
  return port === 0 ? node : `${node}:${port}`;
}

const dec = new TextDecoder();

/** What an op builder sees of one TF node. */
export class NodeCtx {
  readonly inputs: string[];
  constructor(
    readonly c: Converter,
    readonly node: PNode,
  ) {
    this.inputs = (node.input ?? []).filter((x) => !x.startsWith("^"));
  }

  get name(): string {
    return this.node.name ?? "";
  }
  get op(): string {
    return this.node.op ?? "";
  }

  fail(why: string): never {
    throw new UnknownOpError(this.op, "", this.name, why, this.c.file);
  }

  in(i: number): TfVal {
    const ref = this.inputs[i];
    if (ref === undefined) {
      throw new GraphError(`node '${this.name}' (${this.op}) has ${this.inputs.length} inputs; input ${i} is missing`, this.c.file);
    }
    const { node, port } = parseRef(ref);
    const v = this.c.vals.get(refName(node, port));
    if (!v) throw new GraphError(`node '${this.name}' (${this.op}) reads '${ref}', which no node provides`, this.c.file);
    return v;
  }

  /** A constant input as numbers; fails with a clear message when it is computed at run time. */
  constInts(i: number, what: string): number[] {
    const t = this.c.konst(this.in(i));
    if (!t) this.fail(`its ${what} (input ${i}, '${this.inputs[i]}') is computed at run time; q needs it constant`);
    return t.toArray();
  }

  attr(k: string): PAttr | undefined {
    return this.node.attr?.[k];
  }
  i(k: string, d: number): number {
    const a = this.attr(k);
    return a && has(a, "i") ? toNum(a.i) : d;
  }
  f(k: string, d: number): number {
    const a = this.attr(k);
    return a && has(a, "f") ? a.f! : d;
  }
  b(k: string, d: boolean): boolean {
    const a = this.attr(k);
    return a && has(a, "b") ? !!a.b : d;
  }
  s(k: string, d: string): string {
    const a = this.attr(k);
    return a && has(a, "s") ? dec.decode(a.s) : d;
  }
  ints(k: string, d: number[]): number[] {
    const a = this.attr(k);
    return a && has(a, "list") ? (a.list!.i ?? []).map(toNum) : d;
  }
  type(k: string): DType | undefined {
    const a = this.attr(k);
    return a && has(a, "type") ? irDtype(a.type!) : undefined;
  }
  shapeAttr(k: string): number[] | undefined {
    const a = this.attr(k);
    return a && has(a, "shape") ? shapeDims(a.shape) : undefined;
  }

  /** Name for the IR value of output `port` in layout `l`. */
  outName(port = 0, l?: readonly number[]): string {
    const base = refName(this.name, port);
    return isIdentity(l) ? base : `${base}_${layoutTag(l!)}`;
  }

  /** Record output `port` of this TF node. */
  set(port: number, ir: string, layout?: readonly number[]): void {
    const v: TfVal = { tf: refName(this.name, port), ir };
    if (!isIdentity(layout)) v.layout = layout;
    this.c.vals.set(refName(this.name, port), v);
  }

  /** Record output `port` as an alias of an existing value. */
  alias(port: number, v: TfVal): void {
    this.c.vals.set(refName(this.name, port), v);
  }

  /** Emit the node computing output 0 in layout `l` and record it. */
  out(op: string, inputs: string[], attrs: Record<string, AttrValue> = {}, l?: readonly number[]): string {
    const ir = this.c.emit1(op, inputs, attrs, this.outName(0, l));
    this.set(0, ir, l);
    return ir;
  }

  /** Emit a helper node named after this one. */
  aux(op: string, inputs: string[], attrs: Record<string, AttrValue>, tag: string): string {
    return this.c.emit1(op, inputs, attrs, `${this.name}/${tag}`);
  }

  /** A helper int64 constant named after this node. */
  i64(values: number[], tag: string, scalar = false): string {
    return this.c.i64(values, `${this.name}/${tag}`, scalar);
  }
}
