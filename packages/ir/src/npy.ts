/**
 * Reader and writer for numpy's .npy format (format versions 1.0, 2.0 and 3.0).
 *
 * Layout: the magic bytes "\x93NUMPY", a major and minor version byte, the header length
 * (uint16 LE for 1.0, uint32 LE for 2.0/3.0), then the header: a Python dict literal with
 * 'descr', 'fortran_order' and 'shape' (latin-1 for 1.0/2.0, UTF-8 for 3.0), padded with spaces
 * and a newline. The raw element data follows.
 *
 * Reading supports bool, int8..int64, uint8..uint64, float16/32/64 in either byte order, Fortran
 * order (transposed to C order) and 0-d arrays. String, object, complex, datetime and structured
 * arrays are rejected with a ModelFormatError.
 *
 * Writing always produces little-endian, C-order, version 1.0 files (2.0 when the header is
 * too long) whose data starts on a 64-byte boundary. numpy has no bfloat16, so bfloat16 tensors
 * are written as float32 ('<f4', exact); int4/uint4 are written one value per byte as int8/uint8.
 */
import { randomBytes } from "node:crypto";
import { open, readFile, rename, rm } from "node:fs/promises";
import { basename, dirname } from "node:path";
import { allocData, type DType, type TensorData } from "./dtype.js";
import { MissingFileError, ModelFormatError, QError } from "./errors.js";
import { shapeSize, Tensor } from "./tensor.js";

/** The six magic bytes every .npy file starts with. */
export const NPY_MAGIC: Uint8Array = Uint8Array.of(0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59);

const HOST_LITTLE_ENDIAN = new Uint8Array(Uint16Array.of(1).buffer)[0] === 1;
const ALIGN = 64;

/** True when `bytes` starts with the .npy magic. */
export function isNpy(bytes: Uint8Array): boolean {
  if (bytes.length < NPY_MAGIC.length) return false;
  for (let i = 0; i < NPY_MAGIC.length; i++) if (bytes[i] !== NPY_MAGIC[i]) return false;
  return true;
}

// ---------------------------------------------------------------------------------------------
// Reading

/**
 * Parse the bytes of a .npy file into a C-order tensor. `file` names the source in error
 * messages. The element data is copied once into a fresh, aligned buffer (a plain memcpy for
 * native-endian C-order data), so the result never aliases `bytes`.
 */
export function parseNpy(bytes: Uint8Array, file?: string): Tensor {
  return decodeNpy(bytes, file, "", false);
}

/**
 * @internal Shared with npz.ts; other code should use parseNpy. `where` prefixes error messages
 * (an npz member name). With `owned` the caller hands `bytes` over (nobody else holds them), so
 * aligned native-endian C-order data is viewed in place instead of copied; the tensor's
 * `data.buffer` then also holds the header bytes (use byteOffset/byteLength, as always).
 */
export function decodeNpy(bytes: Uint8Array, file: string | undefined, where: string, owned: boolean): Tensor {
  const fail = (msg: string): never => {
    throw new ModelFormatError(`${where}${msg}`, file);
  };
  if (!isNpy(bytes)) {
    if (bytes.length === 0) fail("not an .npy file: the file is empty");
    if (bytes[0] === 0x50 && bytes[1] === 0x4b) fail("not an .npy file: this is a zip archive (.npz?); read it as .npz");
    fail(`not an .npy file: bad magic bytes (expected \\x93NUMPY, got ${describeBytes(bytes.subarray(0, 6))})`);
  }
  if (bytes.length < 10) fail(`truncated .npy file: ${bytes.length} bytes, too short for the preamble`);
  const major = bytes[6]!;
  const minor = bytes[7]!;
  if (major < 1 || major > 3 || minor !== 0) fail(`unsupported .npy format version ${major}.${minor} (supported: 1.0, 2.0, 3.0)`);
  let headerLen: number;
  let headerStart: number;
  if (major === 1) {
    headerLen = bytes[8]! | (bytes[9]! << 8);
    headerStart = 10;
  } else {
    if (bytes.length < 12) fail(`truncated .npy file: ${bytes.length} bytes, too short for the preamble`);
    headerLen = (bytes[8]! | (bytes[9]! << 8) | (bytes[10]! << 16) | (bytes[11]! << 24)) >>> 0;
    headerStart = 12;
  }
  const dataStart = headerStart + headerLen;
  if (dataStart > bytes.length) {
    fail(`truncated .npy file: header says ${headerLen} bytes but only ${bytes.length - headerStart} follow the preamble`);
  }
  const headerText = new TextDecoder(major === 3 ? "utf-8" : "latin1").decode(bytes.subarray(headerStart, dataStart));
  const header = parseHeader(headerText, fail);
  const info = descrInfo(header.descr, fail);
  const shape = header.shape;
  const n = shapeSize(shape);
  const nbytes = n * info.itemsize;
  const available = bytes.length - dataStart;
  if (available < nbytes) {
    fail(
      `truncated .npy data: shape (${shape.join(", ")}) of ${header.descr} needs ${nbytes} bytes ` +
        `but only ${available} are present`,
    );
  }
  if (n === 0) return new Tensor(info.dtype, shape, allocData(info.dtype, 0));

  const swap = info.itemsize > 1 && info.littleEndian !== HOST_LITTLE_ENDIAN;
  const transpose = header.fortranOrder && shape.length > 1;
  const src = bytes.subarray(dataStart, dataStart + nbytes);
  // Get the data into an aligned buffer we may modify: a view when handed over, else one copy.
  const aligned = (src.byteOffset % info.itemsize === 0 && owned) ? src : src.slice();
  if (swap) byteSwap(aligned, info.itemsize);
  let buf = aligned;
  if (transpose) buf = fortranToC(aligned, shape, info.itemsize);
  return new Tensor(info.dtype, shape, viewAs(info.dtype, buf, n));
}

interface NpyHeader {
  descr: string;
  fortranOrder: boolean;
  shape: number[];
}

interface DescrInfo {
  dtype: DType;
  itemsize: number;
  littleEndian: boolean;
}

const KIND_DTYPES: Record<string, Partial<Record<number, DType>>> = {
  f: { 2: "float16", 4: "float32", 8: "float64" },
  i: { 1: "int8", 2: "int16", 4: "int32", 8: "int64" },
  u: { 1: "uint8", 2: "uint16", 4: "uint32", 8: "uint64" },
  b: { 1: "bool" },
  "?": { 1: "bool" },
};

const UNSUPPORTED_KINDS: Record<string, string> = {
  U: "unicode string", S: "byte string", a: "byte string", O: "object (pickled Python objects)",
  c: "complex", M: "datetime64", m: "timedelta64", V: "void/structured",
};

function descrInfo(descr: string, fail: (msg: string) => never): DescrInfo {
  const m = /^([<>|=])([a-zA-Z?])(\d*)$/.exec(descr);
  if (!m) return fail(`unsupported dtype descr '${descr}'`);
  const [, order, kind, size] = m as unknown as [string, string, string, string];
  const itemsize = Number(size);
  const unsupported = UNSUPPORTED_KINDS[kind];
  if (unsupported) return fail(`${unsupported} arrays (dtype '${descr}') are not supported; only numeric and bool arrays are`);
  const dtype = KIND_DTYPES[kind]?.[itemsize];
  if (!dtype) return fail(`unsupported dtype descr '${descr}'`);
  const littleEndian = order === "<" || (order !== ">" && HOST_LITTLE_ENDIAN);
  return { dtype, itemsize, littleEndian };
}

/** Parse the header dict. Accepts the Python literal subset numpy writes (and old `3L` ints). */
function parseHeader(text: string, fail: (msg: string) => never): NpyHeader {
  let pos = 0;
  const bad = (what: string): never =>
    fail(`.npy header is not parseable: ${what} at offset ${pos} in ${JSON.stringify(text.slice(0, 200))}`);
  const ws = () => {
    while (pos < text.length && /\s/.test(text[pos]!)) pos++;
  };
  const value = (depth: number): unknown => {
    if (depth > 16) bad("nesting too deep");
    ws();
    const c = text[pos];
    if (c === undefined) return bad("unexpected end");
    if (c === "'" || c === '"') {
      pos++;
      let s = "";
      while (pos < text.length && text[pos] !== c) {
        if (text[pos] === "\\") pos++;
        s += text[pos++] ?? "";
      }
      if (pos >= text.length) bad("unterminated string");
      pos++;
      return s;
    }
    if (c === "{" || c === "(" || c === "[") {
      const close = c === "{" ? "}" : c === "(" ? ")" : "]";
      pos++;
      const items: unknown[] = [];
      const entries: [unknown, unknown][] = [];
      for (;;) {
        ws();
        if (text[pos] === close) {
          pos++;
          break;
        }
        const v = value(depth + 1);
        if (c === "{") {
          ws();
          if (text[pos] !== ":") bad("expected ':'");
          pos++;
          entries.push([v, value(depth + 1)]);
        } else {
          items.push(v);
        }
        ws();
        if (text[pos] === ",") pos++;
        else if (text[pos] !== close) bad(`expected ',' or '${close}'`);
      }
      if (c === "{") return new Map(entries);
      return c === "(" ? { tuple: items } : items;
    }
    const m = /^(?:True|False|None|[-+]?\d+L?)/.exec(text.slice(pos, pos + 40));
    if (!m) return bad("unexpected character");
    pos += m[0].length;
    if (m[0] === "True") return true;
    if (m[0] === "False") return false;
    if (m[0] === "None") return null;
    return Number(m[0].replace("L", ""));
  };
  const v = value(0);
  ws();
  if (pos !== text.length) bad("trailing characters");
  if (!(v instanceof Map)) return fail(".npy header is not a dict");
  const descr = v.get("descr");
  const fortran = v.get("fortran_order");
  const shape = v.get("shape") as { tuple?: unknown[] } | undefined;
  if (descr === undefined || fortran === undefined || shape === undefined) {
    return fail(`.npy header lacks one of 'descr', 'fortran_order', 'shape': ${text.trim()}`);
  }
  if (Array.isArray(descr)) return fail("structured (record) arrays are not supported; only numeric and bool arrays are");
  if (typeof descr !== "string") return fail(`.npy header 'descr' is not a string: ${text.trim()}`);
  if (typeof fortran !== "boolean") return fail(`.npy header 'fortran_order' is not True/False: ${text.trim()}`);
  const dims = shape && typeof shape === "object" && Array.isArray(shape.tuple) ? shape.tuple : undefined;
  if (!dims || !dims.every((d): d is number => typeof d === "number" && Number.isSafeInteger(d) && d >= 0)) {
    return fail(`.npy header 'shape' is not a tuple of non-negative integers: ${text.trim()}`);
  }
  return { descr, fortranOrder: fortran, shape: dims };
}

function describeBytes(b: Uint8Array): string {
  return Array.from(b, (x) => (x >= 0x20 && x < 0x7f ? String.fromCharCode(x) : `\\x${x.toString(16).padStart(2, "0")}`)).join("");
}

/** Reverse the bytes of every `itemsize`-byte element, in place. */
function byteSwap(b: Uint8Array, itemsize: number): void {
  const len = b.length;
  if (itemsize === 2) {
    for (let i = 0; i < len; i += 2) {
      const t = b[i]!;
      b[i] = b[i + 1]!;
      b[i + 1] = t;
    }
    return;
  }
  for (let i = 0; i < len; i += itemsize) {
    for (let lo = i, hi = i + itemsize - 1; lo < hi; lo++, hi--) {
      const t = b[lo]!;
      b[lo] = b[hi]!;
      b[hi] = t;
    }
  }
}

/** Word view used to move whole elements: 1, 2 or 4 bytes per word, `itemsize / word` words each. */
function words(b: Uint8Array, itemsize: number): Uint8Array | Uint16Array | Uint32Array {
  if (itemsize % 4 === 0) return new Uint32Array(b.buffer, b.byteOffset, b.byteLength / 4);
  if (itemsize === 2) return new Uint16Array(b.buffer, b.byteOffset, b.byteLength / 2);
  return b;
}

/** Reorder Fortran-order (first axis fastest) data of `shape` into a new C-order buffer. */
function fortranToC(src: Uint8Array, shape: readonly number[], itemsize: number): Uint8Array {
  const out = new Uint8Array(src.length);
  const s = words(src, itemsize);
  const d = words(out, itemsize);
  const w = itemsize / (s.BYTES_PER_ELEMENT);
  const rank = shape.length;
  // Fortran strides in words.
  const fstride = new Array<number>(rank);
  let acc = w;
  for (let k = 0; k < rank; k++) {
    fstride[k] = acc;
    acc *= shape[k]!;
  }
  const last = shape[rank - 1]!;
  const innerStride = fstride[rank - 1]!;
  const idx = new Array<number>(rank).fill(0);
  const outer = s.length / w / last;
  let o = 0;
  for (let r = 0; r < outer; r++) {
    let base = 0;
    for (let k = 0; k < rank - 1; k++) base += idx[k]! * fstride[k]!;
    if (w === 1) {
      for (let j = 0, p = base; j < last; j++, p += innerStride) d[o++] = s[p]!;
    } else {
      for (let j = 0, p = base; j < last; j++, p += innerStride) {
        for (let q = 0; q < w; q++) d[o++] = s[p + q]!;
      }
    }
    for (let k = rank - 2; k >= 0; k--) {
      if (++idx[k]! < shape[k]!) break;
      idx[k] = 0;
    }
  }
  return out;
}

/** A typed array of `dt` over the (aligned) bytes `b`. */
function viewAs(dt: DType, b: Uint8Array, n: number): TensorData {
  const { buffer, byteOffset } = b;
  switch (dt) {
    case "float32": return new Float32Array(buffer, byteOffset, n);
    case "float64": return new Float64Array(buffer, byteOffset, n);
    case "float16": case "uint16": return new Uint16Array(buffer, byteOffset, n);
    case "int8": return new Int8Array(buffer, byteOffset, n);
    case "uint8": case "bool": return new Uint8Array(buffer, byteOffset, n);
    case "int16": return new Int16Array(buffer, byteOffset, n);
    case "int32": return new Int32Array(buffer, byteOffset, n);
    case "uint32": return new Uint32Array(buffer, byteOffset, n);
    case "int64": return new BigInt64Array(buffer, byteOffset, n);
    case "uint64": return new BigUint64Array(buffer, byteOffset, n);
    default: throw new Error(`unreachable dtype ${dt}`);
  }
}

// ---------------------------------------------------------------------------------------------
// Writing

const WRITE_DESCR: Partial<Record<DType, string>> = {
  float32: "<f4", float16: "<f2", float64: "<f8", bfloat16: "<f4",
  int8: "|i1", uint8: "|u1", int16: "<i2", uint16: "<u2", int32: "<i4", uint32: "<u4",
  int64: "<i8", uint64: "<u8", bool: "|b1", int4: "|i1", uint4: "|u1",
};

/**
 * Encode a tensor as a .npy file (little-endian, C order). bfloat16 is written as float32
 * (numpy has no bfloat16; the conversion is exact), int4/uint4 as int8/uint8.
 * String tensors cannot be written (ModelFormatError).
 */
export function encodeNpy(t: Tensor, file?: string): Uint8Array {
  const descr = WRITE_DESCR[t.dtype];
  if (!descr) throw new ModelFormatError(`cannot write a ${t.dtype} tensor to .npy: only numeric and bool tensors are supported`, file);
  const shapeText = t.shape.length === 1 ? `(${t.shape[0]},)` : `(${t.shape.join(", ")})`;
  const dict = `{'descr': '${descr}', 'fortran_order': False, 'shape': ${shapeText}, }`;
  let preamble = 10;
  let total = preamble + dict.length + 1;
  if (Math.ceil(total / ALIGN) * ALIGN - preamble > 0xffff) preamble = 12;
  total = preamble + dict.length + 1;
  const dataStart = Math.ceil(total / ALIGN) * ALIGN;
  const headerLen = dataStart - preamble;
  const itemsize = t.dtype === "bfloat16" ? 4 : (t.data as Exclude<TensorData, string[]>).BYTES_PER_ELEMENT;
  const n = t.size;
  const out = new Uint8Array(dataStart + n * itemsize);
  out.set(NPY_MAGIC, 0);
  out[6] = preamble === 10 ? 1 : 2;
  out[7] = 0;
  out[8] = headerLen & 0xff;
  out[9] = (headerLen >>> 8) & 0xff;
  if (preamble === 12) {
    out[10] = (headerLen >>> 16) & 0xff;
    out[11] = (headerLen >>> 24) & 0xff;
  }
  for (let i = 0; i < dict.length; i++) out[preamble + i] = dict.charCodeAt(i) & 0xff;
  out.fill(0x20, preamble + dict.length, dataStart - 1);
  out[dataStart - 1] = 0x0a;
  const body = out.subarray(dataStart);
  if (t.dtype === "bfloat16") {
    const src = t.data as Uint16Array;
    const dst = new Uint32Array(out.buffer, dataStart, n);
    for (let i = 0; i < n; i++) dst[i] = src[i]! << 16;
  } else {
    const d = t.data as Exclude<TensorData, string[]>;
    body.set(new Uint8Array(d.buffer, d.byteOffset, n * itemsize));
  }
  if (!HOST_LITTLE_ENDIAN && itemsize > 1) byteSwap(body, itemsize);
  return out;
}

// ---------------------------------------------------------------------------------------------
// Files

/** @internal Read a whole file, turning fs errors into QErrors that name the file. */
export async function readFileChecked(path: string, what: string): Promise<Uint8Array> {
  try {
    const b = await readFile(path);
    return new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
  } catch (e) {
    throw fsError(e, path, what, "read");
  }
}

function fsError(e: unknown, path: string, what: string, op: "read" | "write"): QError {
  if (e instanceof QError) return e;
  const err = e as NodeJS.ErrnoException;
  const code = err?.code ?? "";
  if (op === "read" && (code === "ENOENT" || code === "ENOTDIR")) return new MissingFileError(path, what);
  if (op === "write" && code === "ENOENT") return new MissingFileError(dirname(path), `output directory for ${basename(path)}`);
  if (code === "EISDIR") return new QError("E_IO", `cannot ${op} ${what}: it is a directory`, path);
  const detail = err instanceof Error ? err.message : String(e);
  return new QError("E_IO", `cannot ${op} ${what}: ${detail}`, path);
}

/**
 * Write `bytes` to `path` atomically: write a sibling temp file `<path>.tmp-<pid>-<random>`,
 * flush it, then rename it over `path`. On failure the temp file is removed and a QError
 * naming `path` is thrown (MissingFileError when the directory does not exist).
 */
export async function writeFileAtomic(path: string, bytes: Uint8Array, what = "file"): Promise<void> {
  const tmp = `${path}.tmp-${process.pid}-${randomBytes(6).toString("hex")}`;
  let created = false;
  try {
    const fh = await open(tmp, "wx");
    created = true;
    try {
      let off = 0;
      while (off < bytes.length) {
        const { bytesWritten } = await fh.write(bytes, off, Math.min(bytes.length - off, 1 << 30));
        off += bytesWritten;
      }
      await fh.datasync();
    } finally {
      await fh.close();
    }
    await rename(tmp, path);
  } catch (e) {
    if (created) await rm(tmp, { force: true }).catch(() => undefined);
    throw fsError(e, path, what, "write");
  }
}

/** Read a .npy file. Missing file → MissingFileError; bad content → ModelFormatError. */
export async function readNpy(path: string): Promise<Tensor> {
  const bytes = await readFileChecked(path, "npy file");
  return decodeNpy(bytes, path, "", true);
}

/** Write a tensor to a .npy file atomically (see encodeNpy for the dtype mapping). */
export async function writeNpy(path: string, t: Tensor): Promise<void> {
  await writeFileAtomic(path, encodeNpy(t, path), "npy file");
}
