/**
 * TPU-MLIR-compatible commands: `model_transform` and `run_calibration`, with TPU-MLIR's flag
 * names so existing scripts work unchanged.
 */
import { dirname, extname, join, resolve } from "node:path";
import { existsSync, readFileSync } from "node:fs";
import cliProgress from "cli-progress";
import {
  QError, Tensor, UsageError, InputMismatchError, writeFileAtomic, writeNpz, type Feeds, type Graph, type DType,
} from "@q/ir";
import { OrtExecutor } from "@q/ort";
import {
  calibrate, channelAbsMax, foldBatchNorm, loadSample, parseCaliMethod, parseFloatList, parseShapes, smoothQuant, smoothQuantTargets,
  streamSamples, tuneThresholds, weightEqualization, type CaliMethod, type DatasetInput, type DatasetOptions, type Preprocess,
} from "@q/calib";
import {
  pythonTimestamp, readTopMlir, writeCaliTable, writeTopMlirFiles, type CaliTable, type TopPreprocess,
} from "@q/backend-sophgo";
import { loadModel } from "./load.js";
import type { CliIO } from "./io.js";

export const Q_VERSION = "q 0.1.0";

/** Cosine and TPU-MLIR's euclidean similarity of two tensors (spec §1.4). */
export function similarity(a: Float32Array, b: Float32Array): { cosine: number; euclid: number } {
  let dot = 0, na = 0, nb = 0, diff = 0, mid = 0;
  for (let i = 0; i < a.length; i++) {
    const x = a[i]!, y = b[i]!;
    dot += x * y; na += x * x; nb += y * y;
    diff += (x - y) * (x - y);
    mid += ((x + y) / 2) ** 2;
  }
  const cosine = na === 0 && nb === 0 ? 1 : dot / Math.sqrt(na * nb);
  const euclid = 1 - Math.sqrt(diff) / (Math.sqrt(mid) + 1e-7);
  return { cosine, euclid };
}

function preprocessFlags(a: Record<string, unknown>): TopPreprocess {
  const p: TopPreprocess = {};
  if (a.mean) p.mean = parseFloatList(a.mean as string, "--mean");
  if (a.scale) p.scale = parseFloatList(a.scale as string, "--scale");
  if (a.pixel_format) p.pixelFormat = a.pixel_format as string;
  if (a.channel_format) p.channelFormat = a.channel_format as string;
  if (a.resize_dims) p.resizeDims = parseFloatList(a.resize_dims as string, "--resize_dims");
  if (a.keep_aspect_ratio) p.keepAspectRatio = true;
  if (a.pad_type) p.padType = a.pad_type as string;
  if (a.pad_value !== undefined) p.padValue = Number(a.pad_value);
  return p;
}

/** The calib package's Preprocess for an input, from the TPU-MLIR attributes. */
function toPreprocess(shape: number[], t: TopPreprocess | undefined): Preprocess {
  const p: Preprocess = { inputShape: shape };
  if (!t) return p;
  if (t.mean) p.mean = t.mean;
  if (t.scale) p.scale = t.scale;
  if (t.pixelFormat) p.pixelFormat = t.pixelFormat as Preprocess["pixelFormat"];
  if (t.channelFormat) p.channelFormat = t.channelFormat as Preprocess["channelFormat"];
  if (t.resizeDims && t.resizeDims.length === 2) p.resizeDims = [t.resizeDims[0]!, t.resizeDims[1]!];
  if (t.keepAspectRatio) p.keepAspectRatio = true;
  if (t.padType) p.padType = t.padType as Preprocess["padType"];
  if (t.padValue !== undefined) p.padValue = t.padValue;
  return p;
}

function staticShape(g: Graph, name: string, given?: number[]): number[] {
  if (given) return given;
  const s = g.inputs.find((i) => i.name === name)?.shape ?? [];
  if (!s.length || s.some((d) => typeof d !== "number" || d <= 0)) {
    const shown = s.map((d) => d ?? "?").join(",");
    throw new UsageError(`input '${name}' has shape [${shown}]: give a concrete one with --input_shapes (e.g. [[1,3,224,224]])`);
  }
  return s as number[];
}

/** Dataset inputs of a model: names, shapes, dtypes and each input's preprocessing. */
function datasetInputs(g: Graph, pre: Record<string, TopPreprocess> | undefined, shapes?: Record<string, number[]>): DatasetInput[] {
  return g.inputs.map((i) => {
    const shape = staticShape(g, i.name, shapes?.[i.name]);
    const d: DatasetInput = { name: i.name, shape, dtype: (i.dtype ?? "float32") as DType };
    if (shape.length === 4 && (i.dtype ?? "float32") === "float32") d.preprocess = toPreprocess(shape, pre?.[i.name]);
    return d;
  });
}

function shapesByName(g: Graph, list: number[][] | undefined): Record<string, number[]> | undefined {
  if (!list) return undefined;
  if (list.length !== g.inputs.length) {
    throw new UsageError(`--input_shapes gives ${list.length} shapes but the model has ${g.inputs.length} inputs (${g.inputs.map((i) => i.name).join(", ")})`);
  }
  return Object.fromEntries(g.inputs.map((i, k) => [i.name, list[k]!]));
}

/** model_transform: any model → top-dialect .mlir + weight .npz (+ test input/result files). */
export async function modelTransform(a: Record<string, unknown>, io: CliIO): Promise<void> {
  const modelName = a.model_name as string;
  const mlir = a.mlir as string;
  if (extname(mlir) !== ".mlir") throw new UsageError(`--mlir ${mlir}: the output must end in .mlir`);
  let g = await loadModel(a.model_def as string, a.model_data ? { weights: a.model_data as string } : {});
  const shapes = shapesByName(g, a.input_shapes ? parseShapes(a.input_shapes as string) : undefined);
  if (a.output_names) {
    const names = (a.output_names as string).split(",").map((s) => s.trim()).filter(Boolean);
    const all = new Set(g.nodes.flatMap((n) => n.outputs));
    for (const n of names) if (!all.has(n)) throw new UsageError(`--output_names: no value named '${n}' in ${a.model_def}`);
    g = g.clone();
    g.outputs = names.map((n) => ({ ...(g.info(n) ?? {}), name: n }));
    g.prune();
  }
  const pre = preprocessFlags(a);
  const inputShapes = Object.fromEntries(g.inputs.map((i) => [i.name, staticShape(g, i.name, shapes?.[i.name])]));
  const weightFile = `${modelName}_top_f32_all_origin_weight.npz`;
  const res = await writeTopMlirFiles(mlir, g, { modelName, weightFile, preprocess: pre, inputShapes, naming: "value" });
  io.out(`wrote ${mlir} and ${join(dirname(mlir), weightFile)} (${res.weights.size} weights)\n`);

  if (!a.test_input) return;
  if (!a.test_result) throw new UsageError("--test_input needs --test_result (the .npz to write the top-level outputs to)");
  const files = (a.test_input as string).split(",").map((s) => s.trim());
  const inputs = datasetInputs(g, Object.fromEntries(g.inputs.map((i) => [i.name, pre])), inputShapes);
  const feeds: Feeds = await loadSample(files, inputs);
  const inNpz = join(dirname(mlir), `${modelName}_in_f32.npz`);
  await writeNpz(inNpz, feeds);
  // the original model and the written .mlir, both with every value returned
  const top = await readTopMlir(mlir);
  const [orig, mine] = await Promise.all([runAll(g, feeds), runAll(top, feeds)]);
  const resultPath = a.test_result as string;
  await writeNpz(resultPath, mine);
  await writeNpz(join(dirname(resultPath), `${modelName}_ref_outputs.npz`), orig);
  const [cosTol, eucTol] = parseTolerance(a.tolerance as string | undefined, [0.99, 0.99]);
  const excepts = new Set(((a.excepts as string | undefined) ?? "").split(",").map((s) => s.trim()).filter(Boolean));
  const rows: string[] = [];
  let worst = { cosine: 1, euclid: 1 };
  let failed = 0;
  for (const [name, t] of Object.entries(orig)) {
    const m = mine[name];
    if (!m || excepts.has(name) || t.dtype !== "float32" || m.size !== t.size) continue;
    const s = similarity(m.toFloat32(), t.toFloat32());
    const ok = s.cosine >= cosTol && s.euclid >= eucTol;
    if (!ok) failed++;
    worst = { cosine: Math.min(worst.cosine, s.cosine), euclid: Math.min(worst.euclid, s.euclid) };
    rows.push(`${name.padEnd(40)} ${s.cosine.toFixed(6)} ${s.euclid.toFixed(6)} ${ok ? "PASSED" : "FAILED"}`);
  }
  io.out(`wrote ${inNpz} and ${resultPath}\ntop .mlir vs ${a.model_def}: ${rows.length} tensors, min cosine ${worst.cosine.toFixed(6)}, min euclid ${worst.euclid.toFixed(6)}\n`);
  if (failed) {
    io.out(rows.filter((r) => r.endsWith("FAILED")).join("\n") + "\n");
    throw new QError("E_TOLERANCE", `${failed} tensors of ${mlir} differ from the original model beyond --tolerance ${cosTol},${eucTol}`);
  }
}

async function runAll(g: Graph, feeds: Feeds): Promise<Record<string, Tensor>> {
  const ex = await OrtExecutor.create(g, { expose: "all" });
  try {
    return await ex.run(feeds, { all: true });
  } finally {
    await ex.dispose();
  }
}

function parseTolerance(s: string | undefined, dflt: [number, number]): [number, number] {
  if (!s) return dflt;
  const v = s.split(",").map(Number);
  if (v.length !== 2 || v.some((x) => !Number.isFinite(x))) throw new UsageError(`--tolerance ${s}: write cos,euclid (e.g. 0.99,0.90)`);
  return [v[0]!, v[1]!];
}

const NOT_YET: Record<string, string> = {
  bc: "--bc (bias correction)",
  part_asymmetric: "--part_asymmetric",
  part_quantize: "--part_quantize",
};

/** Which method the flags ask for: --cali_method, or a use_* entry of --debug_cmd. */
function methodFrom(a: Record<string, unknown>): CaliMethod {
  const dbg = ((a.debug_cmd as string | undefined) ?? "").split(";").map((s) => s.trim()).filter(Boolean);
  const fromDbg = dbg.find((d) => d.startsWith("use_"));
  if (fromDbg) return parseCaliMethod(fromDbg);
  return parseCaliMethod((a.cali_method as string | undefined) ?? "use_kl");
}

/** run_calibration: statistics over a dataset → cali_table. */
export async function runCalibration(a: Record<string, unknown>, io: CliIO): Promise<void> {
  for (const [k, what] of Object.entries(NOT_YET)) if (a[k]) throw new UsageError(`${what} is not supported by q yet`);
  const search = String(a.search ?? "False");
  if (!/^(false|none)$/i.test(search)) throw new UsageError(`--search ${search} is not supported by q yet (only plain calibration)`);
  const method = methodFrom(a);
  const out = a.calibration_table as string | undefined;
  if (!out) throw new UsageError("give the output table with -o / --calibration_table");
  if (!a.dataset && !a.data_list) throw new UsageError("give the samples with --dataset DIR or --data_list FILE");
  const model = a.mlir_file as string;
  let g: Graph;
  let pre: Record<string, TopPreprocess> | undefined;
  if (extname(model) === ".mlir") {
    g = await readTopMlir(model);
    const p = g.metadata["sophgo.preprocess"];
    if (p) pre = JSON.parse(p) as Record<string, TopPreprocess>;
  } else {
    g = await loadModel(model, a.model_data ? { weights: a.model_data as string } : {});
    const flags = preprocessFlags(a);
    pre = Object.fromEntries(g.inputs.map((i) => [i.name, flags]));
  }
  const shapes = shapesByName(g, a.input_shapes ? parseShapes(a.input_shapes as string) : undefined);
  const inputs = datasetInputs(g, pre, shapes);
  if (shapes) g = withInputShapes(g, shapes);
  const tuneNum = Number(a.tune_num ?? 5);
  const inputNum = Number(a.input_num ?? 0);
  const data: DatasetOptions = {
    ...(a.dataset ? { dataset: a.dataset as string } : {}),
    ...(a.data_list ? { dataList: a.data_list as string } : {}),
    inputNum,
    inputs,
  };
  if (a.we || a.sq) {
    // TPU-MLIR rewrites the .mlir and its weights in place, so model_deploy sees the change
    if (extname(model) !== ".mlir") throw new UsageError("--we/--sq rewrite the top .mlir in place: run model_transform first and calibrate its .mlir");
    const log = (line: string) => io.err(`${line}\n`);
    if (a.we) {
      const folded = foldBatchNorm(g).folded.length;
      const pairs = weightEqualization(g, { log }).pairs.length;
      io.err(`weight equalization: ${folded} BatchNorm folded, ${pairs} conv pairs equalized\n`);
    }
    if (a.sq) {
      const values = smoothQuantTargets(g).map((t) => t.value);
      const feeds = async function* () { for await (const s of streamSamples(data)) yield s.feeds; };
      const act = await channelAbsMax(g, values, feeds());
      const n = smoothQuant(g, act, { log }).smoothed.length;
      io.err(`SmoothQuant: ${n} LayerNorms smoothed\n`);
    }
    await rewriteTopMlir(model, g, pre);
  }
  const bar = process.stderr.isTTY && !process.env.CI
    ? new cliProgress.SingleBar({ format: "calibration |{bar}| {value}/{total} samples | {speed} samples/s | ETA {eta_formatted}", hideCursor: true }, cliProgress.Presets.shades_classic)
    : undefined;
  const t0 = performance.now();
  let started = false;
  const res = await calibrate(g, {
    data,
    method,
    histogramBins: Number(a.histogram_bin_num ?? 2048),
    kurtosis: !!a.kurtosis_analysis,
    ...(a.cache ? { cacheDir: a.cache as string } : {}),
    onProgress: (done, total) => {
      if (!bar) return;
      if (!started) { bar.start(total, 0, { speed: "0" }); started = true; }
      bar.update(done, { speed: (done / ((performance.now() - t0) / 1000)).toFixed(1) });
    },
  });
  bar?.stop();
  // TPU-MLIR's SimpleTuner: on by default (tune_num 5), not after percentile9999, int4 or fp8
  let entries = res.entries;
  let tuneNumber: number | undefined;
  const dbg = String(a.debug_cmd ?? "");
  if (tuneNum > 0 && method !== "percentile9999" && !/\b(int4|fp8)\b/.test(dbg)) {
    const steps = Number(/tune_steps=(\d+)/.exec(dbg)?.[1] ?? 21);
    const tuneData: DatasetOptions = a.tune_list ? { dataList: a.tune_list as string, inputNum: tuneNum, inputs } : { ...data, inputNum: Math.min(tuneNum, res.samples) };
    const feeds = async function* () { for await (const s of streamSamples(tuneData)) yield s.feeds; };
    const tuned = await tuneThresholds(g, res.entries, feeds(), { steps, ...(a.debug_log ? { log: (l: string) => io.err(`${l}\n`) } : {}) });
    entries = tuned.entries;
    tuneNumber = tuneNum;
    io.err(`tuning: ${tuned.tuned} thresholds raised on ${Math.min(tuneNum, res.samples)} samples in ${tuned.seconds.toFixed(2)} s\n`);
  }
  const table: CaliTable = {
    header: {
      mlirVersion: Q_VERSION, mlir: model, generatedTime: pythonTimestamp(),
      histogramNumber: Number(a.histogram_bin_num ?? 2048), sampleNumber: res.samples,
      ...(tuneNumber !== undefined ? { tuneNumber } : {}),
    },
    entries: entries.map((e) => ({ name: e.name, threshold: e.threshold, min: e.min, max: e.max })),
    blocks: [],
  };
  await writeCaliTable(out, table);
  if (a.kurtosis_analysis) {
    const rows = res.points
      .filter((p) => p.opType !== "LayerNormalization" && p.opType !== "Softmax")
      .map((p) => ({ name: p.name, k: res.stats.get(p.name)!.kurtosis, op: p.opType }))
      .sort((x, y) => y.k - x.k);
    const text = ["# op_name   kurtosis   op_type", ...rows.map((r) => `${r.name}  ${r.k.toFixed(7)}  top.${r.op}`)].join("\n") + "\n";
    await writeFileAtomic(join(dirname(resolve(out)), "kurtosis_analysis"), new TextEncoder().encode(text), "kurtosis file");
  }
  const secs = (performance.now() - t0) / 1000;
  io.out(`wrote ${out}: ${res.entries.length} tensors, ${res.samples} samples, method ${method}${res.fromCache ? " (statistics from the cache)" : ""}, ${secs.toFixed(2)} s\n`);
}

/** Write a transformed graph back over its top .mlir and weight .npz (same module name and weight file). */
async function rewriteTopMlir(mlirPath: string, g: Graph, pre: Record<string, TopPreprocess> | undefined): Promise<void> {
  const text = readFileSync(mlirPath, "utf8");
  const name = /module\.name\s*=\s*"((?:[^"\\]|\\.)*)"/.exec(text)?.[1] ?? "model";
  const weightFile = /module\.weight_file\s*=\s*"((?:[^"\\]|\\.)*)"/.exec(text)?.[1] ?? `${name}_top_f32_all_origin_weight.npz`;
  await writeTopMlirFiles(mlirPath, g, { modelName: name, weightFile, ...(pre ? { inputPreprocess: pre } : {}) });
}

function withInputShapes(g: Graph, shapes: Record<string, number[]>): Graph {
  const c = g.clone();
  for (const i of c.inputs) if (shapes[i.name]) i.shape = [...shapes[i.name]!];
  return c;
}

export function existsOrThrow(p: string, what: string): void {
  if (!existsSync(p)) throw new InputMismatchError(`${what} not found`, p);
}
