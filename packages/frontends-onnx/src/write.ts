import { writeFileSync, renameSync, rmSync, mkdirSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { Graph, ONNX_DTYPE, type AttrValue, type Dim, type ValueInfo, type Tensor } from "@q/ir";
import { ATTR, ModelProto, type PAttr, type PGraph, type PModel, type PTensor, type PValueInfo } from "./proto.js";
import { encodeTensor, toRawBytes } from "./tensor-io.js";

export interface WriteOnnxOptions {
  /**
   * Put initializers of at least `externalThreshold` bytes in this file (relative to the model's
   * folder) instead of inside the model, as ONNX external data.
   */
  externalData?: string;
  externalThreshold?: number;
}

interface ExtSink {
  location: string;
  threshold: number;
  chunks: Uint8Array[];
  offset: number;
}

const enc = new TextEncoder();

/** Serialize IR as an ONNX ModelProto. */
export function encodeOnnx(g: Graph): Uint8Array {
  return encodeWithSink(g, undefined).bytes;
}

function encodeWithSink(g: Graph, sink: ExtSink | undefined): { bytes: Uint8Array } {
  const opsets = Object.keys(g.opsets).length ? g.opsets : { "": 17 };
  const m: PModel = {
    ir_version: g.irVersion || 8,
    opset_import: Object.entries(opsets).map(([domain, version]) => ({ domain, version })),
    producer_name: g.producerName || "q",
    producer_version: g.producerVersion,
    doc_string: g.doc || undefined,
    graph: encodeGraph(g, sink),
    metadata_props: Object.entries(g.metadata).map(([key, value]) => ({ key, value })),
  } as PModel;
  const msg = ModelProto.fromObject(m as Record<string, unknown>);
  return { bytes: ModelProto.encode(msg).finish() };
}

/** Write IR to an `.onnx` file atomically (temp file + rename). */
export function writeOnnx(g: Graph, path: string, opts: WriteOnnxOptions = {}): void {
  const full = resolve(path);
  mkdirSync(dirname(full), { recursive: true });
  const sink: ExtSink | undefined = opts.externalData
    ? { location: opts.externalData, threshold: opts.externalThreshold ?? 1024, chunks: [], offset: 0 }
    : undefined;
  const { bytes } = encodeWithSink(g, sink);
  const tmps: [string, string][] = [];
  try {
    if (sink) {
      const ext = resolve(dirname(full), sink.location);
      const tmpExt = `${ext}.tmp-${process.pid}`;
      const all = new Uint8Array(sink.offset);
      let o = 0;
      for (const c of sink.chunks) { all.set(c, o); o += c.length; }
      writeFileSync(tmpExt, all);
      tmps.push([tmpExt, ext]);
    }
    const tmp = `${full}.tmp-${process.pid}`;
    writeFileSync(tmp, bytes);
    tmps.push([tmp, full]);
    for (const [t, f] of tmps) renameSync(t, f);
  } catch (e) {
    for (const [t] of tmps) rmSync(t, { force: true });
    throw e;
  }
}

function encodeGraph(g: Graph, sink: ExtSink | undefined): PGraph {
  const inits: PTensor[] = [];
  for (const [name, t] of g.initializers) inits.push(encodeInit(t, name, sink));
  return {
    name: g.name || "main",
    doc_string: g.doc || undefined,
    node: g.nodes.map((n) => ({
      name: n.name || undefined,
      op_type: n.opType,
      domain: n.domain || undefined,
      input: n.inputs,
      output: n.outputs,
      doc_string: n.doc,
      attribute: [...n.attrs].map(([k, a]) => encodeAttr(k, a, sink)),
    })),
    initializer: inits,
    input: g.inputs.map(encodeValueInfo),
    output: g.outputs.map(encodeValueInfo),
    value_info: [...g.valueInfo.values()].filter((v) => v.dtype || v.shape).map(encodeValueInfo),
  } as PGraph;
}

function encodeInit(t: Tensor, name: string, sink: ExtSink | undefined): PTensor {
  if (sink && t.dtype !== "string") {
    const raw = toRawBytes(t);
    if (raw.length >= sink.threshold) {
      const copy = raw.slice();
      const p: PTensor = {
        name, dims: [...t.shape], data_type: ONNX_DTYPE[t.dtype], data_location: 1,
        external_data: [
          { key: "location", value: sink.location },
          { key: "offset", value: String(sink.offset) },
          { key: "length", value: String(copy.length) },
        ],
      };
      sink.chunks.push(copy);
      sink.offset += copy.length;
      return p;
    }
  }
  return encodeTensor(t, name);
}

function encodeValueInfo(v: ValueInfo): PValueInfo {
  const out: PValueInfo = { name: v.name };
  if (v.doc) out.doc_string = v.doc;
  if (v.dtype || v.shape) {
    out.type = { tensor_type: { elem_type: v.dtype ? ONNX_DTYPE[v.dtype] : 0 } };
    if (v.shape) out.type.tensor_type!.shape = { dim: v.shape.map(encodeDim) };
  }
  return out;
}

function encodeDim(d: Dim): { dim_value?: number; dim_param?: string } {
  if (typeof d === "number") return { dim_value: d };
  if (typeof d === "string") return { dim_param: d };
  return {};
}

function encodeAttr(name: string, a: AttrValue, sink: ExtSink | undefined): PAttr {
  switch (a.type) {
    case "float": return { name, type: ATTR.FLOAT, f: a.value };
    case "int": return { name, type: ATTR.INT, i: a.value };
    case "string": return { name, type: ATTR.STRING, s: enc.encode(a.value) };
    case "tensor": return { name, type: ATTR.TENSOR, t: encodeTensor(a.value) };
    case "graph": return { name, type: ATTR.GRAPH, g: encodeGraph(a.value, sink) };
    case "floats": return { name, type: ATTR.FLOATS, floats: a.value };
    case "ints": return { name, type: ATTR.INTS, ints: a.value };
    case "strings": return { name, type: ATTR.STRINGS, strings: a.value.map((s) => enc.encode(s)) };
    case "tensors": return { name, type: ATTR.TENSORS, tensors: a.value.map((t) => encodeTensor(t)) };
    case "graphs": return { name, type: ATTR.GRAPHS, graphs: a.value.map((x) => encodeGraph(x, sink)) };
  }
}
