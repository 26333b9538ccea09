/**
 * The one place every quantization decision lands (DESIGN.md, "one plan, many files"): per value
 * its storage type and bit width, its range, scale and zero point, and what produced them.
 * Calibration fills it, mixed-precision search edits it, backends read it; the vendor files
 * (cali_table, qtable, Knight and AMCT JSON) are serializations of it.
 */
export type QuantType = "int4" | "uint4" | "int8" | "uint8" | "int16" | "uint16" | "float16" | "bfloat16" | "float32";

export interface ValueQuant {
  /** Storage type on the target. */
  type: QuantType;
  /** Symmetric (zero point 0) or asymmetric range. */
  symmetric: boolean;
  /** Calibrated threshold (symmetric range is [-threshold, threshold]). */
  threshold?: number;
  /** Observed or chosen range. */
  min?: number;
  max?: number;
  /** One scale / zero point per tensor, or one per channel along `axis`. */
  scale?: number[];
  zeroPoint?: number[];
  axis?: number;
  /** What produced the numbers: "kld", "max", "percentile9999", "mse", "aciq_gauss", "table", ... */
  method?: string;
  /** Why this value has this type, in words, for reports. */
  reason?: string;
}

export interface QuantPlan {
  /** Per value name. */
  values: Map<string, ValueQuant>;
  /** Per node name: the compute type chosen for the op (mixed precision), with the reason. */
  ops: Map<string, { type: QuantType; reason?: string }>;
  /** Target chip / profile name, when one was chosen. */
  target?: string;
}

export function emptyPlan(target?: string): QuantPlan {
  const p: QuantPlan = { values: new Map(), ops: new Map() };
  if (target !== undefined) p.target = target;
  return p;
}
