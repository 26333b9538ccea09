import { countMacs, inferShapes, type Dim, type Graph, type ValueInfo } from "@q/ir";
import { absentParams } from "@q/frontends-paddle";

export interface ModelInfo {
  file: string;
  producer: string;
  irVersion: number;
  opsets: Record<string, number>;
  inputs: { name: string; dtype: string; shape: Dim[] }[];
  outputs: { name: string; dtype: string; shape: Dim[] }[];
  nodes: number;
  ops: Record<string, number>;
  parameters: number;
  macs: { total: number; perOp: Record<string, number> };
  /** Ops q has no shape schema for (their outputs' shapes are unknown). */
  unknownShapes: string[];
  /** Parameters the model names but whose values were not given (a graph-only Paddle model). */
  missingWeights: number;
}

const io = (v: ValueInfo) => ({ name: v.name, dtype: v.dtype ?? "?", shape: v.shape ?? [] });

/** Everything `q info` reports about a model. */
export function describeModel(g: Graph, file: string): ModelInfo {
  const work = g.clone();
  const absent = new Set(absentParams(g));
  const missing = inferShapes(work);
  const macs = countMacs(work);
  const ops: Record<string, number> = {};
  const countOps = (x: Graph) => {
    for (const n of x.nodes) {
      const k = n.domain ? `${n.domain}.${n.opType}` : n.opType;
      ops[k] = (ops[k] ?? 0) + 1;
      for (const s of n.subgraphs()) countOps(s);
    }
  };
  countOps(g);
  let params = 0;
  const countParams = (x: Graph) => {
    params += x.parameterCount();
    for (const n of x.nodes) for (const s of n.subgraphs()) countParams(s);
  };
  countParams(g);
  return {
    file,
    producer: [g.producerName, g.producerVersion].filter(Boolean).join(" "),
    irVersion: g.irVersion,
    opsets: { ...g.opsets },
    inputs: g.inputs.filter((i) => !absent.has(i.name)).map(io),
    outputs: work.outputs.map((o) => io({ ...o, ...(work.valueInfo.get(o.name) ?? {}), name: o.name, ...(o.shape ? { shape: o.shape } : {}) })),
    nodes: g.nodes.length,
    ops: Object.fromEntries(Object.entries(ops).sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))),
    parameters: params,
    macs: { total: macs.total, perOp: Object.fromEntries(Object.entries(macs.perOp).filter(([, v]) => v > 0).sort((a, b) => b[1] - a[1])) },
    unknownShapes: Array.isArray(missing) ? [...new Set(missing as string[])] : [],
    missingWeights: absent.size,
  };
}

const fmtShape = (s: Dim[]) => `[${s.map((d) => (d === null ? "?" : d)).join(", ")}]`;

export function human(n: number): string {
  if (n >= 1e9) return `${(n / 1e9).toFixed(2)} G`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(2)} M`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(2)} K`;
  return String(n);
}

export function formatInfo(m: ModelInfo): string {
  const lines: string[] = [];
  lines.push(`model     ${m.file}`);
  if (m.producer) lines.push(`producer  ${m.producer}`);
  lines.push(`opset     ${Object.entries(m.opsets).map(([d, v]) => `${d || "ai.onnx"} ${v}`).join(", ")} (IR version ${m.irVersion})`);
  lines.push("inputs");
  for (const v of m.inputs) lines.push(`  ${v.name.padEnd(28)} ${v.dtype.padEnd(8)} ${fmtShape(v.shape)}`);
  lines.push("outputs");
  for (const v of m.outputs) lines.push(`  ${v.name.padEnd(28)} ${v.dtype.padEnd(8)} ${fmtShape(v.shape)}`);
  lines.push(`parameters ${m.parameters.toLocaleString("en-US")} (${human(m.parameters)})${m.missingWeights ? `; ${m.missingWeights} more named without values (no weight file given)` : ""}`);
  lines.push(`MACs       ${m.macs.total.toLocaleString("en-US")} (${human(m.macs.total)})`);
  lines.push(`ops (${m.nodes} nodes)`);
  const w = Math.max(...Object.keys(m.ops).map((k) => k.length), 8);
  for (const [op, n] of Object.entries(m.ops)) {
    const mac = m.macs.perOp[op];
    lines.push(`  ${op.padEnd(w)} ${String(n).padStart(5)}${mac ? `   MACs ${mac.toLocaleString("en-US").padStart(16)}` : ""}`);
  }
  if (m.unknownShapes.length) lines.push(`note: no shape inference for ${m.unknownShapes.join(", ")}; MACs of nodes after them may be missing`);
  return lines.join("\n") + "\n";
}
