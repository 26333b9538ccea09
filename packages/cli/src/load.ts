import { existsSync, openSync, readSync, closeSync, statSync } from "node:fs";
import { extname } from "node:path";
import { Graph, MissingFileError, ModelFormatError, UsageError } from "@q/ir";
import { readOnnx } from "@q/frontends-onnx";

export type ModelFormat = "onnx" | "caffe" | "tf" | "paddle" | "torch" | "tflite" | "mlir";

const BY_EXT: Record<string, ModelFormat> = {
  ".onnx": "onnx", ".prototxt": "caffe", ".caffemodel": "caffe", ".pb": "tf", ".pdmodel": "paddle",
  ".pt": "torch", ".pth": "torch", ".tflite": "tflite", ".mlir": "mlir",
};

/** Which format a model file is in: by extension, then by its first bytes. */
export function detectFormat(path: string): ModelFormat {
  if (!existsSync(path)) throw new MissingFileError(path, "model file");
  if (!statSync(path).isFile()) throw new UsageError(`${path} is a folder; pass the model file itself`);
  const ext = extname(path).toLowerCase();
  if (BY_EXT[ext]) return BY_EXT[ext]!;
  const fd = openSync(path, "r");
  const head = Buffer.alloc(16);
  readSync(fd, head, 0, 16, 0);
  closeSync(fd);
  if (head[0] === 0x50 && head[1] === 0x4b) return "torch"; // zip archive (TorchScript / torch.save)
  if (head.subarray(4, 8).toString("latin1") === "TFL3") return "tflite";
  // ONNX ModelProto usually starts with field 1 (ir_version, varint): tag 0x08
  if (head[0] === 0x08) return "onnx";
  throw new ModelFormatError("cannot tell the model format from the extension or the first bytes; use .onnx, .prototxt/.caffemodel, .pb, .pdmodel, .pt/.pth", path);
}

export interface LoadOptions {
  /** Separate weight file (.caffemodel, .pdiparams, .pth). */
  weights?: string;
}

/** Load any supported model file into IR. */
export async function loadModel(path: string, _opts: LoadOptions = {}): Promise<Graph> {
  const fmt = detectFormat(path);
  switch (fmt) {
    case "onnx":
      return readOnnx(path);
    default:
      throw new UsageError(`${path}: ${fmt} models are not supported yet (only ONNX for now)`);
  }
}
