import { InputMismatchError, UnknownOpError, QError, GraphError } from "../errors.js";
import type { Executor, Feeds, RunOptions } from "../executor.js";
import { Graph, Node, nodeReads } from "../graph.js";
import { Tensor } from "../tensor.js";
import { KERNELS } from "./kernels.js";
import type { Kernel, KernelContext } from "./types.js";

/** Kernel for an op, or undefined when the reference interpreter has none. */
export function kernelFor(opType: string, domain = ""): Kernel | undefined {
  if (domain !== "" && domain !== "ai.onnx") return undefined;
  return KERNELS[opType];
}

/** Ops the reference interpreter can run (ai.onnx domain). */
export function supportedOps(): string[] {
  return Object.keys(KERNELS).sort();
}

/** Run one node on concrete inputs. */
export function runNode(
  node: Node,
  inputs: (Tensor | undefined)[],
  opset: number,
  source?: string,
  scope?: ReadonlyMap<string, Tensor>,
): Tensor[] {
  const k = kernelFor(node.opType, node.domain);
  if (!k) {
    throw new UnknownOpError(node.opType, node.domain, node.label, "the reference interpreter has no kernel for it (use --executor ort)", source);
  }
  const ctx: KernelContext = {
    opset,
    // a subgraph sees every value of the enclosing scopes, plus what the kernel feeds it
    runSubgraph: (g, feeds) => {
      const inner = new Map<string, Tensor>(scope ?? []);
      for (const [k2, v] of feeds) inner.set(k2, v);
      return runGraph(g, inner, opset, source);
    },
  };
  return k(inputs, node, ctx);
}

/** Run a (sub)graph with a scope of already-known values; returns the graph outputs in order. */
function runGraph(
  g: Graph,
  scope: Map<string, Tensor>,
  opset: number,
  source?: string,
  want?: Set<string>,
  picked?: Map<string, Tensor>,
  collectAll = false,
): Tensor[] {
  const env = new Map<string, Tensor>(scope);
  for (const [k, t] of g.initializers) env.set(k, t);
  const order = g.topoSort(new Set(scope.keys()));
  // last use of each value, so memory is released as soon as possible
  const lastUse = new Map<string, number>();
  order.forEach((n, i) => {
    for (const v of nodeReads(n)) lastUse.set(v, i);
  });
  const keep = new Set<string>([...g.outputs.map((o) => o.name), ...(want ?? [])]);
  for (let i = 0; i < order.length; i++) {
    const n = order[i]!;
    const ins = n.inputs.map((name) => {
      if (name === "") return undefined;
      const t = env.get(name);
      if (!t) throw new GraphError(`node '${n.label}' (${n.opType}) reads '${name}' before it is computed`, source);
      return t;
    });
    let outs: Tensor[];
    try {
      outs = runNode(n, ins, n.domain === "" ? opset : 1, source, n.attrs.size && n.subgraphs().length ? env : undefined);
    } catch (e) {
      if (e instanceof QError) throw e;
      const msg = e instanceof Error ? e.message : String(e);
      throw new GraphError(`node '${n.label}' (${n.opType}) failed in the reference interpreter: ${msg}`, source);
    }
    n.outputs.forEach((o, j) => {
      if (!o) return;
      const t = outs[j];
      if (t) {
        env.set(o, t);
        if (collectAll) picked?.set(o, t);
      }
    });
    if (!collectAll) {
      for (const v of nodeReads(n)) {
        if (lastUse.get(v) === i && !keep.has(v) && !scope.has(v) && !g.initializers.has(v)) env.delete(v);
      }
    }
  }
  if (want && picked) {
    for (const w of want) {
      const t = env.get(w);
      if (t) picked.set(w, t);
    }
  }
  return g.outputs.map((o) => {
    const t = env.get(o.name);
    if (!t) throw new GraphError(`output '${o.name}' was not computed`, source);
    return t;
  });
}

/**
 * The reference interpreter: runs an IR graph in pure TypeScript. It is slow but straightforward,
 * and it is the oracle the other executors and the integer simulation are checked against.
 */
export class ReferenceExecutor implements Executor {
  readonly name = "reference";
  constructor(readonly graph: Graph) {
    const missing = new Set<string>();
    const walk = (g: Graph) => {
      for (const n of g.nodes) {
        if (!kernelFor(n.opType, n.domain)) missing.add(`${n.domain ? n.domain + "." : ""}${n.opType}`);
        for (const s of n.subgraphs()) walk(s);
      }
    };
    walk(graph);
    if (missing.size) {
      const first = [...missing][0]!;
      const node = graph.nodes.find((n) => `${n.domain ? n.domain + "." : ""}${n.opType}` === first);
      throw new UnknownOpError(
        first, "", node?.label ?? first,
        `the reference interpreter cannot run ${[...missing].join(", ")}; use --executor ort`,
        graph.source,
      );
    }
  }

  async run(feeds: Feeds, opts: RunOptions = {}): Promise<Record<string, Tensor>> {
    return this.runSync(feeds, opts);
  }

  runSync(feeds: Feeds, opts: RunOptions = {}): Record<string, Tensor> {
    const g = this.graph;
    const scope = new Map<string, Tensor>();
    for (const inp of g.inputs) {
      const t = feeds[inp.name];
      if (!t) {
        if (g.initializers.has(inp.name)) continue;
        throw new InputMismatchError(`missing input '${inp.name}'`, g.source);
      }
      scope.set(inp.name, t);
    }
    const want = new Set(opts.outputs ?? []);
    const collected = new Map<string, Tensor>();
    const outs = runGraph(g, scope, g.opset(""), g.source, want, collected, !!opts.all);
    const result: Record<string, Tensor> = {};
    if (opts.all) for (const [k, v] of collected) result[k] = v;
    if (!opts.outputs) g.outputs.forEach((o, i) => (result[o.name] = outs[i]!));
    for (const w of want) {
      const t = collected.get(w) ?? scope.get(w) ?? g.initializers.get(w);
      if (!t) throw new InputMismatchError(`value '${w}' is not computed by this graph`, g.source);
      result[w] = t;
    }
    return result;
  }

  async dispose(): Promise<void> {}
}
