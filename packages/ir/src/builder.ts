/**
 * A small helper to build IR graphs in code: model-definition scripts (Knight's PyTorch
 * `-uds` route), front-ends that translate op by op, and tests. Each `op` call appends a node,
 * names its outputs and infers their dtype/shape with the op schemas, so later steps can ask
 * `shape(name)`.
 */
import type { DType } from "./dtype.js";
import { GraphError } from "./errors.js";
import { Graph, Node, type AttrValue, type Dim, type ValueInfo } from "./graph.js";
import { getSchema } from "./schema/registry.js";
import type { InferContext, TypeShape } from "./schema/types.js";
import { tensorToSym } from "./schema/symbolic.js";
import { Tensor } from "./tensor.js";

/** Attribute values accepted by `op`: plain JS values are typed by `toAttr`, or pass an AttrValue. */
export type AttrInput = number | boolean | string | number[] | string[] | Tensor | AttrValue;

/** Attributes that ONNX types as float even when the value given happens to be an integer. */
const FLOAT_ATTRS = new Set([
  "alpha", "beta", "gamma", "epsilon", "momentum", "lambd", "bias", "scale", "ratio", "spatial_scale",
  "threshold", "min", "max", "cubic_coeff_a", "extrapolation_value", "scales", "fmod_float",
]);

/** Type a plain attribute value: integers -> int(s), other numbers -> float(s), unless the name is a float attribute. */
export function toAttr(name: string, v: AttrInput): AttrValue {
  if (v instanceof Tensor) return { type: "tensor", value: v };
  if (typeof v === "object" && !Array.isArray(v) && v !== null && "type" in v) return v;
  if (typeof v === "boolean") return { type: "int", value: v ? 1 : 0 };
  if (typeof v === "string") return { type: "string", value: v };
  if (typeof v === "number") {
    return FLOAT_ATTRS.has(name) || !Number.isInteger(v) ? { type: "float", value: v } : { type: "int", value: v };
  }
  if (Array.isArray(v)) {
    if (v.length && typeof v[0] === "string") return { type: "strings", value: v as string[] };
    const nums = v as number[];
    return FLOAT_ATTRS.has(name) || nums.some((x) => !Number.isInteger(x)) ? { type: "floats", value: nums } : { type: "ints", value: nums };
  }
  throw new GraphError(`attribute '${name}': cannot type value ${String(v)}`);
}

export interface OpOptions {
  /** Output value names (default: fresh names from the op type). */
  outputs?: string[];
  /** Node name (default: the first output's name). */
  name?: string;
  /** Base for generated output names (default: the op type). */
  base?: string;
  /** Number of outputs when `outputs` is not given (default 1). */
  count?: number;
  domain?: string;
}

export interface Conv2dOptions {
  stride?: number | number[];
  padding?: number | number[];
  dilation?: number | number[];
  groups?: number;
}

const pair = (v: number | number[] | undefined, d: number): number[] => (v === undefined ? [d, d] : typeof v === "number" ? [v, v] : v);

export class GraphBuilder {
  readonly graph: Graph;
  private readonly used = new Set<string>();
  private readonly types = new Map<string, TypeShape>();
  private counter = 0;

  constructor(opts: { name?: string; opsets?: Record<string, number> } = {}) {
    this.graph = new Graph({ name: opts.name ?? "graph", opsets: opts.opsets ?? { "": 17 } });
  }

  /** A name not used yet, built from `base`. */
  fresh(base: string): string {
    const b = base.replace(/\s+/g, "_") || "v";
    if (!this.used.has(b)) {
      this.used.add(b);
      return b;
    }
    for (;;) {
      const n = `${b}_${++this.counter}`;
      if (!this.used.has(n)) {
        this.used.add(n);
        return n;
      }
    }
  }

  private claim(name: string, what: string): void {
    if (this.used.has(name)) throw new GraphError(`${what} '${name}' is already defined in this graph`);
    this.used.add(name);
  }

  /** Declare a graph input (shape left out: unknown rank). Returns its name. */
  input(name: string, dtype: DType, shape?: Dim[]): string {
    this.claim(name, "input");
    this.graph.inputs.push(shape ? { name, dtype, shape: [...shape] } : { name, dtype });
    this.types.set(name, shape ? { dtype, shape: [...shape] } : { dtype });
    return name;
  }

  /** Change the declared shape of an input (before anything reads it). */
  setInputShape(name: string, shape: Dim[]): void {
    const inp = this.graph.inputs.find((i) => i.name === name);
    if (!inp) throw new GraphError(`setInputShape: '${name}' is not an input`);
    inp.shape = [...shape];
    this.types.set(name, { ...(inp.dtype ? { dtype: inp.dtype } : {}), shape: [...shape] });
  }

  /** Add a constant tensor (an initializer). `name` is used as is when free, else made unique. */
  initializer(name: string, t: Tensor): string {
    const n = this.fresh(name);
    this.graph.initializers.set(n, t);
    this.types.set(n, { dtype: t.dtype, shape: [...t.shape] });
    return n;
  }

  /** Same as `initializer`. */
  constant(name: string, t: Tensor): string {
    return this.initializer(name, t);
  }

  /** An int64 1-D initializer (shapes, pads, axes, slice bounds). */
  ints(name: string, values: ArrayLike<number | bigint>): string {
    return this.initializer(name, int64Tensor([values.length], values));
  }

  /** A float32 initializer. */
  floats(name: string, shape: number[], values: ArrayLike<number>): string {
    return this.initializer(name, Tensor.f32(shape, values));
  }

  /** Constant tensor of a value, if `name` is an initializer. */
  value(name: string): Tensor | undefined {
    return this.graph.initializers.get(name);
  }

  /** Known dtype/shape of a value. */
  info(name: string): ValueInfo | undefined {
    const t = this.types.get(name);
    if (!t) return undefined;
    const v: ValueInfo = { name };
    if (t.dtype) v.dtype = t.dtype;
    if (t.shape) v.shape = [...t.shape];
    return v;
  }

  /** Known shape of a value (dims may be symbolic or null), or undefined when even the rank is unknown. */
  shape(name: string): Dim[] | undefined {
    return this.types.get(name)?.shape;
  }

  dtype(name: string): DType | undefined {
    return this.types.get(name)?.dtype;
  }

  /**
   * Append a node. `nOutputs` (or `opts.outputs`) sets the number of outputs; returns their names.
   * Empty strings in `inputs` mark omitted optional inputs.
   */
  op(opType: string, inputs: string[], attrs: Record<string, AttrInput | undefined> = {}, nOutputs: number | OpOptions = 1): string[] {
    const o: OpOptions = typeof nOutputs === "number" ? {} : nOutputs;
    const count = typeof nOutputs === "number" ? nOutputs : (o.outputs?.length ?? o.count ?? 1);
    for (const i of inputs) {
      if (i !== "" && !this.used.has(i)) throw new GraphError(`op ${opType}: input '${i}' is not defined yet (declare inputs and initializers first)`);
    }
    const outputs = o.outputs ? o.outputs.map((n) => (this.claim(n, "value"), n)) : Array.from({ length: count }, () => this.fresh(o.base ?? opType));
    const a = new Map<string, AttrValue>();
    for (const [k, v] of Object.entries(attrs)) if (v !== undefined) a.set(k, toAttr(k, v));
    const node = new Node({ name: o.name ?? outputs[0], opType, domain: o.domain ?? "", inputs: [...inputs], outputs, attrs: a });
    this.graph.nodes.push(node);
    this.infer(node);
    return outputs;
  }

  /** `op` for single-output ops: returns the output name. */
  op1(opType: string, inputs: string[], attrs: Record<string, AttrInput | undefined> = {}, opts: OpOptions = {}): string {
    return this.op(opType, inputs, attrs, opts)[0]!;
  }

  private infer(node: Node): void {
    const schema = getSchema(node.opType, node.domain);
    if (!schema) return;
    const ins: TypeShape[] = node.inputs.map((i) => (i ? (this.types.get(i) ?? {}) : {}));
    const g = this.graph;
    const ctx: InferContext = {
      node,
      opset: g.opset(node.domain),
      inputs: ins,
      value: (i) => (node.inputs[i] ? g.initializers.get(node.inputs[i]!) : undefined),
      partial: (i) => {
        const t = node.inputs[i] ? g.initializers.get(node.inputs[i]!) : undefined;
        return t ? tensorToSym(t) : undefined;
      },
      has: (i) => !!node.inputs[i],
      subgraph: () => [],
    };
    try {
      const outs = schema.infer(ctx);
      node.outputs.forEach((o, i) => {
        const t = outs[i];
        if (t && (t.dtype || t.shape)) {
          this.types.set(o, t);
          const vi: ValueInfo = { name: o };
          if (t.dtype) vi.dtype = t.dtype;
          if (t.shape) vi.shape = [...t.shape];
          g.valueInfo.set(o, vi);
        }
      });
    } catch {
      // unknown shapes stay unknown; the graph is still valid
    }
  }

  /** Rename a value computed by a node (reads of it follow). Returns the new name. */
  rename(from: string, to: string): string {
    const g = this.graph;
    const producer = g.nodes.find((n) => n.outputs.includes(from));
    if (!producer) throw new GraphError(`rename: no node computes '${from}'`);
    this.claim(to, "value");
    producer.outputs = producer.outputs.map((o) => (o === from ? to : o));
    if (producer.name === from) producer.name = to;
    for (const n of g.nodes) n.inputs = n.inputs.map((i) => (i === from ? to : i));
    for (const o of g.outputs) if (o.name === from) o.name = to;
    const t = this.types.get(from);
    if (t) this.types.set(to, t);
    const vi = g.valueInfo.get(from);
    if (vi) g.valueInfo.set(to, { ...vi, name: to });
    this.types.delete(from);
    g.valueInfo.delete(from);
    this.used.delete(from);
    return to;
  }

  /** Mark a value as a graph output (dtype/shape taken from inference unless given). */
  output(name: string, dtype?: DType, shape?: Dim[]): void {
    if (!this.used.has(name)) throw new GraphError(`output '${name}' is not defined`);
    const t = this.types.get(name);
    const vi: ValueInfo = { name };
    const dt = dtype ?? t?.dtype;
    const sh = shape ?? t?.shape;
    if (dt) vi.dtype = dt;
    if (sh) vi.shape = [...sh];
    this.graph.outputs.push(vi);
  }

  /** Finish: checks that every read value is defined and sorts the nodes. */
  build(): Graph {
    if (!this.graph.outputs.length) throw new GraphError(`graph '${this.graph.name}' has no outputs: call output(name)`);
    this.graph.topoSort();
    return this.graph;
  }

  // ---- conveniences (PyTorch argument conventions) -------------------------------------------

  /** Conv2d with PyTorch-style symmetric padding; weight [O, I/g, kH, kW]. */
  conv2d(x: string, w: string, b?: string, o: Conv2dOptions = {}): string {
    const ws = this.shape(w);
    const p = pair(o.padding, 0);
    const attrs: Record<string, AttrInput | undefined> = {
      strides: pair(o.stride, 1),
      pads: [p[0]!, p[1]!, p[0]!, p[1]!],
      dilations: pair(o.dilation, 1),
      group: o.groups ?? 1,
    };
    if (ws && ws.length === 4 && typeof ws[2] === "number" && typeof ws[3] === "number") attrs.kernel_shape = [ws[2], ws[3]];
    return this.op1("Conv", b ? [x, w, b] : [x, w], attrs);
  }

  /** Inference batch norm (PyTorch order: weight, bias, running_mean, running_var). */
  batchNorm(x: string, scale: string, bias: string, mean: string, variance: string, eps = 1e-5): string {
    return this.op1("BatchNormalization", [x, scale, bias, mean, variance], { epsilon: { type: "float", value: eps } });
  }

  relu(x: string): string {
    return this.op1("Relu", [x]);
  }
  add(a: string, b: string): string {
    return this.op1("Add", [a, b]);
  }
  mul(a: string, b: string): string {
    return this.op1("Mul", [a, b]);
  }

  /** PyTorch Linear: y = x W^T + b with W [out, in]; x of rank 2. */
  linear(x: string, w: string, b?: string): string {
    return this.op1("Gemm", b ? [x, w, b] : [x, w], { transB: 1 });
  }

  flatten(x: string, axis = 1): string {
    return this.op1("Flatten", [x], { axis });
  }

  globalAvgPool(x: string): string {
    return this.op1("GlobalAveragePool", [x]);
  }

  maxPool2d(x: string, kernel: number | number[], stride?: number | number[], padding: number | number[] = 0, ceil = false): string {
    const k = pair(kernel, 1);
    const p = pair(padding, 0);
    return this.op1("MaxPool", [x], { kernel_shape: k, strides: stride === undefined ? k : pair(stride, 1), pads: [p[0]!, p[1]!, p[0]!, p[1]!], ceil_mode: ceil ? 1 : 0 });
  }

  avgPool2d(x: string, kernel: number | number[], stride?: number | number[], padding: number | number[] = 0, countIncludePad = true): string {
    const k = pair(kernel, 1);
    const p = pair(padding, 0);
    return this.op1("AveragePool", [x], { kernel_shape: k, strides: stride === undefined ? k : pair(stride, 1), pads: [p[0]!, p[1]!, p[0]!, p[1]!], count_include_pad: countIncludePad ? 1 : 0 });
  }

  /** Constant padding with ONNX pads [begin..., end...] (one pair per dim). */
  pad(x: string, pads: number[], value = 0): string {
    const ins = [x, this.ints(`${x}_pads`, pads)];
    if (value !== 0) ins.push(this.initializer(`${x}_padval`, Tensor.f32([], [value])));
    return this.op1("Pad", ins, { mode: "constant" });
  }

  /** ONNX Slice with constant bounds. */
  slice(x: string, starts: number[], ends: number[], axes?: number[], steps?: number[]): string {
    const ins = [x, this.ints(`${x}_starts`, starts), this.ints(`${x}_ends`, ends)];
    if (axes || steps) ins.push(this.ints(`${x}_axes`, axes ?? starts.map((_, i) => i)));
    if (steps) ins.push(this.ints(`${x}_steps`, steps));
    return this.op1("Slice", ins);
  }

  concat(xs: string[], axis: number): string {
    return this.op1("Concat", xs, { axis });
  }

  reshape(x: string, shape: number[]): string {
    return this.op1("Reshape", [x, this.ints(`${x}_shape`, shape)]);
  }
}

const I64_MAX = 9223372036854775807n;
const I64_MIN = -9223372036854775808n;

/** int64 tensor from numbers or bigints; numbers beyond the int64 range clamp to it (e.g. 2^63 from a parsed literal). */
export function int64Tensor(shape: number[], values: ArrayLike<number | bigint>): Tensor {
  const d = new BigInt64Array(values.length);
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!;
    let b: bigint;
    if (typeof v === "bigint") b = v;
    else if (v >= 9.2233720368547758e18) b = I64_MAX;
    else if (v <= -9.2233720368547758e18) b = I64_MIN;
    else b = BigInt(Math.trunc(v));
    d[i] = b > I64_MAX ? I64_MAX : b < I64_MIN ? I64_MIN : b;
  }
  return new Tensor("int64", shape, d);
}
