/**
 * Reader and writer for numpy's .npz archives: a zip file whose members are `<name>.npy` files,
 * either stored (np.savez) or deflated (np.savez_compressed).
 *
 * Reading walks the zip central directory itself (zip64 records included, as numpy writes them)
 * so that every offset and size is bounds-checked and every member's CRC-32 is verified; deflated
 * members are expanded with fflate. Writing uses fflate's zipSync (no zip64: an archive is
 * limited to 4 GiB).
 */
import { basename, extname } from "node:path";
import { crc32 } from "node:zlib";
import { inflateSync, zipSync, type Zippable } from "fflate";
import { ModelFormatError, QError } from "./errors.js";
import { decodeNpy, encodeNpy, isNpy, readFileChecked, writeFileAtomic } from "./npy.js";
import type { Tensor } from "./tensor.js";

export interface NpzWriteOptions {
  /** Deflate the members, like np.savez_compressed. Default false (stored, like np.savez). */
  compress?: boolean;
}

const SIG_LOCAL = 0x04034b50;
const SIG_CENTRAL = 0x02014b50;
const SIG_EOCD = 0x06054b50;
const SIG_EOCD64 = 0x06064b50;
const SIG_EOCD64_LOCATOR = 0x07064b50;
const U32_MAX = 0xffffffff;
/** Deflate cannot expand data by more than about 1032:1. */
const MAX_DEFLATE_RATIO = 1032;

/** True when `bytes` starts like a zip archive ("PK\x03\x04", or "PK\x05\x06" when empty). */
export function isZip(bytes: Uint8Array): boolean {
  return bytes.length >= 4 && bytes[0] === 0x50 && bytes[1] === 0x4b && (bytes[2] === 3 || bytes[2] === 5);
}

interface ZipEntry {
  name: string;
  method: number;
  flags: number;
  crc: number;
  compressedSize: number;
  size: number;
  localOffset: number;
}

/** Parse the bytes of an .npz archive. Keys are the member names without the `.npy` suffix. */
export function parseNpz(bytes: Uint8Array, file?: string): Map<string, Tensor> {
  const out = new Map<string, Tensor>();
  for (const e of readCentralDirectory(bytes, file)) {
    const isArrayName = e.name.endsWith(".npy");
    if (!isArrayName && e.name.endsWith("/") && e.size === 0) continue; // a directory entry
    const where = `member '${e.name}': `;
    const { data, owned } = extractMember(bytes, e, file, where);
    // numpy lists members without the suffix under their full name; load those only if they are arrays.
    if (!isArrayName && !isNpy(data)) continue;
    const key = isArrayName ? e.name.slice(0, -4) : e.name;
    if (out.has(key)) throw new ModelFormatError(`archive holds two arrays named '${key}'`, file);
    out.set(key, decodeNpy(data, file, where, owned));
  }
  return out;
}

function u16(b: Uint8Array, p: number): number {
  return b[p]! | (b[p + 1]! << 8);
}
function u32(b: Uint8Array, p: number): number {
  return (b[p]! | (b[p + 1]! << 8) | (b[p + 2]! << 16) | (b[p + 3]! << 24)) >>> 0;
}
function u64(b: Uint8Array, p: number, fail: (m: string) => never): number {
  const hi = u32(b, p + 4);
  if (hi >= 0x200000) fail("a zip64 size or offset is out of range");
  return hi * 0x100000000 + u32(b, p);
}

function readCentralDirectory(bytes: Uint8Array, file: string | undefined): ZipEntry[] {
  const fail = (msg: string): never => {
    throw new ModelFormatError(msg, file);
  };
  const len = bytes.length;
  if (len === 0) fail("not an .npz file: the file is empty");
  if (isNpy(bytes)) fail("not an .npz file: this is a single .npy array; read it as .npy");
  // The end-of-central-directory record is in the last 22 + 65535 (comment) bytes.
  let eocd = -1;
  for (let p = len - 22; p >= 0 && p >= len - 22 - 0xffff; p--) {
    if (u32(bytes, p) === SIG_EOCD && p + 22 + u16(bytes, p + 20) <= len) {
      eocd = p;
      break;
    }
  }
  if (eocd < 0) {
    return fail(
      isZip(bytes)
        ? "corrupt or truncated zip archive: end-of-central-directory record not found"
        : "not an .npz file: not a zip archive (no end-of-central-directory record)",
    );
  }
  if (u16(bytes, eocd + 4) !== 0 || u16(bytes, eocd + 6) !== 0) fail("multi-disk zip archives are not supported");
  let count = u16(bytes, eocd + 10);
  let cdSize = u32(bytes, eocd + 12);
  let cdOffset = u32(bytes, eocd + 16);
  const loc = eocd - 20;
  if (loc >= 0 && u32(bytes, loc) === SIG_EOCD64_LOCATOR) {
    const rec = u64(bytes, loc + 8, fail);
    if (rec + 56 > len || u32(bytes, rec) !== SIG_EOCD64) fail("corrupt zip archive: bad zip64 end-of-central-directory record");
    count = u64(bytes, rec + 32, fail);
    cdSize = u64(bytes, rec + 40, fail);
    cdOffset = u64(bytes, rec + 48, fail);
  }
  if (cdOffset + cdSize > len) {
    fail(`corrupt or truncated zip archive: central directory (${cdSize} bytes at ${cdOffset}) lies beyond the ${len}-byte file`);
  }
  if (count * 46 > cdSize) fail(`corrupt zip archive: ${count} entries cannot fit a ${cdSize}-byte central directory`);

  const entries: ZipEntry[] = [];
  const utf8 = new TextDecoder("utf-8");
  const latin1 = new TextDecoder("latin1");
  let p = cdOffset;
  const cdEnd = cdOffset + cdSize;
  for (let i = 0; i < count; i++) {
    if (p + 46 > cdEnd || u32(bytes, p) !== SIG_CENTRAL) fail(`corrupt zip archive: central directory entry ${i} is damaged`);
    const flags = u16(bytes, p + 8);
    const method = u16(bytes, p + 10);
    const crc = u32(bytes, p + 16);
    let compressedSize = u32(bytes, p + 20);
    let size = u32(bytes, p + 24);
    const nameLen = u16(bytes, p + 28);
    const extraLen = u16(bytes, p + 30);
    const commentLen = u16(bytes, p + 32);
    let localOffset = u32(bytes, p + 42);
    const nameStart = p + 46;
    const extraStart = nameStart + nameLen;
    const next = extraStart + extraLen + commentLen;
    if (next > cdEnd) fail(`corrupt zip archive: central directory entry ${i} overruns the directory`);
    const name = (flags & 0x800 ? utf8 : latin1).decode(bytes.subarray(nameStart, extraStart));
    // zip64 extended information: 64-bit values for whichever fields hold 0xFFFFFFFF, in this order.
    for (let x = extraStart; x + 4 <= extraStart + extraLen; ) {
      const id = u16(bytes, x);
      const sz = u16(bytes, x + 2);
      if (id === 0x0001) {
        let q = x + 4;
        const qEnd = q + sz;
        const take = (): number => {
          if (q + 8 > qEnd) fail(`corrupt zip archive: bad zip64 field for member '${name}'`);
          const v = u64(bytes, q, fail);
          q += 8;
          return v;
        };
        if (size === U32_MAX) size = take();
        if (compressedSize === U32_MAX) compressedSize = take();
        if (localOffset === U32_MAX) localOffset = take();
      }
      x += 4 + sz;
    }
    entries.push({ name, method, flags, crc, compressedSize, size, localOffset });
    p = next;
  }
  return entries;
}

function extractMember(
  bytes: Uint8Array,
  e: ZipEntry,
  file: string | undefined,
  where: string,
): { data: Uint8Array; owned: boolean } {
  const fail = (msg: string): never => {
    throw new ModelFormatError(`${where}${msg}`, file);
  };
  if (e.flags & 1) fail("encrypted zip members are not supported");
  const lh = e.localOffset;
  if (lh + 30 > bytes.length || u32(bytes, lh) !== SIG_LOCAL) fail("corrupt zip archive: local header missing or damaged");
  const start = lh + 30 + u16(bytes, lh + 26) + u16(bytes, lh + 28);
  if (start + e.compressedSize > bytes.length) {
    fail(`truncated zip archive: member data (${e.compressedSize} bytes at ${start}) runs past the end of the ${bytes.length}-byte file`);
  }
  const raw = bytes.subarray(start, start + e.compressedSize);
  let data: Uint8Array;
  let owned: boolean;
  if (e.method === 0) {
    if (e.size !== e.compressedSize) fail(`corrupt zip archive: stored member has size ${e.size} but ${e.compressedSize} bytes of data`);
    data = raw;
    owned = false;
  } else if (e.method === 8) {
    if (e.size > e.compressedSize * MAX_DEFLATE_RATIO + 1024) {
      fail(`corrupt zip archive: ${e.compressedSize} compressed bytes cannot expand to the claimed ${e.size}`);
    }
    try {
      data = inflateSync(raw, { out: new Uint8Array(e.size) });
    } catch (err) {
      return fail(`corrupt deflate data (${err instanceof Error ? err.message : String(err)})`);
    }
    if (data.length !== e.size) fail(`corrupt deflate data: expanded to ${data.length} bytes, expected ${e.size}`);
    owned = true;
  } else {
    return fail(`zip compression method ${e.method} is not supported (only stored and deflate, as numpy writes)`);
  }
  if (crc32(data) >>> 0 !== e.crc) fail("CRC-32 mismatch: the member data is corrupt");
  return { data, owned };
}

/**
 * Encode tensors as an .npz archive: member `<name>.npy` for each entry (names may contain '/').
 * With `compress` the members are deflated (np.savez_compressed), else stored (np.savez).
 */
export function encodeNpz(
  tensors: Map<string, Tensor> | Record<string, Tensor>,
  opts: NpzWriteOptions = {},
  file?: string,
): Uint8Array {
  const entries = tensors instanceof Map ? [...tensors] : Object.entries(tensors);
  const level = opts.compress ? 6 : 0;
  // A fixed timestamp keeps archives byte-for-byte reproducible.
  const mtime = new Date(1980, 0, 1, 0, 0, 0);
  const files: Zippable = Object.create(null) as Zippable;
  let total = 22;
  for (const [name, t] of entries) {
    const member = `${name}.npy`;
    const npy = encodeNpy(t, file);
    const nameBytes = Buffer.byteLength(member, "utf8");
    if (nameBytes > 0xffff) throw new ModelFormatError(`array name '${name.slice(0, 40)}...' is too long for a zip archive`, file);
    total += 30 + 46 + 2 * nameBytes + npy.length;
    files[member] = [npy, { level, mtime }];
  }
  if (total >= U32_MAX) {
    throw new QError("E_IO", `cannot write an .npz archive over 4 GiB (${total} bytes); write separate .npy files`, file);
  }
  return zipSync(files);
}

/** Read an .npz archive. Missing file → MissingFileError; bad content → ModelFormatError. */
export async function readNpz(path: string): Promise<Map<string, Tensor>> {
  return parseNpz(await readFileChecked(path, "npz file"), path);
}

/** Write tensors to an .npz archive atomically (see encodeNpz). */
export async function writeNpz(
  path: string,
  tensors: Map<string, Tensor> | Record<string, Tensor>,
  opts: NpzWriteOptions = {},
): Promise<void> {
  await writeFileAtomic(path, encodeNpz(tensors, opts, path), "npz file");
}

/**
 * Read a .npy or .npz file (recognised by content, not extension). A .npy file gives a map with
 * one entry keyed by the file's base name without its extension.
 */
export async function readArrays(path: string): Promise<Map<string, Tensor>> {
  const bytes = await readFileChecked(path, "array file");
  if (isNpy(bytes)) {
    const base = basename(path);
    const key = base.toLowerCase().endsWith(".npy") ? base.slice(0, -4) : base.slice(0, base.length - extname(base).length);
    return new Map([[key, decodeNpy(bytes, path, "", true)]]);
  }
  if (isZip(bytes)) return parseNpz(bytes, path);
  if (bytes.length === 0) throw new ModelFormatError("not an .npy or .npz file: the file is empty", path);
  throw new ModelFormatError("not an .npy or .npz file (unrecognised content)", path);
}
