import type { DType } from "../dtype.js";
import type { Dim, Graph, Node } from "../graph.js";
import type { Tensor } from "../tensor.js";

/** Element type and shape of a value; a missing field means unknown. */
export interface TypeShape {
  dtype?: DType;
  shape?: Dim[];
}

/**
 * A partially known small tensor, used to follow shape computations (Shape -> Gather -> Concat ->
 * Reshape): `values` holds the elements in row-major order, each a number, a symbolic dimension
 * name passed through from a shape, or null when unknown. `shape` is always concrete.
 */
export interface SymValue {
  shape: number[];
  values: Dim[];
}

/** What a schema sees of a node during inference. */
export interface InferContext {
  readonly node: Node;
  /** Opset version of the node's domain. */
  readonly opset: number;
  /** Type/shape of each node input, in order; `{}` for an omitted optional input or an unknown value. */
  readonly inputs: TypeShape[];
  /** Constant value of input i when known (initializer, Constant node or folded shape computation). */
  value(i: number): Tensor | undefined;
  /** Partially known value of a small input (see SymValue), when anything is known about it. */
  partial(i: number): SymValue | undefined;
  /** Whether input i is given (present and non-empty). */
  has(i: number): boolean;
  /** Infer the output types of a subgraph (If/Loop bodies) in the current scope. */
  subgraph(g: Graph, inputs?: TypeShape[]): TypeShape[];
}

/** Signature of an operator: input/output arity, type/shape inference, cost. */
export interface OpSchema {
  opType: string;
  domain: string;
  /** [min, max] number of inputs (max may be Infinity for variadic ops). */
  inputs: [number, number];
  /** [min, max] number of outputs. */
  outputs: [number, number];
  /** Output types/shapes, one per node output (trailing ones may be left out = unknown). */
  infer(ctx: InferContext): TypeShape[];
  /** Multiply-accumulate count of one run, given the inferred outputs; absent = 0 MACs. */
  macs?(ctx: InferContext, outs: TypeShape[]): number;
  /** (Partial) values of the outputs when the inputs' values are (partially) known. */
  propagate?(ctx: InferContext, outs: TypeShape[]): (SymValue | undefined)[] | undefined;
}
