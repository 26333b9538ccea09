import type { Graph, Node } from "../graph.js";
import { runNode } from "../interp/interpreter.js";
import { shapeSize, type Tensor } from "../tensor.js";
import { allKnown } from "./dims.js";
import { inferWithValues, RANDOM_OPS, type InferOptions } from "./infer.js";
import { constantTensor } from "./ops-tensor.js";

/** Ops that make up shape computations: folded whatever their (bounded) size. */
export const SHAPE_OPS: ReadonlySet<string> = new Set([
  "Shape", "Size", "Gather", "Unsqueeze", "Squeeze", "Concat", "Slice", "Cast", "Reshape", "Mul", "Add", "Sub",
  "Div", "Equal", "Where", "ConstantOfShape", "Range", "Constant", "Floor", "Ceil", "Expand", "ReduceProd",
  "Max", "Min", "Identity", "Neg", "Abs", "Transpose", "Split", "Less", "Greater", "Not", "Mod", "Flatten", "Sqrt",
]);

/**
 * Ops never folded even on constant inputs: quantization nodes carry the model's quantization and
 * must stay visible to q; random ops differ per run; control flow and sequences are left alone.
 */
export const NO_FOLD_OPS: ReadonlySet<string> = new Set([
  ...RANDOM_OPS, "QuantizeLinear", "DequantizeLinear", "DynamicQuantizeLinear", "If", "Loop", "Scan",
  "SequenceConstruct", "SequenceEmpty", "SequenceInsert", "SequenceAt", "SequenceErase", "SequenceLength",
  "SplitToSequence", "ConcatFromSequence", "Optional", "OptionalGetElement", "OptionalHasElement",
]);

export interface FoldOptions extends InferOptions {
  /** Largest output (elements) folded for ops outside SHAPE_OPS. Default 4096. */
  maxElements?: number;
  /** Largest output (elements) folded for SHAPE_OPS (e.g. a ConstantOfShape mask). Default 65536. */
  maxShapeOpElements?: number;
}

export interface FoldResult {
  /** Nodes replaced by initializers. */
  folded: number;
  /** Nodes removed by pruning afterwards (dead shape computations). */
  pruned: number;
}

/**
 * Constant folding of shape-only subgraphs. Repeatedly: Constant nodes become initializers; Shape
 * nodes whose input shape is fully known (after inference) become int64 initializers; nodes whose
 * inputs are all initializers are evaluated with the reference interpreter (falling back to the
 * values shape inference found when the interpreter has no kernel) when their op is a shape op or
 * their output is small. Nodes producing graph outputs, nodes with subgraphs, random and Q/DQ ops
 * are kept. Dead nodes are pruned at the end. Only the top-level graph is folded (If/Loop bodies are
 * left as they are). Note that folding a Shape bakes the input sizes known at that point into the
 * model: fold after fixing input shapes only when the model is meant for those sizes.
 */
export function foldConstants(graph: Graph, opts: FoldOptions = {}): FoldResult {
  const maxEl = opts.maxElements ?? 4096;
  const maxShapeEl = opts.maxShapeOpElements ?? 65536;
  const graphOutputs = new Set(graph.outputs.map((o) => o.name));
  const opset = graph.opset("");
  let folded = 0;
  for (let pass = 0; pass < 32; pass++) {
    const { values } = inferWithValues(graph, opts);
    let changed = false;
    for (const node of [...graph.nodes]) {
      if (node.domain !== "" && node.domain !== "ai.onnx") continue;
      if (NO_FOLD_OPS.has(node.opType) || node.subgraphs().length) continue;
      if (node.outputs.some((o) => graphOutputs.has(o))) continue;
      const outs = foldNode(graph, node, values, opset, SHAPE_OPS.has(node.opType) ? maxShapeEl : maxEl);
      if (!outs) continue;
      node.outputs.forEach((name, j) => {
        if (!name) return;
        graph.initializers.set(name, outs[j]!);
        graph.valueInfo.delete(name);
        values.set(name, outs[j]!);
      });
      graph.removeNode(node);
      folded++;
      changed = true;
    }
    if (!changed) break;
  }
  const before = graph.nodes.length;
  graph.prune();
  return { folded, pruned: before - graph.nodes.length };
}

function foldNode(graph: Graph, node: Node, known: Map<string, Tensor>, opset: number, limit: number): Tensor[] | undefined {
  const named = node.outputs.filter((o) => o);
  if (!named.length) return undefined;
  const fits = (ts: (Tensor | undefined)[]): ts is Tensor[] =>
    node.outputs.every((o, j) => !o || (ts[j] !== undefined && ts[j]!.size <= limit));
  if (node.opType === "Constant") {
    const t = constantTensor(node);
    return t ? [t] : undefined;
  }
  const fromInference = node.outputs.map((o) => (o ? known.get(o) : undefined));
  if (node.opType === "Shape" || node.opType === "Size") return fits(fromInference) ? fromInference : undefined;
  const present = node.inputs.filter((n) => n);
  if (!present.length || !present.every((n) => graph.initializers.has(n))) return undefined;
  // skip early when inference already says an output is too big
  for (const o of named) {
    const s = graph.valueInfo.get(o)?.shape;
    if (allKnown(s) && shapeSize(s) > limit) return undefined;
  }
  let outs: (Tensor | undefined)[] | undefined;
  try {
    outs = runNode(node, node.inputs.map((n) => (n ? graph.initializers.get(n) : undefined)), opset, graph.source);
  } catch {
    outs = undefined; // no kernel (yet) or a failing node: use what inference computed, if anything
  }
  if (!outs || !fits(outs)) outs = fromInference;
  return fits(outs) ? outs : undefined;
}
