/** Sophgo TPU-MLIR backend: TPU-MLIR's file formats (cali_table, qtable, top-dialect .mlir + weight .npz). */
export * from "./errors.js";
export * from "./pyfmt.js";
export * from "./cali-table.js";
export * from "./qtable.js";
export * from "./mlir-text.js";
export { ONNX_TO_TOP, TOP_TO_ONNX, type WriteCtx, type ReadCtx, type WriteFn, type ReadFn } from "./top-ops.js";
export * from "./top-mlir.js";
