import { readFileSync, existsSync, statSync } from "node:fs";
import { resolve, dirname, isAbsolute, normalize } from "node:path";
import {
  Tensor, ModelFormatError, MissingFileError, allocData, bytesPerElement, dtypeFromOnnx, ONNX_DTYPE,
  shapeSize, type DType, type TensorData,
} from "@q/ir";
import { toBig, toNum, type PTensor, type PSparse } from "./proto.js";

const LITTLE = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
if (!LITTLE) throw new Error("q needs a little-endian host");

/** Copy little-endian bytes into fresh storage for `n` elements of `dt`. */
export function fromRawBytes(dt: DType, n: number, raw: Uint8Array, what: string, file?: string): TensorData {
  if (dt === "int4" || dt === "uint4") {
    const need = Math.ceil(n / 2);
    if (raw.length < need) throw new ModelFormatError(`tensor '${what}': raw data has ${raw.length} bytes, ${dt}[${n}] needs ${need}`, file);
    const out = allocData(dt, n) as Int8Array | Uint8Array;
    for (let i = 0; i < n; i++) {
      const b = raw[i >> 1]!;
      const nib = i & 1 ? b >> 4 : b & 0xf;
      out[i] = dt === "int4" && nib > 7 ? nib - 16 : nib;
    }
    return out;
  }
  const bpe = bytesPerElement(dt);
  if (raw.length !== n * bpe) {
    throw new ModelFormatError(`tensor '${what}': raw data has ${raw.length} bytes but ${dt}[${n}] needs ${n * bpe} (file truncated or corrupt?)`, file);
  }
  const out = allocData(dt, n);
  new Uint8Array((out as Uint8Array).buffer).set(raw);
  return out;
}

/** Little-endian bytes of a tensor's storage (int4/uint4 packed two per byte, low nibble first). */
export function toRawBytes(t: Tensor): Uint8Array {
  if (t.dtype === "int4" || t.dtype === "uint4") {
    const d = t.data as Int8Array;
    const out = new Uint8Array(Math.ceil(d.length / 2));
    for (let i = 0; i < d.length; i++) out[i >> 1]! |= (d[i]! & 0xf) << ((i & 1) * 4);
    return out;
  }
  const d = t.data as Uint8Array;
  return new Uint8Array(d.buffer, d.byteOffset, d.byteLength);
}

export interface TensorReadContext {
  /** Directory external data paths are relative to. */
  baseDir?: string;
  /** The model file, for messages. */
  file?: string;
  /** Cache of external files already read. */
  extCache?: Map<string, Uint8Array>;
}

/** Decode a TensorProto into a Tensor (raw_data, typed fields or external data). */
export function decodeTensor(p: PTensor, ctx: TensorReadContext = {}): Tensor {
  const name = p.name ?? "";
  const code = p.data_type ?? 0;
  const dt = dtypeFromOnnx(code);
  if (!dt) throw new ModelFormatError(`tensor '${name}' has data type ${code}, which q does not support (float8/complex types are not handled)`, ctx.file);
  const shape = (p.dims ?? []).map(toNum);
  if (shape.some((d) => d < 0 || !Number.isFinite(d))) throw new ModelFormatError(`tensor '${name}' has a negative dimension [${shape}]`, ctx.file);
  const n = shapeSize(shape);
  if (p.data_location === 1) return new Tensor(dt, shape, readExternal(p, dt, n, ctx));
  if (p.raw_data && p.raw_data.length > 0) return new Tensor(dt, shape, fromRawBytes(dt, n, p.raw_data, name, ctx.file));
  const data = allocData(dt, n);
  const check = (len: number, field: string) => {
    if (len !== n) throw new ModelFormatError(`tensor '${name}': ${field} has ${len} values but shape [${shape}] needs ${n}`, ctx.file);
  };
  switch (dt) {
    case "float32": {
      const f = p.float_data ?? [];
      if (n === 0) break;
      check(f.length, "float_data");
      (data as Float32Array).set(f);
      break;
    }
    case "float64": {
      const f = p.double_data ?? [];
      if (n === 0) break;
      check(f.length, "double_data");
      (data as Float64Array).set(f);
      break;
    }
    case "int64": {
      const f = p.int64_data ?? [];
      if (n === 0) break;
      check(f.length, "int64_data");
      const b = data as BigInt64Array;
      for (let i = 0; i < n; i++) b[i] = toBig(f[i]!);
      break;
    }
    case "uint64": case "uint32": {
      const f = p.uint64_data ?? [];
      if (n === 0) break;
      check(f.length, "uint64_data");
      if (dt === "uint64") {
        const b = data as BigUint64Array;
        for (let i = 0; i < n; i++) b[i] = BigInt.asUintN(64, toBig(f[i]!));
      } else {
        const u = data as Uint32Array;
        for (let i = 0; i < n; i++) u[i] = toNum(f[i]!);
      }
      break;
    }
    case "string": {
      const f = p.string_data ?? [];
      check(f.length, "string_data");
      const dec = new TextDecoder();
      const s = data as string[];
      for (let i = 0; i < n; i++) s[i] = dec.decode(f[i]!);
      break;
    }
    case "int4": case "uint4": {
      // int32_data holds packed bytes for 4-bit types
      const f = p.int32_data ?? [];
      return new Tensor(dt, shape, fromRawBytes(dt, n, Uint8Array.from(f), name, ctx.file));
    }
    default: {
      // int8/uint8/int16/uint16/int32/bool/float16/bfloat16 live in int32_data
      const f = p.int32_data ?? [];
      if (n === 0) break;
      check(f.length, "int32_data");
      (data as Int32Array).set(f as number[]);
    }
  }
  return new Tensor(dt, shape, data);
}

function readExternal(p: PTensor, dt: DType, n: number, ctx: TensorReadContext): TensorData {
  const kv = new Map((p.external_data ?? []).map((e) => [e.key ?? "", e.value ?? ""]));
  const loc = kv.get("location");
  const name = p.name ?? "";
  if (!loc) throw new ModelFormatError(`tensor '${name}' is marked external but has no 'location'`, ctx.file);
  if (isAbsolute(loc) || normalize(loc).startsWith("..")) {
    throw new ModelFormatError(`tensor '${name}': external data location '${loc}' must be a relative path inside the model's folder`, ctx.file);
  }
  const path = resolve(ctx.baseDir ?? ".", loc);
  let bytes = ctx.extCache?.get(path);
  if (!bytes) {
    if (!existsSync(path) || !statSync(path).isFile()) {
      throw new MissingFileError(path, `external data file '${loc}' for tensor '${name}' of model ${ctx.file ?? "(memory)"}`);
    }
    bytes = readFileSync(path);
    ctx.extCache?.set(path, bytes);
  }
  const offset = Number(kv.get("offset") ?? 0);
  const bpe = dt === "int4" || dt === "uint4" ? 0.5 : bytesPerElement(dt);
  const length = kv.has("length") ? Number(kv.get("length")) : Math.ceil(n * bpe);
  if (offset + length > bytes.length) {
    throw new ModelFormatError(`external data for tensor '${name}' needs bytes ${offset}..${offset + length} of '${loc}', which has only ${bytes.length} (truncated?)`, ctx.file);
  }
  return fromRawBytes(dt, n, bytes.subarray(offset, offset + length), name, ctx.file);
}

/** A sparse tensor turned dense (indices are flat [NNZ] or coordinates [NNZ, rank]). */
export function decodeSparse(p: PSparse, ctx: TensorReadContext = {}): Tensor {
  if (!p.values || !p.indices) throw new ModelFormatError("sparse tensor without values or indices", ctx.file);
  const values = decodeTensor(p.values, ctx);
  const idx = decodeTensor(p.indices, ctx).toNumbers();
  const shape = (p.dims ?? []).map(toNum);
  const dense = Tensor.zeros(values.dtype, shape);
  const nnz = values.size;
  const rank = shape.length;
  const strides: number[] = [];
  let acc = 1;
  for (let i = rank - 1; i >= 0; i--) { strides[i] = acc; acc *= shape[i]!; }
  const coords = idx.length === nnz * rank && rank > 1;
  const dv = dense.data as Float32Array;
  const vv = values.data as Float32Array;
  for (let k = 0; k < nnz; k++) {
    let off = 0;
    if (coords) for (let r = 0; r < rank; r++) off += idx[k * rank + r]! * strides[r]!;
    else off = idx[k]!;
    dv[off] = vv[k]!;
  }
  if (p.values.name) Object.defineProperty(dense, "name", { value: p.values.name });
  return dense;
}

/** Encode a Tensor as a TensorProto object (raw_data for everything but strings). */
export function encodeTensor(t: Tensor, name?: string): PTensor {
  const p: PTensor = { dims: [...t.shape], data_type: ONNX_DTYPE[t.dtype] };
  if (name !== undefined) p.name = name;
  if (t.dtype === "string") {
    const enc = new TextEncoder();
    p.string_data = (t.data as string[]).map((s) => enc.encode(s));
  } else {
    p.raw_data = toRawBytes(t);
  }
  return p;
}

export { dirname };
