/** Shared helpers for the kernel unit tests: run one node on concrete inputs. */
import type { DType } from "../../dtype.js";
import { Node, type AttrValue } from "../../graph.js";
import { Tensor } from "../../tensor.js";
import { runNode } from "../interpreter.js";

export function runAll(op: string, inputs: (Tensor | undefined)[], attrs: Record<string, AttrValue> = {}, opset = 17, nOut = 1): Tensor[] {
  const n = new Node({
    opType: op,
    inputs: inputs.map((t, i) => (t ? `i${i}` : "")),
    outputs: Array.from({ length: nOut }, (_, i) => `y${i}`),
    attrs,
  });
  return runNode(n, inputs, opset);
}
export const run = (op: string, inputs: (Tensor | undefined)[], attrs: Record<string, AttrValue> = {}, opset = 17): Tensor =>
  runAll(op, inputs, attrs, opset)[0]!;
export const vals = (t: Tensor): number[] => Array.from(t.toNumbers());
export const int = (value: number): AttrValue => ({ type: "int", value });
export const ints = (value: number[]): AttrValue => ({ type: "ints", value });
export const flt = (value: number): AttrValue => ({ type: "float", value });
export const str = (value: string): AttrValue => ({ type: "string", value });
export const T = (dt: DType, shape: number[], v: number[]): Tensor => Tensor.fromNumbers(dt, shape, v);
