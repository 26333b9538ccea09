import { CONTROL_SCHEMAS } from "./ops-control.js";
import { ELEMENTWISE_SCHEMAS } from "./ops-elementwise.js";
import { NN_SCHEMAS } from "./ops-nn.js";
import { REDUCE_SCHEMAS } from "./ops-reduce.js";
import { TENSOR_SCHEMAS } from "./ops-tensor.js";
import type { OpSchema } from "./types.js";

const SCHEMAS = new Map<string, OpSchema>();

function key(opType: string, domain: string): string {
  const d = domain === "ai.onnx" ? "" : domain;
  return `${d}::${opType}`;
}

/** Register (or replace) the schema of an op. */
export function registerSchema(s: OpSchema): void {
  SCHEMAS.set(key(s.opType, s.domain), s);
}

/** Schema of an op in a domain ("" or "ai.onnx" for the standard one). */
export function getSchema(opType: string, domain = ""): OpSchema | undefined {
  return SCHEMAS.get(key(opType, domain));
}

/** Every registered schema. */
export function allSchemas(): OpSchema[] {
  return [...SCHEMAS.values()];
}

for (const s of [...ELEMENTWISE_SCHEMAS, ...NN_SCHEMAS, ...TENSOR_SCHEMAS, ...REDUCE_SCHEMAS, ...CONTROL_SCHEMAS]) registerSchema(s);
