import { existsSync, readFileSync, readdirSync, statSync } from "node:fs";
import { basename, dirname, extname, join, resolve } from "node:path";
import {
  Graph, InputMismatchError, MissingFileError, ModelFormatError, Node, Tensor, UnknownOpError,
  type AttrValue, type Dim, type DType, type ValueInfo,
} from "@q/ir";
import type { OpCtx, PaddleAttr } from "./context.js";
import { PADDLE_OPS } from "./ops.js";
import { dtypeFromPaddle, readCombinedParams, readSeparateParams, type ParamSpec } from "./params.js";
import { ATTR, ProgramDescT, VT, toNum, type PAttr, type PBlock, type POp, type PProgram, type PVar } from "./proto.js";

export interface ReadPaddleOptions {
  /** Concrete shapes for graph inputs (the `-is` option): they replace the −1 dims of the feeds. */
  inputShapes?: Record<string, number[]>;
}

/** Metadata keys the reader sets on the graph. */
export const PADDLE_META = {
  /** Paddle release that saved the program, e.g. "2.3.2". */
  version: "paddle.version",
  /** Where the parameter values came from: a file, a folder (one file each), or "absent". */
  params: "paddle.params",
  /** Graph-only models: JSON list of the parameter names that became graph inputs. */
  paramInputs: "paddle.param_inputs",
} as const;

/**
 * Names of the parameters whose values were absent (graph-only model: they are graph inputs, with
 * the dtype and shape the program declares). Empty for a model read with its params.
 */
export function absentParams(g: Graph): string[] {
  const s = g.metadata[PADDLE_META.paramInputs];
  return s ? (JSON.parse(s) as string[]) : [];
}

/**
 * Read a PaddlePaddle static inference model into IR (ai.onnx ops, opset 17).
 *
 * `modelPath`: a `.pdmodel`, an old-style `__model__`, or a folder holding one of them.
 * `paramsPath`: a combined params file (`.pdiparams`, `__params__`) or a folder of per-variable files.
 * Default: `<stem>.pdiparams`, else `__params__`/`params` in the model's folder, else per-variable
 * files next to the model. When none exists the model is read graph-only: every parameter becomes a
 * graph input with its declared dtype and shape (see `absentParams`).
 */
export async function readPaddle(modelPath: string, paramsPath?: string, opts: ReadPaddleOptions = {}): Promise<Graph> {
  return readPaddleSync(modelPath, paramsPath, opts);
}

export function readPaddleSync(modelPath: string, paramsPath?: string, opts: ReadPaddleOptions = {}): Graph {
  const model = findModelFile(modelPath);
  const bytes = readFileSync(model);
  const program = decodeProgram(bytes, model);
  const block = program.blocks![0]!;
  const vars = new Map<string, PVar>();
  for (const v of block.vars ?? []) vars.set(v.name ?? "", v);
  const specs = savedParams(block, model);

  let params: Map<string, Tensor> | undefined;
  let source = "absent";
  const where = locateParams(model, paramsPath, specs);
  if (where?.kind === "combined") {
    params = readCombinedParams(readFileSync(where.path), specs, where.path);
    source = where.path;
  } else if (where?.kind === "separate") {
    params = readSeparateParams(where.path, specs);
    source = where.path;
  }

  const g = convert(block, vars, specs, params, model, opts);
  const ver = toNum(program.version?.version);
  g.producerName = "PaddlePaddle";
  if (ver > 0) {
    const v = `${Math.floor(ver / 1e6)}.${Math.floor(ver / 1e3) % 1000}.${ver % 1000}`;
    g.producerVersion = v;
    g.metadata[PADDLE_META.version] = v;
  }
  g.metadata[PADDLE_META.params] = source;
  g.source = model;
  return g;
}

// ---------------------------------------------------------------- files

function isFile(p: string): boolean {
  return existsSync(p) && statSync(p).isFile();
}

function findModelFile(path: string): string {
  const full = resolve(path);
  if (!existsSync(full)) throw new MissingFileError(path, "Paddle model file");
  if (statSync(full).isFile()) return full;
  const inDir = readdirSync(full);
  if (inDir.includes("__model__")) return join(full, "__model__");
  const pd = inDir.filter((f) => f.endsWith(".pdmodel"));
  if (pd.length === 1) return join(full, pd[0]!);
  if (pd.length > 1) throw new ModelFormatError(`the folder holds ${pd.length} .pdmodel files (${pd.join(", ")}); pass one of them`, path);
  throw new MissingFileError(join(path, "__model__"), "Paddle model file (no __model__ or .pdmodel in the folder)");
}

type ParamsLocation = { kind: "combined" | "separate"; path: string } | undefined;

function locateParams(model: string, paramsPath: string | undefined, specs: readonly ParamSpec[]): ParamsLocation {
  if (paramsPath !== undefined) {
    const p = resolve(paramsPath);
    if (!existsSync(p)) throw new MissingFileError(paramsPath, "Paddle params file");
    return { kind: statSync(p).isDirectory() ? "separate" : "combined", path: p };
  }
  const dir = dirname(model);
  const stem = extname(model) ? model.slice(0, -extname(model).length) : model;
  for (const cand of [`${stem}.pdiparams`, join(dir, "__params__"), join(dir, "params")]) {
    if (cand !== model && isFile(cand)) return { kind: "combined", path: cand };
  }
  // old layout: one file per variable; any one of them present means the layout is in use
  if (specs.length && specs.some((s) => isFile(join(dir, s.name)))) return { kind: "separate", path: dir };
  return undefined;
}

// ---------------------------------------------------------------- program

function decodeProgram(bytes: Uint8Array, file: string): PProgram {
  let i = 0;
  while (i < bytes.length && (bytes[i] === 0x20 || bytes[i] === 0x0a || bytes[i] === 0x0d || bytes[i] === 0x09)) i++;
  if (bytes[i] === 0x7b /* { */ || extname(file) === ".json") {
    throw new ModelFormatError(
      "this is a Paddle 3.x PIR program (JSON), which q does not read; re-export with the old IR " +
        "(FLAGS_enable_pir_api=0 / paddle.jit.save with use_pir_api off) to get a .pdmodel ProgramDesc",
      file,
    );
  }
  let p: PProgram;
  try {
    p = ProgramDescT.decode(bytes) as unknown as PProgram;
  } catch (e) {
    throw new ModelFormatError(`not a Paddle ProgramDesc (protobuf decoding failed: ${(e as Error).message}); the file is truncated or not a .pdmodel`, file);
  }
  const b0 = p.blocks?.[0];
  if (!b0 || !(b0.ops ?? []).length) throw new ModelFormatError("not a Paddle ProgramDesc: it has no block with ops (truncated or not a .pdmodel?)", file);
  for (const op of b0.ops!) if (!op.type) throw new ModelFormatError("an op has no type (corrupt file?)", file);
  return p;
}

function tensorDesc(v: PVar | undefined) {
  const t = v?.type;
  if (!t) return undefined;
  return t.lod_tensor?.tensor ?? t.selected_rows ?? t.tensor_array?.tensor;
}

/** The saved variables in file order: persistable, not feed/fetch/raw, sorted by name. */
function savedParams(block: PBlock, file: string): ParamSpec[] {
  const out: ParamSpec[] = [];
  for (const v of block.vars ?? []) {
    if (!v.persistable) continue;
    const t = v.type?.type;
    if (t === VT.FEED_MINIBATCH || t === VT.FETCH_LIST || t === VT.RAW) continue;
    const desc = tensorDesc(v);
    const dtype = desc ? dtypeFromPaddle(desc.data_type ?? -1) : undefined;
    if (!desc || !dtype) throw new ModelFormatError(`persistable variable '${v.name}' is not a tensor of a supported type (VarType ${t}, data type ${desc?.data_type})`, file);
    out.push({ name: v.name ?? "", dtype, dims: (desc.dims ?? []).map(toNum) });
  }
  // a plain code-unit comparison, as Paddle's std::sort / Python sorted() on ASCII names
  return out.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

function attrValue(a: PAttr): PaddleAttr | undefined {
  switch (a.type) {
    case ATTR.INT: return a.i ?? 0;
    case ATTR.FLOAT: return a.f ?? 0;
    case ATTR.STRING: return a.s ?? "";
    case ATTR.INTS: return [...(a.ints ?? [])];
    case ATTR.FLOATS: return [...(a.floats ?? [])];
    case ATTR.STRINGS: return [...(a.strings ?? [])];
    case ATTR.BOOLEAN: return a.b ?? false;
    case ATTR.BOOLEANS: return [...(a.bools ?? [])];
    case ATTR.LONG: return toNum(a.l);
    case ATTR.LONGS: return (a.longs ?? []).map(toNum);
    case ATTR.FLOAT64: return a.float64 ?? 0;
    case ATTR.FLOAT64S: return [...(a.float64s ?? [])];
    case ATTR.BLOCK: return a.block_idx ?? 0;
    case ATTR.BLOCKS: return [...(a.blocks_idx ?? [])];
    case ATTR.VAR: return a.var_name ?? "";
    case ATTR.VARS: return [...(a.vars_name ?? [])];
    default: return undefined; // SCALAR/SCALARS (Paddle ≥ 2.5) and unknown kinds
  }
}

// ---------------------------------------------------------------- conversion

class Converter {
  readonly g = new Graph({ opsets: { "": 17 } });
  /** Paddle variable → IR value currently holding it. */
  private readonly cur = new Map<string, string>();
  /** IR names in use or reserved (every Paddle variable name is reserved). */
  private readonly taken = new Set<string>();
  private tmpCount = 0;
  private readonly i64Cache = new Map<string, string>();
  private readonly scalarCache = new Map<string, string>();

  constructor(
    readonly vars: Map<string, PVar>,
    readonly file: string,
  ) {
    for (const k of vars.keys()) this.taken.add(k);
  }

  fresh(base: string): string {
    let n = base;
    while (this.taken.has(n)) n = `${base}__${++this.tmpCount}`;
    this.taken.add(n);
    return n;
  }

  /** IR name for (re)writing Paddle variable `v`: its own name the first time, a fresh one after. */
  write(v: string): string {
    const n = this.cur.has(v) || this.g.initializers.has(v) ? this.fresh(v) : v;
    this.taken.add(n);
    this.cur.set(v, n);
    return n;
  }

  read(v: string, opLabel: string): string {
    const n = this.cur.get(v);
    if (n === undefined) {
      throw new ModelFormatError(`op ${opLabel} reads variable '${v}', which no earlier op, feed or parameter provides`, this.file);
    }
    return n;
  }

  bind(v: string, irName: string): void {
    this.cur.set(v, irName);
    this.taken.add(irName);
  }

  dims(v: string | undefined): number[] | undefined {
    if (v === undefined) return undefined;
    const d = tensorDesc(this.vars.get(v));
    return d ? (d.dims ?? []).map(toNum) : undefined;
  }

  dtype(v: string | undefined): DType | undefined {
    if (v === undefined) return undefined;
    const d = tensorDesc(this.vars.get(v));
    return d ? dtypeFromPaddle(d.data_type ?? -1) : undefined;
  }

  konstant(t: Tensor, hint: string): string {
    const n = this.fresh(hint);
    this.g.initializers.set(n, t);
    return n;
  }

  i64(values: readonly number[]): string {
    const key = values.join(",");
    let n = this.i64Cache.get(key);
    if (!n) {
      n = this.konstant(Tensor.i64([values.length], values), "const_i64");
      this.i64Cache.set(key, n);
    }
    return n;
  }

  scalar(v: number, dt: DType): string {
    const key = `${dt}:${Object.is(v, -0) ? "-0" : v}`;
    let n = this.scalarCache.get(key);
    if (!n) {
      n = this.konstant(Tensor.fromNumbers(dt, [], [v]), "const");
      this.scalarCache.set(key, n);
    }
    return n;
  }

  ctx(op: POp, idx: number): OpCtx {
    const self = this;
    const slot = (list: POp["inputs"], name: string): string[] => (list ?? []).find((s) => s.parameter === name)?.arguments ?? [];
    const attrs = new Map<string, PaddleAttr>();
    for (const a of op.attrs ?? []) {
      const v = attrValue(a);
      if (v !== undefined) attrs.set(a.name, v);
    }
    const firstOut = (op.outputs ?? []).flatMap((s) => s.arguments ?? [])[0] ?? "?";
    const label = `#${idx} ${op.type} -> ${firstOut}`;
    const getNum = (name: string, dflt: number): number => {
      const v = attrs.get(name);
      if (v === undefined) return dflt;
      if (typeof v === "number") return v;
      if (typeof v === "boolean") return v ? 1 : 0;
      return self.badAttr(label, name, v, "a number");
    };
    const ctx: OpCtx = {
      type: op.type,
      label,
      in: (s) => {
        const a = slot(op.inputs, s)[0];
        return a === undefined ? undefined : self.read(a, label);
      },
      need: (s) => {
        const a = slot(op.inputs, s)[0];
        if (a === undefined) throw new ModelFormatError(`op ${label}: input slot '${s}' is empty`, self.file);
        return self.read(a, label);
      },
      ins: (s) => slot(op.inputs, s).map((a) => self.read(a, label)),
      inVar: (s) => slot(op.inputs, s)[0],
      outVars: (s) => slot(op.outputs, s),
      out: (s) => {
        const a = slot(op.outputs, s)[0];
        if (a === undefined) throw new ModelFormatError(`op ${label}: output slot '${s}' is empty`, self.file);
        return self.write(a);
      },
      outs: (s) => slot(op.outputs, s).map((a) => self.write(a)),
      has: (name) => attrs.has(name),
      i: (name, d) => Math.trunc(getNum(name, d)),
      f: getNum,
      s: (name, d) => {
        const v = attrs.get(name);
        return v === undefined ? d : typeof v === "string" ? v : self.badAttr(label, name, v, "a string");
      },
      b: (name, d) => {
        const v = attrs.get(name);
        return v === undefined ? d : typeof v === "boolean" ? v : typeof v === "number" ? v !== 0 : self.badAttr(label, name, v, "a boolean");
      },
      ints: (name, d) => {
        const v = attrs.get(name);
        if (v === undefined) return d;
        if (Array.isArray(v) && v.every((x) => typeof x === "number")) return (v as number[]).map(Math.trunc);
        if (typeof v === "number") return [v];
        return self.badAttr(label, name, v, "a list of integers");
      },
      floats: (name, d) => {
        const v = attrs.get(name);
        if (v === undefined) return d;
        if (Array.isArray(v) && v.every((x) => typeof x === "number")) return [...(v as number[])];
        if (typeof v === "number") return [v];
        return self.badAttr(label, name, v, "a list of numbers");
      },
      dims: (v) => self.dims(v),
      dtype: (v) => self.dtype(v),
      emit: (opType, inputs, outputs, a) => {
        const n = new Node({ opType, inputs, outputs, attrs: (a ?? {}) as Record<string, AttrValue> });
        n.name = self.fresh(`${op.type}_${idx}`);
        self.g.nodes.push(n);
      },
      op1: (opType, inputs, a, hint) => {
        const o = self.fresh(hint ?? opType.toLowerCase());
        ctx.emit(opType, inputs, [o], a);
        return o;
      },
      tmp: (hint) => self.fresh(hint),
      konstant: (t, hint) => self.konstant(t, hint),
      bindConst: (v, t) => {
        const n = self.write(v);
        self.g.initializers.set(n, t);
      },
      value: (n) => self.g.initializers.get(n),
      i64: (values) => self.i64(values),
      scalar: (v, dt = "float32") => self.scalar(v, dt),
      unsupported: (detail) => {
        throw new UnknownOpError(op.type, "paddle", label, detail, self.file);
      },
      bad: (detail) => {
        throw new ModelFormatError(`op ${label}: ${detail}`, self.file);
      },
    };
    return ctx;
  }

  badAttr(label: string, name: string, v: PaddleAttr, want: string): never {
    throw new ModelFormatError(`op ${label}: attribute '${name}' is ${JSON.stringify(v)}, expected ${want}`, this.file);
  }
}

function convert(
  block: PBlock,
  vars: Map<string, PVar>,
  specs: readonly ParamSpec[],
  params: Map<string, Tensor> | undefined,
  file: string,
  opts: ReadPaddleOptions,
): Graph {
  const cv = new Converter(vars, file);
  const g = cv.g;
  g.name = basename(file).replace(/\.pdmodel$/, "");
  const ops = block.ops ?? [];

  // unknown ops first: one clear error before any work
  ops.forEach((op, idx) => {
    if (op.type !== "feed" && op.type !== "fetch" && !PADDLE_OPS[op.type]) {
      const out = (op.outputs ?? []).flatMap((s) => s.arguments ?? [])[0] ?? "?";
      throw new UnknownOpError(op.type, "paddle", `#${idx} ${op.type} -> ${out}`, "q has no converter for this Paddle op", file);
    }
  });

  // parameters: initializers, or graph inputs for a graph-only model
  const paramInfo = new Map<string, ValueInfo>();
  for (const s of specs) {
    if (params) g.initializers.set(s.name, params.get(s.name)!);
    else paramInfo.set(s.name, { name: s.name, dtype: s.dtype, shape: s.dims.map((d) => (d < 0 ? null : d)), doc: "Paddle parameter; value absent (graph-only model)" });
    cv.bind(s.name, s.name);
  }

  const feeds: { col: number; info: ValueInfo }[] = [];
  const fetches: { col: number; v: string; name: string }[] = [];
  ops.forEach((op, idx) => {
    const c = cv.ctx(op, idx);
    if (op.type === "feed") {
      const v = c.outVars("Out")[0];
      if (!v) c.bad("feed has no output variable");
      const name = cv.write(v);
      feeds.push({ col: c.i("col", feeds.length), info: inputInfo(name, cv.dims(v), cv.dtype(v)) });
    } else if (op.type === "fetch") {
      const v = c.ins("X")[0];
      if (!v) c.bad("fetch has no input variable");
      fetches.push({ col: c.i("col", fetches.length), v: c.inVar("X")!, name: v });
    } else {
      PADDLE_OPS[op.type]!(c);
    }
  });
  if (!fetches.length) throw new ModelFormatError("the program has no fetch op, so it has no outputs (not an inference model?)", file);

  g.inputs = feeds.sort((a, b) => a.col - b.col).map((f) => f.info);
  applyInputShapes(g, opts.inputShapes, file);
  g.outputs = fetches.sort((a, b) => a.col - b.col).map((f) => {
    const o: ValueInfo = { name: f.name };
    const dt = cv.dtype(f.v);
    if (dt) o.dtype = dt;
    return o;
  });
  // an output that is directly an input or a constant needs a node to produce it
  g.outputs.forEach((o) => {
    const isIn = g.inputs.some((i) => i.name === o.name) || g.initializers.has(o.name) || paramInfo.has(o.name);
    if (isIn) {
      const n = cv.fresh(`${o.name}_out`);
      g.nodes.push(new Node({ name: cv.fresh("fetch_identity"), opType: "Identity", inputs: [o.name], outputs: [n] }));
      o.name = n;
    }
  });

  g.prune();
  if (!params) {
    const used = new Set<string>();
    for (const n of g.nodes) for (const i of n.inputs) if (i) used.add(i);
    const absent = [...paramInfo.values()].filter((p) => used.has(p.name));
    g.inputs.push(...absent);
    g.metadata[PADDLE_META.paramInputs] = JSON.stringify(absent.map((p) => p.name));
    g.doc = `graph only: no params file, so the values of ${absent.length} parameters are absent; they are graph inputs ` +
      `(listed in metadata '${PADDLE_META.paramInputs}') with their declared shapes`;
  }
  return g;
}

function inputInfo(name: string, dims: number[] | undefined, dtype: DType | undefined): ValueInfo {
  const info: ValueInfo = { name };
  if (dtype) info.dtype = dtype;
  if (dims) info.shape = dims.map((d, i): Dim => (d >= 0 ? d : i === 0 ? "N" : `${name}_d${i}`));
  return info;
}

function applyInputShapes(g: Graph, shapes: Record<string, number[]> | undefined, file: string): void {
  if (!shapes) return;
  for (const [name, shape] of Object.entries(shapes)) {
    const inp = g.inputs.find((i) => i.name === name);
    if (!inp) throw new InputMismatchError(`inputShapes names '${name}', but the model's inputs are ${g.inputs.map((i) => `'${i.name}'`).join(", ")}`, file);
    const decl = inp.shape;
    if (decl && (decl.length !== shape.length || decl.some((d, k) => typeof d === "number" && d !== shape[k]))) {
      throw new InputMismatchError(`input '${name}' is declared [${decl.map((d) => (typeof d === "number" ? d : -1)).join(", ")}]; the shape [${shape.join(", ")}] does not fit it`, file);
    }
    if (shape.some((d) => !Number.isInteger(d) || d <= 0)) throw new InputMismatchError(`input '${name}': shape [${shape.join(", ")}] must be positive integers`, file);
    inp.shape = [...shape];
  }
}
