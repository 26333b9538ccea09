/**
 * Protocol-buffer text format (prototxt) parser, written for q. It produces a small syntax tree
 * with line:column positions (used by the schema binder for messages that point into the file) and,
 * through `parsePrototxt`, plain JS objects.
 *
 * Grammar (specs/formats.md §2.5):
 *   file    := field*
 *   field   := name ':' (scalar | list) | name ':'? ('{' field* '}' | '<' field* '>' | list-of-messages)
 *   list    := '[' (value (',' value)*)? ']'
 * Fields may be separated by ',' or ';'. '#' starts a comment to end of line. Adjacent strings
 * concatenate. Numbers: 1, -2, 0x1F, 1.0, .5, 1e-5, 1.5f, inf, -inf, nan.
 */
import { ModelFormatError } from "@q/ir";

export interface Pos {
  line: number;
  col: number;
}

export type TextScalar =
  | { kind: "num"; value: number; text: string; pos: Pos }
  | { kind: "str"; value: string; pos: Pos }
  | { kind: "ident"; value: string; pos: Pos };

export interface TextMessage {
  kind: "msg";
  fields: TextField[];
  pos: Pos;
}

export type TextValue = TextScalar | TextMessage;

export interface TextField {
  name: string;
  pos: Pos;
  /** One entry per value; a `[a, b]` list gives several entries. */
  values: TextValue[];
  /** Written with list syntax (`dim: [1, 2]`). */
  list: boolean;
}

type TokKind = "ident" | "num" | "str" | "punct" | "eof";
interface Token {
  kind: TokKind;
  text: string;
  /** Decoded value of a string token. */
  str?: string;
  pos: Pos;
}

const utf8 = new TextDecoder("utf-8", { fatal: false });

class Lexer {
  private i = 0;
  private line = 1;
  private lineStart = 0;
  constructor(
    private readonly src: string,
    private readonly file?: string,
  ) {}

  private pos(at = this.i): Pos {
    return { line: this.line, col: at - this.lineStart + 1 };
  }

  fail(pos: Pos, msg: string): never {
    throw new ModelFormatError(`${pos.line}:${pos.col}: ${msg}`, this.file);
  }

  private skipSpace(): void {
    const s = this.src;
    while (this.i < s.length) {
      const c = s.charCodeAt(this.i);
      if (c === 10) {
        this.i++;
        this.line++;
        this.lineStart = this.i;
      } else if (c === 32 || c === 9 || c === 13 || c === 12 || c === 11) {
        this.i++;
      } else if (c === 35) {
        // '#' comment to end of line
        while (this.i < s.length && s.charCodeAt(this.i) !== 10) this.i++;
      } else {
        break;
      }
    }
  }

  next(): Token {
    this.skipSpace();
    const s = this.src;
    const start = this.i;
    const pos = this.pos();
    if (this.i >= s.length) return { kind: "eof", text: "", pos };
    const c = s[this.i]!;
    if (/[A-Za-z_]/.test(c)) {
      let j = this.i + 1;
      while (j < s.length && /[A-Za-z0-9_.]/.test(s[j]!)) j++;
      this.i = j;
      return { kind: "ident", text: s.slice(start, j), pos };
    }
    if (/[0-9]/.test(c) || ((c === "-" || c === "+" || c === ".") && /[0-9.]/.test(s[this.i + 1] ?? ""))) {
      const m = /^[-+]?(0[xX][0-9a-fA-F]+|(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?)[fF]?/.exec(s.slice(this.i, this.i + 64));
      if (!m) this.fail(pos, `malformed number`);
      this.i += m[0].length;
      if (this.i < s.length && /[A-Za-z0-9_.]/.test(s[this.i]!)) this.fail(pos, `malformed number '${m[0]}${s[this.i]}'`);
      return { kind: "num", text: m[0], pos };
    }
    if (c === '"' || c === "'") return this.string(c, pos);
    if ("{}<>:[],;-".includes(c)) {
      this.i++;
      return { kind: "punct", text: c, pos };
    }
    this.fail(pos, `unexpected character '${c}'`);
  }

  private string(q: string, pos: Pos): Token {
    const s = this.src;
    const bytes: number[] = [];
    const enc = new TextEncoder();
    let i = this.i + 1;
    for (;;) {
      if (i >= s.length || s[i] === "\n") this.fail(pos, `unterminated string`);
      const c = s[i]!;
      if (c === q) {
        i++;
        break;
      }
      if (c !== "\\") {
        // copy a run of plain characters as UTF-8
        let j = i;
        while (j < s.length && s[j] !== q && s[j] !== "\\" && s[j] !== "\n") j++;
        for (const b of enc.encode(s.slice(i, j))) bytes.push(b);
        i = j;
        continue;
      }
      const e = s[i + 1];
      if (e === undefined) this.fail(pos, `unterminated string`);
      const simple: Record<string, number> = { n: 10, t: 9, r: 13, a: 7, b: 8, f: 12, v: 11, "\\": 92, "'": 39, '"': 34, "?": 63 };
      if (simple[e] !== undefined) {
        bytes.push(simple[e]!);
        i += 2;
      } else if (e === "x" || e === "X") {
        const m = /^[0-9a-fA-F]{1,2}/.exec(s.slice(i + 2, i + 4));
        if (!m) this.fail({ line: pos.line, col: pos.col + (i - this.i) }, `bad \\x escape in string`);
        bytes.push(parseInt(m[0], 16));
        i += 2 + m[0].length;
      } else if (/[0-7]/.test(e)) {
        const m = /^[0-7]{1,3}/.exec(s.slice(i + 1, i + 4))!;
        bytes.push(parseInt(m[0], 8) & 0xff);
        i += 1 + m[0].length;
      } else if (e === "u" || e === "U") {
        const n = e === "u" ? 4 : 8;
        const h = s.slice(i + 2, i + 2 + n);
        if (!new RegExp(`^[0-9a-fA-F]{${n}}$`).test(h)) this.fail({ line: pos.line, col: pos.col + (i - this.i) }, `bad \\${e} escape in string`);
        for (const b of enc.encode(String.fromCodePoint(parseInt(h, 16)))) bytes.push(b);
        i += 2 + n;
      } else {
        this.fail({ line: pos.line, col: pos.col + (i - this.i) }, `unknown escape '\\${e}' in string`);
      }
    }
    const text = s.slice(this.i, i);
    this.i = i;
    return { kind: "str", text, str: utf8.decode(Uint8Array.from(bytes)), pos };
  }
}

class Parser {
  private tok: Token;
  private readonly lex: Lexer;
  constructor(src: string, file?: string) {
    this.lex = new Lexer(src, file);
    this.tok = this.lex.next();
  }

  private advance(): Token {
    const t = this.tok;
    this.tok = this.lex.next();
    return t;
  }

  private is(text: string): boolean {
    return this.tok.kind === "punct" && this.tok.text === text;
  }

  private describe(t: Token): string {
    if (t.kind === "eof") return "end of file";
    if (t.kind === "str") return "a string";
    return `'${t.text}'`;
  }

  private expect(text: string, what: string): Token {
    if (!this.is(text)) this.lex.fail(this.tok.pos, `expected ${what}, found ${this.describe(this.tok)}`);
    return this.advance();
  }

  parseFile(): TextMessage {
    const pos = this.tok.pos;
    const fields = this.fields(undefined);
    return { kind: "msg", fields, pos };
  }

  /** Fields up to `close` (or end of file when undefined). */
  private fields(close: string | undefined, open?: Token): TextField[] {
    const out: TextField[] = [];
    for (;;) {
      if (close === undefined && this.tok.kind === "eof") return out;
      if (close !== undefined && this.is(close)) {
        this.advance();
        return out;
      }
      if (this.tok.kind === "eof") {
        this.lex.fail(this.tok.pos, `missing '${close}' for the '${open!.text}' opened at ${open!.pos.line}:${open!.pos.col}`);
      }
      if (this.tok.kind !== "ident") {
        this.lex.fail(this.tok.pos, `expected a field name, found ${this.describe(this.tok)}`);
      }
      out.push(this.field());
      if (this.is(",") || this.is(";")) this.advance();
    }
  }

  private field(): TextField {
    const nameTok = this.advance();
    const f: TextField = { name: nameTok.text, pos: nameTok.pos, values: [], list: false };
    const colon = this.is(":");
    if (colon) this.advance();
    if (this.is("{") || this.is("<")) {
      f.values.push(this.message());
      return f;
    }
    if (this.is("[")) {
      const open = this.advance();
      f.list = true;
      if (this.is("]")) {
        this.advance();
        return f;
      }
      for (;;) {
        if (this.is("{") || this.is("<")) f.values.push(this.message());
        else if (colon) f.values.push(this.scalar());
        else this.lex.fail(this.tok.pos, `expected ':' after field name '${f.name}'`);
        if (this.is(",")) {
          this.advance();
          continue;
        }
        if (this.is("]")) {
          this.advance();
          return f;
        }
        if (this.tok.kind === "eof") this.lex.fail(this.tok.pos, `missing ']' for the '[' opened at ${open.pos.line}:${open.pos.col}`);
        this.lex.fail(this.tok.pos, `expected ',' or ']' in the list of '${f.name}', found ${this.describe(this.tok)}`);
      }
    }
    if (!colon) this.lex.fail(this.tok.pos, `expected ':' or '{' after field name '${f.name}', found ${this.describe(this.tok)}`);
    f.values.push(this.scalar());
    return f;
  }

  private message(): TextMessage {
    const open = this.advance();
    const close = open.text === "{" ? "}" : ">";
    const fields = this.fields(close, open);
    return { kind: "msg", fields, pos: open.pos };
  }

  private scalar(): TextScalar {
    const t = this.tok;
    if (t.kind === "str") {
      let v = "";
      while (this.tok.kind === "str") v += this.advance().str!;
      return { kind: "str", value: v, pos: t.pos };
    }
    if (t.kind === "num") {
      this.advance();
      return { kind: "num", value: parseNumber(t.text), text: t.text, pos: t.pos };
    }
    if (t.kind === "ident") {
      this.advance();
      return { kind: "ident", value: t.text, pos: t.pos };
    }
    if (this.is("-")) {
      // -inf, -nan
      this.advance();
      const id = this.tok;
      if (id.kind === "ident" && /^(inf|infinity|nan)$/i.test(id.text)) {
        this.advance();
        return { kind: "num", value: -parseNumber(id.text), text: `-${id.text}`, pos: t.pos };
      }
      this.lex.fail(id.pos, `expected a number after '-', found ${this.describe(id)}`);
    }
    this.lex.fail(t.pos, `expected a value, found ${this.describe(t)}`);
  }
}

function parseNumber(text: string): number {
  let s = text;
  if (/^(inf|infinity)f?$/i.test(s)) return Infinity;
  if (/^nanf?$/i.test(s)) return NaN;
  let sign = 1;
  if (s[0] === "-" || s[0] === "+") {
    if (s[0] === "-") sign = -1;
    s = s.slice(1);
  }
  if (/^0[xX]/.test(s)) return sign * parseInt(s.slice(2), 16);
  if (/[fF]$/.test(s)) s = s.slice(0, -1);
  return sign * Number(s);
}

/** Parse prototxt into a syntax tree with positions. Throws ModelFormatError with line:column. */
export function parseTextProto(text: string, file?: string): TextMessage {
  return new Parser(text, file).parseFile();
}

export type PlainValue = number | string | boolean | PlainObject | PlainValue[];
export interface PlainObject {
  [key: string]: PlainValue;
}

function plainScalar(v: TextScalar): number | string | boolean {
  if (v.kind !== "ident") return v.value;
  if (v.value === "true" || v.value === "True") return true;
  if (v.value === "false" || v.value === "False") return false;
  if (/^(inf|infinity|nan)f?$/i.test(v.value)) return parseNumber(v.value);
  return v.value;
}

function plainMessage(m: TextMessage): PlainObject {
  const out: PlainObject = {};
  for (const f of m.fields) {
    const vals = f.values.map((v) => (v.kind === "msg" ? plainMessage(v) : plainScalar(v)));
    const prev = out[f.name];
    if (prev === undefined) {
      out[f.name] = f.list ? vals : vals[0]!;
    } else {
      const arr = Array.isArray(prev) ? prev : [prev];
      arr.push(...vals);
      out[f.name] = arr;
    }
  }
  return out;
}

/**
 * Parse protobuf text format into a plain object. A field given once holds its value; a field given
 * several times (or with `[a, b]` list syntax) holds an array. Messages become nested objects,
 * strings are decoded (escapes, adjacent strings joined), numbers are JS numbers, `true`/`false`
 * become booleans and other bare identifiers (enum values) stay strings.
 */
export function parsePrototxt(text: string, file?: string): PlainObject {
  return plainMessage(parseTextProto(text, file));
}
