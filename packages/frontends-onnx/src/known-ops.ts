import * as ir from "@q/ir";

/** True when `op` is a standard ai.onnx operator name. */
export function isKnownOnnxOp(op: string): boolean {
  const set = (ir as unknown as { ONNX_OPS?: ReadonlySet<string> }).ONNX_OPS;
  return set ? set.has(op) : true;
}
