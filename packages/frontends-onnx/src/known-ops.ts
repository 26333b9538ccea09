import { ONNX_OPS } from "@q/ir";

/** True when `op` is a standard ai.onnx operator name. */
export function isKnownOnnxOp(op: string): boolean {
  return ONNX_OPS.has(op);
}
