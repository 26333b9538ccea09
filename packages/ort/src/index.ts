/**
 * ONNX Runtime executor for the q IR: exports the graph to an in-memory ONNX model once, runs it
 * on onnxruntime-node (CPU, both cores), and can hand back any top-level intermediate value
 * alongside the outputs from the same session.
 */
import * as ort from "onnxruntime-node";
import {
  Graph, Tensor, InputMismatchError, QError, type DType, type Executor, type Feeds, type RunOptions, type TensorData,
} from "@q/ir";
import { encodeOnnx } from "@q/frontends-onnx";
import { fuseZeroPadIntoAveragePool } from "./workarounds.js";

export { fuseZeroPadIntoAveragePool };

export interface OrtExecutorOptions {
  /**
   * Which values besides the graph outputs the session can return: "all" (every value computed by
   * a top-level node) or a list of names. Fixed when the session is built; `run` then picks any
   * subset through its `outputs` option.
   */
  expose?: "all" | string[];
  /** Threads for one operator (default: 2, both cores of the target machine). */
  threads?: number;
  /**
   * Let ONNX Runtime write outputs into buffers kept from the previous run with the same input
   * shapes (saves an allocation per value per run: what calibration loops want). Tensors returned
   * by `run` are then only valid until the next `run`.
   */
  reuseOutputs?: boolean;
  /** ORT graph optimization level (default "all"). */
  optimization?: "disabled" | "basic" | "extended" | "all";
}

const ORT_TYPES: Partial<Record<DType, ort.Tensor.Type>> = {
  float32: "float32", float16: "float16", float64: "float64", int8: "int8", uint8: "uint8", int16: "int16",
  uint16: "uint16", int32: "int32", uint32: "uint32", int64: "int64", uint64: "uint64", bool: "bool", string: "string",
  int4: "int4", uint4: "uint4",
};

export function toOrtTensor(t: Tensor, name = "tensor"): ort.Tensor {
  const type = ORT_TYPES[t.dtype];
  if (!type) throw new InputMismatchError(`input '${name}' has dtype ${t.dtype}, which ONNX Runtime cannot take`);
  return new ort.Tensor(type, t.data as never, [...t.shape]);
}

export function fromOrtTensor(t: ort.Tensor): Tensor {
  const dt = (Object.entries(ORT_TYPES).find(([, v]) => v === t.type)?.[0] ?? "float32") as DType;
  const data = t.data as unknown as TensorData;
  return new Tensor(dt, [...t.dims], dt === "bool" && !(data instanceof Uint8Array) ? Uint8Array.from(data as unknown as ArrayLike<number>) : data);
}

/** Values computed by top-level nodes, in graph order (inputs and initializers excluded). */
export function intermediateNames(g: Graph): string[] {
  const skip = new Set<string>([...g.inputs.map((i) => i.name), ...g.initializers.keys()]);
  const out: string[] = [];
  const seen = new Set<string>();
  for (const n of g.nodes) for (const o of n.outputs) if (o && !skip.has(o) && !seen.has(o)) { seen.add(o); out.push(o); }
  return out;
}

export class OrtExecutor implements Executor {
  readonly name = "ort";
  private constructor(
    readonly graph: Graph,
    private readonly session: ort.InferenceSession,
    /** Every name the session can return. */
    readonly available: ReadonlySet<string>,
    private readonly reuse = false,
  ) {}

  /** Output buffers of the last run, for `reuseOutputs` (one set, keyed by shapes and names). */
  private kept?: { key: string; tensors: Record<string, ort.Tensor> };

  static async create(graph: Graph, opts: OrtExecutorOptions = {}): Promise<OrtExecutor> {
    const g = graph.clone();
    const outNames = new Set(g.outputs.map((o) => o.name));
    const extra = opts.expose === "all" ? intermediateNames(g) : (opts.expose ?? []);
    const known = new Set(intermediateNames(g));
    for (const name of extra) {
      if (outNames.has(name)) continue;
      if (!known.has(name)) throw new InputMismatchError(`cannot expose '${name}': no top-level node of the graph computes it`, graph.source);
      const info = g.valueInfo.get(name);
      // an output needs no shape; keep the dtype when known so ORT can check it
      g.outputs.push(info?.dtype ? { name, dtype: info.dtype } : { name });
      outNames.add(name);
    }
    // after exposing: a Pad whose output is exposed is not fused by ORT, so it stays as it is
    fuseZeroPadIntoAveragePool(g);
    const bytes = encodeOnnx(g);
    let session: ort.InferenceSession;
    try {
      session = await ort.InferenceSession.create(bytes, {
        intraOpNumThreads: opts.threads ?? 2,
        interOpNumThreads: 1,
        executionMode: "sequential",
        graphOptimizationLevel: opts.optimization ?? "all",
        logSeverityLevel: 3,
      });
    } catch (e) {
      throw new QError("E_ORT", `ONNX Runtime cannot load the model: ${firstLine(e)}`, graph.source);
    }
    return new OrtExecutor(graph, session, new Set(session.outputNames), !!opts.reuseOutputs);
  }

  async run(feeds: Feeds, opts: RunOptions = {}): Promise<Record<string, Tensor>> {
    const ortFeeds: Record<string, ort.Tensor> = {};
    for (const name of this.session.inputNames) {
      const t = feeds[name];
      if (!t) throw new InputMismatchError(`missing input '${name}' (the model takes ${this.session.inputNames.join(", ")})`, this.graph.source);
      ortFeeds[name] = toOrtTensor(t, name);
    }
    let fetch: string[];
    if (opts.all) fetch = [...this.session.outputNames];
    else fetch = opts.outputs ?? this.graph.outputs.map((o) => o.name);
    if (opts.all && opts.outputs) fetch = [...new Set([...fetch, ...opts.outputs])];
    for (const f of fetch) {
      if (!this.available.has(f)) {
        throw new InputMismatchError(`value '${f}' is not available from this session; create the executor with expose: ["${f}"] or "all"`, this.graph.source);
      }
    }
    // Ask in session order: onnxruntime-node 1.20 returns the fetched values keyed by the first k
    // session output names rather than by the names fetched; `pickFetched` undoes that.
    const want = new Set(fetch);
    const requested = this.session.outputNames.filter((n) => want.has(n));
    const key = this.reuse ? `${Object.values(ortFeeds).map((t) => t.dims.join("x")).join(";")}|${requested.join(",")}` : "";
    let values: Map<string, ort.Tensor> | undefined;
    if (this.kept?.key === key) {
      // ORT writes straight into the kept buffers; a shape that changed makes it throw: run afresh
      try {
        await this.session.run(ortFeeds, this.kept.tensors);
        values = new Map(Object.entries(this.kept.tensors));
      } catch {
        this.kept = undefined;
      }
    }
    if (!values) {
      let res: ort.InferenceSession.ReturnType;
      try {
        res = await this.session.run(ortFeeds, requested);
      } catch (e) {
        throw new QError("E_ORT", `ONNX Runtime failed to run the model: ${firstLine(e)}`, this.graph.source);
      }
      values = pickFetched(res, requested, this.session.outputNames);
      if (this.reuse && [...values.values()].every((t) => t.type !== "string")) {
        this.kept = { key, tensors: Object.fromEntries([...values].map(([n, t]) => [n, new ort.Tensor(t.type as "float32", (t.data as Float32Array).slice(), t.dims)])) };
      }
    }
    const out: Record<string, Tensor> = {};
    for (const f of fetch) out[f] = fromOrtTensor(values.get(f)!);
    return out;
  }

  async dispose(): Promise<void> {
    await this.session.release();
  }
}

/**
 * Map fetched names to values. When the result keys are exactly the requested names they are
 * right (a fixed binding, or a request that is a prefix of the session outputs); otherwise the
 * i-th requested value sits under the i-th session output name.
 */
export function pickFetched(res: Record<string, ort.Tensor>, requested: readonly string[], sessionOutputs: readonly string[]): Map<string, ort.Tensor> {
  const keys = Object.keys(res);
  const m = new Map<string, ort.Tensor>();
  const exact = keys.length === requested.length && requested.every((n) => n in res);
  requested.forEach((n, i) => m.set(n, exact ? res[n]! : res[sessionOutputs[i]!]!));
  return m;
}

function firstLine(e: unknown): string {
  const m = e instanceof Error ? e.message : String(e);
  return m.split("\n")[0]!.trim();
}
