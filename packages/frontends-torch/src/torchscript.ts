/**
 * TorchScript archives (torch.jit.trace + torch.jit.save) -> IR graph. The printed code of
 * `forward` (and the submodule methods it calls, inlined) is interpreted symbolically: module
 * attributes resolve to the object tree of data.pkl (parameters become initializers named by their
 * attribute path, e.g. `layer1.0.conv1.weight`), ATen calls go through an op table that emits ONNX
 * nodes (ai.onnx opset 17), and shape logic (`size`, `NumToTensor`, `int`, list literals) is folded
 * to constants. Straight-line code only: scripted control flow is refused with a clear error.
 */
import {
  GraphBuilder, GraphError, ModelFormatError, Tensor, UnknownOpError, int64Tensor,
  type AttrInput, type DType, type Dim, type Graph,
  stridesOf,
} from "@q/ir";
import { openTorchFile, type TorchArchive } from "./container.js";
import { TensorRef, TorchObject, isTuple } from "./pickle.js";
import { moduleOfCodePath, parseTorchScriptSource, type ClassDef, type Expr, type Method, type Stmt } from "./ts-parse.js";

export interface ReadTorchScriptOptions {
  /**
   * Concrete shapes of the forward inputs by parameter name (e.g. `{ x: [1, 3, 32, 32] }`). Without
   * them, inputs get symbolic dims (batch `N`, spatial dims) whose rank is taken from their first use.
   */
  inputShapes?: Record<string, number[]>;
  /** Method to convert (default "forward"). */
  method?: string;
}

/** A graph value. */
class TV {
  constructor(readonly name: string) {}
}
/** A symbolic size from `size(t, axis)` (numbers are folded to plain numbers). */
class DimV {
  constructor(
    readonly value: Dim,
    readonly tensor: string,
    readonly axis: number,
  ) {}
}
class ModV {
  constructor(
    readonly obj: TorchObject,
    readonly path: string,
  ) {}
}
class MethodV {
  constructor(
    readonly mod: ModV,
    readonly method: Method,
    readonly cls: ClassDef,
  ) {}
}
class NsV {
  constructor(readonly path: string) {}
}
class BuiltinV {
  constructor(readonly name: string) {}
}
class MethodOnTensor {
  constructor(
    readonly self: TV,
    readonly name: string,
  ) {}
}

const CONSTANTS = Symbol("CONSTANTS");

type V = null | boolean | number | string | TV | DimV | ModV | MethodV | MethodOnTensor | NsV | BuiltinV | typeof CONSTANTS | V[] | readonly V[];

const INT64_MAX = 9223372036854775807;

interface OpDef {
  params: string[];
  defaults?: Record<string, V>;
  fn: (c: Converter, a: Record<string, V>, op: string) => V;
}

/** Scalar type codes of ATen (`torch.to(x, 6)` etc.). */
const SCALAR_TYPES: Record<number, DType> = { 0: "uint8", 1: "int8", 2: "int16", 3: "int32", 4: "int64", 5: "float16", 6: "float32", 7: "float64", 11: "bool", 15: "bfloat16" };

class Converter {
  readonly b = new GraphBuilder({ name: "torchscript" });
  private readonly paramNames = new Map<TensorRef, string>();
  private readonly scope: string[] = [];
  private depth = 0;
  /** Graph inputs whose shape is still unknown (refined at first use). */
  private readonly openInputs = new Set<string>();

  constructor(
    readonly ar: TorchArchive,
    readonly classes: Map<string, ClassDef>,
    readonly file: string,
  ) {}

  // ---------------------------------------------------------------- helpers used by the op table

  fail(msg: string): never {
    throw new ModelFormatError(`TorchScript${this.where()}: ${msg}`, this.file);
  }
  private where(): string {
    const s = this.scope[this.scope.length - 1];
    return s ? ` (in ${s})` : "";
  }

  /** Emit an ONNX node, named after the current module path. */
  emit(opType: string, inputs: string[], attrs: Record<string, AttrInput | undefined> = {}, n = 1): string[] {
    const s = this.scope[this.scope.length - 1];
    return this.b.op(opType, inputs, attrs, { base: s ? `${s}/${opType}` : opType, count: n });
  }
  emit1(opType: string, inputs: string[], attrs: Record<string, AttrInput | undefined> = {}): string {
    return this.emit(opType, inputs, attrs)[0]!;
  }

  tensor(v: V, what: string, like?: string): string {
    if (v instanceof TV) return v.name;
    if (typeof v === "number" || typeof v === "boolean") return this.scalar(Number(v), like);
    if (v instanceof DimV) this.fail(`${what}: the size is symbolic (${String(v.value)}); pass concrete inputShapes`);
    return this.fail(`${what}: expected a tensor, got ${kind(v)}`);
  }
  /** A scalar constant of the dtype of `like` (float32 by default). */
  scalar(x: number, like?: string): string {
    const dt = (like && this.b.dtype(like)) || "float32";
    const t = dt === "int64" ? int64Tensor([], [x]) : Tensor.fromNumbers(dt === "float32" || dt === "float16" || dt === "float64" || dt === "int32" ? dt : "float32", [], [x]);
    return this.b.initializer(`const_${String(x).replace(/[^0-9a-zA-Z_]/g, "_")}`, t);
  }
  num(v: V, what: string): number {
    if (typeof v === "number") return v;
    if (typeof v === "boolean") return v ? 1 : 0;
    if (v instanceof DimV && typeof v.value === "number") return v.value;
    if (v instanceof DimV) this.fail(`${what}: size ${String(v.value)} is symbolic; pass concrete inputShapes`);
    return this.fail(`${what}: expected a number, got ${kind(v)}`);
  }
  ints(v: V, what: string, n?: number): number[] {
    if (Array.isArray(v)) {
      const r = v.map((x) => this.num(x, what));
      if (n !== undefined && r.length === 1 && n > 1) return new Array<number>(n).fill(r[0]!);
      return r;
    }
    const x = this.num(v, what);
    return new Array<number>(n ?? 1).fill(x);
  }
  bool(v: V): boolean {
    return v === true || (typeof v === "number" && v !== 0);
  }
  shape(t: string): Dim[] | undefined {
    return this.b.shape(t);
  }
  rank(t: string, what: string): number {
    const s = this.shape(t);
    if (!s) this.fail(`${what}: the rank of its input is unknown; pass inputShapes`);
    return s.length;
  }
  /** Give an input of unknown shape a symbolic shape of `rank` dims with `channels` at axis 1. */
  refineInput(t: string, rank: number, channels?: number): void {
    if (!this.openInputs.has(t)) return;
    this.openInputs.delete(t);
    const names = rank === 4 ? ["N", "C", "H", "W"] : rank === 3 ? ["N", "C", "L"] : rank === 5 ? ["N", "C", "D", "H", "W"] : Array.from({ length: rank }, (_, i) => `d${i}`);
    const shape: Dim[] = names.map((n) => `${t}_${n}`);
    shape[0] = "N";
    if (channels !== undefined && rank >= 2) shape[1] = channels;
    this.b.setInputShape(t, shape);
  }
  /** Initializer `t` transposed by `perm` (constant folding for weights). */
  transposeConst(name: string, perm: number[]): string | undefined {
    const t = this.b.value(name);
    if (!t || t.dtype !== "float32") return undefined;
    const src = t.data as Float32Array;
    const shape = perm.map((p) => t.shape[p]!);
    const inStr = strides(t.shape);
    const out = new Float32Array(src.length);
    const idx = new Array<number>(shape.length).fill(0);
    for (let k = 0; k < out.length; k++) {
      let off = 0;
      for (let d = 0; d < shape.length; d++) off += idx[d]! * inStr[perm[d]!]!;
      out[k] = src[off]!;
      for (let d = shape.length - 1; d >= 0; d--) {
        if (++idx[d]! < shape[d]!) break;
        idx[d] = 0;
      }
    }
    return this.b.initializer(`${name}_T`, new Tensor("float32", shape, out));
  }

  // ---------------------------------------------------------------- module tree and evaluation

  private param(ref: TensorRef, path: string): TV {
    let name = this.paramNames.get(ref);
    if (!name) {
      name = this.b.initializer(path, this.ar.tensor(ref, `parameter '${path}'`));
      this.paramNames.set(ref, name);
    }
    return new TV(name);
  }

  private classOf(obj: TorchObject): ClassDef {
    const c = this.classes.get(obj.className);
    if (!c) this.fail(`class ${obj.className} has no code in the archive`);
    return c;
  }

  private getAttr(obj: V, name: string): V {
    if (obj instanceof ModV) {
      const cls = this.classes.get(obj.obj.className);
      const m = cls?.methods.get(name);
      if (m && cls) return new MethodV(obj, m, cls);
      if (!obj.obj.attrs.has(name)) this.fail(`module '${obj.path || "self"}' (${obj.obj.className}) has no attribute '${name}'`);
      return this.wrap(obj.obj.attrs.get(name), obj.path ? `${obj.path}.${name}` : name);
    }
    if (obj instanceof NsV) return new NsV(`${obj.path}.${name}`);
    if (obj === CONSTANTS) {
      const m = /^c(\d+)$/.exec(name);
      const consts = this.ar.constants;
      const v = m && Array.isArray(consts) ? consts[Number(m[1])] : undefined;
      if (v === undefined) this.fail(`CONSTANTS.${name} is not in constants.pkl`);
      return this.wrap(v, `CONSTANTS.${name}`);
    }
    if (obj instanceof TV) return new MethodOnTensor(obj, name);
    return this.fail(`attribute '${name}' of ${kind(obj)} is not supported`);
  }

  private wrap(v: unknown, path: string): V {
    if (v instanceof TorchObject) return new ModV(v, path);
    if (v instanceof TensorRef) return this.param(v, path);
    if (v === null || typeof v === "boolean" || typeof v === "number" || typeof v === "string") return v;
    if (typeof v === "bigint") return Number(v);
    if (Array.isArray(v)) {
      const items = v.map((x, i) => this.wrap(x, `${path}.${i}`));
      return isTuple(v) ? Object.freeze(items) : items;
    }
    return this.fail(`attribute '${path}' holds a value the reader cannot use`);
  }

  callMethod(m: MethodV, args: V[], kwargs: [string, V][] = []): V {
    if (++this.depth > 200) this.fail(`method calls nest too deep`);
    const env = new Map<string, V>();
    const params = m.method.params;
    env.set(params[0] ?? "self", m.mod);
    const rest = params.slice(1);
    if (args.length > rest.length) this.fail(`${m.cls.qualname}.${m.method.name} takes ${rest.length} arguments, got ${args.length}`);
    rest.forEach((p, i) => {
      if (i < args.length) env.set(p, args[i]!);
    });
    for (const [k, v] of kwargs) env.set(k, v);
    this.scope.push(m.mod.path || "");
    try {
      return this.exec(m.method.body, env, `${m.cls.qualname}.${m.method.name}`);
    } finally {
      this.scope.pop();
      this.depth--;
    }
  }

  private exec(body: Stmt[], env: Map<string, V>, where: string): V {
    for (const s of body) {
      switch (s.k) {
        case "pass":
          break;
        case "unsupported":
          throw new ModelFormatError(
            `TorchScript ${where}, line ${s.line}: '${s.what}' is not supported (scripted control flow). Convert a traced model (torch.jit.trace), export ONNX, or use the model-definition route`,
            this.file,
          );
        case "expr":
          this.eval(s.value, env);
          break;
        case "assign": {
          const v = this.eval(s.value, env);
          if (s.targets.length === 1) env.set(s.targets[0]!, v);
          else {
            if (!Array.isArray(v) || v.length !== s.targets.length) this.fail(`cannot unpack ${kind(v)} into ${s.targets.length} names (line ${s.line})`);
            s.targets.forEach((t, i) => env.set(t, (v as V[])[i]!));
          }
          break;
        }
        case "return":
          return s.value ? this.eval(s.value, env) : null;
      }
    }
    return null;
  }

  eval(e: Expr, env: Map<string, V>): V {
    switch (e.k) {
      case "num":
        return e.v;
      case "str":
        return e.v;
      case "const":
        return e.v;
      case "name": {
        const v = env.get(e.id);
        if (v !== undefined) return v;
        if (e.id === "torch" || e.id === "ops" || e.id === "math") return new NsV(e.id);
        if (e.id === "CONSTANTS") return CONSTANTS;
        if (BUILTINS.has(e.id)) return new BuiltinV(e.id);
        return this.fail(`name '${e.id}' is not defined`);
      }
      case "list":
        return e.items.map((x) => this.eval(x, env));
      case "tuple":
        return Object.freeze(e.items.map((x) => this.eval(x, env)));
      case "attr":
        return this.getAttr(this.eval(e.obj, env), e.name);
      case "index": {
        const o = this.eval(e.obj, env);
        if (o instanceof NsV || o instanceof BuiltinV) return o; // type expressions such as List[int]
        const i = this.eval(e.index, env);
        if (Array.isArray(o)) {
          const k = this.num(i, "index");
          const v = o[k < 0 ? o.length + k : k];
          if (v === undefined) this.fail(`index ${k} out of range`);
          return v;
        }
        if (o instanceof TV) return this.callOp("select", [o, 0, i], []);
        return this.fail(`cannot index ${kind(o)}`);
      }
      case "unary": {
        const x = this.eval(e.x, env);
        if (e.op === "not") return !this.bool(x);
        if (e.op === "+") return x;
        if (x instanceof TV) return new TV(this.emit1("Neg", [x.name]));
        if (e.op === "-") return -this.num(x, "negation");
        return ~this.num(x, "bitwise not");
      }
      case "bin":
        return this.binary(e.op, this.eval(e.a, env), this.eval(e.b, env));
      case "call": {
        const fn = e.fn.k === "name" && e.fn.id === "annotate" ? new BuiltinV("annotate") : this.eval(e.fn, env);
        if (fn instanceof BuiltinV && (fn.name === "annotate" || fn.name === "unchecked_cast")) return this.eval(e.args[1]!, env);
        const args = e.args.map((a) => this.eval(a, env));
        const kwargs: [string, V][] = e.kwargs.map(([k, a]) => [k, this.eval(a, env)]);
        return this.call(fn, args, kwargs);
      }
    }
  }

  private call(fn: V, args: V[], kwargs: [string, V][]): V {
    if (fn instanceof MethodV) return this.callMethod(fn, args, kwargs);
    if (fn instanceof ModV) {
      const m = this.getAttr(fn, "forward");
      if (m instanceof MethodV) return this.callMethod(m, args, kwargs);
    }
    if (fn instanceof MethodOnTensor) return this.callOp(fn.name, [fn.self, ...args], kwargs);
    if (fn instanceof NsV) {
      const p = fn.path;
      const op = p.startsWith("torch.") ? p.slice(6) : p.startsWith("ops.aten.") ? p.slice(9) : p.startsWith("ops.prim.") ? `prim::${p.slice(9)}` : p.startsWith("math.") ? `math::${p.slice(5)}` : p;
      return this.callOp(op, args, kwargs);
    }
    if (fn instanceof BuiltinV) return this.builtin(fn.name, args);
    return this.fail(`cannot call ${kind(fn)}`);
  }

  private builtin(name: string, args: V[]): V {
    const x = args[0] ?? null;
    switch (name) {
      case "getattr":
        return this.getAttr(x, String(args[1]));
      case "int":
        if (x instanceof DimV) return x;
        return Math.trunc(this.num(x, "int()"));
      case "float":
        if (x instanceof DimV) return x;
        return this.num(x, "float()");
      case "bool":
        return this.bool(x);
      case "len":
        if (Array.isArray(x)) return x.length;
        return this.fail(`len() of ${kind(x)}`);
      case "uninitialized":
        return null;
      default:
        return this.fail(`builtin ${name}() is not supported`);
    }
  }

  private binary(op: string, a: V, b: V): V {
    if (a instanceof TV || b instanceof TV) {
      const map: Record<string, string> = { "+": "add", "-": "sub", "*": "mul", "/": "div", "@": "matmul" };
      const name = map[op];
      if (!name) this.fail(`operator '${op}' on tensors is not supported`);
      return this.callOp(name, [a, b], []);
    }
    if (op === "and") return this.bool(a) && this.bool(b);
    if (op === "or") return this.bool(a) || this.bool(b);
    if (op === "is" || op === "==") return a === b;
    if (op === "is not" || op === "!=") return a !== b;
    if (Array.isArray(a) && Array.isArray(b) && op === "+") return [...a, ...b];
    const x = this.num(a, `operator ${op}`);
    const y = this.num(b, `operator ${op}`);
    switch (op) {
      case "+": return x + y;
      case "-": return x - y;
      case "*": return x * y;
      case "/": return x / y;
      case "//": return Math.floor(x / y);
      case "%": return x - Math.floor(x / y) * y;
      case "**": return x ** y;
      case "<": return x < y;
      case ">": return x > y;
      case "<=": return x <= y;
      case ">=": return x >= y;
      default: return this.fail(`operator '${op}' is not supported`);
    }
  }

  callOp(op: string, args: V[], kwargs: [string, V][]): V {
    const def = OPS[op];
    if (!def) {
      const s = this.scope[this.scope.length - 1] ?? "";
      throw new UnknownOpError(op.includes("::") ? op : `aten::${op}`, "torch", s || "forward",
        "not supported by the TorchScript reader; export the model to ONNX (torch.onnx.export) or use the model-definition route (-uds script)", this.file);
    }
    const a: Record<string, V> = { ...(def.defaults ?? {}) };
    if (args.length > def.params.length) this.fail(`${op}: too many arguments (${args.length})`);
    args.forEach((v, i) => (a[def.params[i]!] = v));
    for (const [k, v] of kwargs) {
      if (!def.params.includes(k)) this.fail(`${op}: unknown keyword argument '${k}'`);
      a[k] = v;
    }
    return def.fn(this, a, op);
  }

  // ---------------------------------------------------------------- entry point

  convert(root: TorchObject, methodName: string, inputShapes?: Record<string, number[]>): Graph {
    const mod = new ModV(root, "");
    const cls = this.classOf(root);
    const m = cls.methods.get(methodName);
    if (!m) this.fail(`class ${cls.qualname} has no method '${methodName}'`);
    const inputs: V[] = [];
    for (const p of m.params.slice(1)) {
      const shape = inputShapes?.[p];
      this.b.input(p, "float32", shape);
      if (!shape) this.openInputs.add(p);
      inputs.push(new TV(p));
    }
    if (inputShapes) {
      for (const k of Object.keys(inputShapes)) {
        if (!m.params.includes(k) || k === m.params[0]) throw new GraphError(`inputShapes names '${k}', but ${methodName} takes ${m.params.slice(1).join(", ")}`, this.file);
      }
    }
    const out = this.callMethod(new MethodV(mod, m, cls), inputs);
    const outs = Array.isArray(out) ? out : [out];
    const names = outs.map((o, i) => {
      if (!(o instanceof TV)) this.fail(`${methodName} returns ${kind(o)}; only tensors can be graph outputs`);
      return outs.length === 1 ? "output" : `output_${i}`;
    });
    outs.forEach((o, i) => this.bindOutput((o as TV).name, names[i]!));
    const g = this.b.build();
    g.producerName = "q-frontends-torch";
    g.source = this.file;
    return g;
  }

  /** Make value `v` a graph output called `name`, renaming its producer's output when possible. */
  private bindOutput(v: string, name: string): void {
    const g = this.b.graph;
    const producer = g.nodes.some((n) => n.outputs.includes(v));
    const taken = g.outputs.some((o) => o.name === v);
    const free = !this.b.info(name) && !g.initializers.has(name) && !g.inputs.some((i) => i.name === name);
    if (producer && !taken && free) this.b.output(this.b.rename(v, name));
    else this.b.output(this.b.op("Identity", [v], {}, free ? { outputs: [name] } : 1)[0]!);
  }
}

const BUILTINS = new Set(["getattr", "int", "float", "bool", "len", "uninitialized", "annotate", "unchecked_cast", "List", "Tuple", "Optional", "Tensor", "Dict", "str", "number"]);

function kind(v: unknown): string {
  if (v === null) return "None";
  if (v instanceof TV) return "a tensor";
  if (v instanceof ModV) return `module ${v.path || "self"}`;
  if (Array.isArray(v)) return isTuple(v) ? "a tuple" : "a list";
  if (v instanceof DimV) return "a size";
  return typeof v === "object" ? (v as object).constructor.name : typeof v;
}

const strides = stridesOf;

// ------------------------------------------------------------------------------ the op table

const t = (c: Converter, v: V, what: string, like?: string) => c.tensor(v, what, like);
const T = (name: string) => new TV(name);

function unary(onnx: string): OpDef {
  return { params: ["self"], fn: (c, a) => T(c.emit1(onnx, [t(c, a.self!, onnx)])) };
}

function binaryOp(onnx: string, hasAlpha: boolean, reverse = false): OpDef {
  return {
    params: hasAlpha ? ["self", "other", "alpha"] : ["self", "other", "rounding_mode"],
    defaults: hasAlpha ? { alpha: 1 } : { rounding_mode: null },
    fn: (c, a, op) => {
      let x = a.self!;
      let y = a.other!;
      if (reverse) [x, y] = [y, x];
      const alpha = hasAlpha ? c.num(a.alpha!, `${op} alpha`) : 1;
      const isScalar = (v: V) => typeof v === "number" || typeof v === "boolean" || (v instanceof DimV);
      if (isScalar(x) && isScalar(y)) {
        const p = c.num(x, op);
        const q = c.num(y, op) * (reverse ? 1 : alpha);
        const r = onnx === "Add" ? p + q : onnx === "Sub" ? p - q : onnx === "Mul" ? p * q : p / q;
        return a.rounding_mode === "floor" ? Math.floor(r) : a.rounding_mode === "trunc" ? Math.trunc(r) : r;
      }
      const like = x instanceof TV ? x.name : y instanceof TV ? y.name : undefined;
      let yn: string;
      if (alpha !== 1 && !(y instanceof TV)) yn = c.scalar(c.num(y, op) * alpha, like);
      else {
        yn = t(c, y, op, like);
        if (alpha !== 1) yn = c.emit1("Mul", [yn, c.scalar(alpha, like)]);
      }
      let out = c.emit1(onnx, [t(c, x, op, like), yn]);
      if (onnx === "Div" && a.rounding_mode === "floor") out = c.emit1("Floor", [out]);
      return T(out);
    },
  };
}

function convCore(c: Converter, a: Record<string, V>, transposed: boolean): V {
  const x = t(c, a.input!, "conv input");
  const w = t(c, a.weight!, "conv weight");
  const ws = c.shape(w);
  if (!ws || ws.some((d) => typeof d !== "number")) return c.fail(`conv weight shape is unknown`);
  const k = ws.length - 2;
  const groups = c.num(a.groups ?? 1, "groups");
  c.refineInput(x, ws.length, transposed ? (ws[0] as number) : (ws[1] as number) * groups);
  const attrs: Record<string, AttrInput | undefined> = {
    strides: c.ints(a.stride ?? 1, "stride", k),
    dilations: c.ints(a.dilation ?? 1, "dilation", k),
    group: groups,
    kernel_shape: ws.slice(2) as number[],
  };
  if (typeof a.padding === "string") {
    if (a.padding === "same") attrs.auto_pad = "SAME_UPPER";
    else attrs.pads = new Array<number>(2 * k).fill(0);
  } else {
    const p = c.ints(a.padding ?? 0, "padding", k);
    attrs.pads = [...p, ...p];
  }
  if (transposed) {
    const op = c.ints(a.output_padding ?? 0, "output_padding", k);
    if (op.some((v) => v !== 0)) attrs.output_padding = op;
  }
  const ins = [x, w];
  if (a.bias !== null && a.bias !== undefined) ins.push(t(c, a.bias, "conv bias"));
  return T(c.emit1(transposed ? "ConvTranspose" : "Conv", ins, attrs));
}

function poolCore(c: Converter, a: Record<string, V>, onnx: "MaxPool" | "AveragePool"): V {
  const x = t(c, a.self!, onnx);
  const kernel = c.ints(a.kernel_size!, "kernel_size");
  const k = kernel.length === 1 && a.kernel_size !== null && !Array.isArray(a.kernel_size) ? 2 : kernel.length;
  const ks = kernel.length === 1 ? new Array<number>(k).fill(kernel[0]!) : kernel;
  const st = Array.isArray(a.stride) && a.stride.length === 0 || a.stride === null || a.stride === undefined ? ks : c.ints(a.stride, "stride", k);
  const p = c.ints(a.padding ?? 0, "padding", k);
  c.refineInput(x, k + 2);
  const attrs: Record<string, AttrInput | undefined> = { kernel_shape: ks, strides: st, pads: [...p, ...p], ceil_mode: c.bool(a.ceil_mode ?? false) ? 1 : 0 };
  if (onnx === "MaxPool") {
    const d = c.ints(a.dilation ?? 1, "dilation", k);
    if (d.some((v) => v !== 1)) attrs.dilations = d;
  } else {
    attrs.count_include_pad = c.bool(a.count_include_pad ?? true) ? 1 : 0;
    if (a.divisor_override !== null && a.divisor_override !== undefined) return c.fail(`avg_pool divisor_override is not supported`);
  }
  return T(c.emit1(onnx, [x], attrs));
}

function adaptivePool(c: Converter, a: Record<string, V>, global: string, pool: "MaxPool" | "AveragePool", withIndices: boolean): V {
  const x = t(c, a.self!, global);
  const size = c.ints(a.output_size!, "output_size");
  c.refineInput(x, size.length + 2);
  let out: string;
  if (size.every((s) => s === 1)) out = c.emit1(global, [x]);
  else {
    const sh = c.shape(x);
    const spatial = sh?.slice(2);
    if (!spatial || spatial.length !== size.length || spatial.some((d, i) => typeof d !== "number" || d % size[i]! !== 0)) {
      c.fail(`adaptive pooling to [${size}] needs input spatial dims that are known multiples of it; pass inputShapes`);
    }
    const k = spatial.map((d, i) => (d as number) / size[i]!);
    out = c.emit1(pool, [x], { kernel_shape: k, strides: k });
  }
  return withIndices ? Object.freeze([T(out), null]) : T(out);
}

function padCore(c: Converter, x: string, pad: number[], mode: string, value: number): V {
  const r = c.rank(x, "pad");
  if (pad.length % 2 || pad.length / 2 > r) return c.fail(`pad list [${pad}] does not fit a rank-${r} input`);
  const begins = new Array<number>(r).fill(0);
  const ends = new Array<number>(r).fill(0);
  for (let j = 0; j < pad.length / 2; j++) {
    begins[r - 1 - j] = pad[2 * j]!;
    ends[r - 1 - j] = pad[2 * j + 1]!;
  }
  const onnxMode = mode === "constant" ? "constant" : mode === "reflect" ? "reflect" : mode === "replicate" ? "edge" : c.fail(`pad mode '${mode}' is not supported`);
  const ins = [x, c.b.ints(`${x}_pads`, [...begins, ...ends])];
  if (onnxMode === "constant" && value !== 0) ins.push(c.scalar(value, x));
  return T(c.emit1("Pad", ins, { mode: onnxMode }));
}

function resizeCore(c: Converter, x: string, size: V, scales: V, mode: "nearest" | "linear", alignCorners: boolean): V {
  const sh = c.shape(x);
  const k = Array.isArray(size) ? size.length : Array.isArray(scales) ? scales.length : 2;
  c.refineInput(x, k + 2);
  let sc: number[] | undefined;
  if (Array.isArray(scales)) sc = scales.map((v) => c.num(v, "scale"));
  else if (Array.isArray(size)) {
    const out = size.map((v) => c.num(v, "output size"));
    const sp = sh?.slice(2);
    if (!sp || sp.some((d) => typeof d !== "number")) return c.fail(`resize to a fixed size needs known input spatial dims; pass inputShapes`);
    sc = out.map((o, i) => o / (sp[i] as number));
  } else c.fail(`upsample needs output_size or scale_factors`);
  const scalesName = c.b.floats(`${x}_scales`, [k + 2], [1, 1, ...sc]);
  const attrs: Record<string, AttrInput | undefined> = { mode };
  if (mode === "nearest") {
    attrs.coordinate_transformation_mode = "asymmetric";
    attrs.nearest_mode = "floor";
  } else attrs.coordinate_transformation_mode = alignCorners ? "align_corners" : "pytorch_half_pixel";
  return T(c.emit1("Resize", [x, "", scalesName], attrs));
}

/** Reshape with a torch size list: sizes taken from the same input axis become 0 (copy). */
function reshapeCore(c: Converter, x: string, sizes: V): V {
  if (!Array.isArray(sizes)) return c.fail(`view/reshape needs a size list`);
  let unknown = sizes.filter((v) => v === -1).length;
  const shape = sizes.map((v, i) => {
    if (v instanceof DimV) {
      if (v.tensor === x && v.axis === i) return 0;
      if (typeof v.value === "number") return v.value;
      if (unknown === 0) {
        unknown++;
        return -1;
      }
      return c.fail(`view/reshape with symbolic size ${String(v.value)}; pass concrete inputShapes`);
    }
    return c.num(v, "view size");
  });
  return T(c.emit1("Reshape", [x, c.b.ints(`${x}_shape`, shape)]));
}

function geluCore(c: Converter, x: string, approximate: string): V {
  if (approximate === "tanh") {
    // 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))
    const x3 = c.emit1("Mul", [c.emit1("Mul", [x, x]), x]);
    const inner = c.emit1("Mul", [c.emit1("Add", [x, c.emit1("Mul", [x3, c.scalar(0.044715, x)])]), c.scalar(Math.sqrt(2 / Math.PI), x)]);
    const th = c.emit1("Add", [c.emit1("Tanh", [inner]), c.scalar(1, x)]);
    return T(c.emit1("Mul", [c.emit1("Mul", [x, th]), c.scalar(0.5, x)]));
  }
  const erf = c.emit1("Erf", [c.emit1("Div", [x, c.scalar(Math.SQRT2, x)])]);
  const onePlus = c.emit1("Add", [erf, c.scalar(1, x)]);
  return T(c.emit1("Mul", [c.emit1("Mul", [x, onePlus]), c.scalar(0.5, x)]));
}

function clip(c: Converter, x: string, lo: number, hi: number): V {
  return T(c.emit1("Clip", [x, c.scalar(lo, x), c.scalar(hi, x)]));
}

function normAxis(c: Converter, x: string, d: number, what: string): number {
  if (d >= 0) return d;
  return c.rank(x, what) + d;
}

function sizeOf(c: Converter, x: string, d: number): V {
  const sh = c.shape(x);
  if (!sh) return c.fail(`size(): the shape of the input is unknown; pass inputShapes`);
  const ax = d < 0 ? sh.length + d : d;
  const v = sh[ax];
  if (v === undefined) return c.fail(`size(${d}) of a rank-${sh.length} tensor`);
  return typeof v === "number" ? v : new DimV(v, x, ax);
}

const OPS: Record<string, OpDef> = {
  _convolution: {
    params: ["input", "weight", "bias", "stride", "padding", "dilation", "transposed", "output_padding", "groups", "benchmark", "deterministic", "cudnn_enabled", "allow_tf32"],
    fn: (c, a) => convCore(c, a, c.bool(a.transposed!)),
  },
  conv1d: { params: ["input", "weight", "bias", "stride", "padding", "dilation", "groups"], defaults: { bias: null }, fn: (c, a) => convCore(c, a, false) },
  conv2d: { params: ["input", "weight", "bias", "stride", "padding", "dilation", "groups"], defaults: { bias: null }, fn: (c, a) => convCore(c, a, false) },
  conv3d: { params: ["input", "weight", "bias", "stride", "padding", "dilation", "groups"], defaults: { bias: null }, fn: (c, a) => convCore(c, a, false) },
  conv_transpose2d: { params: ["input", "weight", "bias", "stride", "padding", "output_padding", "groups", "dilation"], defaults: { bias: null }, fn: (c, a) => convCore(c, a, true) },
  batch_norm: {
    params: ["input", "weight", "bias", "running_mean", "running_var", "training", "momentum", "eps", "cudnn_enabled"],
    defaults: { eps: 1e-5 },
    fn: (c, a) => {
      const x = t(c, a.input!, "batch_norm input");
      if (a.running_mean === null || a.running_var === null) return c.fail(`batch_norm without running statistics (track_running_stats=False) is not supported`);
      const mean = t(c, a.running_mean!, "running_mean");
      const ch = c.shape(mean)?.[0];
      if (typeof ch !== "number") return c.fail(`batch_norm: running_mean has no known size`);
      const scale = a.weight === null ? c.b.floats("bn_ones", [ch], new Float32Array(ch).fill(1)) : t(c, a.weight!, "weight");
      const bias = a.bias === null ? c.b.floats("bn_zeros", [ch], new Float32Array(ch)) : t(c, a.bias!, "bias");
      return T(c.emit1("BatchNormalization", [x, scale, bias, mean, t(c, a.running_var!, "running_var")], { epsilon: c.num(a.eps!, "eps") }));
    },
  },
  layer_norm: {
    params: ["input", "normalized_shape", "weight", "bias", "eps", "cudnn_enable"],
    defaults: { weight: null, bias: null, eps: 1e-5 },
    fn: (c, a) => {
      const x = t(c, a.input!, "layer_norm input");
      const ns = c.ints(a.normalized_shape!, "normalized_shape");
      const n = ns.reduce((p, q) => p * q, 1);
      const scale = a.weight === null ? c.b.floats("ln_ones", ns, new Float32Array(n).fill(1)) : t(c, a.weight!, "weight");
      const ins = [x, scale];
      if (a.bias !== null) ins.push(t(c, a.bias!, "bias"));
      return T(c.emit1("LayerNormalization", ins, { axis: -ns.length, epsilon: c.num(a.eps!, "eps") }));
    },
  },
  relu: unary("Relu"),
  relu_: unary("Relu"),
  sigmoid: unary("Sigmoid"),
  sigmoid_: unary("Sigmoid"),
  tanh: unary("Tanh"),
  tanh_: unary("Tanh"),
  hardswish: unary("HardSwish"),
  hardswish_: unary("HardSwish"),
  exp: unary("Exp"),
  log: unary("Log"),
  sqrt: unary("Sqrt"),
  abs: unary("Abs"),
  neg: unary("Neg"),
  erf: unary("Erf"),
  reciprocal: unary("Reciprocal"),
  floor: unary("Floor"),
  ceil: unary("Ceil"),
  hardsigmoid: { params: ["self"], fn: (c, a) => T(c.emit1("HardSigmoid", [t(c, a.self!, "hardsigmoid")], { alpha: 1 / 6, beta: 0.5 })) },
  hardsigmoid_: { params: ["self"], fn: (c, a) => T(c.emit1("HardSigmoid", [t(c, a.self!, "hardsigmoid")], { alpha: 1 / 6, beta: 0.5 })) },
  leaky_relu: { params: ["self", "negative_slope"], defaults: { negative_slope: 0.01 }, fn: (c, a) => T(c.emit1("LeakyRelu", [t(c, a.self!, "leaky_relu")], { alpha: c.num(a.negative_slope!, "negative_slope") })) },
  leaky_relu_: { params: ["self", "negative_slope"], defaults: { negative_slope: 0.01 }, fn: (c, a) => T(c.emit1("LeakyRelu", [t(c, a.self!, "leaky_relu")], { alpha: c.num(a.negative_slope!, "negative_slope") })) },
  hardtanh: { params: ["self", "min_val", "max_val"], defaults: { min_val: -1, max_val: 1 }, fn: (c, a) => clip(c, t(c, a.self!, "hardtanh"), c.num(a.min_val!, "min_val"), c.num(a.max_val!, "max_val")) },
  hardtanh_: { params: ["self", "min_val", "max_val"], defaults: { min_val: -1, max_val: 1 }, fn: (c, a) => clip(c, t(c, a.self!, "hardtanh"), c.num(a.min_val!, "min_val"), c.num(a.max_val!, "max_val")) },
  relu6: { params: ["self"], fn: (c, a) => clip(c, t(c, a.self!, "relu6"), 0, 6) },
  silu: { params: ["self"], fn: (c, a) => { const x = t(c, a.self!, "silu"); return T(c.emit1("Mul", [x, c.emit1("Sigmoid", [x])])); } },
  silu_: { params: ["self"], fn: (c, a) => { const x = t(c, a.self!, "silu"); return T(c.emit1("Mul", [x, c.emit1("Sigmoid", [x])])); } },
  gelu: { params: ["self", "approximate"], defaults: { approximate: "none" }, fn: (c, a) => geluCore(c, t(c, a.self!, "gelu"), String(a.approximate)) },
  softmax: { params: ["self", "dim", "dtype"], defaults: { dtype: null }, fn: (c, a) => T(c.emit1("Softmax", [t(c, a.self!, "softmax")], { axis: c.num(a.dim!, "dim") })) },
  log_softmax: { params: ["self", "dim", "dtype"], defaults: { dtype: null }, fn: (c, a) => T(c.emit1("LogSoftmax", [t(c, a.self!, "log_softmax")], { axis: c.num(a.dim!, "dim") })) },
  max_pool1d: { params: ["self", "kernel_size", "stride", "padding", "dilation", "ceil_mode"], fn: (c, a) => poolCore(c, { ...a, kernel_size: c.ints(a.kernel_size!, "kernel_size", 1) }, "MaxPool") },
  max_pool2d: { params: ["self", "kernel_size", "stride", "padding", "dilation", "ceil_mode"], fn: (c, a) => poolCore(c, { ...a, kernel_size: c.ints(a.kernel_size!, "kernel_size", 2) }, "MaxPool") },
  avg_pool1d: { params: ["self", "kernel_size", "stride", "padding", "ceil_mode", "count_include_pad"], fn: (c, a) => poolCore(c, { ...a, kernel_size: c.ints(a.kernel_size!, "kernel_size", 1) }, "AveragePool") },
  avg_pool2d: { params: ["self", "kernel_size", "stride", "padding", "ceil_mode", "count_include_pad", "divisor_override"], defaults: { divisor_override: null }, fn: (c, a) => poolCore(c, { ...a, kernel_size: c.ints(a.kernel_size!, "kernel_size", 2) }, "AveragePool") },
  adaptive_avg_pool1d: { params: ["self", "output_size"], fn: (c, a) => adaptivePool(c, a, "GlobalAveragePool", "AveragePool", false) },
  adaptive_avg_pool2d: { params: ["self", "output_size"], fn: (c, a) => adaptivePool(c, a, "GlobalAveragePool", "AveragePool", false) },
  adaptive_max_pool2d: { params: ["self", "output_size"], fn: (c, a) => adaptivePool(c, a, "GlobalMaxPool", "MaxPool", true) },
  linear: {
    params: ["input", "weight", "bias"],
    defaults: { bias: null },
    fn: (c, a) => {
      const x = t(c, a.input!, "linear input");
      const w = t(c, a.weight!, "linear weight");
      const ws = c.shape(w);
      if (ws?.length === 2 && typeof ws[1] === "number") c.refineInput(x, 2, ws[1]);
      const b = a.bias === null ? undefined : t(c, a.bias!, "linear bias");
      if (c.shape(x)?.length === 2) return T(c.emit1("Gemm", b ? [x, w, b] : [x, w], { transB: 1 }));
      const wt = c.transposeConst(w, [1, 0]) ?? c.emit1("Transpose", [w], { perm: [1, 0] });
      const y = c.emit1("MatMul", [x, wt]);
      return T(b ? c.emit1("Add", [y, b]) : y);
    },
  },
  addmm: {
    params: ["self", "mat1", "mat2", "beta", "alpha"],
    defaults: { beta: 1, alpha: 1 },
    fn: (c, a) => T(c.emit1("Gemm", [t(c, a.mat1!, "mat1"), t(c, a.mat2!, "mat2"), t(c, a.self!, "bias")], { alpha: c.num(a.alpha!, "alpha"), beta: c.num(a.beta!, "beta") })),
  },
  matmul: { params: ["self", "other"], fn: (c, a) => T(c.emit1("MatMul", [t(c, a.self!, "matmul"), t(c, a.other!, "matmul")])) },
  mm: { params: ["self", "mat2"], fn: (c, a) => T(c.emit1("MatMul", [t(c, a.self!, "mm"), t(c, a.mat2!, "mm")])) },
  bmm: { params: ["self", "mat2"], fn: (c, a) => T(c.emit1("MatMul", [t(c, a.self!, "bmm"), t(c, a.mat2!, "bmm")])) },
  add: binaryOp("Add", true),
  add_: binaryOp("Add", true),
  sub: binaryOp("Sub", true),
  sub_: binaryOp("Sub", true),
  rsub: binaryOp("Sub", true, true),
  mul: binaryOp("Mul", false),
  mul_: binaryOp("Mul", false),
  div: binaryOp("Div", false),
  div_: binaryOp("Div", false),
  floor_divide: { params: ["self", "other"], fn: (c, a) => OPS.div!.fn(c, { ...a, rounding_mode: "floor" }, "floor_divide") },
  cat: {
    params: ["tensors", "dim"],
    defaults: { dim: 0 },
    fn: (c, a) => {
      if (!Array.isArray(a.tensors)) return c.fail(`cat needs a list of tensors`);
      return T(c.emit1("Concat", a.tensors.map((v) => t(c, v, "cat")), { axis: c.num(a.dim!, "dim") }));
    },
  },
  stack: {
    params: ["tensors", "dim"],
    defaults: { dim: 0 },
    fn: (c, a) => {
      if (!Array.isArray(a.tensors)) return c.fail(`stack needs a list of tensors`);
      const d = c.num(a.dim!, "dim");
      const axes = c.b.ints("stack_axes", [d]);
      return T(c.emit1("Concat", a.tensors.map((v) => c.emit1("Unsqueeze", [t(c, v, "stack"), axes])), { axis: d }));
    },
  },
  flatten: {
    params: ["self", "start_dim", "end_dim"],
    defaults: { start_dim: 0, end_dim: -1 },
    fn: (c, a) => {
      const x = t(c, a.self!, "flatten");
      const s0 = c.num(a.start_dim!, "start_dim");
      const e0 = c.num(a.end_dim!, "end_dim");
      const sh = c.shape(x);
      if (!sh) {
        if (s0 === 1 && e0 === -1) return T(c.emit1("Flatten", [x], { axis: 1 }));
        if (s0 === 0 && e0 === -1) return T(c.emit1("Reshape", [x, c.b.ints("flat_shape", [-1])]));
        return c.fail(`flatten(${s0}, ${e0}) of an input of unknown rank; pass inputShapes`);
      }
      const r = sh.length;
      const s = s0 < 0 ? r + s0 : s0;
      const e = e0 < 0 ? r + e0 : e0;
      if (r === 0 || s >= e) return T(x);
      if (s === 1 && e === r - 1) return T(c.emit1("Flatten", [x], { axis: 1 }));
      const after = sh.slice(e + 1);
      if (after.some((d) => typeof d !== "number")) return c.fail(`flatten(${s0}, ${e0}) needs known trailing dims; pass inputShapes`);
      return T(c.emit1("Reshape", [x, c.b.ints(`${x}_flat`, [...new Array<number>(s).fill(0), -1, ...(after as number[])])]));
    },
  },
  view: { params: ["self", "size"], fn: (c, a) => reshapeCore(c, t(c, a.self!, "view"), a.size!) },
  reshape: { params: ["self", "shape"], fn: (c, a) => reshapeCore(c, t(c, a.self!, "reshape"), a.shape!) },
  permute: {
    params: ["self", "dims"],
    fn: (c, a) => {
      const x = t(c, a.self!, "permute");
      const perm = c.ints(a.dims!, "dims");
      const r = perm.length;
      const p = perm.map((d) => (d < 0 ? d + r : d));
      return T(c.transposeConst(x, p) ?? c.emit1("Transpose", [x], { perm: p }));
    },
  },
  transpose: {
    params: ["self", "dim0", "dim1"],
    fn: (c, a) => {
      const x = t(c, a.self!, "transpose");
      const r = c.rank(x, "transpose");
      const perm = Array.from({ length: r }, (_, i) => i);
      const d0 = normAxis(c, x, c.num(a.dim0!, "dim0"), "transpose");
      const d1 = normAxis(c, x, c.num(a.dim1!, "dim1"), "transpose");
      [perm[d0], perm[d1]] = [perm[d1]!, perm[d0]!];
      return T(c.transposeConst(x, perm) ?? c.emit1("Transpose", [x], { perm }));
    },
  },
  t: {
    params: ["self"],
    fn: (c, a) => {
      const x = t(c, a.self!, "t");
      if ((c.shape(x)?.length ?? 2) < 2) return T(x);
      return T(c.transposeConst(x, [1, 0]) ?? c.emit1("Transpose", [x], { perm: [1, 0] }));
    },
  },
  contiguous: { params: ["self", "memory_format"], fn: (_c, a) => a.self! },
  detach: { params: ["self"], fn: (_c, a) => a.self! },
  clone: { params: ["self", "memory_format"], fn: (_c, a) => a.self! },
  dropout: { params: ["input", "p", "train"], fn: (_c, a) => a.input! },
  dropout_: { params: ["input", "p", "train"], fn: (_c, a) => a.input! },
  feature_dropout: { params: ["input", "p", "train"], fn: (_c, a) => a.input! },
  to: {
    params: ["self", "a1", "a2", "a3", "a4", "a5"],
    fn: (c, a) => {
      const dt = [a.a1, a.a2].find((v) => typeof v === "number");
      const target = typeof dt === "number" ? SCALAR_TYPES[dt] : undefined;
      if (!(a.self instanceof TV) || !target) return a.self!;
      if (c.b.dtype(a.self.name) === target) return a.self;
      return T(c.emit1("Cast", [a.self.name], { to: { type: "int", value: ONNX_CODES[target] } }));
    },
  },
  constant_pad_nd: { params: ["self", "pad", "value"], defaults: { value: 0 }, fn: (c, a) => padCore(c, t(c, a.self!, "pad"), c.ints(a.pad!, "pad"), "constant", c.num(a.value!, "value")) },
  pad: {
    params: ["input", "pad", "mode", "value"],
    defaults: { mode: "constant", value: null },
    fn: (c, a) => padCore(c, t(c, a.input!, "pad"), c.ints(a.pad!, "pad"), String(a.mode), a.value === null ? 0 : c.num(a.value!, "value")),
  },
  reflection_pad2d: { params: ["self", "padding"], fn: (c, a) => padCore(c, t(c, a.self!, "pad"), c.ints(a.padding!, "padding"), "reflect", 0) },
  replication_pad2d: { params: ["self", "padding"], fn: (c, a) => padCore(c, t(c, a.self!, "pad"), c.ints(a.padding!, "padding"), "replicate", 0) },
  slice: {
    params: ["self", "dim", "start", "end", "step"],
    defaults: { dim: 0, start: null, end: null, step: 1 },
    fn: (c, a) => {
      const x = t(c, a.self!, "slice");
      const dim = c.num(a.dim!, "dim");
      const start = a.start === null ? 0 : c.num(a.start!, "start");
      const end = a.end === null ? INT64_MAX : c.num(a.end!, "end");
      const step = c.num(a.step!, "step");
      const sh = c.shape(x);
      const size = sh ? sh[dim < 0 ? sh.length + dim : dim] : undefined;
      if (start === 0 && step === 1 && (end >= 4611686018427387904 || (typeof size === "number" && end >= size))) return T(x);
      const ins = [x, c.b.ints("slice_starts", [start]), c.b.ints("slice_ends", [end]), c.b.ints("slice_axes", [dim]), c.b.ints("slice_steps", [step])];
      return T(c.emit1("Slice", ins));
    },
  },
  select: {
    params: ["self", "dim", "index"],
    fn: (c, a) => {
      const x = t(c, a.self!, "select");
      const idx = c.b.initializer("select_index", int64Tensor([], [c.num(a.index!, "index")]));
      return T(c.emit1("Gather", [x, idx], { axis: c.num(a.dim!, "dim") }));
    },
  },
  unsqueeze: { params: ["self", "dim"], fn: (c, a) => T(c.emit1("Unsqueeze", [t(c, a.self!, "unsqueeze"), c.b.ints("unsqueeze_axes", [c.num(a.dim!, "dim")])])) },
  squeeze: {
    params: ["self", "dim"],
    defaults: { dim: null },
    fn: (c, a) => {
      const x = t(c, a.self!, "squeeze");
      if (a.dim === null) return T(c.emit1("Squeeze", [x]));
      return T(c.emit1("Squeeze", [x, c.b.ints("squeeze_axes", c.ints(a.dim!, "dim"))]));
    },
  },
  mean: {
    params: ["self", "dim", "keepdim", "dtype"],
    defaults: { dim: null, keepdim: false, dtype: null },
    fn: (c, a) => {
      const attrs: Record<string, AttrInput | undefined> = { keepdims: c.bool(a.keepdim!) ? 1 : 0 };
      if (a.dim !== null) attrs.axes = c.ints(a.dim!, "dim");
      return T(c.emit1("ReduceMean", [t(c, a.self!, "mean")], attrs));
    },
  },
  sum: {
    params: ["self", "dim", "keepdim", "dtype"],
    defaults: { dim: null, keepdim: false, dtype: null },
    fn: (c, a) => {
      const ins = [t(c, a.self!, "sum")];
      if (a.dim !== null) ins.push(c.b.ints("sum_axes", c.ints(a.dim!, "dim")));
      return T(c.emit1("ReduceSum", ins, { keepdims: c.bool(a.keepdim!) ? 1 : 0 }));
    },
  },
  upsample_nearest2d: {
    params: ["input", "output_size", "scales_h", "scales_w"],
    defaults: { output_size: null, scales_h: null, scales_w: null },
    fn: (c, a) => {
      const x = t(c, a.input!, "upsample_nearest2d");
      const scales = Array.isArray(a.scales_h) ? a.scales_h : typeof a.scales_h === "number" && typeof a.scales_w === "number" && a.output_size === null ? [a.scales_h, a.scales_w] : null;
      return resizeCore(c, x, a.output_size!, scales, "nearest", false);
    },
  },
  upsample_bilinear2d: {
    params: ["input", "output_size", "align_corners", "scales_h", "scales_w"],
    defaults: { output_size: null, scales_h: null, scales_w: null },
    fn: (c, a) => {
      const x = t(c, a.input!, "upsample_bilinear2d");
      const scales = Array.isArray(a.scales_h) ? a.scales_h : null;
      return resizeCore(c, x, a.output_size!, scales, "linear", c.bool(a.align_corners!));
    },
  },
  size: {
    params: ["self", "dim"],
    defaults: { dim: null },
    fn: (c, a) => {
      const x = t(c, a.self!, "size");
      if (a.dim === null) {
        const sh = c.shape(x);
        if (!sh) return c.fail(`size(): the shape of the input is unknown; pass inputShapes`);
        return sh.map((_, i) => sizeOf(c, x, i));
      }
      return sizeOf(c, x, c.num(a.dim!, "dim"));
    },
  },
  dim: { params: ["self"], fn: (c, a) => c.rank(t(c, a.self!, "dim"), "dim") },
  "prim::NumToTensor": { params: ["x"], fn: (_c, a) => a.x! },
  "prim::Int": { params: ["x"], fn: (c, a) => (a.x instanceof DimV ? a.x : Math.trunc(c.num(a.x!, "Int"))) },
  Int: { params: ["x"], fn: (c, a) => (a.x instanceof DimV ? a.x : Math.trunc(c.num(a.x!, "Int"))) },
  "prim::device": { params: ["x"], fn: () => "cpu" },
  "prim::dtype": { params: ["x"], fn: () => 6 },
};

const ONNX_CODES: Record<string, number> = { float32: 1, uint8: 2, int8: 3, int16: 5, int32: 6, int64: 7, bool: 9, float16: 10, float64: 11, bfloat16: 16 };

/** The aten ops the TorchScript reader converts. */
export function supportedTorchOps(): string[] {
  return Object.keys(OPS).sort();
}

/** Parse every `code/**.py` record of an archive into classes by qualified name. */
export function loadClasses(ar: TorchArchive): Map<string, ClassDef> {
  const classes = new Map<string, ClassDef>();
  const dec = new TextDecoder();
  for (const [name, data] of ar.records) {
    if (!name.startsWith("code/") || !name.endsWith(".py")) continue;
    for (const c of parseTorchScriptSource(dec.decode(data), moduleOfCodePath(name), `${ar.file}:${name}`)) classes.set(c.qualname, c);
  }
  return classes;
}

/** Convert an opened TorchScript archive to an IR graph. */
export function torchScriptToGraph(ar: TorchArchive, opts: ReadTorchScriptOptions = {}): Graph {
  if (ar.kind !== "torchscript" || !(ar.value instanceof TorchObject)) {
    throw new ModelFormatError(`not a TorchScript archive (no code/ records or no module object in data.pkl)`, ar.file);
  }
  const conv = new Converter(ar, loadClasses(ar), ar.file);
  const g = conv.convert(ar.value, opts.method ?? "forward", opts.inputShapes);
  g.name = ar.value.className.split(".").pop() ?? "torchscript";
  return g;
}

/** Read a TorchScript archive (torch.jit.trace + torch.jit.save) as an IR graph. */
export async function readTorchScript(path: string, opts: ReadTorchScriptOptions = {}): Promise<Graph> {
  return torchScriptToGraph(await openTorchFile(path), opts);
}
