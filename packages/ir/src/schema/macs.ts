import type { Graph } from "../graph.js";
import { inferShapes, type InferOptions } from "./infer.js";
import { getSchema } from "./registry.js";
import { tensorToSym } from "./symbolic.js";
import type { InferContext, TypeShape } from "./types.js";

/**
 * Multiply-accumulate counts, as `q info` reports them.
 *
 * Only ops that multiply-accumulate count: Conv, ConvTranspose, ConvInteger, QLinearConv,
 * DeformConv, Gemm, MatMul, MatMulInteger, QLinearMatMul, Einsum, LSTM, GRU, RNN (and the ORT
 * contrib FusedConv / MatMul variants). Elementwise ops, activations, normalization, pooling,
 * resizing and data movement count 0: they are memory-bound and would blur the figure that matters
 * for a quantized backend. Formulas:
 *   Conv          N * Cout * prod(out spatial) * (Cin / group) * prod(kernel)
 *   ConvTranspose N * prod(in spatial) * Cin * (Cout / group) * prod(kernel)
 *   Gemm/MatMul   prod(output dims) * K
 *   LSTM/GRU/RNN  directions * seq * batch * gates * hidden * (input + hidden)
 *   Einsum        product of every index size (2+ operands), 0 for one operand
 * Symbolic dims (e.g. batch 'N') count as 1, so figures are per unit of each symbolic dim; a node
 * whose MACs depend on an unknown dim counts 0 and is listed in `unknown`. Subgraphs: an If counts
 * its larger branch, a Loop/Scan body is counted once (one iteration).
 */
export interface MacReport {
  total: number;
  /** MACs by op type. */
  perOp: Record<string, number>;
  /** MACs by node label (name, or op->output when unnamed); only nodes of MAC-counting ops. */
  perNode: Map<string, number>;
  /** Labels of nodes whose MACs could not be told (unknown shapes). */
  unknown: string[];
}

export function countMacs(graph: Graph, opts: InferOptions & { infer?: boolean } = {}): MacReport {
  if (opts.infer !== false) inferShapes(graph, opts);
  return countGraph(graph, [graph], graph.opset(""), (d) => graph.opset(d));
}

/** MACs of one (sub)graph; `scopes` are the graphs whose values it can see, innermost first. */
function countGraph(graph: Graph, scopes: Graph[], opset: number, domainOpset: (d: string) => number): MacReport {
  const report: MacReport = { total: 0, perOp: {}, perNode: new Map(), unknown: [] };
  const lookup = (n: string) => {
    for (const g of scopes) {
      const v = g.info(n);
      if (v) return v;
    }
    return undefined;
  };
  const init = (n: string) => {
    for (const g of scopes) {
      const t = g.initializers.get(n);
      if (t) return t;
    }
    return undefined;
  };
  const info = (n: string): TypeShape => {
    const v = n ? lookup(n) : undefined;
    const t: TypeShape = {};
    if (v?.dtype) t.dtype = v.dtype;
    if (v?.shape) t.shape = [...v.shape];
    return t;
  };
  for (const node of graph.nodes) {
    const subs = node.subgraphs();
    if (subs.length) {
      // If runs one branch: count the larger one; Loop/Scan bodies are counted once (per iteration)
      let best: MacReport | undefined;
      for (const sg of subs) {
        const r = countGraph(sg, [sg, ...scopes], opset, domainOpset);
        if (!best || r.total > best.total) best = r;
      }
      if (best) merge(report, best);
      continue;
    }
    const schema = getSchema(node.opType, node.domain);
    if (!schema?.macs) continue;
    const isDefault = node.domain === "" || node.domain === "ai.onnx";
    const ctx: InferContext = {
      node,
      opset: isDefault ? opset : domainOpset(node.domain),
      inputs: node.inputs.map(info),
      value: (i) => (node.inputs[i] ? init(node.inputs[i]!) : undefined),
      partial: (i) => {
        const t = node.inputs[i] ? init(node.inputs[i]!) : undefined;
        return t ? tensorToSym(t) : undefined;
      },
      has: (i) => !!node.inputs[i],
      subgraph: () => [],
    };
    let m: number;
    try {
      m = schema.macs(ctx, node.outputs.map(info));
    } catch {
      m = NaN;
    }
    if (!Number.isFinite(m)) {
      report.unknown.push(node.label);
      m = 0;
    }
    report.perNode.set(node.label, m);
    report.perOp[node.opType] = (report.perOp[node.opType] ?? 0) + m;
    report.total += m;
  }
  return report;
}

function merge(into: MacReport, r: MacReport): void {
  into.total += r.total;
  for (const [k, v] of Object.entries(r.perOp)) into.perOp[k] = (into.perOp[k] ?? 0) + v;
  for (const [k, v] of r.perNode) into.perNode.set(k, v);
  into.unknown.push(...r.unknown);
}
