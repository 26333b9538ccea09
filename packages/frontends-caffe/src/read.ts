import { existsSync, readFileSync, statSync } from "node:fs";
import { resolve } from "node:path";
import { Graph, MissingFileError, ModelFormatError, QError, UnknownOpError } from "@q/ir";
import { Binder, has, posOf, type Msg } from "./bind.js";
import { NetParameterType, V1_TYPE_NAMES, caffeRoot } from "./caffe-proto.js";
import { Converter, LayerCtx, type Layer } from "./context.js";
import { LAYER_BUILDERS } from "./layers.js";
import { parseTextProto } from "./prototxt.js";
import { decodeCaffemodel, type LayerWeights } from "./weights.js";

export interface ReadCaffeOptions {
  /**
   * Input shapes by input blob name, overriding the prototxt (e.g. a batch of 10 for a net declared
   * with batch 1). Data layers that do not declare a shape need one here.
   */
  inputShapes?: Record<string, number[]>;
}

/**
 * Read a Caffe model (deploy `.prototxt` + trained `.caffemodel`) into IR (ai.onnx ops, opset 17).
 * Without a caffemodel the graph gets zero-filled weights of the right shapes (good for inspecting
 * structure and shapes, not for running); `graph.metadata["caffe.weights"]` says which it is.
 */
export async function readCaffe(prototxtPath: string, caffemodelPath?: string, opts: ReadCaffeOptions = {}): Promise<Graph> {
  return readCaffeSync(prototxtPath, caffemodelPath, opts);
}

export function readCaffeSync(prototxtPath: string, caffemodelPath?: string, opts: ReadCaffeOptions = {}): Graph {
  const text = readChecked(prototxtPath, "Caffe prototxt");
  const weights = caffemodelPath === undefined ? undefined : readChecked(caffemodelPath, "Caffe weights file (.caffemodel)");
  const decodeOpts: DecodeCaffeOptions = { ...opts, prototxtFile: prototxtPath };
  if (caffemodelPath !== undefined) decodeOpts.caffemodelFile = caffemodelPath;
  return decodeCaffe(text, weights, decodeOpts);
}

function readChecked(path: string, what: string): Uint8Array {
  const full = resolve(path);
  if (!existsSync(full) || !statSync(full).isFile()) throw new MissingFileError(path, what);
  try {
    return readFileSync(full);
  } catch (e) {
    throw new MissingFileError(path, `${what} (unreadable: ${(e as Error).message})`);
  }
}

export interface DecodeCaffeOptions extends ReadCaffeOptions {
  /** Names used in messages. */
  prototxtFile?: string;
  caffemodelFile?: string;
}

const LayerParameterType = caffeRoot.lookupType("caffe.LayerParameter");
const V1LayerParameterType = caffeRoot.lookupType("caffe.V1LayerParameter");

/** Decode prototxt text (string or UTF-8 bytes) plus optional caffemodel bytes into IR. */
export function decodeCaffe(prototxt: string | Uint8Array, caffemodel?: Uint8Array, opts: DecodeCaffeOptions = {}): Graph {
  const file = opts.prototxtFile;
  let text: string;
  if (typeof prototxt === "string") {
    text = prototxt;
  } else {
    if (looksBinary(prototxt)) {
      throw new ModelFormatError("is binary, not a prototxt (is it the .caffemodel? pass the .prototxt first, the .caffemodel second)", file);
    }
    text = new TextDecoder().decode(prototxt);
  }
  const net = new Binder(file).bind(parseTextProto(text, file), NetParameterType);
  let weights: Map<string, LayerWeights> | undefined;
  if (caffemodel) {
    if (caffemodel.length > 0 && !looksBinary(caffemodel) && /^\s*(name|layers?|input)\s*[:{]/.test(new TextDecoder().decode(caffemodel.subarray(0, 200)))) {
      throw new ModelFormatError("is a prototxt (text), not a binary .caffemodel", opts.caffemodelFile);
    }
    weights = decodeCaffemodel(caffemodel, opts.caffemodelFile);
  }
  const layers = collectLayers(net, file);
  const cv = new Converter(layers, {
    ...(file !== undefined ? { prototxtFile: file } : {}),
    ...(opts.caffemodelFile !== undefined ? { caffemodelFile: opts.caffemodelFile } : {}),
    ...(weights ? { weights } : {}),
    inputShapes: opts.inputShapes ?? {},
  });
  declareNetInputs(net, cv, file);
  for (const layer of layers) {
    const build = LAYER_BUILDERS[layer.type];
    if (!build) {
      const at = layer.pos ? ` (line ${layer.pos.line})` : "";
      throw new UnknownOpError(
        layer.type, "caffe", layer.name,
        `Caffe layer type '${layer.type}'${at} is not supported by q's Caffe reader (it knows: ${Object.keys(LAYER_BUILDERS).sort().join(", ")})`,
        file,
      );
    }
    try {
      build(new LayerCtx(cv, layer), cv);
    } catch (e) {
      if (e instanceof QError) throw e;
      throw new ModelFormatError(`layer '${layer.name}' (${layer.type}): ${(e as Error).message}`, file);
    }
  }
  const g = cv.finish();
  if (!g.inputs.length) throw new ModelFormatError("declares no input (no Input layer, no 'input:' with input_shape/input_dim, no data layer)", file);
  if (!g.outputs.length) throw new ModelFormatError("has no output: every blob is consumed by a later layer", file);
  for (const name of Object.keys(opts.inputShapes ?? {})) {
    if (!g.inputs.some((i) => i.name === name)) {
      throw new ModelFormatError(`inputShapes names '${name}', which is not an input of the net (inputs: ${g.inputs.map((i) => i.name).join(", ")})`, file);
    }
  }
  g.name = (net.name as string) || "caffe";
  g.producerName = "q-caffe";
  g.metadata["source_format"] = "caffe";
  g.metadata["caffe.weights"] = caffemodel ? (opts.caffemodelFile ?? "caffemodel") : "none (zero-filled)";
  if (file) g.source = file;
  return g;
}

function looksBinary(b: Uint8Array): boolean {
  const n = Math.min(b.length, 1024);
  for (let i = 0; i < n; i++) if (b[i] === 0) return true;
  return false;
}

/** Layers of the net in file order, V1 ones mapped to V2 type strings, TEST-phase filtered. */
function collectLayers(net: Msg, file?: string): Layer[] {
  const v2 = net.layer as Msg[];
  const v1 = net.layers as Msg[];
  if (v2.length && v1.length) {
    throw new ModelFormatError(`mixes 'layer { }' and legacy 'layers { }' (line ${posOf(v1[0])?.line}); use one or the other`, file);
  }
  const stages = new Set<string>(((net.state as Msg | undefined)?.stage as string[] | undefined) ?? []);
  const level = ((net.state as Msg | undefined)?.level as number | undefined) ?? 0;
  const out: Layer[] = [];
  const names = new Set<string>();
  (v2.length ? v2 : v1).forEach((m, i) => {
    const isV1 = !v2.length;
    const type = isV1 ? (V1_TYPE_NAMES[m.type as string] ?? String(m.type)) : (m.type as string);
    let name = m.name as string;
    const pos = posOf(m);
    if (!type) throw new ModelFormatError(`layer '${name}' (line ${pos?.line}) has no type`, file);
    if (!included(m, stages, level)) return;
    if (!name) name = `${type}_${i}`;
    if (names.has(name)) throw new ModelFormatError(`two layers are named '${name}' (line ${pos?.line}); layer names must be unique`, file);
    names.add(name);
    const layer: Layer = {
      name, type, bottom: [...(m.bottom as string[])], top: [...(m.top as string[])], msg: m,
      msgType: isV1 ? V1LayerParameterType : LayerParameterType,
    };
    if (pos) layer.pos = pos;
    out.push(layer);
  });
  return out;
}

/** Caffe's NetStateRule check for an inference net: phase TEST, the net's level and stages. */
function ruleMet(r: Msg, stages: Set<string>, level: number): boolean {
  if (has(r, "phase") && r.phase !== "TEST") return false;
  if (has(r, "min_level") && level < (r.min_level as number)) return false;
  if (has(r, "max_level") && level > (r.max_level as number)) return false;
  for (const s of r.stage as string[]) if (!stages.has(s)) return false;
  for (const s of r.not_stage as string[]) if (stages.has(s)) return false;
  return true;
}

function included(m: Msg, stages: Set<string>, level: number): boolean {
  const inc = m.include as Msg[], exc = m.exclude as Msg[];
  if (inc.length) return inc.some((r) => ruleMet(r, stages, level));
  return !exc.some((r) => ruleMet(r, stages, level));
}

/** `input:` + `input_shape { }` or 4 `input_dim` per input. */
function declareNetInputs(net: Msg, cv: Converter, file?: string): void {
  const names = net.input as string[];
  const shapes = (net.input_shape as Msg[]).map((s) => (s.dim as number[]).map(Number));
  const dims = net.input_dim as number[];
  if (!names.length) {
    if (shapes.length || dims.length) throw new ModelFormatError("has input_shape/input_dim but no 'input:' names", file);
    return;
  }
  if (shapes.length && dims.length) throw new ModelFormatError("gives both input_shape and input_dim; use one", file);
  names.forEach((name, i) => {
    let shape: number[] | undefined;
    if (shapes.length) {
      if (shapes.length !== names.length) throw new ModelFormatError(`has ${names.length} inputs but ${shapes.length} input_shape entries`, file);
      shape = shapes[i];
    } else if (dims.length) {
      if (dims.length !== 4 * names.length) throw new ModelFormatError(`has ${names.length} inputs but ${dims.length} input_dim values (4 per input: N, C, H, W)`, file);
      shape = dims.slice(4 * i, 4 * i + 4);
    }
    const s = cv.inputShapes[name] ?? shape;
    if (!s) throw new ModelFormatError(`input '${name}' has no shape (no input_shape or input_dim); pass opts.inputShapes`, file);
    cv.addInput(name, s);
  });
}

