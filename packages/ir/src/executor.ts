import type { Graph } from "./graph.js";
import { InputMismatchError } from "./errors.js";
import { Tensor, shapeSize } from "./tensor.js";
import { allocData } from "./dtype.js";

export type Feeds = Record<string, Tensor>;

export interface RunOptions {
  /** Values to return (graph outputs or any intermediate). Default: the graph outputs. */
  outputs?: string[];
  /** Return every value the graph computes (intermediates included), besides `outputs`. */
  all?: boolean;
}

/**
 * Runs a graph. Implemented by the reference interpreter (@q/ir) and the ONNX Runtime executor
 * (@q/ort). Implementations may batch: feeding N samples stacked on axis 0 gives N results stacked.
 */
export interface Executor {
  readonly name: string;
  readonly graph: Graph;
  run(feeds: Feeds, opts?: RunOptions): Promise<Record<string, Tensor>>;
  dispose(): Promise<void>;
}

/** Concatenate samples along axis 0 (each sample carries its own batch dim, usually 1). */
export function concatBatch(samples: Feeds[]): Feeds {
  if (!samples.length) return {};
  const out: Feeds = {};
  for (const name of Object.keys(samples[0]!)) {
    const parts = samples.map((s, i) => {
      const t = s[name];
      if (!t) throw new InputMismatchError(`sample ${i} has no input '${name}'`);
      return t;
    });
    out[name] = concat0(parts, name);
  }
  return out;
}

/** Concatenate tensors along axis 0; the other dims must agree. */
export function concat0(parts: Tensor[], what = "tensor"): Tensor {
  const first = parts[0]!;
  if (parts.length === 1) return first;
  const inner = first.shape.slice(1);
  let n0 = 0;
  for (const p of parts) {
    if (p.dtype !== first.dtype || p.shape.length !== first.shape.length || p.shape.slice(1).some((d, i) => d !== inner[i])) {
      throw new InputMismatchError(`cannot batch '${what}': shapes [${first.shape}] ${first.dtype} and [${p.shape}] ${p.dtype} differ beyond axis 0`);
    }
    n0 += p.shape[0]!;
  }
  const shape = [n0, ...inner];
  const data = allocData(first.dtype, shapeSize(shape));
  let off = 0;
  for (const p of parts) {
    if (Array.isArray(data)) (p.data as string[]).forEach((v, i) => (data[off + i] = v));
    else (data as Float32Array).set(p.data as Float32Array, off);
    off += p.size;
  }
  return new Tensor(first.dtype, shape, data);
}

/** Split a tensor along axis 0 into `counts` pieces (views of the same buffer where possible). */
export function split0(t: Tensor, counts: number[]): Tensor[] {
  const inner = t.shape.slice(1);
  const per = shapeSize(inner);
  const out: Tensor[] = [];
  let off = 0;
  for (const c of counts) {
    const d = Array.isArray(t.data) ? t.data.slice(off * per, (off + c) * per) : (t.data as Float32Array).subarray(off * per, (off + c) * per);
    out.push(new Tensor(t.dtype, [c, ...inner], d));
    off += c;
  }
  return out;
}

/** True when every graph input has a free (symbolic or unknown) leading dim, so samples can be stacked. */
export function batchable(g: Graph): boolean {
  return g.inputs.length > 0 && g.inputs.every((i) => i.shape !== undefined && i.shape.length > 0 && typeof i.shape[0] !== "number");
}

/**
 * Run many samples: stacked into one call of up to `maxBatch` samples when the model's batch dim is
 * free, one call per sample otherwise. Returns one result per sample, in order.
 */
export async function runSamples(
  ex: Executor,
  samples: Feeds[],
  opts: RunOptions & { maxBatch?: number } = {},
): Promise<Record<string, Tensor>[]> {
  const { maxBatch = 16, ...runOpts } = opts;
  const out: Record<string, Tensor>[] = [];
  if (!batchable(ex.graph) || maxBatch <= 1) {
    for (const s of samples) out.push(await ex.run(s, runOpts));
    return out;
  }
  for (let i = 0; i < samples.length; i += maxBatch) {
    const chunk = samples.slice(i, i + maxBatch);
    const counts = chunk.map((s) => Object.values(s)[0]?.shape[0] ?? 1);
    const res = await ex.run(concatBatch(chunk), runOpts);
    const per = chunk.map(() => ({}) as Record<string, Tensor>);
    for (const [name, t] of Object.entries(res)) {
      // values without the batch axis (e.g. shape tensors) are shared by every sample
      const total = counts.reduce((a, b) => a + b, 0);
      if (t.shape[0] === total) split0(t, counts).forEach((p, k) => (per[k]![name] = p));
      else per.forEach((p) => (p[name] = t));
    }
    out.push(...per);
  }
  return out;
}
