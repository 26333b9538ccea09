/**
 * The parts of MLIR's textual form that TPU-MLIR's top-dialect files use: attribute values,
 * ranked tensor types, locations with `#locN` aliases, and the generic operation form
 * `%r = "top.X"(%a, %b) {attrs} : (types) -> type loc(#locK)`. A printer that writes what the
 * MLIR AsmPrinter writes for these, and a tolerant parser for reading such files back.
 */
import type { DType } from "@q/ir";
import { TableLineError } from "./errors.js";

// ---------------------------------------------------------------------------------------------
// Attributes

/** An attribute value as printed or parsed. `type` is the `: type` suffix (`i64`, `f64`, `si32`...). */
export type MAttr =
  | { k: "int"; v: number; type?: string }
  | { k: "float"; v: number; type?: string }
  | { k: "bool"; v: boolean }
  | { k: "str"; v: string }
  | { k: "array"; v: MAttr[] }
  | { k: "unit" }
  | { k: "raw"; v: string };

export const A = {
  i64: (v: number): MAttr => ({ k: "int", v, type: "i64" }),
  si32: (v: number): MAttr => ({ k: "int", v, type: "si32" }),
  f64: (v: number): MAttr => ({ k: "float", v, type: "f64" }),
  bool: (v: boolean): MAttr => ({ k: "bool", v }),
  str: (v: string): MAttr => ({ k: "str", v }),
  /** I64ArrayAttr: elements print without a type suffix. */
  i64s: (v: readonly number[]): MAttr => ({ k: "array", v: v.map((x) => ({ k: "int", v: x })) }),
  /** F64ArrayAttr: elements print without a type suffix. */
  f64s: (v: readonly number[]): MAttr => ({ k: "array", v: v.map((x) => ({ k: "float", v: x })) }),
};

const F64 = new Float64Array(1);
const U64 = new BigUint64Array(F64.buffer);

/**
 * A double as MLIR prints a float attribute: `%e`-style with 6 digits when that reads back to the
 * same value (`1.000000e+00`), else a round-trip form that still has a `.`; inf and NaN as the
 * hexadecimal bit pattern (`0x7FF0000000000000`), which the MLIR lexer accepts for floats.
 */
export function formatMlirFloat(v: number): string {
  if (!Number.isFinite(v)) {
    F64[0] = v;
    return `0x${U64[0]!.toString(16).toUpperCase().padStart(16, "0")}`;
  }
  const fix = (s: string) => {
    const m = /^(-?\d)(\.\d+)?e([+-])(\d+)$/.exec(s)!;
    return `${m[1]}${m[2] ?? ".0"}e${m[3]}${m[4]!.padStart(2, "0")}`;
  };
  const short = fix(v.toExponential(6));
  if (Number(short) === v && !Object.is(v, -0)) return short;
  if (Object.is(v, -0)) return "-0.000000e+00";
  return fix(v.toExponential());
}

/** MLIR string literal: `\` doubled, `"` and non-printable bytes as `\XX` (UTF-8 bytes). */
export function mlirString(s: string): string {
  let out = '"';
  for (const b of new TextEncoder().encode(s)) {
    if (b === 0x5c) out += "\\\\";
    else if (b >= 0x20 && b < 0x7f && b !== 0x22) out += String.fromCharCode(b);
    else out += `\\${b.toString(16).toUpperCase().padStart(2, "0")}`;
  }
  return `${out}"`;
}

export function formatAttr(a: MAttr): string {
  switch (a.k) {
    case "int":
      return a.type ? `${a.v} : ${a.type}` : String(a.v);
    case "float":
      return a.type ? `${formatMlirFloat(a.v)} : ${a.type}` : formatMlirFloat(a.v);
    case "bool":
      return a.v ? "true" : "false";
    case "str":
      return mlirString(a.v);
    case "array":
      return `[${a.v.map(formatAttr).join(", ")}]`;
    case "unit":
      return "unit";
    default:
      return a.v;
  }
}

/** `{a = 1 : i64, b = [1, 2]}` with names sorted, as the printer orders a DictionaryAttr. */
export function formatAttrDict(attrs: Record<string, MAttr>): string {
  const keys = Object.keys(attrs).sort();
  if (!keys.length) return "";
  return `{${keys.map((k) => (attrs[k]!.k === "unit" ? k : `${/^[A-Za-z_][\w.$]*$/.test(k) ? k : mlirString(k)} = ${formatAttr(attrs[k]!)}`)).join(", ")}}`;
}

// ---------------------------------------------------------------------------------------------
// Types

const ELEM_OF_DTYPE: Partial<Record<DType, string>> = {
  float32: "f32", float16: "f16", bfloat16: "bf16", float64: "f64", int64: "i64", int32: "si32", int16: "si16",
  int8: "si8", uint8: "ui8", uint16: "ui16", uint32: "ui32", uint64: "ui64", bool: "i1",
};

export function elemType(dtype: DType | undefined): string {
  return ELEM_OF_DTYPE[dtype ?? "float32"] ?? "f32";
}

/** `tensor<1x3x224x224xf32>`, `tensor<f32>` for a scalar. */
export function tensorType(shape: readonly number[], elem = "f32"): string {
  return `tensor<${shape.map((d) => `${d}x`).join("")}${elem}>`;
}

export interface MType {
  /** null: not a ranked tensor (none, unranked, other). Unknown dims are -1. */
  shape: number[] | null;
  /** Element type text (`f32`, `!quant.calibrated<f32<-1:1>>`, ...), or the whole type when not a tensor. */
  elem: string;
  isNone: boolean;
}

/** The IR dtype of an element type; quantized types count as their expressed float type. */
export function dtypeOfElem(elem: string): DType {
  const e = elem.trim();
  if (e.startsWith("!quant.")) return "float32";
  const m: Record<string, DType> = {
    f32: "float32", f16: "float16", bf16: "bfloat16", f64: "float64", i64: "int64", si64: "int64", ui64: "uint64",
    i32: "int32", si32: "int32", ui32: "uint32", i16: "int16", si16: "int16", ui16: "uint16", i8: "int8", si8: "int8",
    ui8: "uint8", i1: "bool", i4: "int4", si4: "int4", ui4: "uint4",
  };
  return m[e] ?? "float32";
}

// ---------------------------------------------------------------------------------------------
// Parser

/** A location: the names it carries (a fused location carries several), or alias references. */
export type MLoc = { names: string[]; aliases: string[] };

export interface MOp {
  /** SSA names of the results (`%5`, or `%5#0`, `%5#1` for `%5:2 = ...`). */
  results: string[];
  name: string;
  operands: string[];
  attrs: Map<string, MAttr>;
  operandTypes: MType[];
  resultTypes: MType[];
  loc?: MLoc;
  line: number;
  /** Whether the op has regions (If/Loop bodies), which q cannot read. */
  hasRegions: boolean;
}

export interface MFunc {
  name: string;
  args: { name: string; type: MType; loc?: MLoc }[];
  ops: MOp[];
  returns: { operands: string[]; line: number } | undefined;
}

export interface MModule {
  name?: string;
  attrs: Map<string, MAttr>;
  funcs: MFunc[];
  /** `#alias = loc(...)` definitions. */
  locAliases: Map<string, MLoc>;
}

export class MlirParser {
  i = 0;
  private lineStarts: number[] = [0];

  constructor(
    readonly s: string,
    readonly file?: string,
  ) {
    for (let k = 0; k < s.length; k++) if (s.charCodeAt(k) === 10) this.lineStarts.push(k + 1);
  }

  lineAt(pos = this.i): number {
    let lo = 0;
    let hi = this.lineStarts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (this.lineStarts[mid]! <= pos) lo = mid;
      else hi = mid - 1;
    }
    return lo + 1;
  }

  fail(msg: string, pos = this.i): never {
    const ctx = this.s.slice(pos, pos + 40).split("\n")[0];
    throw new TableLineError(`${msg}${ctx ? ` (at '${ctx}')` : " (at end of file)"}`, this.file, this.lineAt(pos));
  }

  ws(): void {
    const s = this.s;
    for (;;) {
      while (this.i < s.length && /\s/.test(s[this.i]!)) this.i++;
      if (s.startsWith("//", this.i)) {
        const nl = s.indexOf("\n", this.i);
        this.i = nl < 0 ? s.length : nl + 1;
      } else return;
    }
  }

  eof(): boolean {
    this.ws();
    return this.i >= this.s.length;
  }

  peek(t: string): boolean {
    this.ws();
    return this.s.startsWith(t, this.i);
  }

  eat(t: string): boolean {
    if (this.peek(t)) {
      this.i += t.length;
      return true;
    }
    return false;
  }

  expect(t: string, what = `'${t}'`): void {
    if (!this.eat(t)) this.fail(`expected ${what}`);
  }

  /** A bare identifier / keyword. */
  ident(): string {
    this.ws();
    const m = /^[A-Za-z_][\w.$-]*/.exec(this.s.slice(this.i, this.i + 256));
    if (!m) this.fail("expected an identifier");
    this.i += m[0].length;
    return m[0];
  }

  /** `%name`, `%5`, `%5#1`. */
  ssa(): string {
    this.ws();
    const m = /^%[\w.$-]+(#\d+)?/.exec(this.s.slice(this.i, this.i + 256));
    if (!m) this.fail("expected an SSA value (%name)");
    this.i += m[0].length;
    return m[0];
  }

  string(): string {
    this.ws();
    if (this.s[this.i] !== '"') this.fail("expected a string");
    this.i++;
    const bytes: number[] = [];
    const enc = new TextEncoder();
    for (;;) {
      if (this.i >= this.s.length) this.fail("unterminated string");
      const c = this.s[this.i]!;
      if (c === '"') {
        this.i++;
        break;
      }
      if (c === "\n") this.fail("newline in string");
      if (c === "\\") {
        const n = this.s[this.i + 1] ?? "";
        const hex = this.s.slice(this.i + 1, this.i + 3);
        if (n === "\\" || n === '"') {
          bytes.push(n.charCodeAt(0));
          this.i += 2;
        } else if (n === "n") {
          bytes.push(10);
          this.i += 2;
        } else if (n === "t") {
          bytes.push(9);
          this.i += 2;
        } else if (/^[0-9a-fA-F]{2}$/.test(hex)) {
          bytes.push(parseInt(hex, 16));
          this.i += 3;
        } else this.fail("bad escape in string");
        continue;
      }
      const cp = this.s.codePointAt(this.i)!;
      const ch = String.fromCodePoint(cp);
      for (const b of enc.encode(ch)) bytes.push(b);
      this.i += ch.length;
    }
    return new TextDecoder("utf-8").decode(Uint8Array.from(bytes));
  }

  /** Text up to the next `,` `)` `]` `}` (or `>` when `stopAtAngle`) at bracket depth 0. */
  balanced(stopAtAngle = false): string {
    this.ws();
    const start = this.i;
    let depth = 0;
    const s = this.s;
    while (this.i < s.length) {
      const c = s[this.i]!;
      if (c === '"') {
        this.string();
        continue;
      }
      if (c === "(" || c === "[" || c === "{" || c === "<") depth++;
      else if (c === ")" || c === "]" || c === "}" || c === ">") {
        if (c === ">" && s[this.i - 1] === "-") {
          this.i++;
          continue;
        }
        if (depth === 0) break;
        depth--;
      } else if (c === "," && depth === 0) break;
      this.i++;
      if (stopAtAngle && depth === 0 && s[this.i] === ">") break;
    }
    return s.slice(start, this.i).trim();
  }

  attrValue(): MAttr {
    this.ws();
    const s = this.s;
    const c = s[this.i];
    if (c === '"') return { k: "str", v: this.string() };
    if (c === "[") {
      this.i++;
      const v: MAttr[] = [];
      if (!this.eat("]")) {
        do v.push(this.attrValue());
        while (this.eat(","));
        this.expect("]");
      }
      return { k: "array", v };
    }
    const rest = s.slice(this.i, this.i + 64);
    let m: RegExpExecArray | null;
    if ((m = /^(true|false)\b/.exec(rest))) {
      this.i += m[0].length;
      return { k: "bool", v: m[1] === "true" };
    }
    if ((m = /^unit\b/.exec(rest))) {
      this.i += 4;
      return { k: "unit" };
    }
    if ((m = /^array<\s*[a-z]\w*\s*:?/.exec(rest))) {
      this.i += m[0].length;
      const v: MAttr[] = [];
      if (!this.eat(">")) {
        do v.push(this.attrValue());
        while (this.eat(","));
        this.expect(">");
      }
      return { k: "array", v };
    }
    if ((m = /^[-+]?(0x[0-9a-fA-F]+|\d+(\.\d*)?([eE][-+]?\d+)?)/.exec(rest))) {
      this.i += m[0].length;
      const text = m[0];
      let type: string | undefined;
      const save = this.i;
      if (this.eat(":") && !this.peek(":")) {
        this.ws();
        const t = /^[a-z]\w*/.exec(s.slice(this.i, this.i + 16));
        if (t) {
          type = t[0];
          this.i += t[0].length;
        } else this.i = save;
      } else this.i = save;
      const isHex = /^[-+]?0x/i.test(text);
      const floatType = type !== undefined && /^(f\d+|bf16)$/.test(type);
      if (isHex && floatType) {
        const bits = BigInt(text.replace(/^[-+]/, ""));
        if (type === "f32") {
          const u = new Uint32Array([Number(bits)]);
          return { k: "float", v: new Float32Array(u.buffer)[0]!, type };
        }
        U64[0] = bits;
        return { k: "float", v: F64[0]!, type };
      }
      const isFloat = floatType || (!isHex && /[.eE]/.test(text));
      const v = Number(text);
      const out: MAttr = isFloat ? { k: "float", v } : { k: "int", v };
      if (type !== undefined) out.type = type;
      return out;
    }
    return { k: "raw", v: this.balanced() };
  }

  attrDict(open = "{", close = "}"): Map<string, MAttr> {
    const out = new Map<string, MAttr>();
    this.expect(open);
    if (this.eat(close)) return out;
    do {
      this.ws();
      const key = this.s[this.i] === '"' ? this.string() : this.ident();
      if (this.eat("=")) out.set(key, this.attrValue());
      else out.set(key, { k: "unit" });
    } while (this.eat(","));
    this.expect(close);
    return out;
  }

  type(): MType {
    this.ws();
    if (this.s.startsWith("none", this.i)) {
      this.i += 4;
      return { shape: null, elem: "none", isNone: true };
    }
    if (this.s.startsWith("tensor<", this.i)) {
      this.i += 7;
      const body = this.balanced(true);
      this.expect(">");
      let rest = body;
      if (rest.startsWith("*x")) return { shape: null, elem: rest.slice(2), isNone: false };
      const shape: number[] = [];
      let m: RegExpExecArray | null;
      while ((m = /^(\d+|\?)x/.exec(rest))) {
        shape.push(m[1] === "?" ? -1 : Number(m[1]));
        rest = rest.slice(m[0].length);
      }
      return { shape, elem: rest, isNone: false };
    }
    return { shape: null, elem: this.balanced(), isNone: false };
  }

  typeList(): MType[] {
    if (this.eat("(")) {
      const out: MType[] = [];
      if (!this.eat(")")) {
        do {
          out.push(this.type());
          if (this.peek("{")) this.attrDict();
          if (this.peek("loc(")) this.loc();
        } while (this.eat(","));
        this.expect(")");
      }
      return out;
    }
    return [this.type()];
  }

  /** `loc(...)`: the names it carries, flattened (fused → each name), and alias references. */
  loc(): MLoc {
    this.expect("loc(", "loc(...)");
    const out: MLoc = { names: [], aliases: [] };
    this.locInner(out);
    this.expect(")");
    return out;
  }

  private locInner(out: MLoc): void {
    this.ws();
    const s = this.s;
    if (s[this.i] === "#") {
      const m = /^#[\w$.-]+/.exec(s.slice(this.i, this.i + 128))!;
      this.i += m[0].length;
      out.aliases.push(m[0]);
      return;
    }
    if (s[this.i] === '"') {
      const name = this.string();
      if (this.eat(":")) {
        // file:line:col location: not a name
        this.balanced();
        return;
      }
      out.names.push(name);
      if (this.eat("(")) {
        const child: MLoc = { names: [], aliases: [] };
        this.locInner(child);
        this.expect(")");
      }
      return;
    }
    if (this.eat("unknown")) return;
    if (this.eat("fused")) {
      if (this.peek("<")) {
        this.i++;
        this.balanced(true);
        this.expect(">");
      }
      this.expect("[");
      if (!this.eat("]")) {
        do this.locInner(out);
        while (this.eat(","));
        this.expect("]");
      }
      return;
    }
    if (this.eat("callsite(")) {
      this.locInner(out);
      this.expect("at");
      this.locInner({ names: [], aliases: [] });
      this.expect(")");
      return;
    }
    this.balanced();
  }

  /** Parse a whole file: `#alias = ...` lines, then `module ... { func.func ... }` (or bare funcs). */
  parseModule(): MModule {
    const mod: MModule = { attrs: new Map(), funcs: [], locAliases: new Map() };
    while (!this.eof()) {
      if (this.peek("#")) {
        const m = /^#[\w$.-]+/.exec(this.s.slice(this.i, this.i + 128));
        if (!m) this.fail("bad alias definition");
        this.i += m[0].length;
        this.expect("=");
        if (this.peek("loc(")) mod.locAliases.set(m[0], this.loc());
        else this.balanced();
        continue;
      }
      if (this.eat("module")) {
        this.ws();
        if (this.eat("@")) mod.name = this.s[this.i] === '"' ? this.string() : this.ident();
        if (this.eat("attributes")) mod.attrs = this.attrDict();
        this.expect("{");
        while (!this.eat("}")) {
          if (this.eof()) this.fail("unterminated module");
          mod.funcs.push(this.func());
        }
        if (this.peek("loc(")) this.loc();
        continue;
      }
      if (this.peek("func.func") || this.peek("func ")) {
        mod.funcs.push(this.func());
        continue;
      }
      this.fail("expected 'module', 'func.func' or a '#loc' alias");
    }
    return mod;
  }

  func(): MFunc {
    if (!this.eat("func.func")) this.expect("func");
    this.ws();
    if (this.peek("private")) this.ident();
    this.expect("@");
    const name = this.s[this.i] === '"' ? this.string() : this.ident();
    this.expect("(");
    const args: MFunc["args"] = [];
    if (!this.eat(")")) {
      do {
        const an = this.ssa();
        this.expect(":");
        const type = this.type();
        if (this.peek("{")) this.attrDict();
        const a: MFunc["args"][number] = { name: an, type };
        if (this.peek("loc(")) a.loc = this.loc();
        args.push(a);
      } while (this.eat(","));
      this.expect(")");
    }
    if (this.eat("->")) this.typeList();
    if (this.eat("attributes")) this.attrDict();
    this.expect("{");
    const f: MFunc = { name, args, ops: [], returns: undefined };
    for (;;) {
      if (this.eof()) this.fail(`unterminated function @${name}`);
      if (this.eat("}")) break;
      const line = this.lineAt();
      if (this.peek("return") || this.peek("func.return")) {
        this.ident();
        const operands: string[] = [];
        if (this.peek("%")) {
          do operands.push(this.ssa());
          while (this.eat(","));
          this.expect(":");
          do this.type();
          while (this.eat(","));
        }
        if (this.peek("loc(")) this.loc();
        f.returns = { operands, line };
        continue;
      }
      f.ops.push(this.op(line));
    }
    if (this.peek("loc(")) this.loc();
    return f;
  }

  op(line: number): MOp {
    const results: string[] = [];
    if (this.peek("%")) {
      do {
        const r = this.ssa();
        if (this.eat(":")) {
          this.ws();
          const m = /^\d+/.exec(this.s.slice(this.i, this.i + 12));
          if (!m) this.fail("expected a result count after ':'");
          this.i += m[0].length;
          for (let k = 0; k < Number(m[0]); k++) results.push(`${r}#${k}`);
        } else results.push(r);
      } while (this.eat(","));
      this.expect("=");
    }
    this.ws();
    if (this.s[this.i] !== '"') this.fail("expected an operation in generic form (\"dialect.op\"(...))");
    const name = this.string();
    this.expect("(");
    const operands: string[] = [];
    if (!this.eat(")")) {
      do operands.push(this.ssa());
      while (this.eat(","));
      this.expect(")");
    }
    let attrs = new Map<string, MAttr>();
    if (this.peek("<{")) {
      this.i += 1;
      attrs = this.attrDict();
      this.expect(">");
    }
    let hasRegions = false;
    if (this.peek("(")) {
      // regions: skip them, balanced
      hasRegions = true;
      this.i++;
      let depth = 1;
      while (depth > 0 && this.i < this.s.length) {
        const c = this.s[this.i]!;
        if (c === '"') {
          this.string();
          continue;
        }
        if (c === "(") depth++;
        else if (c === ")") depth--;
        this.i++;
      }
    }
    if (this.peek("{")) for (const [k, v] of this.attrDict()) attrs.set(k, v);
    this.expect(":", "':' and the op's type");
    const operandTypes = this.typeList();
    this.expect("->", "'->' and the result types");
    const resultTypes = this.typeList();
    const op: MOp = { results, name, operands, attrs, operandTypes, resultTypes, line, hasRegions };
    if (this.peek("loc(")) op.loc = this.loc();
    return op;
  }
}

/** Resolve a location's aliases into names. */
export function locNames(loc: MLoc | undefined, aliases: Map<string, MLoc>, depth = 0): string[] {
  if (!loc) return [];
  const out = [...loc.names];
  if (depth > 32) return out;
  for (const a of loc.aliases) out.push(...locNames(aliases.get(a), aliases, depth + 1));
  return out;
}

/** Typed access to a parsed attribute dictionary. */
export class Attrs {
  constructor(
    readonly map: Map<string, MAttr>,
    readonly where: () => string,
  ) {}
  private num(a: MAttr | undefined, name: string): number | undefined {
    if (!a) return undefined;
    if (a.k === "int" || a.k === "float") return a.v;
    if (a.k === "bool") return a.v ? 1 : 0;
    throw new Error(`${this.where()}: attribute '${name}' is not a number`);
  }
  has(name: string): boolean {
    return this.map.has(name);
  }
  num_(name: string, dflt?: number): number | undefined {
    return this.num(this.map.get(name), name) ?? dflt;
  }
  int(name: string, dflt: number): number {
    return this.num_(name, dflt)!;
  }
  float(name: string, dflt: number): number {
    return this.num_(name, dflt)!;
  }
  bool(name: string, dflt: boolean): boolean {
    const a = this.map.get(name);
    if (!a) return dflt;
    if (a.k === "bool") return a.v;
    return Boolean(this.num(a, name));
  }
  str(name: string, dflt: string): string {
    const a = this.map.get(name);
    return a && a.k === "str" ? a.v : dflt;
  }
  nums(name: string): number[] | undefined {
    const a = this.map.get(name);
    if (!a) return undefined;
    if (a.k !== "array") {
      const v = this.num(a, name);
      return v === undefined ? undefined : [v];
    }
    return a.v.map((x) => this.num(x, name)!);
  }
}
