/**
 * Op schemas for @q/ir: shape and dtype inference (with partial evaluation of shape computations),
 * MAC counting and constant folding of shape-only subgraphs.
 */
export type { TypeShape, InferContext, OpSchema, SymValue } from "./types.js";
export { getSchema, registerSchema, allSchemas } from "./registry.js";
export { ONNX_OPS, isOnnxOp } from "./onnx-ops.js";
export { inferShapes, RANDOM_OPS, type InferOptions, type InferResult } from "./infer.js";
export { countMacs, type MacReport } from "./macs.js";
export { foldConstants, SHAPE_OPS, NO_FOLD_OPS, type FoldOptions, type FoldResult } from "./fold.js";
export { constantTensor } from "./ops-tensor.js";
export { ShapeInferenceError, broadcastShapes } from "./dims.js";
