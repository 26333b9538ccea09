export * from "./errors.js";
export * from "./dtype.js";
export * from "./half.js";
export * from "./tensor.js";
export * from "./graph.js";
export * from "./executor.js";
export * from "./interp/types.js";
export { ReferenceExecutor, runNode, kernelFor, supportedOps } from "./interp/interpreter.js";
