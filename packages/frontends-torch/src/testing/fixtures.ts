/**
 * Test fixtures: write pickles, torch.save zip archives, legacy files and TorchScript archives by
 * hand (byte by byte), so tests need no PyTorch. Used by the *.test.ts files only.
 */
import { zipSync } from "fflate";
import type { Tensor } from "@q/ir";

export class PickleWriter {
  private readonly out: number[] = [];
  private memo = 0;

  op(...bytes: number[]): this {
    this.out.push(...bytes);
    return this;
  }
  raw(b: Uint8Array | number[]): this {
    for (const x of b) this.out.push(x);
    return this;
  }
  proto(v = 2): this {
    return this.op(0x80, v);
  }
  /** GLOBAL 'module\nname\n'. */
  global(module: string, name: string): this {
    return this.op(0x63).raw(ascii(`${module}\n${name}\n`));
  }
  /** Protocol 4: SHORT_BINUNICODE module, SHORT_BINUNICODE name, STACK_GLOBAL. */
  stackGlobal(module: string, name: string): this {
    return this.shortStr(module).shortStr(name).op(0x93);
  }
  str(s: string): this {
    const b = new TextEncoder().encode(s);
    return this.op(0x58, ...u32(b.length)).raw(b);
  }
  shortStr(s: string): this {
    const b = new TextEncoder().encode(s);
    return this.op(0x8c, b.length).raw(b);
  }
  int(n: number): this {
    if (n >= 0 && n < 256) return this.op(0x4b, n);
    if (n >= 0 && n < 65536) return this.op(0x4d, n & 0xff, n >> 8);
    if (n >= -(2 ** 31) && n < 2 ** 31) return this.op(0x4a, ...u32(n >>> 0));
    // LONG1, 8 bytes
    const b = new Uint8Array(8);
    new DataView(b.buffer).setBigInt64(0, BigInt(n), true);
    return this.op(0x8a, 8).raw(b);
  }
  float(x: number): this {
    const b = new Uint8Array(8);
    new DataView(b.buffer).setFloat64(0, x, false);
    return this.op(0x47).raw(b);
  }
  none(): this { return this.op(0x4e); }
  bool(v: boolean): this { return this.op(v ? 0x88 : 0x89); }
  mark(): this { return this.op(0x28); }
  tuple(): this { return this.op(0x74); }
  emptyTuple(): this { return this.op(0x29); }
  emptyDict(): this { return this.op(0x7d); }
  emptyList(): this { return this.op(0x5d); }
  setitem(): this { return this.op(0x73); }
  setitems(): this { return this.op(0x75); }
  appends(): this { return this.op(0x65); }
  reduce(): this { return this.op(0x52); }
  build(): this { return this.op(0x62); }
  newobj(): this { return this.op(0x81); }
  binpersid(): this { return this.op(0x51); }
  put(): number {
    const i = this.memo++;
    this.op(0x71, i);
    return i;
  }
  get(i: number): this { return this.op(0x68, i); }
  stop(): this { return this.op(0x2e); }
  ints(xs: number[]): this {
    this.mark();
    for (const x of xs) this.int(x);
    return this.tuple();
  }
  bytes(): Uint8Array {
    return Uint8Array.from(this.out);
  }
}

function ascii(s: string): number[] {
  return Array.from(s, (c) => c.charCodeAt(0));
}
function u32(n: number): number[] {
  return [n & 0xff, (n >>> 8) & 0xff, (n >>> 16) & 0xff, (n >>> 24) & 0xff];
}

const STORAGE_OF: Record<string, string> = {
  float32: "FloatStorage", float64: "DoubleStorage", float16: "HalfStorage", bfloat16: "BFloat16Storage",
  int64: "LongStorage", int32: "IntStorage", int16: "ShortStorage", int8: "CharStorage", uint8: "ByteStorage", bool: "BoolStorage",
};

export interface TensorSpec {
  /** Storage key. */
  key: string;
  /** The whole storage (its dtype gives the storage type). */
  storage: Tensor;
  offset?: number;
  size: number[];
  stride: number[];
  requiresGrad?: boolean;
}

/** Emit `_rebuild_tensor_v2(storage, offset, size, stride, requires_grad, OrderedDict())`. */
export function writeTensor(p: PickleWriter, t: TensorSpec, legacy = false): void {
  p.global("torch._utils", legacy ? "_rebuild_tensor" : "_rebuild_tensor_v2").mark();
  p.mark().str("storage").global("torch", STORAGE_OF[t.storage.dtype]!).str(t.key).str(legacy ? "cuda:0" : "cpu").int(t.storage.size);
  if (legacy) p.none();
  p.tuple().binpersid();
  p.int(t.offset ?? 0).ints(t.size).ints(t.stride);
  if (!legacy) p.bool(t.requiresGrad ?? false).global("collections", "OrderedDict").emptyTuple().reduce();
  p.tuple().reduce();
}

/** Pickle of an OrderedDict of tensors (as torch.save(state_dict) writes it). */
export function stateDictPickle(entries: [string, TensorSpec][], legacy = false): PickleWriter {
  const p = new PickleWriter().proto(2);
  p.global("collections", "OrderedDict").emptyTuple().reduce().mark();
  for (const [name, t] of entries) {
    p.str(name);
    writeTensor(p, t, legacy);
  }
  return p.setitems();
}

export function storageBytes(t: Tensor, bigEndian = false): Uint8Array {
  const d = t.data as Float32Array;
  const b = new Uint8Array(d.buffer, d.byteOffset, d.byteLength).slice();
  if (bigEndian) {
    const es = d.BYTES_PER_ELEMENT;
    for (let i = 0; i < b.length; i += es) b.subarray(i, i + es).reverse();
  }
  return b;
}

/** A torch.save zip archive with `data.pkl` and the storages of `entries`. */
export function zipArchive(prefix: string, pkl: Uint8Array, storages: Map<string, Tensor>, extra: Record<string, Uint8Array> = {}, bigEndian = false): Uint8Array {
  const files: Record<string, [Uint8Array, { level: 0 }]> = {};
  files[`${prefix}/data.pkl`] = [pkl, { level: 0 }];
  files[`${prefix}/byteorder`] = [new TextEncoder().encode(bigEndian ? "big" : "little"), { level: 0 }];
  for (const [k, t] of storages) files[`${prefix}/data/${k}`] = [storageBytes(t, bigEndian), { level: 0 }];
  for (const [k, v] of Object.entries(extra)) files[`${prefix}/${k}`] = [v, { level: 0 }];
  files[`${prefix}/version`] = [new TextEncoder().encode("3\n"), { level: 0 }];
  return zipSync(files);
}

/** A legacy (torch < 1.6) file: magic, protocol, sys info, object pickle, key list, storages. */
export function legacyFile(obj: Uint8Array, storages: Map<string, Tensor>): Uint8Array {
  const parts: Uint8Array[] = [];
  parts.push(Uint8Array.from([0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19, 0x2e]));
  parts.push(Uint8Array.from([0x80, 0x02, 0x4d, 0xe9, 0x03, 0x2e]));
  const sys = new PickleWriter().proto(2).emptyDict().mark().str("protocol_version").int(1001).str("little_endian").bool(true).setitems().stop();
  parts.push(sys.bytes());
  parts.push(obj);
  const keys = [...storages.keys()].sort();
  const kl = new PickleWriter().proto(2).emptyList().mark();
  for (const k of keys) kl.str(k);
  parts.push(kl.appends().stop().bytes());
  for (const k of keys) {
    const t = storages.get(k)!;
    const h = new Uint8Array(8);
    new DataView(h.buffer).setBigInt64(0, BigInt(t.size), true);
    parts.push(h, storageBytes(t));
  }
  const total = parts.reduce((n, p) => n + p.length, 0);
  const out = new Uint8Array(total);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/**
 * A TorchScript archive holding one module class `M` whose `forward(self, x)` body is `body`
 * (4-space indented lines), with tensor attributes `params` (contiguous) and optional submodules.
 */
export function scriptArchive(body: string, params: Record<string, Tensor>, opts: { args?: string[]; extraCode?: Record<string, string>; extraPickle?: (p: PickleWriter, tensors: Map<string, Tensor>) => void } = {}): Uint8Array {
  const args = opts.args ?? ["x"];
  const code =
    `class M(Module):\n  __parameters__ = [${Object.keys(params).map((k) => `"${k}", `).join("")}]\n  __buffers__ = []\n` +
    Object.keys(params).map((k) => `  ${k} : Tensor\n`).join("") +
    `  training : bool\n  def forward(self: __torch__.M,\n    ${args.map((a) => `${a}: Tensor`).join(",\n    ")}) -> Tensor:\n${body}\n`;
  const p = new PickleWriter().proto(2);
  p.global("__torch__", "M").emptyTuple().newobj().emptyDict().mark().str("training").bool(false);
  const storages = new Map<string, Tensor>();
  for (const [k, t] of Object.entries(params)) {
    const key = String(storages.size);
    storages.set(key, t);
    p.str(k);
    writeTensor(p, { key, storage: t, size: [...t.shape], stride: strides(t.shape), requiresGrad: true });
  }
  opts.extraPickle?.(p, storages);
  p.setitems().build().stop();
  const extra: Record<string, Uint8Array> = {
    "code/__torch__.py": new TextEncoder().encode(code),
    "constants.pkl": Uint8Array.from([0x80, 0x02, 0x29, 0x2e]),
  };
  for (const [k, v] of Object.entries(opts.extraCode ?? {})) extra[k] = new TextEncoder().encode(v);
  return zipArchive("m", p.bytes(), storages, extra);
}

function strides(shape: readonly number[]): number[] {
  const s: number[] = [];
  let acc = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    s[i] = acc;
    acc *= shape[i]!;
  }
  return s;
}
