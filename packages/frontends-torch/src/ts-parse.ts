/**
 * Parser for the printed TorchScript in `code/**.py` of a torch.jit.save archive: class definitions
 * with attribute annotations and methods whose bodies are straight-line statements (assignments,
 * expression statements, return). Compound statements (if/for/while/with) are kept as
 * `unsupported` statements so that only executing them fails. Nothing here is evaluated.
 */
import { ModelFormatError } from "@q/ir";

export type Expr =
  | { k: "name"; id: string }
  | { k: "num"; v: number; float: boolean }
  | { k: "str"; v: string }
  | { k: "const"; v: boolean | null }
  | { k: "attr"; obj: Expr; name: string }
  | { k: "call"; fn: Expr; args: Expr[]; kwargs: [string, Expr][] }
  | { k: "index"; obj: Expr; index: Expr }
  | { k: "list"; items: Expr[] }
  | { k: "tuple"; items: Expr[] }
  | { k: "unary"; op: string; x: Expr }
  | { k: "bin"; op: string; a: Expr; b: Expr };

export type Stmt =
  | { k: "assign"; targets: string[]; value: Expr; line: number }
  | { k: "expr"; value: Expr; line: number }
  | { k: "return"; value: Expr | null; line: number }
  | { k: "pass"; line: number }
  | { k: "unsupported"; what: string; line: number };

export interface Method {
  name: string;
  params: string[];
  body: Stmt[];
}

export interface ClassDef {
  /** Fully qualified: `<module>.<Name>`, e.g. `__torch__.torch.nn.modules.conv.___torch_mangle_4.Conv2d`. */
  qualname: string;
  methods: Map<string, Method>;
  parameters: string[];
  buffers: string[];
}

type Tok = { t: "name" | "num" | "str" | "op" | "nl" | "indent" | "dedent" | "eof"; v: string; line: number };

const OPS3 = ["**=", "//=", "...", "->"];
const OPS2 = ["**", "//", "==", "!=", "<=", ">=", "->", "+=", "-=", "*=", "/=", "<<", ">>"];

export function tokenize(src: string, file: string): Tok[] {
  const toks: Tok[] = [];
  const indents = [0];
  let depth = 0;
  let line = 1;
  let i = 0;
  let atLineStart = true;
  const n = src.length;
  while (i < n) {
    if (atLineStart && depth === 0) {
      let col = 0;
      let j = i;
      while (j < n && (src[j] === " " || src[j] === "\t")) { col += src[j] === "\t" ? 8 - (col % 8) : 1; j++; }
      if (j >= n) { i = j; break; }
      if (src[j] === "\n" || src[j] === "#" || src[j] === "\r") {
        // blank or comment line
        while (j < n && src[j] !== "\n") j++;
        i = j + 1;
        line++;
        continue;
      }
      i = j;
      atLineStart = false;
      if (col > indents[indents.length - 1]!) {
        indents.push(col);
        toks.push({ t: "indent", v: "", line });
      } else {
        while (col < indents[indents.length - 1]!) {
          indents.pop();
          toks.push({ t: "dedent", v: "", line });
        }
        if (col !== indents[indents.length - 1]!) throw new ModelFormatError(`TorchScript code: inconsistent indentation at line ${line}`, file);
      }
    }
    const c = src[i]!;
    if (c === "\n") {
      if (depth === 0) {
        toks.push({ t: "nl", v: "", line });
        atLineStart = true;
      }
      line++;
      i++;
      continue;
    }
    if (c === " " || c === "\t" || c === "\r") { i++; continue; }
    if (c === "\\" && src[i + 1] === "\n") { i += 2; line++; continue; }
    if (c === "#") { while (i < n && src[i] !== "\n") i++; continue; }
    if (/[A-Za-z_]/.test(c)) {
      let j = i + 1;
      while (j < n && /[A-Za-z0-9_]/.test(src[j]!)) j++;
      toks.push({ t: "name", v: src.slice(i, j), line });
      i = j;
      continue;
    }
    if (/[0-9]/.test(c) || (c === "." && /[0-9]/.test(src[i + 1] ?? ""))) {
      const m = /^(?:0[xX][0-9a-fA-F]+|(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)[jJ]?/.exec(src.slice(i, i + 64))!;
      toks.push({ t: "num", v: m[0], line });
      i += m[0].length;
      continue;
    }
    if (c === '"' || c === "'") {
      const triple = src.startsWith(c.repeat(3), i);
      const q = triple ? c.repeat(3) : c;
      let j = i + q.length;
      let s = "";
      for (;;) {
        if (j >= n) throw new ModelFormatError(`TorchScript code: unterminated string at line ${line}`, file);
        if (src.startsWith(q, j)) { j += q.length; break; }
        const ch = src[j]!;
        if (ch === "\\") {
          const e = src[j + 1] ?? "";
          const map: Record<string, string> = { n: "\n", t: "\t", r: "\r", "\\": "\\", "'": "'", '"': '"', "0": "\0" };
          if (e === "x") { s += String.fromCharCode(parseInt(src.slice(j + 2, j + 4), 16)); j += 4; continue; }
          if (e === "u") { s += String.fromCharCode(parseInt(src.slice(j + 2, j + 6), 16)); j += 6; continue; }
          s += map[e] ?? e;
          j += 2;
          continue;
        }
        if (ch === "\n") line++;
        s += ch;
        j++;
      }
      toks.push({ t: "str", v: s, line });
      i = j;
      continue;
    }
    const three = src.slice(i, i + 3);
    const two = src.slice(i, i + 2);
    const op = OPS3.includes(three) ? three : OPS2.includes(two) ? two : c;
    if ("([{".includes(op)) depth++;
    if (")]}".includes(op)) depth = Math.max(0, depth - 1);
    toks.push({ t: "op", v: op, line });
    i += op.length;
  }
  toks.push({ t: "nl", v: "", line });
  while (indents.length > 1) { indents.pop(); toks.push({ t: "dedent", v: "", line }); }
  toks.push({ t: "eof", v: "", line });
  return toks;
}

class Parser {
  private p = 0;
  constructor(private readonly toks: Tok[], private readonly file: string) {}

  private peek(o = 0): Tok {
    return this.toks[Math.min(this.p + o, this.toks.length - 1)]!;
  }
  private next(): Tok {
    return this.toks[this.p++]!;
  }
  private isOp(v: string, o = 0): boolean {
    const t = this.peek(o);
    return t.t === "op" && t.v === v;
  }
  private isName(v: string, o = 0): boolean {
    const t = this.peek(o);
    return t.t === "name" && t.v === v;
  }
  private fail(msg: string): never {
    throw new ModelFormatError(`TorchScript code, line ${this.peek().line}: ${msg}`, this.file);
  }
  private expectOp(v: string): void {
    if (!this.isOp(v)) this.fail(`expected '${v}', found '${this.peek().v || this.peek().t}'`);
    this.p++;
  }
  private expectName(): string {
    const t = this.next();
    if (t.t !== "name") this.fail(`expected a name, found '${t.v || t.t}'`);
    return t.v;
  }
  /** Skip to the end of the current logical line (and any block it opens). */
  private skipLine(): void {
    while (this.peek().t !== "nl" && this.peek().t !== "eof") this.p++;
    if (this.peek().t === "nl") this.p++;
    if (this.peek().t === "indent") this.skipBlock();
  }
  private skipBlock(): void {
    let d = 0;
    do {
      const t = this.next();
      if (t.t === "indent") d++;
      else if (t.t === "dedent") d--;
      else if (t.t === "eof") return;
    } while (d > 0);
  }

  parseModule(module: string): ClassDef[] {
    const classes: ClassDef[] = [];
    while (this.peek().t !== "eof") {
      const t = this.peek();
      if (t.t === "nl" || t.t === "dedent") { this.p++; continue; }
      if (t.t === "name" && t.v === "class") classes.push(this.parseClass(module));
      else this.skipLine();
    }
    return classes;
  }

  private parseClass(module: string): ClassDef {
    this.p++; // class
    const name = this.expectName();
    if (this.isOp("(")) {
      let d = 0;
      do {
        if (this.isOp("(")) d++;
        else if (this.isOp(")")) d--;
        this.p++;
      } while (d > 0);
    }
    this.expectOp(":");
    const cls: ClassDef = { qualname: `${module}.${name}`, methods: new Map(), parameters: [], buffers: [] };
    if (this.peek().t !== "nl") { this.skipLine(); return cls; }
    this.p++;
    if (this.peek().t !== "indent") return cls;
    this.p++;
    while (this.peek().t !== "dedent" && this.peek().t !== "eof") {
      const t = this.peek();
      if (t.t === "nl") { this.p++; continue; }
      if (this.isName("def")) {
        const m = this.parseDef();
        cls.methods.set(m.name, m);
      } else if ((this.isName("__parameters__") || this.isName("__buffers__")) && this.isOp("=", 1)) {
        const which = this.next().v;
        this.p++;
        const e = this.parseExpr();
        const names = e.k === "list" || e.k === "tuple" ? e.items.flatMap((x) => (x.k === "str" ? [x.v] : [])) : [];
        if (which === "__parameters__") cls.parameters = names;
        else cls.buffers = names;
        this.skipLine();
      } else {
        this.skipLine();
      }
    }
    if (this.peek().t === "dedent") this.p++;
    return cls;
  }

  private parseDef(): Method {
    this.p++; // def
    const name = this.expectName();
    this.expectOp("(");
    const params: string[] = [];
    while (!this.isOp(")")) {
      if (this.isOp("*")) { this.p++; if (this.isOp(",")) { this.p++; continue; } }
      params.push(this.expectName());
      if (this.isOp(":")) { this.p++; this.parseExpr(); }
      if (this.isOp("=")) { this.p++; this.parseExpr(); }
      if (this.isOp(",")) this.p++;
      else if (!this.isOp(")")) this.fail(`bad parameter list of ${name}`);
    }
    this.p++;
    if (this.isOp("->")) { this.p++; this.parseExpr(); }
    this.expectOp(":");
    const body: Stmt[] = [];
    if (this.peek().t !== "nl") {
      body.push(this.parseSimple());
      return { name, params, body };
    }
    this.p++;
    if (this.peek().t !== "indent") this.fail(`method ${name} has no body`);
    this.p++;
    while (this.peek().t !== "dedent" && this.peek().t !== "eof") {
      if (this.peek().t === "nl") { this.p++; continue; }
      body.push(this.parseStmt());
    }
    if (this.peek().t === "dedent") this.p++;
    return { name, params, body };
  }

  private parseStmt(): Stmt {
    const t = this.peek();
    if (t.t === "name" && ["if", "for", "while", "with", "try", "def", "class", "elif", "else", "raise", "assert", "del", "global", "break", "continue"].includes(t.v)) {
      const line = t.line;
      this.skipLine();
      // an `if` chain: also skip its elif/else blocks
      while (this.isName("elif") || this.isName("else")) this.skipLine();
      return { k: "unsupported", what: t.v, line };
    }
    return this.parseSimple();
  }

  private parseSimple(): Stmt {
    const line = this.peek().line;
    if (this.isName("pass")) { this.skipLine(); return { k: "pass", line }; }
    if (this.isName("return")) {
      this.p++;
      const value = this.peek().t === "nl" ? null : this.parseExprList();
      this.endLine();
      return { k: "return", value, line };
    }
    const first = this.parseExprList();
    if (this.isOp("=")) {
      this.p++;
      const value = this.parseExprList();
      const targets = first.k === "tuple" ? first.items : [first];
      const names = targets.map((e) => (e.k === "name" ? e.id : this.fail(`unsupported assignment target`)));
      this.endLine();
      return { k: "assign", targets: names, value, line };
    }
    if (this.isOp(":")) {
      // annotated assignment `x : T = v`
      this.p++;
      this.parseExpr();
      if (this.isOp("=")) {
        this.p++;
        const value = this.parseExprList();
        this.endLine();
        if (first.k !== "name") this.fail(`unsupported assignment target`);
        return { k: "assign", targets: [first.id], value, line };
      }
      this.endLine();
      return { k: "pass", line };
    }
    if (this.peek().t === "op" && /^[-+*/]=|\/\/=|\*\*=$/.test(this.peek().v)) {
      this.skipLine();
      return { k: "unsupported", what: "augmented assignment", line };
    }
    this.endLine();
    return { k: "expr", value: first, line };
  }

  private endLine(): void {
    if (this.isOp(";")) { this.p++; return; }
    if (this.peek().t === "nl") { this.p++; return; }
    if (this.peek().t === "eof" || this.peek().t === "dedent") return;
    this.fail(`unexpected '${this.peek().v}'`);
  }

  /** `a, b` as a tuple (no parentheses). */
  private parseExprList(): Expr {
    const e = this.parseExpr();
    if (!this.isOp(",")) return e;
    const items = [e];
    while (this.isOp(",")) {
      this.p++;
      if (this.isOp("=") || this.peek().t === "nl") break;
      items.push(this.parseExpr());
    }
    return { k: "tuple", items };
  }

  parseExpr(): Expr {
    const x = this.parseOr();
    if (this.isName("if")) {
      // conditional expression: not straight-line
      this.fail(`conditional expressions are not supported (scripted control flow)`);
    }
    return x;
  }
  private parseOr(): Expr {
    let a = this.parseAnd();
    while (this.isName("or")) { this.p++; a = { k: "bin", op: "or", a, b: this.parseAnd() }; }
    return a;
  }
  private parseAnd(): Expr {
    let a = this.parseNot();
    while (this.isName("and")) { this.p++; a = { k: "bin", op: "and", a, b: this.parseNot() }; }
    return a;
  }
  private parseNot(): Expr {
    if (this.isName("not")) { this.p++; return { k: "unary", op: "not", x: this.parseNot() }; }
    return this.parseCmp();
  }
  private parseCmp(): Expr {
    let a = this.parseArith();
    for (;;) {
      const t = this.peek();
      if (t.t === "op" && ["==", "!=", "<", ">", "<=", ">="].includes(t.v)) {
        this.p++;
        a = { k: "bin", op: t.v, a, b: this.parseArith() };
      } else if (this.isName("is")) {
        this.p++;
        let op = "is";
        if (this.isName("not")) { this.p++; op = "is not"; }
        a = { k: "bin", op, a, b: this.parseArith() };
      } else return a;
    }
  }
  private parseArith(): Expr {
    let a = this.parseTerm();
    while (this.isOp("+") || this.isOp("-")) {
      const op = this.next().v;
      a = { k: "bin", op, a, b: this.parseTerm() };
    }
    return a;
  }
  private parseTerm(): Expr {
    let a = this.parseFactor();
    while (this.isOp("*") || this.isOp("/") || this.isOp("//") || this.isOp("%") || this.isOp("@")) {
      const op = this.next().v;
      a = { k: "bin", op, a, b: this.parseFactor() };
    }
    return a;
  }
  private parseFactor(): Expr {
    if (this.isOp("-") || this.isOp("+") || this.isOp("~")) {
      const op = this.next().v;
      return { k: "unary", op, x: this.parseFactor() };
    }
    const b = this.parsePostfix();
    if (this.isOp("**")) { this.p++; return { k: "bin", op: "**", a: b, b: this.parseFactor() }; }
    return b;
  }
  private parsePostfix(): Expr {
    let e = this.parseAtom();
    for (;;) {
      if (this.isOp(".")) {
        this.p++;
        e = { k: "attr", obj: e, name: this.expectName() };
      } else if (this.isOp("(")) {
        this.p++;
        const args: Expr[] = [];
        const kwargs: [string, Expr][] = [];
        while (!this.isOp(")")) {
          if (this.peek().t === "name" && this.isOp("=", 1)) {
            const k = this.next().v;
            this.p++;
            kwargs.push([k, this.parseExpr()]);
          } else args.push(this.parseExpr());
          if (this.isOp(",")) this.p++;
          else if (!this.isOp(")")) this.fail(`expected ',' or ')' in call`);
        }
        this.p++;
        e = { k: "call", fn: e, args, kwargs };
      } else if (this.isOp("[")) {
        this.p++;
        const idx = this.parseExprList();
        this.expectOp("]");
        e = { k: "index", obj: e, index: idx };
      } else return e;
    }
  }
  private parseAtom(): Expr {
    const t = this.next();
    if (t.t === "name") {
      if (t.v === "None") return { k: "const", v: null };
      if (t.v === "True") return { k: "const", v: true };
      if (t.v === "False") return { k: "const", v: false };
      return { k: "name", id: t.v };
    }
    if (t.t === "num") {
      if (/[jJ]$/.test(t.v)) this.fail(`complex literals are not supported`);
      const isFloat = /[.eE]/.test(t.v) && !/^0[xX]/.test(t.v);
      return { k: "num", v: Number(t.v), float: isFloat };
    }
    if (t.t === "str") {
      let s = t.v;
      while (this.peek().t === "str") s += this.next().v;
      return { k: "str", v: s };
    }
    if (t.t === "op" && (t.v === "(" || t.v === "[")) {
      const close = t.v === "(" ? ")" : "]";
      const items: Expr[] = [];
      let comma = false;
      while (!this.isOp(close)) {
        items.push(this.parseExpr());
        if (this.isOp(",")) { this.p++; comma = true; }
        else if (!this.isOp(close)) this.fail(`expected ',' or '${close}'`);
      }
      this.p++;
      if (t.v === "[") return { k: "list", items };
      if (items.length === 1 && !comma) return items[0]!;
      return { k: "tuple", items };
    }
    if (t.t === "op" && t.v === "{") this.fail(`dict literals are not supported`);
    return this.fail(`unexpected '${t.v || t.t}'`);
  }
}

/** Parse one `code/**.py` file of module `module` (e.g. `__torch__.torch.nn.modules.conv`). */
export function parseTorchScriptSource(src: string, module: string, file: string): ClassDef[] {
  return new Parser(tokenize(src, file), file).parseModule(module);
}

/** Module name of a code record path: `code/__torch__/a/b.py` -> `__torch__.a.b`. */
export function moduleOfCodePath(path: string): string {
  return path.replace(/^code\//, "").replace(/\.py$/, "").split("/").join(".");
}
