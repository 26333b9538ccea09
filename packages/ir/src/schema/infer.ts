import type { Dim, Graph, Node, ValueInfo } from "../graph.js";
import { runNode } from "../interp/interpreter.js";
import type { Tensor } from "../tensor.js";
import { mergeShape } from "./dims.js";
import { constantTensor } from "./ops-tensor.js";
import { getSchema } from "./registry.js";
import { SYM_CAP, SYM_EVAL, symToTensor, tensorToSym } from "./symbolic.js";
import type { InferContext, SymValue, TypeShape } from "./types.js";

export interface InferOptions {
  /** Concrete shapes for graph inputs, used instead of the declared ones (e.g. batch 1). */
  inputShapes?: Record<string, number[]>;
  /**
   * Keep dims recorded before (value_info of the file, declared output shapes) where inference
   * leaves them unknown. Default: true, but false when `inputShapes` is given (the recorded dims
   * may belong to other input sizes).
   */
  keepExisting?: boolean;
}

/**
 * What inference found besides the shapes. The result itself is the list of ops (domain-qualified
 * unless ai.onnx) that have no schema, so `inferShapes(g)` can be used as that list directly.
 */
export interface InferResult extends Array<string> {
  /** Ops (domain-qualified unless ai.onnx) with no schema: their outputs are left unknown. */
  noSchema: string[];
  /** Nodes whose inference failed (bad attribute, incompatible shapes): outputs left unknown. */
  errors: { node: string; opType: string; message: string }[];
  /** Values whose inferred concrete dims disagree with concrete dims recorded before. */
  mismatches: { value: string; inferred: Dim[]; recorded: Dim[] }[];
}

/** Ops whose results must never be computed ahead of time. */
export const RANDOM_OPS: ReadonlySet<string> = new Set([
  "RandomNormal", "RandomUniform", "RandomNormalLike", "RandomUniformLike", "Bernoulli", "Multinomial", "Dropout",
]);

/** Values known while walking a graph; subgraph scopes chain to the enclosing one. */
class Scope {
  readonly types = new Map<string, TypeShape>();
  readonly consts = new Map<string, Tensor>();
  readonly syms = new Map<string, SymValue>();
  constructor(readonly parent?: Scope) {}

  type(n: string): TypeShape | undefined {
    return this.types.get(n) ?? this.parent?.type(n);
  }
  konst(n: string): Tensor | undefined {
    return this.consts.get(n) ?? this.parent?.konst(n);
  }
  sym(n: string): SymValue | undefined {
    const s = this.syms.get(n) ?? this.parent?.sym(n);
    if (s) return s;
    const t = this.konst(n);
    if (!t) return undefined;
    const v = tensorToSym(t);
    if (v) this.syms.set(n, v);
    return v;
  }
  names(into = new Set<string>()): Set<string> {
    for (const k of this.types.keys()) into.add(k);
    for (const k of this.consts.keys()) into.add(k);
    this.parent?.names(into);
    return into;
  }
}

interface State {
  opsets: Record<string, number>;
  opts: InferOptions;
  keep: boolean;
  result: InferResult;
  noSchema: Set<string>;
}

function clean(t: TypeShape | undefined): TypeShape {
  const o: TypeShape = {};
  if (t?.dtype) o.dtype = t.dtype;
  if (t?.shape) o.shape = [...t.shape];
  return o;
}

function sameDims(a: readonly Dim[], b: readonly Dim[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

function message(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** Record the type of a node output: merge with what was recorded before and write valueInfo. */
function record(g: Graph, name: string, t: TypeShape, scope: Scope, st: State): void {
  const prev: ValueInfo | undefined = g.valueInfo.get(name) ?? g.outputs.find((o) => o.name === name);
  let out = clean(t);
  if (prev && st.keep) {
    if (out.shape && prev.shape && out.shape.length === prev.shape.length) {
      const clash = out.shape.some((d, i) => typeof d === "number" && typeof prev.shape![i] === "number" && d !== prev.shape![i]);
      if (clash) st.result.mismatches.push({ value: name, inferred: [...out.shape], recorded: [...prev.shape] });
    }
    const shape = mergeShape(out.shape, prev.shape);
    out = { ...out };
    if (!out.dtype && prev.dtype) out.dtype = prev.dtype;
    if (shape) out.shape = shape;
  }
  scope.types.set(name, out);
  if (out.dtype || out.shape) {
    const vi: ValueInfo = { name };
    if (out.dtype) vi.dtype = out.dtype;
    if (out.shape) vi.shape = [...out.shape];
    const old = g.valueInfo.get(name);
    if (old?.doc) vi.doc = old.doc;
    g.valueInfo.set(name, vi);
  }
}

function inferNode(g: Graph, node: Node, scope: Scope, st: State): void {
  const isDefault = node.domain === "" || node.domain === "ai.onnx";
  const opset = isDefault ? (st.opsets[""] ?? st.opsets["ai.onnx"] ?? 0) : (st.opsets[node.domain] ?? 1);
  const inputs = node.inputs.map((n) => (n ? clean(scope.type(n)) : {}));
  const ctx: InferContext = {
    node,
    opset,
    inputs,
    value: (i) => (node.inputs[i] ? scope.konst(node.inputs[i]!) : undefined),
    partial: (i) => (node.inputs[i] ? scope.sym(node.inputs[i]!) : undefined),
    has: (i) => !!node.inputs[i],
    subgraph: (sg, ins) => {
      const child = new Scope(scope);
      if (ins) {
        sg.inputs.forEach((v, k) => {
          const t = ins[k];
          const ty: TypeShape = {};
          const dt = t?.dtype ?? v.dtype;
          if (dt) ty.dtype = dt;
          const sh = mergeShape(t?.shape, v.shape);
          if (sh) ty.shape = sh;
          child.types.set(v.name, ty);
        });
      }
      return inferGraph(sg, child, st);
    },
  };
  const schema = getSchema(node.opType, node.domain);
  let outs: TypeShape[] = [];
  if (!schema) {
    const label = isDefault ? node.opType : `${node.domain}.${node.opType}`;
    if (!st.noSchema.has(label)) {
      st.noSchema.add(label);
      st.result.noSchema.push(label);
      st.result.push(label);
    }
  } else {
    try {
      outs = schema.infer(ctx).map(clean);
    } catch (e) {
      st.result.errors.push({ node: node.label, opType: node.opType, message: message(e) });
      outs = [];
    }
  }

  // values: Constant, partial evaluation of shape computations, then the interpreter for small constants
  const values: (Tensor | undefined)[] = [];
  const syms: (SymValue | undefined)[] = [];
  if (node.opType === "Constant" && isDefault) {
    values[0] = constantTensor(node);
  } else if (node.subgraphs().length === 0 && !RANDOM_OPS.has(node.opType)) {
    const prop = schema?.propagate ?? (isDefault ? SYM_EVAL[node.opType] : undefined);
    if (prop) {
      try {
        const r = prop(ctx, outs) ?? [];
        r.forEach((s, j) => {
          if (!s) return;
          syms[j] = s;
          const dt = outs[j]?.dtype;
          const t = dt ? symToTensor(dt, s) : undefined;
          if (t) values[j] = t;
        });
      } catch {
        // a value we cannot follow is simply unknown
      }
    }
    const present = node.inputs.filter((n) => n);
    if (!values.some((v) => v) && present.length > 0 && present.every((n) => scope.konst(n))) {
      const ins = node.inputs.map((n) => (n ? scope.konst(n) : undefined));
      const total = ins.reduce((a, t) => a + (t ? t.size : 0), 0);
      if (total <= SYM_CAP) {
        try {
          runNode(node, ins, opset).forEach((t, j) => (values[j] = t));
        } catch {
          // no kernel yet, or the node is broken: leave the value unknown
        }
      }
    }
  }

  node.outputs.forEach((name, j) => {
    if (!name) return;
    const t = { ...(outs[j] ?? {}) };
    const v = values[j];
    if (v) {
      scope.consts.set(name, v);
      t.dtype ??= v.dtype;
      t.shape = [...v.shape];
    } else if (syms[j]) {
      scope.syms.set(name, syms[j]!);
      if (!t.shape) t.shape = [...syms[j]!.shape];
    }
    record(g, name, t, scope, st);
  });
}

/** Infer a (sub)graph in `scope`; returns the types of its outputs. */
function inferGraph(g: Graph, scope: Scope, st: State, top = false): TypeShape[] {
  for (const v of g.inputs) {
    const fixed = top ? st.opts.inputShapes?.[v.name] : undefined;
    const declared = scope.types.get(v.name);
    const t: TypeShape = {};
    const dtype = declared?.dtype ?? v.dtype;
    if (dtype) t.dtype = dtype;
    const shape = fixed ? [...fixed] : (declared?.shape ?? (v.shape ? [...v.shape] : undefined));
    if (shape) t.shape = shape;
    scope.types.set(v.name, t);
  }
  for (const [k, t] of g.initializers) {
    scope.types.set(k, { dtype: t.dtype, shape: [...t.shape] });
    scope.consts.set(k, t);
  }
  let order: Node[];
  try {
    const outer = scope.parent ? scope.parent.names() : new Set<string>();
    order = g.topoSort(outer);
  } catch (e) {
    st.result.errors.push({ node: g.name || "(graph)", opType: "", message: message(e) });
    order = g.nodes;
  }
  for (const n of order) inferNode(g, n, scope, st);
  return g.outputs.map((o) => {
    const t = clean(scope.type(o.name));
    const merged = mergeShape(t.shape, st.keep ? o.shape : undefined);
    if (merged) t.shape = merged;
    if (!t.dtype && o.dtype) t.dtype = o.dtype;
    return t;
  });
}

function run(graph: Graph, opts: InferOptions): { result: InferResult; scope: Scope } {
  const st: State = {
    opsets: graph.opsets,
    opts,
    keep: opts.keepExisting ?? !opts.inputShapes,
    result: Object.assign([] as string[], { noSchema: [] as string[], errors: [], mismatches: [] }),
    noSchema: new Set(),
  };
  if (!st.keep) {
    // forget shapes recorded for node outputs (they may belong to other input sizes); keep dtypes
    const outs = new Set<string>();
    const walk = (g: Graph) => {
      for (const n of g.nodes) {
        for (const o of n.outputs) if (o) outs.add(o);
        for (const s of n.subgraphs()) walk(s);
      }
    };
    walk(graph);
    for (const [k, v] of graph.valueInfo) if (outs.has(k)) graph.valueInfo.set(k, v.dtype ? { name: k, dtype: v.dtype } : { name: k });
  }
  const scope = new Scope();
  inferGraph(graph, scope, st, true);
  return { result: st.result, scope };
}

/**
 * Shape and dtype inference over a graph (and its If/Loop bodies). Fills `graph.valueInfo` for every
 * node output: numbers where known, symbolic names passed through (e.g. the batch 'N'), null where
 * unknown. Constant inputs (initializers, Constant nodes, folded shape computations such as
 * Shape -> Gather -> Concat) are followed so Reshape/Slice/Resize/Expand/Pad... get concrete shapes.
 * Never throws: ops without a schema and nodes that fail are listed in the result.
 */
export function inferShapes(graph: Graph, opts: InferOptions = {}): InferResult {
  return run(graph, opts).result;
}

/** Inference that also returns the constant values it found for top-level values (for folding). */
export function inferWithValues(graph: Graph, opts: InferOptions = {}): { result: InferResult; values: Map<string, Tensor> } {
  const { result, scope } = run(graph, opts);
  return { result, values: scope.consts };
}
