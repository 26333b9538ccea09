/**
 * A safe unpickler for PyTorch files. It interprets pickle opcodes (protocols 2-5) into plain data
 * and never runs anything from the file: GLOBAL / STACK_GLOBAL resolve only names in a fixed
 * allow-list of tensor-rebuilding functions, storage types and containers, each backed by our own
 * small TypeScript function; REDUCE / NEWOBJ / BUILD act only on those. Any other global
 * (`os.system`, `builtins.eval`, `subprocess.Popen`, a user's nn.Module class...) is refused with
 * an UnsafePickleError that names it.
 *
 * Python values map to: None -> null, bool -> boolean, int -> number (bigint beyond 2^53),
 * float -> number, str -> string, bytes -> Uint8Array, list -> array, tuple -> frozen array,
 * dict / OrderedDict -> Map, set -> Set; tensors -> TensorRef (materialized later from storages),
 * TorchScript module objects -> TorchObject.
 */
import { ModelFormatError, type DType } from "@q/ir";
import { UnsafePickleError } from "./errors.js";

/** A storage class global such as `torch.FloatStorage`. */
export class StorageType {
  constructor(
    readonly name: string,
    /** Element type, or null for storages we cannot turn into tensors (complex, quantized). */
    readonly dtype: DType | null,
    readonly elemSize: number,
  ) {}
}

/** A storage named by a persistent id; its bytes are fetched from the container by `key`. */
export class StorageRef {
  constructor(
    readonly key: string,
    readonly type: StorageType,
    readonly numel: number,
    readonly location: string,
    /** Legacy storage views: element offset into the root storage and the view's element count. */
    readonly viewOffset = 0,
    readonly viewSize = -1,
  ) {}
}

/** A tensor as the pickle describes it: a strided view of a storage. */
export class TensorRef {
  constructor(
    readonly storage: StorageRef,
    readonly offset: number,
    readonly size: number[],
    readonly stride: number[],
    readonly requiresGrad: boolean,
    /** Element type when it differs from the storage's (untyped storages, _rebuild_tensor_v3). */
    readonly dtype?: DType,
  ) {}
}

/** An object of a TorchScript class (`__torch__.*`): class name and attributes, never instantiated. */
export class TorchObject {
  readonly attrs = new Map<string, unknown>();
  constructor(readonly className: string) {}
}

/** A torch dtype global such as `torch.float32`. */
export class TorchDType {
  constructor(
    readonly name: string,
    readonly dtype: DType | null,
  ) {}
}

/** An allow-listed global, resolved to our own implementation. */
export class AllowedGlobal {
  constructor(
    readonly qualname: string,
    /** What REDUCE does with it. */
    readonly call?: (args: readonly unknown[], u: Unpickler) => unknown,
    /** What NEWOBJ does with it. */
    readonly newobj?: (args: readonly unknown[], u: Unpickler) => unknown,
  ) {}
}

export const isTuple = (v: unknown): v is readonly unknown[] => Array.isArray(v) && Object.isFrozen(v);
const tuple = (items: unknown[]): readonly unknown[] => Object.freeze(items);

const STORAGES: [string, DType | null, number][] = [
  ["FloatStorage", "float32", 4], ["DoubleStorage", "float64", 8], ["HalfStorage", "float16", 2],
  ["BFloat16Storage", "bfloat16", 2], ["LongStorage", "int64", 8], ["IntStorage", "int32", 4],
  ["ShortStorage", "int16", 2], ["CharStorage", "int8", 1], ["ByteStorage", "uint8", 1],
  ["BoolStorage", "bool", 1], ["ComplexFloatStorage", null, 8], ["ComplexDoubleStorage", null, 16],
  ["QInt8Storage", null, 1], ["QUInt8Storage", null, 1], ["QInt32Storage", null, 4], ["UntypedStorage", "uint8", 1],
];

const DTYPES: [string, DType | null][] = [
  ["float32", "float32"], ["float", "float32"], ["float64", "float64"], ["double", "float64"], ["float16", "float16"],
  ["half", "float16"], ["bfloat16", "bfloat16"], ["int64", "int64"], ["long", "int64"], ["int32", "int32"], ["int", "int32"],
  ["int16", "int16"], ["short", "int16"], ["int8", "int8"], ["uint8", "uint8"], ["bool", "bool"],
  ["complex64", null], ["complex128", null],
];

function num(v: unknown, what: string, u: Unpickler): number {
  if (typeof v === "number") return v;
  if (typeof v === "bigint") return Number(v);
  throw new ModelFormatError(`${what}: expected an integer, got ${describe(v)}`, u.file);
}
function ints(v: unknown, what: string, u: Unpickler): number[] {
  if (!Array.isArray(v)) throw new ModelFormatError(`${what}: expected a tuple of integers, got ${describe(v)}`, u.file);
  return v.map((x) => num(x, what, u));
}

function rebuildTensor(args: readonly unknown[], u: Unpickler, name: string, dtype?: DType): TensorRef {
  const s = args[0];
  if (!(s instanceof StorageRef)) throw new ModelFormatError(`${name}: first argument is ${describe(s)}, not a storage`, u.file);
  return new TensorRef(s, num(args[1], `${name} storage_offset`, u), ints(args[2], `${name} size`, u), ints(args[3], `${name} stride`, u), args[4] === true, dtype);
}

function makeDict(args: readonly unknown[], u: Unpickler): Map<unknown, unknown> {
  const m = new Map<unknown, unknown>();
  const src = args[0];
  if (src === undefined || src === null) return m;
  if (src instanceof Map) return new Map(src);
  if (Array.isArray(src)) {
    for (const p of src) {
      if (!Array.isArray(p) || p.length !== 2) throw new ModelFormatError(`OrderedDict: items must be pairs`, u.file);
      m.set(p[0], p[1]);
    }
    return m;
  }
  throw new ModelFormatError(`OrderedDict: cannot build from ${describe(src)}`, u.file);
}

function buildAllowList(): Map<string, AllowedGlobal> {
  const t = new Map<string, AllowedGlobal>();
  const add = (q: string, call?: AllowedGlobal["call"], newobj?: AllowedGlobal["newobj"]) => t.set(q, new AllowedGlobal(q, call, newobj));
  add("collections.OrderedDict", makeDict, makeDict);
  add("builtins.set", (a) => new Set(Array.isArray(a[0]) ? a[0] : []));
  add("builtins.frozenset", (a) => new Set(Array.isArray(a[0]) ? a[0] : []));
  add("builtins.bytearray", (a) => (a[0] instanceof Uint8Array ? a[0].slice() : new Uint8Array(0)));
  add("_codecs.encode", (a, u) => {
    const s = a[0];
    if (typeof s !== "string") throw new ModelFormatError(`_codecs.encode: expected a string, got ${describe(s)}`, u.file);
    const enc = String(a[1] ?? "utf-8").toLowerCase();
    if (enc === "latin1" || enc === "latin-1" || enc === "iso-8859-1") return Uint8Array.from(s, (c) => c.charCodeAt(0) & 0xff);
    return new TextEncoder().encode(s);
  });
  add("torch._utils._rebuild_tensor", (a, u) => rebuildTensor(a, u, "_rebuild_tensor"));
  add("torch._utils._rebuild_tensor_v2", (a, u) => rebuildTensor(a, u, "_rebuild_tensor_v2"));
  add("torch._utils._rebuild_tensor_v3", (a, u) => {
    const dt = a[6];
    if (!(dt instanceof TorchDType) || !dt.dtype) throw new ModelFormatError(`_rebuild_tensor_v3: unsupported dtype ${describe(dt)}`, u.file);
    return rebuildTensor(a, u, "_rebuild_tensor_v3", dt.dtype);
  });
  const unwrap = (a: readonly unknown[]) => a[0];
  add("torch._utils._rebuild_parameter", unwrap);
  add("torch._utils._rebuild_parameter_with_state", unwrap);
  add("torch.nn.parameter.Parameter", unwrap, unwrap);
  add("torch.Tensor");
  add("torch._tensor._rebuild_from_type_v2", (a, u) => {
    const fn = a[0];
    if (!(fn instanceof AllowedGlobal) || !fn.call) throw new UnsafePickleError(`_rebuild_from_type_v2 with a callable that is not allow-listed (${describe(fn)})`, u.file);
    return fn.call(Array.isArray(a[2]) ? a[2] : [], u);
  });
  add("torch.Size", (a) => tuple(Array.isArray(a[0]) ? [...a[0]] : []));
  add("torch.device", (a) => a.map(String).join(":"));
  for (const [n] of STORAGES) t.set(`torch.${n}`, new AllowedGlobal(`torch.${n}`));
  return t;
}

const ALLOWED = buildAllowList();
const STORAGE_TYPES = new Map(STORAGES.map(([n, dt, sz]) => [`torch.${n}`, new StorageType(n, dt, sz)]));
const DTYPE_GLOBALS = new Map(DTYPES.map(([n, dt]) => [`torch.${n}`, new TorchDType(n, dt)]));
/** Modules refused outright, whatever the name. */
const BLOCKED_MODULES = ["os", "posix", "nt", "sys", "subprocess", "builtins", "__builtin__", "shutil", "socket", "importlib", "runpy", "pickle", "marshal", "ctypes", "code", "pty"];

/** Names of every allow-listed global (for docs and tests). */
export function allowedGlobals(): string[] {
  return [...new Set([...ALLOWED.keys(), ...STORAGE_TYPES.keys(), ...DTYPE_GLOBALS.keys()])].sort();
}

export interface UnpickleOptions {
  /** File name for error messages. */
  file?: string;
  /** Resolve a persistent id (BINPERSID). Default: torch storage ids -> StorageRef. */
  persistentLoad?: (pid: unknown, u: Unpickler) => unknown;
  /** Allow `__torch__.*` globals as opaque TorchScript object records (TorchScript archives only). */
  torchScript?: boolean;
}

const MARK = Symbol("mark");

export function describe(v: unknown): string {
  if (v === null) return "None";
  if (v instanceof AllowedGlobal) return v.qualname;
  if (v instanceof Map) return "dict";
  if (isTuple(v)) return "tuple";
  if (Array.isArray(v)) return "list";
  if (v instanceof Uint8Array) return "bytes";
  if (v instanceof TorchObject) return v.className;
  if (typeof v === "object") return (v as object).constructor?.name ?? "object";
  return typeof v;
}

/** Default persistent_load: torch storage ids. */
export function storagePersistentLoad(pid: unknown, u: Unpickler): StorageRef {
  if (!Array.isArray(pid) || pid[0] !== "storage") {
    throw new UnsafePickleError(`persistent id ${describe(pid)} is not a ('storage', ...) tuple`, u.file);
  }
  const [, type, key, location, numel, view] = pid as unknown[];
  if (!(type instanceof StorageType)) throw new ModelFormatError(`persistent id: storage type is ${describe(type)}`, u.file);
  const k = String(key);
  const n = num(numel, "storage numel", u);
  if (Array.isArray(view) && view.length >= 3) {
    // legacy storage view: (view_key, offset, size) into the root storage `key`
    return new StorageRef(k, type, n, String(location), num(view[1], "view offset", u), num(view[2], "view size", u));
  }
  return new StorageRef(k, type, n, String(location));
}

export class Unpickler {
  readonly file: string | undefined;
  private readonly dv: DataView;
  private pos: number;
  private stack: unknown[] = [];
  private readonly metastack: unknown[][] = [];
  private readonly memo = new Map<number, unknown>();
  /** Every StorageRef created, in order. */
  readonly storages: StorageRef[] = [];

  constructor(
    private readonly buf: Uint8Array,
    start = 0,
    private readonly opts: UnpickleOptions = {},
  ) {
    this.file = opts.file;
    this.dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
    this.pos = start;
  }

  /** Byte offset just after the last STOP read. */
  get offset(): number {
    return this.pos;
  }

  private truncated(): never {
    throw new ModelFormatError(`pickle data is truncated at byte ${this.pos} (the file is incomplete or corrupt)`, this.file);
  }
  private need(n: number): void {
    if (this.pos + n > this.buf.length) this.truncated();
  }
  private u8(): number {
    this.need(1);
    return this.buf[this.pos++]!;
  }
  private u16(): number {
    this.need(2);
    const v = this.dv.getUint16(this.pos, true);
    this.pos += 2;
    return v;
  }
  private u32(): number {
    this.need(4);
    const v = this.dv.getUint32(this.pos, true);
    this.pos += 4;
    return v;
  }
  private i32(): number {
    this.need(4);
    const v = this.dv.getInt32(this.pos, true);
    this.pos += 4;
    return v;
  }
  private u64(): number {
    this.need(8);
    const v = this.dv.getBigUint64(this.pos, true);
    this.pos += 8;
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) this.truncated();
    return Number(v);
  }
  private bytes(n: number): Uint8Array {
    this.need(n);
    const b = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return b;
  }
  private line(): string {
    const end = this.buf.indexOf(0x0a, this.pos);
    if (end < 0) this.truncated();
    const s = latin1(this.buf.subarray(this.pos, end));
    this.pos = end + 1;
    return s;
  }
  private utf8(n: number): string {
    return new TextDecoder("utf-8").decode(this.bytes(n));
  }
  private long(n: number): number | bigint {
    const b = this.bytes(n);
    if (n === 0) return 0;
    let v = 0n;
    for (let i = n - 1; i >= 0; i--) v = (v << 8n) | BigInt(b[i]!);
    if (b[n - 1]! & 0x80) v -= 1n << BigInt(8 * n);
    return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
  }

  private pop(): unknown {
    if (!this.stack.length) throw new ModelFormatError(`pickle stack underflow at byte ${this.pos}`, this.file);
    return this.stack.pop();
  }
  private top(): unknown {
    if (!this.stack.length) throw new ModelFormatError(`pickle stack underflow at byte ${this.pos}`, this.file);
    return this.stack[this.stack.length - 1];
  }
  private popMark(): unknown[] {
    const items = this.stack;
    const prev = this.metastack.pop();
    if (!prev) throw new ModelFormatError(`pickle MARK missing at byte ${this.pos}`, this.file);
    this.stack = prev;
    return items;
  }

  private refuse(what: string, global?: string): never {
    throw new UnsafePickleError(what, this.file, global);
  }

  /** Resolve a GLOBAL / STACK_GLOBAL through the allow-list. */
  private resolve(module: string, name: string): unknown {
    const q = `${module}.${name}`;
    // the allow-list first (it holds a few harmless builtins such as builtins.set) ...
    const st = STORAGE_TYPES.get(q);
    if (st) return st;
    const dt = DTYPE_GLOBALS.get(q);
    if (dt) return dt;
    const a = ALLOWED.get(q);
    if (a) return a;
    // ... then modules that are never allowed, whatever the name
    const top = module.split(".")[0]!;
    if (BLOCKED_MODULES.includes(top)) {
      this.refuse(`refusing pickle global '${q}': module '${top}' is never allowed (the file tries to run code; it is not a plain weights file)`, q);
    }
    if (this.opts.torchScript && (module === "__torch__" || module.startsWith("__torch__."))) {
      return new AllowedGlobal(q, undefined, () => new TorchObject(q));
    }
    const hint = module.startsWith("torch") || module.startsWith("__torch__")
      ? "it is not on the allow-list of tensor-rebuilding globals"
      : "a whole-model torch.save(model) pickles user classes: save model.state_dict() instead, or use TorchScript (torch.jit.trace + torch.jit.save)";
    this.refuse(`refusing pickle global '${q}': ${hint}`, q);
  }

  /** Read one pickle (up to STOP) and return its value. */
  load(): unknown {
    const ctxName = (op: number) => `0x${op.toString(16).padStart(2, "0")}`;
    for (;;) {
      if (this.pos >= this.buf.length) this.truncated();
      const op = this.buf[this.pos++]!;
      switch (op) {
        case 0x80: { // PROTO
          const v = this.u8();
          if (v > 5) throw new ModelFormatError(`pickle protocol ${v} is not supported (0-5)`, this.file);
          break;
        }
        case 0x95: this.u64(); break; // FRAME: length only
        case 0x2e: { // STOP
          const v = this.pop();
          this.stack = [];
          return v;
        }
        case 0x28: this.metastack.push(this.stack); this.stack = []; break; // MARK
        case 0x30: this.pop(); break; // POP
        case 0x31: this.popMark(); break; // POP_MARK
        case 0x32: this.stack.push(this.top()); break; // DUP
        case 0x4e: this.stack.push(null); break;
        case 0x88: this.stack.push(true); break;
        case 0x89: this.stack.push(false); break;
        case 0x4a: this.stack.push(this.i32()); break; // BININT
        case 0x4b: this.stack.push(this.u8()); break; // BININT1
        case 0x4d: this.stack.push(this.u16()); break; // BININT2
        case 0x8a: this.stack.push(this.long(this.u8())); break; // LONG1
        case 0x8b: { // LONG4
          const n = this.i32();
          if (n < 0) throw new ModelFormatError(`negative LONG4 length`, this.file);
          this.stack.push(this.long(n));
          break;
        }
        case 0x47: { // BINFLOAT (big-endian)
          this.need(8);
          this.stack.push(this.dv.getFloat64(this.pos, false));
          this.pos += 8;
          break;
        }
        case 0x58: this.stack.push(this.utf8(this.u32())); break; // BINUNICODE
        case 0x8c: this.stack.push(this.utf8(this.u8())); break; // SHORT_BINUNICODE
        case 0x8d: this.stack.push(this.utf8(this.u64())); break; // BINUNICODE8
        case 0x55: this.stack.push(latin1(this.bytes(this.u8()))); break; // SHORT_BINSTRING
        case 0x54: { // BINSTRING
          const n = this.i32();
          if (n < 0) throw new ModelFormatError(`negative BINSTRING length`, this.file);
          this.stack.push(latin1(this.bytes(n)));
          break;
        }
        case 0x42: this.stack.push(this.bytes(this.u32()).slice()); break; // BINBYTES
        case 0x43: this.stack.push(this.bytes(this.u8()).slice()); break; // SHORT_BINBYTES
        case 0x8e: this.stack.push(this.bytes(this.u64()).slice()); break; // BINBYTES8
        case 0x96: this.stack.push(this.bytes(this.u64()).slice()); break; // BYTEARRAY8
        case 0x29: this.stack.push(tuple([])); break; // EMPTY_TUPLE
        case 0x74: { const items = this.popMark(); this.stack.push(tuple(items)); break; } // TUPLE
        case 0x85: this.stack.push(tuple([this.pop()])); break;
        case 0x86: { const b = this.pop(); const a = this.pop(); this.stack.push(tuple([a, b])); break; }
        case 0x87: { const c = this.pop(); const b = this.pop(); const a = this.pop(); this.stack.push(tuple([a, b, c])); break; }
        case 0x5d: this.stack.push([]); break; // EMPTY_LIST
        case 0x6c: { const items = this.popMark(); this.stack.push(items); break; } // LIST
        case 0x7d: this.stack.push(new Map()); break; // EMPTY_DICT
        case 0x64: { // DICT
          const items = this.popMark();
          const m = new Map<unknown, unknown>();
          for (let i = 0; i + 1 < items.length; i += 2) m.set(items[i], items[i + 1]);
          this.stack.push(m);
          break;
        }
        case 0x8f: this.stack.push(new Set()); break; // EMPTY_SET
        case 0x90: { // ADDITEMS
          const items = this.popMark();
          const s = this.top();
          if (!(s instanceof Set)) this.refuse(`ADDITEMS on ${describe(s)} (only sets)`);
          for (const i of items) s.add(i);
          break;
        }
        case 0x91: { const items = this.popMark(); this.stack.push(new Set(items)); break; } // FROZENSET
        case 0x61: { // APPEND
          const v = this.pop();
          const l = this.top();
          if (!Array.isArray(l) || isTuple(l)) this.refuse(`APPEND on ${describe(l)} (only lists)`);
          (l as unknown[]).push(v);
          break;
        }
        case 0x65: { // APPENDS
          const items = this.popMark();
          const l = this.top();
          if (!Array.isArray(l) || isTuple(l)) this.refuse(`APPENDS on ${describe(l)} (only lists)`);
          for (const i of items) (l as unknown[]).push(i);
          break;
        }
        case 0x73: { // SETITEM
          const v = this.pop();
          const k = this.pop();
          const d = this.top();
          if (!(d instanceof Map)) this.refuse(`SETITEM on ${describe(d)} (only dicts)`);
          d.set(k, v);
          break;
        }
        case 0x75: { // SETITEMS
          const items = this.popMark();
          const d = this.top();
          if (!(d instanceof Map)) this.refuse(`SETITEMS on ${describe(d)} (only dicts)`);
          for (let i = 0; i + 1 < items.length; i += 2) d.set(items[i], items[i + 1]);
          break;
        }
        case 0x71: this.memo.set(this.u8(), this.top()); break; // BINPUT
        case 0x72: this.memo.set(this.u32(), this.top()); break; // LONG_BINPUT
        case 0x94: this.memo.set(this.memo.size, this.top()); break; // MEMOIZE
        case 0x70: this.memo.set(parseInt(this.line(), 10), this.top()); break; // PUT
        case 0x68: this.stack.push(this.get(this.u8())); break; // BINGET
        case 0x6a: this.stack.push(this.get(this.u32())); break; // LONG_BINGET
        case 0x67: this.stack.push(this.get(parseInt(this.line(), 10))); break; // GET
        case 0x63: { // GLOBAL
          const module = this.line();
          const name = this.line();
          this.stack.push(this.resolve(module, name));
          break;
        }
        case 0x93: { // STACK_GLOBAL
          const name = this.pop();
          const module = this.pop();
          if (typeof module !== "string" || typeof name !== "string") {
            throw new ModelFormatError(`STACK_GLOBAL needs two strings, got ${describe(module)} and ${describe(name)}`, this.file);
          }
          this.stack.push(this.resolve(module, name));
          break;
        }
        case 0x52: { // REDUCE
          const args = this.pop();
          const fn = this.pop();
          if (!(fn instanceof AllowedGlobal) || !fn.call) this.refuse(`REDUCE on ${describe(fn)}, which is not an allow-listed callable`, fn instanceof AllowedGlobal ? fn.qualname : undefined);
          if (!Array.isArray(args)) throw new ModelFormatError(`REDUCE arguments are ${describe(args)}, not a tuple`, this.file);
          this.stack.push(fn.call(args, this));
          break;
        }
        case 0x81: { // NEWOBJ
          const args = this.pop();
          const cls = this.pop();
          if (!(cls instanceof AllowedGlobal) || !cls.newobj) this.refuse(`NEWOBJ on ${describe(cls)}, which is not an allow-listed class`, cls instanceof AllowedGlobal ? cls.qualname : undefined);
          this.stack.push(cls.newobj(Array.isArray(args) ? args : [], this));
          break;
        }
        case 0x62: { // BUILD
          const state = this.pop();
          const obj = this.top();
          if (obj instanceof TorchObject) {
            if (state instanceof Map) for (const [k, v] of state) obj.attrs.set(String(k), v);
            else if (Array.isArray(state) && state[0] instanceof Map) for (const [k, v] of state[0] as Map<unknown, unknown>) obj.attrs.set(String(k), v);
            else throw new ModelFormatError(`BUILD of ${obj.className} with state ${describe(state)}`, this.file);
          } else if (obj instanceof TensorRef || obj instanceof Map) {
            // tensor python attributes / OrderedDict._metadata: accepted and ignored
          } else {
            this.refuse(`BUILD on ${describe(obj)} (only tensors, OrderedDict and TorchScript objects)`);
          }
          break;
        }
        case 0x51: { // BINPERSID
          const pid = this.pop();
          const v = (this.opts.persistentLoad ?? storagePersistentLoad)(pid, this);
          if (v instanceof StorageRef) this.storages.push(v);
          this.stack.push(v);
          break;
        }
        case 0x69: this.refuse(`pickle opcode INST (${ctxName(op)}) builds arbitrary objects and is refused`);
        case 0x6f: this.refuse(`pickle opcode OBJ (${ctxName(op)}) builds arbitrary objects and is refused`);
        case 0x50: this.refuse(`pickle opcode PERSID (${ctxName(op)}, text persistent id) is refused`);
        case 0x82: case 0x83: case 0x84: this.refuse(`pickle opcode EXT (${ctxName(op)}, extension registry) is refused`);
        case 0x92: this.refuse(`pickle opcode NEWOBJ_EX (${ctxName(op)}) is refused`);
        case 0x97: case 0x98: this.refuse(`pickle opcode ${ctxName(op)} (out-of-band buffers) is refused`);
        default:
          throw new ModelFormatError(`unsupported pickle opcode ${ctxName(op)} ('${String.fromCharCode(op)}') at byte ${this.pos - 1}: not a protocol 2-5 torch pickle`, this.file);
      }
    }
  }

  private get(i: number): unknown {
    if (!this.memo.has(i)) throw new ModelFormatError(`pickle memo key ${i} is not defined`, this.file);
    return this.memo.get(i);
  }
}

function latin1(b: Uint8Array): string {
  let s = "";
  for (let i = 0; i < b.length; i++) s += String.fromCharCode(b[i]!);
  return s;
}

/** Unpickle one object from `bytes` (starting at `start`). */
export function unpickle(bytes: Uint8Array, opts: UnpickleOptions = {}, start = 0): { value: unknown; end: number; storages: StorageRef[] } {
  const u = new Unpickler(bytes, start, opts);
  const value = u.load();
  return { value, end: u.offset, storages: u.storages };
}
