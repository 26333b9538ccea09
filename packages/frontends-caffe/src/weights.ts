/**
 * Binary .caffemodel reading: layer names, types and blobs. Blob data goes straight from the file
 * bytes into Float32Arrays (packed or unpacked floats, or doubles), never through JS number arrays.
 */
import protobuf from "protobufjs";
import { ModelFormatError } from "@q/ir";
import { V1LayerTypeEnum, V1_TYPE_NAMES, WeightsNetType } from "./caffe-proto.js";

export interface Blob {
  /** Shape from BlobShape, or the legacy (num, channels, height, width). */
  shape: number[];
  /** True when the shape came from the legacy 4-D fields. */
  legacy: boolean;
  data: Float32Array;
}

export interface LayerWeights {
  name: string;
  type: string;
  blobs: Blob[];
}

interface RawNet {
  name?: string;
  layer?: { name?: string; type?: string; blobs?: Uint8Array[] }[];
  layers?: { name?: string; type?: number; blobs?: Uint8Array[] }[];
}

const LITTLE = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

/** Floats from raw little-endian bytes into a new (aligned) Float32Array. */
function floatsFromBytes(b: Uint8Array, start: number, n: number): Float32Array {
  if (LITTLE) {
    // copy (the view may be unaligned, and Buffer#slice would not copy)
    const out = new Float32Array(n);
    new Uint8Array(out.buffer).set(b.subarray(start, start + n * 4));
    return out;
  }
  const dv = new DataView(b.buffer, b.byteOffset + start, n * 4);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = dv.getFloat32(i * 4, true);
  return out;
}

function doublesFromBytes(b: Uint8Array, start: number, n: number): Float32Array {
  const dv = new DataView(b.buffer, b.byteOffset + start, n * 8);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = dv.getFloat64(i * 8, true);
  return out;
}

/** Concatenate chunks of floats (a blob whose data field appears several times). */
function join(parts: Float32Array[]): Float32Array {
  if (parts.length === 1) return parts[0]!;
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Float32Array(n);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

function longNum(l: unknown): number {
  if (typeof l === "number") return l;
  const v = l as { low: number; high: number };
  return v.high * 4294967296 + (v.low >>> 0);
}

/** Decode one BlobProto with a wire walker (fields: 1-4 legacy dims, 5 data, 7 shape, 8 double_data). */
export function decodeBlob(bytes: Uint8Array): Blob {
  const r = protobuf.Reader.create(bytes);
  const legacy = [0, 0, 0, 0];
  let hasLegacy = false;
  let shape: number[] | undefined;
  const floats: Float32Array[] = [];
  const doubles: Float32Array[] = [];
  const unpackedF: number[] = [];
  const unpackedD: number[] = [];
  while (r.pos < r.len) {
    const tag = r.uint32();
    const field = tag >>> 3, wire = tag & 7;
    if (field >= 1 && field <= 4 && wire === 0) {
      legacy[field - 1] = r.int32();
      hasLegacy = true;
    } else if ((field === 5 || field === 8) && wire === 2) {
      const len = r.uint32();
      const size = field === 5 ? 4 : 8;
      if (len % size !== 0 || r.pos + len > r.len) throw new Error(`packed ${field === 5 ? "float" : "double"} data of ${len} bytes is malformed`);
      (field === 5 ? floats : doubles).push(field === 5 ? floatsFromBytes(bytes, r.pos, len / 4) : doublesFromBytes(bytes, r.pos, len / 8));
      r.pos += len;
    } else if (field === 5 && wire === 5) {
      unpackedF.push(r.float());
    } else if (field === 8 && wire === 1) {
      unpackedD.push(r.double());
    } else if (field === 7 && wire === 2) {
      const len = r.uint32();
      const end = r.pos + len;
      shape = [];
      while (r.pos < end) {
        const t = r.uint32();
        if (t >>> 3 === 1 && (t & 7) === 2) {
          const e = r.uint32() + r.pos;
          while (r.pos < e) shape.push(longNum(r.int64()));
        } else if (t >>> 3 === 1 && (t & 7) === 0) {
          shape.push(longNum(r.int64()));
        } else {
          r.skipType(t & 7);
        }
      }
    } else {
      r.skipType(wire);
    }
  }
  if (unpackedF.length) floats.push(Float32Array.from(unpackedF));
  if (unpackedD.length) doubles.push(Float32Array.from(unpackedD));
  const data = floats.length ? join(floats) : doubles.length ? join(doubles) : new Float32Array(0);
  if (shape) return { shape, legacy: false, data };
  // legacy dims: a blob that only wrote some of them keeps 0 for the rest; treat those as 1
  const dims = hasLegacy ? legacy.map((d) => (d > 0 ? d : 1)) : [data.length];
  return { shape: dims, legacy: true, data };
}

/** Decode a .caffemodel into per-layer weights (by layer name). */
export function decodeCaffemodel(bytes: Uint8Array, file?: string): Map<string, LayerWeights> {
  let net: RawNet;
  try {
    net = WeightsNetType.decode(bytes) as unknown as RawNet;
  } catch (e) {
    throw new ModelFormatError(`not a valid .caffemodel (protobuf decoding failed: ${(e as Error).message}); the file is truncated or not a Caffe NetParameter`, file);
  }
  const out = new Map<string, LayerWeights>();
  const add = (name: string, type: string, blobs: Uint8Array[]) => {
    let decoded: Blob[];
    try {
      decoded = blobs.map(decodeBlob);
    } catch (e) {
      throw new ModelFormatError(`layer '${name}' (${type}): a blob is corrupt (${(e as Error).message})`, file);
    }
    // a later layer of the same name wins only if it carries blobs (the training net may repeat names)
    if (!out.has(name) || decoded.length) out.set(name, { name, type, blobs: decoded });
  };
  for (const l of net.layer ?? []) add(l.name ?? "", l.type ?? "", l.blobs ?? []);
  for (const l of net.layers ?? []) {
    const enumName = V1LayerTypeEnum.valuesById[l.type ?? 0] ?? String(l.type);
    add(l.name ?? "", V1_TYPE_NAMES[enumName] ?? enumName, l.blobs ?? []);
  }
  if (!out.size && bytes.length > 0) {
    throw new ModelFormatError("not a valid .caffemodel: it holds no layers (is it a prototxt or another format?)", file);
  }
  return out;
}
