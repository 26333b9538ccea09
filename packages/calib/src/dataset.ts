/**
 * Calibration data: which samples (`--dataset` folder or `--data_list` file, `--input_num`),
 * loading each sample into model feeds (images through their Preprocess, .npz/.npy arrays as
 * they are), streaming them with a small prefetch, and packing them into model batches.
 *
 * Follows TPU-MLIR's `python/calibration/data_selector.py` and `kld_calibrator.py`
 * (load_net_input), with these documented choices:
 * - A folder is searched recursively for *.jpg, *.jpeg, *.jfif, *.png, *.bmp, *.npz, *.npy
 *   (extension case-insensitive, hidden files skipped). TPU-MLIR takes pathlib's glob order, which
 *   depends on the filesystem; we sort by the path relative to the folder ('/'-separated),
 *   comparing Unicode code points (= UTF-8 byte order, like `LC_ALL=C sort`): locale-independent,
 *   "B.jpg" < "a.jpg", "a.jpg" < "a/x.jpg", "img10" < "img2".
 * - `--data_list`: one sample per line; a multi-input sample is comma-separated paths (one path per
 *   input, in input order; a single .npz carries all inputs). Blank lines are skipped. Relative
 *   paths are resolved against the working directory (as TPU-MLIR does) and, when not found there,
 *   against the list file's folder. When both are given, the data list wins (as in TPU-MLIR).
 * - `inputNum` 0/undefined = all samples; asking for more samples than the data has is a
 *   UsageError (TPU-MLIR silently uses fewer). One kind of sample per run (images, .npz or .npy),
 *   checked over the samples used, as TPU-MLIR does.
 * - .npz: with one model input and one array, any key; otherwise the keys must include the input
 *   names (extra keys are ignored). .npy: one file per input. Arrays are converted to the input's
 *   dtype (TPU-MLIR casts to float32) and must have the input's shape, or that shape with another
 *   batch count (batchSamples regroups rows), or that shape without the batch dim.
 * - Batching (model batch N > 1): rows are stacked along axis 0 in sample order; an incomplete last
 *   batch is padded by repeating the last row (the last sample), as TPU-MLIR's docs describe
 *   (`dropLast` drops it instead, as some TPU-MLIR versions do for images).
 */
import { existsSync, readFileSync, statSync } from "node:fs";
import { dirname, isAbsolute, join, resolve } from "node:path";
import fg from "fast-glob";
import {
  InputMismatchError,
  MissingFileError,
  ModelFormatError,
  QError,
  Tensor,
  UsageError,
  readArrays,
  shapeSize,
  type DType,
  type Feeds,
} from "@q/ir";
import { loadImage, resolveGeometry, type Preprocess } from "./preprocess.js";

export interface DatasetInput {
  name: string;
  shape: number[];
  dtype: DType;
  /** How images for this input are preprocessed; default = bgr, nchw, no mean/scale, resize to H,W. */
  preprocess?: Preprocess;
}

export interface DatasetOptions {
  /** A folder of samples (searched recursively). */
  dataset?: string;
  /** A file with one sample per line; multi-input = comma-separated paths. */
  dataList?: string;
  /** How many samples to use; 0 or undefined = all. */
  inputNum?: number;
  /** The model inputs, in order. */
  inputs: DatasetInput[];
}

export type SampleKind = "image" | "npz" | "npy";

/** Image extensions TPU-MLIR accepts (data_selector.is_image). */
export const IMAGE_EXTENSIONS: readonly string[] = ["jpg", "jpeg", "jfif", "png", "bmp"];
const SAMPLE_GLOB = `**/*.{${[...IMAGE_EXTENSIONS, "npz", "npy"].join(",")}}`;

/** The kind of a sample file, from its extension (case-insensitive); undefined if none. */
export function sampleKind(path: string): SampleKind | undefined {
  const dot = path.lastIndexOf(".");
  if (dot < 0) return undefined;
  const ext = path.slice(dot + 1).toLowerCase();
  if (ext === "npz") return "npz";
  if (ext === "npy") return "npy";
  return IMAGE_EXTENSIONS.includes(ext) ? "image" : undefined;
}

/** Compare strings by Unicode code points (UTF-8 byte order); locale-independent. */
export function compareCodePoints(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.codePointAt(i)!;
    const y = b.codePointAt(i)!;
    if (x !== y) return x - y;
    if (x > 0xffff) i++;
  }
  return a.length - b.length;
}

const DESCRIBE = "calibration samples (*.jpg, *.jpeg, *.jfif, *.png, *.bmp, *.npz, *.npy)";

/**
 * The samples to use, in order: one entry per sample, each the list of its files (one per input,
 * or one .npz). Paths are absolute. Checks that the files exist, that the kinds agree and that
 * each line has as many paths as the model has inputs.
 */
export function listSamples(opts: DatasetOptions): string[][] {
  const { inputs } = opts;
  if (!inputs || inputs.length === 0) throw new UsageError("the model has no inputs to feed");
  const n = opts.inputNum ?? 0;
  if (!Number.isInteger(n) || n < 0) throw new UsageError(`--input_num ${n} must be a non-negative integer (0 = all samples)`);
  let all: string[][];
  let source: string;
  if (opts.dataList !== undefined) {
    source = opts.dataList;
    all = readDataList(opts.dataList);
  } else if (opts.dataset !== undefined) {
    source = opts.dataset;
    all = listFolder(opts.dataset);
  } else {
    throw new UsageError("no calibration data: give --dataset <folder> or --data_list <file>");
  }
  if (all.length === 0) throw new MissingFileError(source, DESCRIBE);
  if (n > all.length) {
    throw new UsageError(
      `--input_num ${n} asks for more samples than ${source} has (${all.length}); lower --input_num or add samples`,
    );
  }
  const used = n > 0 ? all.slice(0, n) : all;
  checkKinds(used, inputs, source, opts.dataList !== undefined);
  return used;
}

function readDataList(file: string): string[][] {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (e) {
    const code = (e as NodeJS.ErrnoException)?.code;
    if (code === "ENOENT" || code === "ENOTDIR") throw new MissingFileError(file, "data list file");
    if (code === "EISDIR") throw new UsageError(`--data_list ${file} is a directory; use --dataset for a folder of samples`);
    throw new QError("E_IO", `cannot read data list: ${e instanceof Error ? e.message : String(e)}`, file);
  }
  const base = dirname(resolve(file));
  const out: string[][] = [];
  text.split(/\r?\n/).forEach((line, ln) => {
    const t = line.trim();
    if (t === "") return;
    out.push(
      t.split(",").map((p) => {
        const s = p.trim();
        if (s === "") throw new UsageError(`${file}:${ln + 1}: empty path in '${t}' (stray comma?)`);
        if (isAbsolute(s)) {
          if (!existsSync(s)) throw new MissingFileError(s, `sample file (line ${ln + 1} of ${file})`);
          return s;
        }
        const fromCwd = resolve(s);
        if (existsSync(fromCwd)) return fromCwd;
        const fromList = join(base, s);
        if (existsSync(fromList)) return fromList;
        throw new MissingFileError(fromCwd, `sample file (line ${ln + 1} of ${file}; also not in ${base})`);
      }),
    );
  });
  return out;
}

function listFolder(dir: string): string[][] {
  let st;
  try {
    st = statSync(dir);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException)?.code;
    if (code === "ENOENT" || code === "ENOTDIR") throw new MissingFileError(dir, "dataset folder");
    throw new QError("E_IO", `cannot read dataset folder: ${e instanceof Error ? e.message : String(e)}`, dir);
  }
  if (!st.isDirectory()) {
    throw new UsageError(`--dataset ${dir} is not a folder; give a folder of samples, or list files with --data_list`);
  }
  const root = resolve(dir);
  const rel = fg.sync(SAMPLE_GLOB, { cwd: root, caseSensitiveMatch: false, onlyFiles: true, dot: false, followSymbolicLinks: true });
  rel.sort(compareCodePoints);
  return rel.map((r) => [join(root, r)]);
}

function checkKinds(samples: string[][], inputs: DatasetInput[], source: string, isList: boolean): void {
  const firstOf = new Map<SampleKind, string>();
  const count = new Map<SampleKind, number>();
  samples.forEach((paths, i) => {
    const where = isList ? `${source}: sample ${i + 1} (${paths.join(",")})` : paths[0]!;
    const kinds = paths.map((p) => {
      const k = sampleKind(p);
      if (!k) throw new UsageError(`${where}: '${p}' is not a sample file (expected an image, .npz or .npy)`);
      return k;
    });
    const k = kinds[0]!;
    if (kinds.some((x) => x !== k)) throw new UsageError(`${where}: mixes ${[...new Set(kinds)].join(" and ")} files in one sample`);
    if (k === "npz") {
      if (paths.length !== 1) throw new UsageError(`${where}: give one .npz per sample (it holds every input)`);
    } else if (paths.length !== inputs.length) {
      const need = inputs.map((x) => x.name).join(", ");
      const hint = !isList && inputs.length > 1 ? "; a multi-input model needs .npz samples or a --data_list with comma-separated paths" : "";
      throw new InputMismatchError(
        `sample has ${paths.length} ${k} file(s) but the model has ${inputs.length} input(s) (${need})${hint}`,
        isList ? `${source} (sample ${i + 1})` : paths[0],
      );
    }
    if (!firstOf.has(k)) firstOf.set(k, paths[0]!);
    count.set(k, (count.get(k) ?? 0) + 1);
  });
  if (firstOf.size > 1) {
    const parts = [...firstOf].map(([k, f]) => `${count.get(k)} ${k} (e.g. ${f})`);
    throw new UsageError(
      `${source} mixes sample kinds: ${parts.join(", ")}; use one kind per run (select files with --data_list)`,
    );
  }
}

// ---------------------------------------------------------------------------------------------
// Loading

function sameDims(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

/** Fit an array to a model input: check its shape, convert its dtype. */
function toFeed(t: Tensor, input: DatasetInput, file: string, key: string): Tensor {
  const want = input.shape;
  let shape = [...t.shape];
  const ok =
    sameDims(shape, want) ||
    (want.length >= 1 && shape.length === want.length && shape[0]! >= 1 && sameDims(shape.slice(1), want.slice(1))) ||
    (want.length >= 1 && sameDims(shape, want.slice(1)));
  if (!ok) {
    throw new InputMismatchError(
      `array '${key}' has shape [${shape.join(",")}] but input '${input.name}' needs [${want.join(",")}]`,
      file,
    );
  }
  if (want.length >= 1 && shape.length === want.length - 1) shape = [1, ...shape];
  if (t.dtype === input.dtype) return shape.length === t.shape.length ? t : t.reshape(shape);
  if (t.dtype === "string" || input.dtype === "string") {
    throw new InputMismatchError(`array '${key}' is ${t.dtype} but input '${input.name}' is ${input.dtype}`, file);
  }
  if (input.dtype === "float32") return new Tensor("float32", shape, t.toFloat32().slice());
  return Tensor.fromNumbers(input.dtype, shape, t.toNumbers());
}

function imagePreprocess(input: DatasetInput): Preprocess {
  const pp = input.preprocess ?? { inputShape: input.shape };
  const a = pp.inputShape.slice(-3);
  const b = input.shape.slice(-3);
  if (!sameDims(a, b)) {
    throw new InputMismatchError(
      `preprocess for input '${input.name}' is for shape [${pp.inputShape.join(",")}] but the input is [${input.shape.join(",")}]`,
    );
  }
  return pp;
}

/** Per-sample feed shape of an image input: the input shape with batch 1 (rank ≥ 4). */
function imageFeedShape(input: DatasetInput): number[] {
  return input.shape.length >= 4 ? [1, ...input.shape.slice(1)] : [...input.shape];
}

/** Load one sample (its files as listSamples gives them) into feeds, one tensor per input. */
export async function loadSample(paths: string[], inputs: DatasetInput[]): Promise<Feeds> {
  const kind = sampleKind(paths[0]!);
  const feeds: Feeds = {};
  if (kind === "image") {
    const pps = inputs.map(imagePreprocess);
    const values = await Promise.all(paths.map((p, i) => loadImage(p, pps[i]!)));
    inputs.forEach((inp, i) => {
      const shape = imageFeedShape(inp);
      const v = values[i]!;
      if (v.length !== shapeSize(shape)) {
        throw new InputMismatchError(`image gives ${v.length} values but input '${inp.name}' needs [${shape.join(",")}]`, paths[i]);
      }
      feeds[inp.name] = inp.dtype === "float32" ? new Tensor("float32", shape, v) : Tensor.fromNumbers(inp.dtype, shape, v);
    });
    return feeds;
  }
  if (kind === "npz") {
    const file = paths[0]!;
    const arrays = await readArrays(file);
    const keys = [...arrays.keys()];
    if (inputs.length === 1 && arrays.size === 1) {
      feeds[inputs[0]!.name] = toFeed(arrays.get(keys[0]!)!, inputs[0]!, file, keys[0]!);
      return feeds;
    }
    const missing = inputs.filter((x) => !arrays.has(x.name)).map((x) => x.name);
    if (missing.length > 0) {
      throw new InputMismatchError(
        `npz has arrays [${keys.join(", ")}] but the model's inputs are [${inputs.map((x) => x.name).join(", ")}]: ` +
          `missing ${missing.join(", ")} (with several arrays or inputs the keys must be the input names)`,
        file,
      );
    }
    for (const inp of inputs) feeds[inp.name] = toFeed(arrays.get(inp.name)!, inp, file, inp.name);
    return feeds;
  }
  if (kind === "npy") {
    const loaded = await Promise.all(paths.map((p) => readArrays(p)));
    inputs.forEach((inp, i) => {
      const m = loaded[i]!;
      const [key, t] = [...m][0]!;
      if (m.size !== 1) throw new ModelFormatError(`expected one array in a .npy file, found ${m.size}`, paths[i]);
      feeds[inp.name] = toFeed(t, inp, paths[i]!, key);
    });
    return feeds;
  }
  throw new UsageError(`'${paths[0]}' is not a sample file (expected an image, .npz or .npy)`);
}

export interface Sample {
  /** 0-based position in the sample list. */
  index: number;
  /** The sample as listed: its files joined with ','. */
  path: string;
  /** The sample's files. */
  paths: string[];
  /** One tensor per model input (images: batch 1; arrays: as stored, dtype converted). */
  feeds: Feeds;
}

export interface StreamOptions {
  /** Samples decoded ahead of the one the consumer holds (default 2; 0 = none). */
  prefetch?: number;
}

/**
 * Yield the samples one at a time, in order, decoding the next `prefetch` while the consumer
 * works. Memory stays bounded by (prefetch + 1) samples plus what the consumer keeps.
 * Errors (bad file, wrong shape) are thrown when the consumer reaches that sample.
 */
export async function* streamSamples(opts: DatasetOptions, so: StreamOptions = {}): AsyncGenerator<Sample> {
  const list = listSamples(opts);
  for (const inp of opts.inputs) if (inp.preprocess) resolveGeometry(inp.preprocess);
  const ahead = Math.max(0, Math.floor(so.prefetch ?? 2));
  const pending: Promise<Feeds>[] = [];
  let next = 0;
  const start = (): void => {
    const p = loadSample(list[next++]!, opts.inputs);
    p.catch(() => undefined); // observed when its turn comes; avoid unhandled rejections on early exit
    pending.push(p);
  };
  while (next < list.length && pending.length < ahead + 1) start();
  for (let index = 0; index < list.length; index++) {
    const feeds = await pending.shift()!;
    if (next < list.length) start();
    const paths = list[index]!;
    yield { index, path: paths.join(","), paths, feeds };
  }
}

export interface Batch {
  /** 0-based batch number. */
  index: number;
  /** Files of the samples in this batch (a sample split over two batches appears in both). */
  paths: string[];
  /** Rows that came from data (the rest, up to the batch size, repeat the last row). */
  rows: number;
  /** Rows added by padding (0 except possibly for the last batch). */
  padded: number;
  /** One tensor per input, batch dim = the model's. */
  feeds: Feeds;
}

export interface BatchOptions {
  /** Rows per batch; default = dim 0 of the inputs' shapes (they must agree). */
  batchSize?: number;
  /** Drop an incomplete last batch instead of padding it. */
  dropLast?: boolean;
}

interface RowBuf {
  chunks: Tensor[];
  rows: number;
}

function concatRows(parts: Tensor[], rows: number, dtype: DType, rowShape: number[], padTo: number): Tensor {
  const rowSize = shapeSize(rowShape);
  const first = parts[0]!;
  const proto = first.data;
  if (Array.isArray(proto)) throw new InputMismatchError("string inputs cannot be batched");
  const Ctor = proto.constructor as new (n: number) => typeof proto;
  const out = new Ctor(padTo * rowSize);
  let off = 0;
  for (const p of parts) {
    (out as unknown as { set(a: ArrayLike<unknown>, o: number): void }).set(p.data as ArrayLike<unknown>, off);
    off += p.data.length;
  }
  // pad by repeating the last row
  const last = (rows - 1) * rowSize;
  for (let r = rows; r < padTo; r++) out.copyWithin(r * rowSize, last, last + rowSize);
  return new Tensor(dtype, [padTo, ...rowShape], out);
}

/**
 * Pack samples into model batches: rows (dim 0) of each input are stacked in sample order and
 * emitted every `batchSize` rows; the last, incomplete batch is padded by repeating its last row
 * (TPU-MLIR: "image lists are padded by repeating the last entry") unless `dropLast`.
 * With batch size 1 and one-row samples this is a re-labelling of the stream.
 */
export async function* batchSamples(
  samples: AsyncIterable<Sample>,
  inputs: DatasetInput[],
  bo: BatchOptions = {},
): AsyncGenerator<Batch> {
  let N = bo.batchSize;
  if (N === undefined) {
    const dims = [...new Set(inputs.map((x) => (x.shape.length >= 1 ? x.shape[0]! : 1)))];
    if (dims.length !== 1) {
      throw new InputMismatchError(
        `inputs have different batch dims (${inputs.map((x) => `${x.name}: ${x.shape[0]}`).join(", ")}); give a batch size`,
      );
    }
    N = dims[0]!;
  }
  if (!Number.isInteger(N) || N < 1) throw new UsageError(`batch size ${N} must be a positive integer`);
  const bufs = new Map<string, RowBuf>(inputs.map((x) => [x.name, { chunks: [], rows: 0 }]));
  const rowShapes = new Map<string, number[]>();
  let paths: string[] = [];
  let index = 0;

  const take = (n: number, pad: number): Batch => {
    const feeds: Feeds = {};
    for (const inp of inputs) {
      const buf = bufs.get(inp.name)!;
      const rowShape = rowShapes.get(inp.name)!;
      const rowSize = shapeSize(rowShape);
      const parts: Tensor[] = [];
      let need = n;
      while (need > 0) {
        const c = buf.chunks[0]!;
        const r = c.shape[0]!;
        if (r <= need) {
          parts.push(c);
          buf.chunks.shift();
          need -= r;
        } else {
          const d = c.data as unknown as { subarray(a: number, b: number): unknown };
          parts.push(new Tensor(c.dtype, [need, ...rowShape], d.subarray(0, need * rowSize) as Tensor["data"]));
          buf.chunks[0] = new Tensor(c.dtype, [r - need, ...rowShape], d.subarray(need * rowSize, r * rowSize) as Tensor["data"]);
          need = 0;
        }
      }
      buf.rows -= n;
      feeds[inp.name] = concatRows(parts, n, parts[0]!.dtype, rowShape, n + pad);
    }
    const b: Batch = { index: index++, paths, rows: n, padded: pad, feeds };
    paths = [];
    return b;
  };

  for await (const s of samples) {
    for (const inp of inputs) {
      const t = s.feeds[inp.name];
      if (!t) throw new InputMismatchError(`sample has no value for input '${inp.name}'`, s.path);
      if (t.rank === 0) throw new InputMismatchError(`input '${inp.name}' is a scalar and cannot be batched`, s.path);
      const rowShape = t.shape.slice(1);
      const prev = rowShapes.get(inp.name);
      if (!prev) rowShapes.set(inp.name, rowShape);
      else if (!sameDims(prev, rowShape)) {
        throw new InputMismatchError(
          `input '${inp.name}' rows have shape [${rowShape.join(",")}] here but [${prev.join(",")}] in earlier samples`,
          s.path,
        );
      }
      const buf = bufs.get(inp.name)!;
      buf.chunks.push(t);
      buf.rows += t.shape[0]!;
    }
    paths.push(s.path);
    for (;;) {
      const rows = Math.min(...inputs.map((x) => bufs.get(x.name)!.rows));
      if (rows < N) break;
      const carry = paths[paths.length - 1]!;
      const b = take(N, 0);
      // a sample whose rows continue into the next batch is listed there too
      if (Math.max(...inputs.map((x) => bufs.get(x.name)!.rows)) > 0) paths.push(carry);
      yield b;
    }
  }
  const rows = Math.min(...inputs.map((x) => bufs.get(x.name)!.rows));
  if (rows > 0 && !bo.dropLast) yield take(rows, N - rows);
}

/** streamSamples packed into model batches (see batchSamples). */
export function streamBatches(opts: DatasetOptions, so: StreamOptions & BatchOptions = {}): AsyncGenerator<Batch> {
  return batchSamples(streamSamples(opts, so), opts.inputs, so);
}
