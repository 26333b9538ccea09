import type { DType } from "./dtype.js";
import { GraphError } from "./errors.js";
import { Tensor } from "./tensor.js";

/** A dimension: a known size, a symbolic name (e.g. "batch"), or unknown (null). */
export type Dim = number | string | null;

/** Type and shape of a named value. Missing dtype/shape means unknown. */
export interface ValueInfo {
  name: string;
  dtype?: DType;
  shape?: Dim[];
  doc?: string;
}

export type AttrValue =
  | { type: "int"; value: number }
  | { type: "float"; value: number }
  | { type: "string"; value: string }
  | { type: "ints"; value: number[] }
  | { type: "floats"; value: number[] }
  | { type: "strings"; value: string[] }
  | { type: "tensor"; value: Tensor }
  | { type: "tensors"; value: Tensor[] }
  | { type: "graph"; value: Graph }
  | { type: "graphs"; value: Graph[] };

export type AttrType = AttrValue["type"];

/** One operator application. Empty strings in `inputs` mark omitted optional inputs. */
export class Node {
  name: string;
  opType: string;
  domain: string;
  inputs: string[];
  outputs: string[];
  attrs: Map<string, AttrValue>;
  doc?: string;

  constructor(init: {
    name?: string;
    opType: string;
    domain?: string;
    inputs: string[];
    outputs: string[];
    attrs?: Map<string, AttrValue> | Record<string, AttrValue>;
  }) {
    this.opType = init.opType;
    this.domain = init.domain ?? "";
    this.inputs = init.inputs;
    this.outputs = init.outputs;
    this.name = init.name ?? "";
    const a = init.attrs;
    this.attrs = a instanceof Map ? a : new Map(Object.entries(a ?? {}));
  }

  /** A label for messages: the name, or op type and first output. */
  get label(): string {
    return this.name || `${this.opType}->${this.outputs[0] ?? "?"}`;
  }

  has(name: string): boolean {
    return this.attrs.has(name);
  }

  private get_<T extends AttrType>(name: string, types: T[]): Extract<AttrValue, { type: T }> | undefined {
    const a = this.attrs.get(name);
    if (!a) return undefined;
    if (!types.includes(a.type as T)) {
      throw new GraphError(`node '${this.label}' (${this.opType}): attribute '${name}' is ${a.type}, expected ${types.join(" or ")}`);
    }
    return a as Extract<AttrValue, { type: T }>;
  }

  int(name: string): number | undefined;
  int(name: string, dflt: number): number;
  int(name: string, dflt?: number): number | undefined {
    return this.get_(name, ["int"])?.value ?? dflt;
  }
  float(name: string): number | undefined;
  float(name: string, dflt: number): number;
  float(name: string, dflt?: number): number | undefined {
    const a = this.get_(name, ["float", "int"]);
    return a ? a.value : dflt;
  }
  str(name: string): string | undefined;
  str(name: string, dflt: string): string;
  str(name: string, dflt?: string): string | undefined {
    return this.get_(name, ["string"])?.value ?? dflt;
  }
  ints(name: string): number[] | undefined;
  ints(name: string, dflt: number[]): number[];
  ints(name: string, dflt?: number[]): number[] | undefined {
    return this.get_(name, ["ints"])?.value ?? dflt;
  }
  floats(name: string): number[] | undefined;
  floats(name: string, dflt: number[]): number[];
  floats(name: string, dflt?: number[]): number[] | undefined {
    return this.get_(name, ["floats", "ints"])?.value ?? dflt;
  }
  strs(name: string): string[] | undefined {
    return this.get_(name, ["strings"])?.value;
  }
  tensor(name: string): Tensor | undefined {
    return this.get_(name, ["tensor"])?.value;
  }
  graph(name: string): Graph | undefined {
    return this.get_(name, ["graph"])?.value;
  }

  setInt(name: string, value: number): this {
    this.attrs.set(name, { type: "int", value });
    return this;
  }
  setFloat(name: string, value: number): this {
    this.attrs.set(name, { type: "float", value });
    return this;
  }
  setInts(name: string, value: number[]): this {
    this.attrs.set(name, { type: "ints", value });
    return this;
  }
  setFloats(name: string, value: number[]): this {
    this.attrs.set(name, { type: "floats", value });
    return this;
  }
  setStr(name: string, value: string): this {
    this.attrs.set(name, { type: "string", value });
    return this;
  }
  setTensor(name: string, value: Tensor): this {
    this.attrs.set(name, { type: "tensor", value });
    return this;
  }

  /** Subgraphs held in attributes (If/Loop/Scan bodies). */
  subgraphs(): Graph[] {
    const out: Graph[] = [];
    for (const a of this.attrs.values()) {
      if (a.type === "graph") out.push(a.value);
      else if (a.type === "graphs") out.push(...a.value);
    }
    return out;
  }

  clone(): Node {
    const attrs = new Map<string, AttrValue>();
    for (const [k, a] of this.attrs) {
      if (a.type === "graph") attrs.set(k, { type: "graph", value: a.value.clone() });
      else if (a.type === "graphs") attrs.set(k, { type: "graphs", value: a.value.map((g) => g.clone()) });
      else if (a.type === "ints" || a.type === "floats" || a.type === "strings") attrs.set(k, { ...a, value: [...a.value] } as AttrValue);
      else attrs.set(k, a);
    }
    const n = new Node({ name: this.name, opType: this.opType, domain: this.domain, inputs: [...this.inputs], outputs: [...this.outputs], attrs });
    if (this.doc !== undefined) n.doc = this.doc;
    return n;
  }
}

/**
 * A computation graph. The top-level graph of a model also carries the model's opset imports and
 * metadata; subgraphs (If/Loop bodies) leave those empty and may read values of enclosing graphs.
 */
export class Graph {
  name = "";
  nodes: Node[] = [];
  /** Real inputs (values fed at run time). Initializers are not listed here. */
  inputs: ValueInfo[] = [];
  outputs: ValueInfo[] = [];
  /** Constant tensors (weights), by value name. */
  initializers = new Map<string, Tensor>();
  /** Known type/shape of intermediate values (from the file or from inference). */
  valueInfo = new Map<string, ValueInfo>();
  /** Operator set versions by domain ("" = ai.onnx). Only meaningful on the top-level graph. */
  opsets: Record<string, number> = {};
  irVersion = 8;
  producerName = "q";
  producerVersion = "";
  doc = "";
  metadata: Record<string, string> = {};
  /** Where the graph was read from, for error messages. */
  source?: string;

  constructor(init?: Partial<Pick<Graph, "name" | "nodes" | "inputs" | "outputs" | "opsets">>) {
    if (init) Object.assign(this, init);
  }

  /** Opset version of a domain ("" or "ai.onnx" for the default one). */
  opset(domain = ""): number {
    const d = domain === "ai.onnx" ? "" : domain;
    return this.opsets[d] ?? this.opsets["ai.onnx"] ?? 0;
  }

  /** Type info for a value from inputs, outputs, valueInfo or initializers. */
  info(name: string): ValueInfo | undefined {
    const init = this.initializers.get(name);
    if (init) return { name, dtype: init.dtype, shape: [...init.shape] };
    return (
      this.inputs.find((v) => v.name === name) ??
      this.valueInfo.get(name) ??
      this.outputs.find((v) => v.name === name)
    );
  }

  /** Map from value name to the node producing it. */
  producers(): Map<string, Node> {
    const m = new Map<string, Node>();
    for (const n of this.nodes) for (const o of n.outputs) if (o) m.set(o, n);
    return m;
  }

  /** Map from value name to the nodes reading it (subgraph reads count for the enclosing node). */
  consumers(): Map<string, Node[]> {
    const m = new Map<string, Node[]>();
    for (const n of this.nodes) {
      for (const i of nodeReads(n)) {
        let l = m.get(i);
        if (!l) m.set(i, (l = []));
        if (!l.includes(n)) l.push(n);
      }
    }
    return m;
  }

  /** Names of values defined inside this graph: inputs, initializers, node outputs. */
  definedNames(): Set<string> {
    const s = new Set<string>();
    for (const v of this.inputs) s.add(v.name);
    for (const k of this.initializers.keys()) s.add(k);
    for (const n of this.nodes) for (const o of n.outputs) if (o) s.add(o);
    return s;
  }

  /** Values this graph reads from enclosing scopes (for subgraphs). */
  outerReads(): Set<string> {
    const defined = this.definedNames();
    const s = new Set<string>();
    for (const n of this.nodes) for (const i of nodeReads(n)) if (!defined.has(i)) s.add(i);
    for (const o of this.outputs) if (!defined.has(o.name)) s.add(o.name);
    return s;
  }

  /**
   * Sort nodes so every node comes after the producers of what it reads. Throws GraphError on a
   * cycle or on a value nobody produces (unless `outer` names it as coming from an enclosing graph).
   */
  topoSort(outer: ReadonlySet<string> = new Set()): Node[] {
    const prod = this.producers();
    const available = new Set<string>([...this.inputs.map((v) => v.name), ...this.initializers.keys(), ...outer]);
    const state = new Map<Node, number>(); // 1 visiting, 2 done
    const order: Node[] = [];
    const visit = (root: Node) => {
      // iterative DFS to survive deep graphs
      const stack: { node: Node; deps: string[]; i: number }[] = [{ node: root, deps: nodeReads(root), i: 0 }];
      state.set(root, 1);
      while (stack.length) {
        const top = stack[stack.length - 1]!;
        if (top.i < top.deps.length) {
          const v = top.deps[top.i++]!;
          if (available.has(v)) continue;
          const p = prod.get(v);
          if (!p) {
            throw new GraphError(`node '${top.node.label}' (${top.node.opType}) reads '${v}', which no node, input or initializer provides`, this.source);
          }
          const st = state.get(p);
          if (st === 2) continue;
          if (st === 1) throw new GraphError(`graph has a cycle through value '${v}' (node '${p.label}')`, this.source);
          state.set(p, 1);
          stack.push({ node: p, deps: nodeReads(p), i: 0 });
        } else {
          stack.pop();
          state.set(top.node, 2);
          order.push(top.node);
        }
      }
    };
    for (const n of this.nodes) if (!state.has(n)) visit(n);
    this.nodes = order;
    return order;
  }

  /** Remove nodes (and initializers) that do not contribute to the outputs. */
  prune(): this {
    const prod = this.producers();
    const need = new Set<string>(this.outputs.map((o) => o.name));
    const keep = new Set<Node>();
    const stack = [...need];
    while (stack.length) {
      const v = stack.pop()!;
      const p = prod.get(v);
      if (!p || keep.has(p)) continue;
      keep.add(p);
      for (const i of nodeReads(p)) {
        if (!need.has(i)) {
          need.add(i);
          stack.push(i);
        }
      }
    }
    this.nodes = this.nodes.filter((n) => keep.has(n));
    for (const k of [...this.initializers.keys()]) if (!need.has(k)) this.initializers.delete(k);
    for (const k of [...this.valueInfo.keys()]) if (!need.has(k)) this.valueInfo.delete(k);
    return this;
  }

  /** Replace every read of `from` by `to` (outputs of the graph included). */
  replaceUses(from: string, to: string): void {
    for (const n of this.nodes) {
      for (let i = 0; i < n.inputs.length; i++) if (n.inputs[i] === from) n.inputs[i] = to;
      for (const g of n.subgraphs()) if (!g.definedNames().has(from)) g.replaceUses(from, to);
    }
    for (const o of this.outputs) if (o.name === from) o.name = to;
  }

  /** Insert `node` right after the producer of its first input (or at the start). */
  insertNode(node: Node, after?: Node): Node {
    const idx = after ? this.nodes.indexOf(after) : -1;
    if (after && idx < 0) throw new GraphError(`insertNode: node '${after.label}' is not in this graph`);
    this.nodes.splice(idx + 1, 0, node);
    return node;
  }

  /** Remove a node; with `bypass`, readers of its first output read its first input instead. */
  removeNode(node: Node, bypass = false): void {
    const idx = this.nodes.indexOf(node);
    if (idx < 0) throw new GraphError(`removeNode: node '${node.label}' is not in this graph`);
    this.nodes.splice(idx, 1);
    if (bypass && node.inputs[0] && node.outputs[0]) this.replaceUses(node.outputs[0], node.inputs[0]);
  }

  /** A fresh value name not used in this graph, built from `base`. */
  uniqueName(base: string): string {
    const used = this.definedNames();
    for (const n of this.nodes) for (const i of n.inputs) used.add(i);
    if (!used.has(base)) return base;
    for (let k = 1; ; k++) if (!used.has(`${base}_${k}`)) return `${base}_${k}`;
  }

  /**
   * The part of the graph between `inputs` and `outputs`: nodes needed to compute `outputs` from
   * `inputs` (and initializers). Values in `inputs` become graph inputs; throws if some output
   * depends on a value outside that cut.
   */
  extract(inputs: string[], outputs: string[]): Graph {
    const prod = this.producers();
    const cut = new Set(inputs);
    const keep = new Set<Node>();
    const stack = [...outputs];
    const seen = new Set<string>();
    const usedInits = new Set<string>();
    const ownInputs = new Set(this.inputs.map((v) => v.name));
    while (stack.length) {
      const v = stack.pop()!;
      if (seen.has(v)) continue;
      seen.add(v);
      if (cut.has(v)) continue;
      if (this.initializers.has(v)) {
        usedInits.add(v);
        continue;
      }
      const p = prod.get(v);
      if (!p) {
        const why = ownInputs.has(v) ? "is a graph input not named in the cut" : "has no producer";
        throw new GraphError(`extract: value '${v}' ${why}; add it to the inputs of the subgraph`, this.source);
      }
      if (keep.has(p)) continue;
      keep.add(p);
      for (const i of nodeReads(p)) stack.push(i);
    }
    const g = new Graph({ name: `${this.name}_sub`, opsets: { ...this.opsets } });
    g.irVersion = this.irVersion;
    g.nodes = this.nodes.filter((n) => keep.has(n)).map((n) => n.clone());
    for (const k of usedInits) g.initializers.set(k, this.initializers.get(k)!);
    g.inputs = inputs.map((n) => ({ ...(this.info(n) ?? {}), name: n }));
    g.outputs = outputs.map((n) => ({ ...(this.info(n) ?? {}), name: n }));
    for (const [k, v] of this.valueInfo) if (seen.has(k)) g.valueInfo.set(k, v);
    g.topoSort();
    return g;
  }

  clone(): Graph {
    const g = new Graph();
    g.name = this.name;
    g.nodes = this.nodes.map((n) => n.clone());
    g.inputs = this.inputs.map((v) => cloneInfo(v));
    g.outputs = this.outputs.map((v) => cloneInfo(v));
    g.initializers = new Map(this.initializers);
    g.valueInfo = new Map([...this.valueInfo].map(([k, v]) => [k, cloneInfo(v)]));
    g.opsets = { ...this.opsets };
    g.irVersion = this.irVersion;
    g.producerName = this.producerName;
    g.producerVersion = this.producerVersion;
    g.doc = this.doc;
    g.metadata = { ...this.metadata };
    if (this.source !== undefined) g.source = this.source;
    return g;
  }

  /** Count of parameters: elements of all float initializers. */
  parameterCount(): number {
    let n = 0;
    for (const t of this.initializers.values()) n += t.size;
    return n;
  }
}

function cloneInfo(v: ValueInfo): ValueInfo {
  const c: ValueInfo = { name: v.name };
  if (v.dtype) c.dtype = v.dtype;
  if (v.shape) c.shape = [...v.shape];
  if (v.doc) c.doc = v.doc;
  return c;
}

/** Every value a node reads: its inputs plus what its subgraphs read from outside themselves. */
export function nodeReads(n: Node): string[] {
  const direct = n.inputs.filter((i) => i !== "");
  const subs = n.subgraphs();
  if (!subs.length) return direct;
  const s = new Set(direct);
  for (const g of subs) for (const v of g.outerReads()) s.add(v);
  return [...s];
}
