/**
 * The real models in ../shared/test-models that tests and benchmarks run, with the inputs to feed
 * them (reference inputs where the folder has them, deterministic synthetic ones otherwise).
 * Tests skip with a clear message when the folder is absent.
 */
import { existsSync } from "node:fs";
import { spawnSync } from "node:child_process";
import { resolve, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { Tensor, readNpy, type DType, type Feeds, type Graph } from "@q/ir";

export const SHARED = resolve(dirname(fileURLToPath(import.meta.url)), "../../../shared/test-models");
export const HAVE_SHARED = existsSync(SHARED);
export const SKIP_SHARED_MSG = `../shared/test-models not found at ${SHARED}: skipping tests on real models`;

export interface ModelCase {
  /** Short id used in test names. */
  id: string;
  /** Path to the model file. */
  path: string;
  /** A real, trained model (not a synthetic unit-test graph). */
  real: boolean;
  /** Input files by input name (reference inputs made by someone else), or synthetic values. */
  inputs?: Record<string, string>;
  /** Values for symbolic dims when synthesizing inputs. */
  dims?: Record<string, number>;
  /** Take only the first sample of batched reference inputs (for models with a fixed batch of 1). */
  firstSample?: boolean;
  /** Reference outputs made by another engine: output name -> .npy file. */
  refs?: Record<string, string>;
}

const S = (p: string) => resolve(SHARED, p);

export const ONNX_MODELS: ModelCase[] = [
  { id: "fastestdet", path: S("yolo/fastestdet/FastestDet.onnx"), real: true, inputs: { "input.1": S("yolo/fastestdet/ref/input.npy") }, firstSample: true },
  { id: "blazeface", path: S("onnx/blazeface/blazeface.onnx"), real: true, inputs: { "x.1": S("onnx/blazeface/ref/input_x.1.npy") }, refs: { "180": S("onnx/blazeface/ref/ort_180.npy"), "199": S("onnx/blazeface/ref/ort_199.npy") } },
  {
    id: "silero-vad", path: S("onnx/silero-vad/silero_vad_legacy.onnx"), real: true,
    inputs: { input: S("onnx/silero-vad/ref/input.npy"), sr: S("onnx/silero-vad/ref/sr.npy"), h: S("onnx/silero-vad/ref/h.npy"), c: S("onnx/silero-vad/ref/c.npy") },
    refs: { output: S("onnx/silero-vad/ref/ort_output.npy"), hn: S("onnx/silero-vad/ref/ort_hn.npy"), cn: S("onnx/silero-vad/ref/ort_cn.npy") },
  },
  { id: "mnist", path: S("onnx/mnist/mnist.onnx"), real: true, inputs: { Input3: S("onnx/mnist/ref/input.npy") }, firstSample: true },
  { id: "ppocr-det", path: S("paddleocr-onnx/ch_PP-OCRv4_det_infer.onnx"), real: true, inputs: { x: S("paddleocr-onnx/ref/det_0/input_x.npy") }, refs: { "sigmoid_0.tmp_0": S("paddleocr-onnx/ref/det_0/ort_sigmoid_0.tmp_0.npy") } },
  { id: "ppocr-cls", path: S("paddleocr-onnx/ch_ppocr_mobile_v2.0_cls_infer.onnx"), real: true, inputs: { x: S("paddleocr-onnx/ref/cls_0/input_x.npy") }, refs: { "softmax_0.tmp_0": S("paddleocr-onnx/ref/cls_0/ort_softmax_0.tmp_0.npy") } },
  { id: "ppocr-rec-svtr", path: S("transformer/ppocrv4-rec-svtr/ch_PP-OCRv4_rec_infer.onnx"), real: true, inputs: { x: S("transformer/ppocrv4-rec-svtr/ref/rec_0/input_x.npy") }, refs: { "softmax_11.tmp_0": S("transformer/ppocrv4-rec-svtr/ref/rec_0/ort_softmax_11.tmp_0.npy") } },
  { id: "resnet20", path: S("torch/resnet20_cifar10/resnet20_cifar10.onnx"), real: true, inputs: { input: S("torch/resnet20_cifar10/ref/input.npy") }, refs: { logits: S("torch/resnet20_cifar10/ref/output_logits.npy") } },
  { id: "qdq-int4", path: S("onnx/ort-testdata/conv.int4_weights.qdq.onnx"), real: false },
  { id: "qdq-s8s8", path: S("onnx/ort-testdata/conv_qdq_s8s8_perchannel.onnx"), real: false, dims: { batch_size: 1 } },
  { id: "qdq-u8u8", path: S("onnx/ort-testdata/conv_qdq_u8u8.onnx"), real: false, dims: { batch_size: 1 } },
  { id: "bert-toy", path: S("onnx/ort-testdata/bert_toy_optimized.onnx"), real: false, dims: { batch: 1, max_seq_len_in_batch: 7 } },
  { id: "attention-u8s8", path: S("onnx/ort-testdata/attention_past_state.u8s8.onnx"), real: false, dims: { batch: 1, seq_len: 3, C: 2304, past_sequence_length: 2 } },
];

/** Deterministic pseudo-random numbers (mulberry32). */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function synth(dtype: DType, shape: number[], rand: () => number): Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  const v = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const r = rand();
    v[i] = dtype === "int64" || dtype === "int32" ? Math.floor(r * 5)
      : dtype === "uint8" ? Math.floor(r * 256)
      : dtype === "int8" ? Math.floor(r * 256) - 128
      : dtype === "bool" ? (r < 0.5 ? 0 : 1)
      : r * 2 - 1;
  }
  return Tensor.fromNumbers(dtype, shape, v);
}

/** Feeds for a model: reference inputs where listed, synthetic values for the rest. */
export async function feedsFor(c: ModelCase, g: Graph): Promise<Feeds> {
  const feeds: Feeds = {};
  const rand = rng(1234);
  for (const inp of g.inputs) {
    const file = c.inputs?.[inp.name];
    if (file) {
      let t = await readNpy(file);
      if (c.firstSample && t.shape[0]! > 1) {
        const per = t.size / t.shape[0]!;
        t = new Tensor(t.dtype, [1, ...t.shape.slice(1)], (t.data as Float32Array).slice(0, per));
      }
      const declared = inp.shape;
      if (declared && declared.length !== t.shape.length && declared.every((d) => typeof d === "number")) {
        t = t.reshape(declared as number[]);
      }
      feeds[inp.name] = t;
      continue;
    }
    const shape = (inp.shape ?? []).map((d) => (typeof d === "number" && d > 0 ? d : typeof d === "string" ? (c.dims?.[d] ?? 1) : 1));
    feeds[inp.name] = synth(inp.dtype ?? "float32", shape, rand);
  }
  return feeds;
}

/** Cosine similarity of two numeric arrays (1 when both are all zero). */
export function cosine(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let dot = 0, na = 0, nb = 0;
  for (let i = 0; i < a.length; i++) {
    const x = a[i]!, y = b[i]!;
    dot += x * y; na += x * x; nb += y * y;
  }
  if (na === 0 && nb === 0) return 1;
  return dot / Math.sqrt(na * nb);
}

/** max |a-b| divided by the range of b (max-min), or max |a-b| when b is constant. */
export function relMaxDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let md = 0, lo = Infinity, hi = -Infinity;
  for (let i = 0; i < b.length; i++) {
    const d = Math.abs(a[i]! - b[i]!);
    if (d > md || Number.isNaN(d)) md = Number.isNaN(d) ? Infinity : d;
    if (b[i]! < lo) lo = b[i]!;
    if (b[i]! > hi) hi = b[i]!;
  }
  const range = hi - lo;
  return range > 0 ? md / range : md;
}

/** `n` deterministic pseudo-random floats in [-1, 1). */
export function randomFloats(n: number, seed: number): Float32Array {
  const r = rng(seed);
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = r() * 2 - 1;
  return a;
}

/** Debian's python3 with numpy, for cross-checks against files and formulas numpy computes. */
export const PY = "/usr/bin/python3";
export const HAVE_NUMPY = existsSync(PY) && spawnSync(PY, ["-c", "import numpy"], { stdio: "ignore" }).status === 0;
