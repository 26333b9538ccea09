/**
 * PyTorch containers: the zip archive of torch.save (>= 1.6) and torch.jit.save, and the legacy
 * stream of pickles + raw storages (torch < 1.6). Pickles go through the safe unpickler; tensors are
 * materialized from their storages as dense row-major IR tensors (views copied out).
 */
import { readFile } from "node:fs/promises";
import { unzipSync } from "fflate";
import { MissingFileError, ModelFormatError, Tensor, allocData, bytesPerElement, shapeSize, stridesOf, type DType } from "@q/ir";
import { StorageRef, TensorRef, describe, unpickle, type UnpickleOptions } from "./pickle.js";

export type ArchiveKind = "zip" | "torchscript" | "legacy";

export interface TorchArchive {
  kind: ArchiveKind;
  file: string;
  /** The unpickled top object (data.pkl, or the 4th pickle of a legacy file). */
  value: unknown;
  /** Zip records by name below the archive's top folder (zip kinds only). */
  records: Map<string, Uint8Array>;
  /** TorchScript tensor constants (constants.pkl), when present. */
  constants?: unknown;
  /** Dense tensor of a TensorRef from this archive (cached). */
  tensor(ref: TensorRef, what?: string): Tensor;
}

const LEGACY_MAGIC = 0x1950a86a20f9469cfc6cn;

/** Read and parse a PyTorch file (.pth / .pt / .th / TorchScript). */
export async function openTorchFile(path: string): Promise<TorchArchive> {
  let bytes: Uint8Array;
  try {
    bytes = await readFile(path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") throw new MissingFileError(path, "PyTorch model file");
    throw new ModelFormatError(`cannot read the file: ${(e as Error).message}`, path);
  }
  return parseTorchBytes(bytes, path);
}

export function isZip(b: Uint8Array): boolean {
  return b.length >= 4 && b[0] === 0x50 && b[1] === 0x4b && b[2] === 0x03 && b[3] === 0x04;
}

/** Parse PyTorch file bytes; `file` names the file in errors. */
export function parseTorchBytes(bytes: Uint8Array, file: string): TorchArchive {
  if (isZip(bytes)) return parseZip(bytes, file);
  if (bytes.length >= 2 && bytes[0] === 0x80 && bytes[1] === 0x02) return parseLegacy(bytes, file);
  if (bytes.length > 262 && String.fromCharCode(...bytes.subarray(257, 262)) === "ustar") {
    throw new ModelFormatError(`this is the pre-2017 tar-based torch format, which is not supported: re-save it with a recent torch.save`, file);
  }
  throw new ModelFormatError(`not a PyTorch file: expected a zip archive (torch.save / torch.jit.save) or a legacy pickle stream`, file);
}

function parseZip(bytes: Uint8Array, file: string): TorchArchive {
  let files: Record<string, Uint8Array>;
  try {
    files = unzipSync(bytes, { filter: (f) => !f.name.endsWith(".debug_pkl") });
  } catch (e) {
    throw new ModelFormatError(`broken zip archive (${(e as Error).message}): the file is truncated or corrupt`, file);
  }
  const names = Object.keys(files);
  if (!names.length) throw new ModelFormatError(`empty zip archive`, file);
  const slash = names[0]!.indexOf("/");
  const prefix = slash >= 0 ? names[0]!.slice(0, slash + 1) : "";
  const records = new Map<string, Uint8Array>();
  for (const n of names) records.set(n.startsWith(prefix) ? n.slice(prefix.length) : n, files[n]!);
  const pkl = records.get("data.pkl");
  if (!pkl) throw new ModelFormatError(`zip archive has no ${prefix}data.pkl: not a torch.save / torch.jit.save file`, file);
  const bigEndian = new TextDecoder().decode(records.get("byteorder") ?? new Uint8Array()).trim() === "big";
  const isScript = [...records.keys()].some((k) => k.startsWith("code/")) || records.has("constants.pkl");
  const opts: UnpickleOptions = { file, torchScript: isScript };
  const value = unpickle(pkl, opts).value;
  let constants: unknown;
  const cpkl = records.get("constants.pkl");
  if (cpkl) constants = unpickle(cpkl, { file: `${file}:constants.pkl`, torchScript: true }).value;
  const cache = new Map<TensorRef, Tensor>();
  const tensor = (ref: TensorRef, what = "tensor"): Tensor => {
    let t = cache.get(ref);
    if (t) return t;
    const key = ref.storage.key;
    // constants.pkl storages live under constants/, data.pkl's under data/
    const data = records.get(`data/${key}`) ?? records.get(`constants/${key}`);
    if (!data) throw new ModelFormatError(`${what}: storage record data/${key} is missing from the archive`, file);
    t = materialize(ref, data, bigEndian, file, what);
    cache.set(ref, t);
    return t;
  };
  return { kind: isScript ? "torchscript" : "zip", file, value, records, ...(constants !== undefined ? { constants } : {}), tensor };
}

function parseLegacy(bytes: Uint8Array, file: string): TorchArchive {
  const first = unpickle(bytes, { file });
  if (first.value !== LEGACY_MAGIC) throw new ModelFormatError(`not a legacy torch.save file: bad magic number`, file);
  const proto = unpickle(bytes, { file }, first.end);
  if (proto.value !== 1001) throw new ModelFormatError(`legacy torch file protocol ${String(proto.value)} is not supported (1001 expected)`, file);
  const sys = unpickle(bytes, { file }, proto.end);
  const littleEndian = !(sys.value instanceof Map) || sys.value.get("little_endian") !== false;
  const obj = unpickle(bytes, { file }, sys.end);
  const keysP = unpickle(bytes, { file }, obj.end);
  if (!Array.isArray(keysP.value)) throw new ModelFormatError(`legacy torch file: storage key list is ${describe(keysP.value)}`, file);
  const byKey = new Map<string, StorageRef>();
  for (const s of obj.storages) if (!byKey.has(s.key)) byKey.set(s.key, s);
  const storageBytes = new Map<string, Uint8Array>();
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let pos = keysP.end;
  for (const k of keysP.value as unknown[]) {
    const key = String(k);
    const ref = byKey.get(key);
    if (!ref) throw new ModelFormatError(`legacy torch file: storage '${key}' is listed but no tensor uses it`, file);
    if (pos + 8 > bytes.length) throw new ModelFormatError(`truncated: storage '${key}' header missing at byte ${pos}`, file);
    const count = Number(dv.getBigInt64(pos, littleEndian));
    pos += 8;
    const n = count * ref.type.elemSize;
    if (count < 0 || pos + n > bytes.length) throw new ModelFormatError(`truncated: storage '${key}' needs ${n} bytes at byte ${pos}, file has ${bytes.length - pos}`, file);
    storageBytes.set(key, bytes.subarray(pos, pos + n));
    pos += n;
  }
  const cache = new Map<TensorRef, Tensor>();
  const tensor = (ref: TensorRef, what = "tensor"): Tensor => {
    let t = cache.get(ref);
    if (t) return t;
    const data = storageBytes.get(ref.storage.key);
    if (!data) throw new ModelFormatError(`${what}: storage '${ref.storage.key}' is not in the file`, file);
    t = materialize(ref, data, !littleEndian, file, what);
    cache.set(ref, t);
    return t;
  };
  return { kind: "legacy", file, value: obj.value, records: new Map(), tensor };
}

/** Copy a strided view out of storage bytes into a dense tensor. */
export function materialize(ref: TensorRef, data: Uint8Array, bigEndian: boolean, file: string, what: string): Tensor {
  const st = ref.storage.type;
  const dtype: DType | null = ref.dtype ?? st.dtype;
  if (!dtype) throw new ModelFormatError(`${what}: storage type ${st.name} is not supported (complex and quantized tensors cannot be read)`, file);
  const es = bytesPerElement(dtype);
  // element offset of the view's start, in elements of `dtype`
  const base = (ref.storage.viewOffset * st.elemSize) / es + ref.offset;
  const available = Math.floor(data.length / es);
  const shape = ref.size;
  const n = shapeSize(shape);
  if (shape.some((d) => d < 0) || ref.stride.length !== shape.length) throw new ModelFormatError(`${what}: bad size/stride (${shape}) / (${ref.stride})`, file);
  let last = base;
  for (let i = 0; i < shape.length; i++) last += (shape[i]! - 1) * ref.stride[i]!;
  if (n > 0 && (base < 0 || last >= available || !Number.isInteger(base))) {
    throw new ModelFormatError(`${what}: view [${shape}] at offset ${ref.offset} with stride [${ref.stride}] reaches element ${last}, but storage ${ref.storage.key} holds ${available} (file truncated or corrupt)`, file);
  }
  const out = allocData(dtype, n) as Exclude<ReturnType<typeof allocData>, string[]>;
  if (n === 0) return new Tensor(dtype, shape, out);
  const outBytes = new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
  const contiguous = n === 1 || stridesOf(shape).every((s, i) => shape[i] === 1 || s === ref.stride[i]);
  if (contiguous) {
    outBytes.set(data.subarray(base * es, (base + n) * es));
  } else {
    // copy the spanned range once (aligned), then gather element by element
    let lo = base;
    for (let i = 0; i < shape.length; i++) if (ref.stride[i]! < 0) lo += (shape[i]! - 1) * ref.stride[i]!;
    const span = allocData(dtype, last - lo + 1) as typeof out;
    const spanBytes = new Uint8Array(span.buffer);
    spanBytes.set(data.subarray(lo * es, (last + 1) * es));
    if (bigEndian && es > 1) swapBytes(spanBytes, es);
    const rank = shape.length;
    const idx = new Array<number>(rank).fill(0);
    let src = base - lo;
    const dst = out as unknown as { [i: number]: number | bigint };
    const from = span as unknown as { [i: number]: number | bigint };
    for (let k = 0; k < n; k++) {
      dst[k] = from[src]!;
      for (let d = rank - 1; d >= 0; d--) {
        idx[d]!++;
        src += ref.stride[d]!;
        if (idx[d]! < shape[d]!) break;
        src -= idx[d]! * ref.stride[d]!;
        idx[d] = 0;
      }
    }
  }
  if (contiguous && bigEndian && es > 1) swapBytes(outBytes, es);
  return new Tensor(dtype, [...shape], out);
}

function swapBytes(b: Uint8Array, es: number): void {
  for (let i = 0; i < b.length; i += es) b.subarray(i, i + es).reverse();
}
