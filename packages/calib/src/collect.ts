/**
 * One pass of the float model over the calibration samples, feeding every quantization point's
 * values into its statistics. ONNX Runtime runs the model with the points exposed as outputs (one
 * session, output buffers reused between samples); values that are only a re-arrangement of
 * another value (Reshape, Transpose, ...) share that value's statistics instead of being fetched,
 * since every statistic q keeps is invariant under permutation.
 */
import { foldConstants, inferShapes, type Executor, type Feeds, type Graph, type Tensor } from "@q/ir";
import { TensorStats, type TensorStatsOptions } from "./stats.js";

/** Ops whose output holds exactly the elements of their first input, rearranged. */
export const REARRANGING_OPS: ReadonlySet<string> = new Set([
  "Reshape", "Flatten", "Squeeze", "Unsqueeze", "Identity", "Dropout", "Transpose", "DepthToSpace", "SpaceToDepth",
]);

export interface QuantPoint {
  /** Value name (as written in the cali_table). */
  name: string;
  /** Op type of the producer ("Input" for graph inputs). */
  opType: string;
  /** Name of the value whose statistics this one shares (itself when it is fetched). */
  source: string;
}

/**
 * The values calibration measures, in graph order: float32 graph inputs and every float32 output
 * of a top-level node. Run `foldConstants` first so shape computations are not listed.
 */
export function quantPoints(g: Graph): QuantPoint[] {
  const order = g.topoSort();
  const isF32 = (n: string) => (g.initializers.get(n)?.dtype ?? g.info(n)?.dtype) === "float32";
  const source = new Map<string, string>();
  const points: QuantPoint[] = [];
  for (const i of g.inputs) {
    if (i.dtype !== "float32") continue;
    source.set(i.name, i.name);
    points.push({ name: i.name, opType: "Input", source: i.name });
  }
  for (const n of order) {
    n.outputs.forEach((o, k) => {
      if (!o || !isF32(o)) return;
      const from = k === 0 && REARRANGING_OPS.has(n.opType) && n.domain === "" ? source.get(n.inputs[0] ?? "") : undefined;
      const src = from ?? o;
      source.set(o, src);
      points.push({ name: o, opType: n.opType, source: src });
    });
  }
  return points;
}

export interface CollectOptions {
  /** Builds the executor that exposes `fetch` (e.g. OrtExecutor with reuseOutputs). */
  executor: (g: Graph, fetch: string[]) => Promise<Executor>;
  /** Statistics options per fetched value (bins, planned samples, percentile, methods). */
  statsOptions?: (name: string, index: number, count: number) => TensorStatsOptions;
  /** Called after each sample. */
  onSample?: (done: number) => void;
}

export interface CollectResult {
  points: QuantPoint[];
  /** Statistics by value name; values that share statistics map to the same object. */
  stats: Map<string, TensorStats>;
  samples: number;
}

/** Prepare a graph for calibration: a clone with shapes inferred and shape computations folded. */
export function prepareForCalibration(g: Graph): Graph {
  const work = g.clone();
  inferShapes(work);
  foldConstants(work);
  inferShapes(work);
  return work;
}

/** Run every sample once and gather statistics for every quantization point. */
export async function collectStats(g: Graph, samples: AsyncIterable<Feeds> | Iterable<Feeds>, opts: CollectOptions): Promise<CollectResult> {
  const points = quantPoints(g);
  const fetched = points.filter((p) => p.source === p.name);
  const inputNames = new Set(g.inputs.map((i) => i.name));
  const fromRun = fetched.filter((p) => !inputNames.has(p.name)).map((p) => p.name);
  const own = new Map<string, TensorStats>();
  fetched.forEach((p, i) => own.set(p.name, new TensorStats(opts.statsOptions?.(p.name, i, fetched.length))));
  const ex = await opts.executor(g, fromRun);
  let done = 0;
  try {
    for await (const feeds of samples) {
      const res = await ex.run(feeds, { outputs: fromRun });
      for (const p of fetched) {
        const t: Tensor | undefined = inputNames.has(p.name) ? feeds[p.name] : res[p.name];
        if (t) own.get(p.name)!.update(t.data as Float32Array);
      }
      done++;
      opts.onSample?.(done);
    }
  } finally {
    await ex.dispose();
  }
  const stats = new Map<string, TensorStats>();
  for (const p of points) stats.set(p.name, own.get(p.source)!);
  return { points, stats, samples: done };
}
