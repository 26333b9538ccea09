import { existsSync, openSync, readSync, closeSync, statSync } from "node:fs";
import { basename, extname } from "node:path";
import { Graph, MissingFileError, ModelFormatError, UsageError } from "@q/ir";
import { readOnnx } from "@q/frontends-onnx";
import { readCaffe } from "@q/frontends-caffe";
import { readTf } from "@q/frontends-tf";
import { readPaddle } from "@q/frontends-paddle";
import { readTorch, buildFromDefinition } from "@q/frontends-torch";

export type ModelFormat = "onnx" | "caffe" | "tf" | "paddle" | "torch" | "torch-definition" | "tflite" | "mlir";

const BY_EXT: Record<string, ModelFormat> = {
  ".onnx": "onnx", ".prototxt": "caffe", ".caffemodel": "caffe", ".pb": "tf", ".pdmodel": "paddle",
  ".pt": "torch", ".pth": "torch", ".th": "torch", ".tar": "torch", ".mjs": "torch-definition", ".js": "torch-definition",
  ".tflite": "tflite", ".mlir": "mlir",
};

/** Which format a model file is in: by extension (or Paddle's `__model__` name), then by its first bytes. */
export function detectFormat(path: string): ModelFormat {
  if (!existsSync(path)) throw new MissingFileError(path, "model file");
  if (!statSync(path).isFile()) throw new UsageError(`${path} is a folder; pass the model file itself`);
  if (basename(path) === "__model__") return "paddle";
  const ext = extname(path).toLowerCase();
  if (BY_EXT[ext]) return BY_EXT[ext]!;
  const fd = openSync(path, "r");
  const head = Buffer.alloc(64);
  const n = readSync(fd, head, 0, 64, 0);
  closeSync(fd);
  const text = head.subarray(0, n).toString("latin1");
  if (head[0] === 0x50 && head[1] === 0x4b) return "torch"; // zip archive (torch.save / TorchScript)
  if (head[0] === 0x80 && head[1]! >= 2 && head[1]! <= 5) return "torch"; // legacy torch.save pickle
  if (text.slice(4, 8) === "TFL3") return "tflite";
  if (/^\s*(name|layers?|input)\s*[:{]/m.test(text)) return "caffe";
  // ONNX ModelProto starts with field 1 (ir_version, varint): tag 0x08
  if (head[0] === 0x08) return "onnx";
  throw new ModelFormatError(
    "cannot tell the model format from the extension or the first bytes; use .onnx, .prototxt (+ .caffemodel), .pb, .pdmodel (+ .pdiparams), .pt/.pth",
    path,
  );
}

export interface LoadOptions {
  /** Separate weight file: .caffemodel, .pdiparams, or the .pth of a model-definition script. */
  weights?: string;
  /** TF graphs: input and output tensor names when they can't be inferred. */
  inputs?: string[];
  outputs?: string[];
  /** Shapes for inputs with free dims (Paddle -is, TF placeholders, Caffe data layers). */
  inputShapes?: Record<string, number[]>;
  /** PyTorch weights-only files: the model-definition script (Knight's -uds). */
  definition?: string;
  /** Model name picked from a definition script (Knight's -m). */
  modelName?: string;
}

function stemSibling(path: string, ext: string): string | undefined {
  const p = path.slice(0, path.length - extname(path).length) + ext;
  return existsSync(p) ? p : undefined;
}

function onlyFor(fmt: ModelFormat, opts: LoadOptions, path: string): void {
  if ((opts.inputs?.length || opts.outputs?.length) && fmt !== "tf") {
    throw new UsageError(`--inputs/--outputs name the tensors of TensorFlow graphs; ${path} is ${fmt}`);
  }
}

/** Load any supported model file into IR. */
export async function loadModel(path: string, opts: LoadOptions = {}): Promise<Graph> {
  const fmt = detectFormat(path);
  onlyFor(fmt, opts, path);
  const shapes = opts.inputShapes ? { inputShapes: opts.inputShapes } : {};
  switch (fmt) {
    case "onnx":
      return readOnnx(path);
    case "caffe": {
      if (extname(path).toLowerCase() === ".caffemodel") {
        throw new UsageError(`${path}: pass the .prototxt as the model and this .caffemodel with --weights (--model_data)`);
      }
      const weights = opts.weights ?? stemSibling(path, ".caffemodel");
      return readCaffe(path, weights, shapes);
    }
    case "tf":
      return readTf(path, { ...shapes, ...(opts.inputs?.length ? { inputs: opts.inputs } : {}), ...(opts.outputs?.length ? { outputs: opts.outputs } : {}) });
    case "paddle":
      return readPaddle(path, opts.weights, shapes);
    case "torch": {
      const definition = opts.definition;
      return readTorch(path, { ...shapes, ...(definition ? { definition } : {}), ...(opts.modelName ? { modelName: opts.modelName } : {}) });
    }
    case "torch-definition": {
      if (!opts.weights) throw new UsageError(`${path} is a model-definition script: give its weights with --weights model.pth`);
      return buildFromDefinition(path, opts.weights, opts.modelName ? { modelName: opts.modelName } : {});
    }
    default:
      throw new UsageError(`${path}: ${fmt} models are not supported yet`);
  }
}

/** Parse `--input-shapes`: "x:1,3,224,224;y:1,10" or JSON {"x":[1,3,224,224]}. */
export function parseInputShapes(spec: string | undefined): Record<string, number[]> | undefined {
  if (!spec) return undefined;
  const bad = () => new UsageError(`--input-shapes '${spec}': write name:d0,d1,... separated by ';' (e.g. x:1,3,224,224) or a JSON object`);
  if (spec.trim().startsWith("{")) {
    let o: unknown;
    try { o = JSON.parse(spec); } catch { throw bad(); }
    if (!o || typeof o !== "object") throw bad();
    const out: Record<string, number[]> = {};
    for (const [k, v] of Object.entries(o as Record<string, unknown>)) {
      if (!Array.isArray(v) || !v.every((d) => Number.isInteger(d) && d > 0)) throw bad();
      out[k] = v as number[];
    }
    return out;
  }
  const out: Record<string, number[]> = {};
  for (const part of spec.split(";").map((s) => s.trim()).filter(Boolean)) {
    const i = part.lastIndexOf(":");
    if (i <= 0) throw bad();
    const dims = part.slice(i + 1).split(/[,x]/).map((d) => Number(d.trim()));
    if (!dims.length || dims.some((d) => !Number.isInteger(d) || d <= 0)) throw bad();
    out[part.slice(0, i)] = dims;
  }
  return out;
}
