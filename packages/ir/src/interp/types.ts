import type { Graph, Node } from "../graph.js";
import type { Tensor } from "../tensor.js";

/** What a kernel may ask of the interpreter besides its inputs. */
export interface KernelContext {
  /** Opset version of the node's domain in the model being run. */
  readonly opset: number;
  /** Run a subgraph (If/Loop body) with the given extra values in scope; returns its outputs. */
  runSubgraph(g: Graph, feeds: Map<string, Tensor>): Tensor[];
}

/**
 * A kernel computes a node's outputs from its inputs. `inputs[i]` is undefined for an omitted
 * optional input. Kernels must not modify their inputs. They return one tensor per node output
 * (trailing optional outputs may be left out).
 */
export type Kernel = (inputs: (Tensor | undefined)[], node: Node, ctx: KernelContext) => Tensor[];

export type KernelTable = Record<string, Kernel>;
