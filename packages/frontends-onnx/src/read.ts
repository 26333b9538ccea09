import { readFileSync, existsSync, statSync } from "node:fs";
import { dirname, resolve } from "node:path";
import {
  Graph, Node, ModelFormatError, MissingFileError, UnknownOpError, dtypeFromOnnx,
  type AttrValue, type Dim, type ValueInfo, type Tensor,
} from "@q/ir";
import { ATTR, ModelProto, TensorProto, toNum, type PAttr, type PGraph, type PModel, type PTensor, type PType, type PValueInfo } from "./proto.js";
import { decodeSparse, decodeTensor, type TensorReadContext } from "./tensor-io.js";
import { isKnownOnnxOp } from "./known-ops.js";

export interface ReadOnnxOptions {
  /** Accept ai.onnx ops that are not in the ONNX operator list (default false: UnknownOpError). */
  allowUnknownOps?: boolean;
  /** Folder for external data files (default: the model's folder). */
  baseDir?: string;
}

/** Read an `.onnx` file into IR. */
export async function readOnnx(path: string, opts: ReadOnnxOptions = {}): Promise<Graph> {
  return readOnnxSync(path, opts);
}

export function readOnnxSync(path: string, opts: ReadOnnxOptions = {}): Graph {
  const full = resolve(path);
  if (!existsSync(full) || !statSync(full).isFile()) throw new MissingFileError(path, "model file");
  const bytes = readFileSync(full);
  return decodeOnnx(bytes, { ...opts, file: path, baseDir: opts.baseDir ?? dirname(full) });
}

/** Decode ONNX bytes into IR. `file` is used in messages and for external data. */
export function decodeOnnx(bytes: Uint8Array, opts: ReadOnnxOptions & { file?: string } = {}): Graph {
  const file = opts.file;
  let m: PModel;
  try {
    m = ModelProto.decode(bytes) as unknown as PModel;
  } catch (e) {
    throw new ModelFormatError(`not a valid ONNX model (protobuf decoding failed: ${(e as Error).message}); the file is truncated or not ONNX`, file);
  }
  if (!m.graph) throw new ModelFormatError("not a valid ONNX model: it has no graph (truncated or not ONNX?)", file);
  if (!m.opset_import?.length) {
    throw new ModelFormatError("ONNX model declares no opset_import (the file is truncated or was written incompletely)", file);
  }
  const irVersion = toNum(m.ir_version);
  if (irVersion <= 0 || irVersion > 20) throw new ModelFormatError(`ONNX ir_version ${irVersion} is not valid (corrupt file?)`, file);
  const ctx: TensorReadContext = { file, extCache: new Map() };
  if (opts.baseDir !== undefined) ctx.baseDir = opts.baseDir;
  else if (file) ctx.baseDir = dirname(resolve(file));
  const g = decodeGraph(m.graph, ctx);
  g.irVersion = irVersion;
  g.producerName = m.producer_name ?? "";
  g.producerVersion = m.producer_version ?? "";
  g.doc = m.doc_string ?? "";
  for (const o of m.opset_import) g.opsets[o.domain === "ai.onnx" ? "" : (o.domain ?? "")] = toNum(o.version);
  for (const kv of m.metadata_props ?? []) g.metadata[kv.key ?? ""] = kv.value ?? "";
  if (m.functions?.length) {
    throw new ModelFormatError("model-local functions (ModelProto.functions) are not supported yet; inline them before loading (onnx.inliner)", file);
  }
  if (file) g.source = file;
  if (!opts.allowUnknownOps) checkOps(g, g.opset(""), file);
  return g;
}

function checkOps(g: Graph, opset: number, file?: string): void {
  for (const n of g.nodes) {
    if (n.domain === "" && !isKnownOnnxOp(n.opType)) {
      throw new UnknownOpError(n.opType, "", n.label, `not an ONNX operator (opset ${opset}); fix the exporter or put custom ops in their own domain`, file);
    }
    for (const s of n.subgraphs()) checkOps(s, opset, file);
  }
}

function decodeGraph(pg: PGraph, ctx: TensorReadContext): Graph {
  const g = new Graph();
  g.name = pg.name ?? "";
  g.doc = pg.doc_string ?? "";
  for (const t of pg.initializer ?? []) {
    const name = t.name ?? "";
    if (!name) throw new ModelFormatError("graph has an initializer without a name", ctx.file);
    g.initializers.set(name, decodeTensor(t, ctx));
  }
  for (const s of pg.sparse_initializer ?? []) {
    const name = s.values?.name ?? "";
    g.initializers.set(name, decodeSparse(s, ctx));
  }
  // ONNX lets initializers also appear as inputs (IR < 4 requires it); keep only real inputs
  for (const v of pg.input ?? []) {
    const info = decodeValueInfo(v);
    if (!g.initializers.has(info.name)) g.inputs.push(info);
  }
  for (const v of pg.output ?? []) g.outputs.push(decodeValueInfo(v));
  for (const v of pg.value_info ?? []) {
    const info = decodeValueInfo(v);
    g.valueInfo.set(info.name, info);
  }
  (pg.node ?? []).forEach((pn, idx) => {
    const attrs = new Map<string, AttrValue>();
    for (const a of pn.attribute ?? []) {
      const v = decodeAttr(a, ctx, pn.name || `#${idx} ${pn.op_type}`);
      if (v) attrs.set(a.name ?? "", v);
    }
    const n = new Node({
      name: pn.name ?? "",
      opType: pn.op_type ?? "",
      domain: pn.domain === "ai.onnx" ? "" : (pn.domain ?? ""),
      inputs: [...(pn.input ?? [])],
      outputs: [...(pn.output ?? [])],
      attrs,
    });
    if (!n.opType) throw new ModelFormatError(`node #${idx} '${n.name}' has no op_type (corrupt file?)`, ctx.file);
    if (pn.doc_string) n.doc = pn.doc_string;
    g.nodes.push(n);
  });
  return g;
}

function decodeValueInfo(v: PValueInfo): ValueInfo {
  const info: ValueInfo = { name: v.name ?? "" };
  const tt = v.type?.tensor_type;
  if (tt) {
    const dt = tt.elem_type ? dtypeFromOnnx(tt.elem_type) : undefined;
    if (dt) info.dtype = dt;
    if (tt.shape) info.shape = (tt.shape.dim ?? []).map(decodeDim);
  }
  if (v.doc_string) info.doc = v.doc_string;
  return info;
}

const own = (o: object, k: string) => Object.prototype.hasOwnProperty.call(o, k);

/** A dim is a number, a symbolic name, or unknown when neither field is present. */
function decodeDim(d: { dim_value?: unknown; dim_param?: string }): Dim {
  if (d.dim_param) return d.dim_param;
  if (own(d, "dim_value") && d.dim_value !== null) return toNum(d.dim_value as number);
  return null;
}

const dec = new TextDecoder();

function decodeAttr(a: PAttr, ctx: TensorReadContext, where: string): AttrValue | undefined {
  let type = a.type ?? 0;
  if (a.ref_attr_name) return undefined; // only meaningful inside functions
  if (type === ATTR.UNDEFINED) {
    // very old files leave `type` unset: infer it from the field that is present
    if (a.floats?.length) type = ATTR.FLOATS;
    else if (a.ints?.length) type = ATTR.INTS;
    else if (a.strings?.length) type = ATTR.STRINGS;
    else if (a.tensors?.length) type = ATTR.TENSORS;
    else if (a.graphs?.length) type = ATTR.GRAPHS;
    else if (a.t) type = ATTR.TENSOR;
    else if (a.g) type = ATTR.GRAPH;
    else if (a.s?.length) type = ATTR.STRING;
    else if (a.f !== undefined && a.f !== 0) type = ATTR.FLOAT;
    else type = ATTR.INT;
  }
  switch (type) {
    case ATTR.FLOAT: return { type: "float", value: a.f ?? 0 };
    case ATTR.INT: return { type: "int", value: toNum(a.i) };
    case ATTR.STRING: return { type: "string", value: dec.decode(a.s ?? new Uint8Array()) };
    case ATTR.TENSOR: return { type: "tensor", value: decodeTensor(a.t ?? {}, ctx) };
    case ATTR.GRAPH: return { type: "graph", value: decodeGraph(a.g ?? {}, ctx) };
    case ATTR.FLOATS: return { type: "floats", value: [...(a.floats ?? [])] };
    case ATTR.INTS: return { type: "ints", value: (a.ints ?? []).map(toNum) };
    case ATTR.STRINGS: return { type: "strings", value: (a.strings ?? []).map((s) => dec.decode(s)) };
    case ATTR.TENSORS: return { type: "tensors", value: (a.tensors ?? []).map((t) => decodeTensor(t, ctx)) };
    case ATTR.GRAPHS: return { type: "graphs", value: (a.graphs ?? []).map((x) => decodeGraph(x, ctx)) };
    case ATTR.SPARSE_TENSOR: return { type: "tensor", value: decodeSparse(a.sparse_tensor ?? {}, ctx) };
    default:
      throw new ModelFormatError(`node '${where}': attribute '${a.name}' has type ${type}, which q does not support`, ctx.file);
  }
}

/** Decode one serialized TensorProto (as in ONNX test data `input_0.pb`). */
export function decodeTensorProto(bytes: Uint8Array, file?: string): Tensor {
  let p: PTensor;
  try {
    p = TensorProto.decode(bytes) as unknown as PTensor;
  } catch (e) {
    throw new ModelFormatError(`not a valid TensorProto (${(e as Error).message})`, file);
  }
  const ctx: TensorReadContext = {};
  if (file) { ctx.file = file; ctx.baseDir = dirname(resolve(file)); }
  return decodeTensor(p, ctx);
}

export function readTensorProto(path: string): { name: string; tensor: Tensor } {
  if (!existsSync(path)) throw new MissingFileError(path, "tensor file");
  const bytes = readFileSync(path);
  const p = TensorProto.decode(bytes) as unknown as PTensor;
  return { name: p.name ?? "", tensor: decodeTensorProto(bytes, path) };
}

export type { PType };
