/**
 * `calibrate()`: the whole of run_calibration's measuring step as a function. Streams the samples
 * through the float model once (ONNX Runtime, one session), keeps statistics per quantization
 * point, and turns them into thresholds with the chosen method, in graph order.
 */
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, statSync } from "node:fs";
import { join, resolve } from "node:path";
import { writeFileAtomic, type Executor, type Feeds, type Graph } from "@q/ir";
import { OrtExecutor } from "@q/ort";
import { collectStats, prepareForCalibration, quantPoints, type QuantPoint } from "./collect.js";
import { listSamples, streamSamples, type DatasetOptions } from "./dataset.js";
import { TensorStats, type CaliMethod, type TensorStatsJSON } from "./stats.js";
import { percentileForOp, tailRule, thresholdFor } from "./thresholds.js";

export interface CalibrateOptions {
  /** Where the samples come from and how each model input is fed (see DatasetOptions). */
  data: DatasetOptions;
  /** Threshold method (default "kl", TPU-MLIR's default). */
  method?: CaliMethod;
  /** Histogram bins (`--histogram_bin_num`, default 2048). */
  histogramBins?: number;
  /** Also keep per-sample kurtosis (`--kurtosis_analysis`). */
  kurtosis?: boolean;
  /** Folder for the statistics cache (Knight's -cd): a second run with the same model and data reads it instead of running the model. */
  cacheDir?: string;
  /** Build the executor (default: OrtExecutor exposing the points, reusing output buffers). */
  executor?: (g: Graph, fetch: string[]) => Promise<Executor>;
  /** Called after each sample with (done, total). */
  onProgress?: (done: number, total: number) => void;
}

export interface CaliEntry {
  name: string;
  opType: string;
  threshold: number;
  min: number;
  max: number;
}

export interface CalibrationResult {
  method: CaliMethod;
  /** One entry per quantization point, in graph order. */
  entries: CaliEntry[];
  samples: number;
  /** Statistics per value (shared objects for rearranged values). */
  stats: Map<string, TensorStats>;
  points: QuantPoint[];
  /** The statistics came from the cache: the model did not run. */
  fromCache: boolean;
  /** Seconds spent running the model and updating statistics. */
  collectSeconds: number;
}

const ALL_METHODS: CaliMethod[] = ["kl", "max", "percentile9999", "mse", "aciq_gauss", "aciq_laplace", "torch_observer"];

function defaultExecutor(g: Graph, fetch: string[]): Promise<Executor> {
  return OrtExecutor.create(g, { expose: fetch, reuseOutputs: true });
}

/** Key of a statistics cache entry: the model's structure and weights, the samples, the options. */
function cacheKey(g: Graph, files: string[][], bins: number, kurtosis: boolean): string {
  const h = createHash("sha256");
  h.update("q-calib-stats-v1\0");
  for (const n of g.nodes) h.update(`${n.opType}|${n.inputs.join(",")}|${n.outputs.join(",")}|${JSON.stringify([...n.attrs].map(([k, a]) => [k, a.type === "tensor" || a.type === "graph" || a.type === "tensors" || a.type === "graphs" ? a.type : a.value]))}\n`);
  for (const [k, t] of [...g.initializers].sort(([a], [b]) => (a < b ? -1 : 1))) {
    h.update(`${k}|${t.dtype}|${t.shape.join("x")}\0`);
    if (!Array.isArray(t.data)) h.update(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength));
  }
  for (const i of g.inputs) h.update(`in ${i.name} ${JSON.stringify(i.shape)}\n`);
  for (const s of files) {
    for (const f of s) {
      const st = statSync(f);
      h.update(`${resolve(f)}|${st.size}|${st.mtimeMs}\n`);
    }
  }
  h.update(`bins=${bins} kurtosis=${kurtosis}`);
  return h.digest("hex").slice(0, 32);
}

/** Measure the float model on the samples and compute a threshold per quantization point. */
export async function calibrate(model: Graph, opts: CalibrateOptions): Promise<CalibrationResult> {
  const method = opts.method ?? "kl";
  const bins = opts.histogramBins ?? 2048;
  const kurtosis = !!opts.kurtosis;
  const g = prepareForCalibration(model);
  const files = listSamples(opts.data);
  const total = files.length;
  const points = quantPoints(g);
  const fetched = points.filter((p) => p.source === p.name);
  const order = new Map(fetched.map((p, i) => [p.name, i]));
  // With a cache, keep every accumulator so one entry serves every method; without, only what
  // this method needs. The mse/aciq tail rule looks at the last five points only.
  const methods: CaliMethod[] = opts.cacheDir ? ALL_METHODS : [method];
  const tail = new Set(points.slice(-5).map((p) => p.source));
  const statsOptions = (name: string) => ({
    bins,
    numSamples: total,
    percentile: percentileForOp(order.get(name) ?? 0, fetched.length),
    methods,
    kurtosis,
    tailPercentile: tail.has(name),
  });

  let stats: Map<string, TensorStats> | undefined;
  let fromCache = false;
  let collectSeconds = 0;
  let cacheFile: string | undefined;
  if (opts.cacheDir) {
    cacheFile = join(opts.cacheDir, `${cacheKey(g, files, bins, kurtosis)}.json`); // every accumulator kept
    if (existsSync(cacheFile)) {
      const saved = JSON.parse(readFileSync(cacheFile, "utf8")) as { samples: number; stats: Record<string, TensorStatsJSON> };
      const own = new Map(Object.entries(saved.stats).map(([k, v]) => [k, TensorStats.fromJSON(v)]));
      if (fetched.every((p) => own.has(p.name))) {
        stats = new Map(points.map((p) => [p.name, own.get(p.source)!]));
        fromCache = true;
      }
    }
  }
  let samples = total;
  if (!stats) {
    const t0 = performance.now();
    const feedsOnly = async function* (): AsyncGenerator<Feeds> {
      for await (const s of streamSamples(opts.data)) yield s.feeds;
    };
    const r = await collectStats(g, feedsOnly(), {
      executor: opts.executor ?? defaultExecutor,
      statsOptions,
      onSample: (done) => opts.onProgress?.(done, total),
    });
    collectSeconds = (performance.now() - t0) / 1000;
    stats = r.stats;
    samples = r.samples;
    if (cacheFile) {
      mkdirSync(opts.cacheDir!, { recursive: true });
      const own: Record<string, TensorStatsJSON> = {};
      for (const p of fetched) own[p.name] = stats.get(p.name)!.toJSON();
      await writeFileAtomic(cacheFile, new TextEncoder().encode(JSON.stringify({ samples, stats: own })), "statistics cache");
    }
  }

  const inputs = new Set(g.inputs.map((i) => i.name));
  const overrides = tailRule(points.map((p) => ({ name: p.name, opType: p.opType, stats: stats!.get(p.name)! })), method);
  const entries: CaliEntry[] = points.map((p) => {
    const s = stats!.get(p.name)!;
    const t = thresholdFor(s, method, { isGraphInput: inputs.has(p.name) });
    const over = overrides.get(p.name);
    return { name: p.name, opType: p.opType, threshold: over ?? t.threshold, min: t.min, max: t.max };
  });
  return { method, entries, samples, stats, points, fromCache, collectSeconds };
}
