/**
 * TPU-MLIR calibration table (`cali_table`, spec sophgo.md §1.1): reader, writer and conversion
 * to and from the QuantPlan.
 *
 * Layout: header comment lines, then the main block (`op_name threshold min max`, INT8
 * thresholds, or FP8 thresholds when the header carries `#tpu-mlir-fp8`), then optional blocks,
 * each opened by a `#keyword` line: `#int4_th` (name th min max), `#weight_scale` /
 * `#weight_scale_fp8` (name n s1..sn [m zp1..zpm]), `#tpu-mlir-fp8` / `mqbench-fp8`
 * (name th min max), `#asym_op` and `#int4_op` (one op name per line). A `#word` line q does not
 * know opens an unknown block whose lines are kept verbatim. Lines starting with `# ` (hash,
 * space) or `###` are comments and stay where they are.
 *
 * Data lines are written as TPU-MLIR writes them: one space between fields, every float `%.7f`.
 */
import { emptyPlan, ModelFormatError, readFileChecked, writeFileAtomic, type QuantPlan, type ValueQuant } from "@q/ir";
import { quoteLine, TableLineError } from "./errors.js";
import { formatFixed, formatRepr, parsePyFloat } from "./pyfmt.js";

export interface CaliEntry {
  name: string;
  threshold: number;
  min: number;
  max: number;
}

/** Per-channel weight scales (QAT / mqbench tables): `<consumerOp>_weight n s1..sn [m zp1..zpm]`. */
export interface WeightScaleEntry {
  name: string;
  scales: number[];
  zeroPoints?: number[];
}

/** A comment line kept in place: it is written before item `before` of its block. */
export interface CaliComment {
  before: number;
  text: string;
}

interface BlockBase {
  /** The `#keyword` line that opens the block, verbatim. */
  header: string;
  /** Whether an empty line precedes the keyword line (TPU-MLIR writes one before #int4_th and #asym_op). */
  blankBefore?: boolean;
  comments?: CaliComment[];
}
export interface ThresholdBlock extends BlockBase {
  kind: "int4_th" | "fp8_th";
  entries: CaliEntry[];
}
export interface WeightScaleBlock extends BlockBase {
  kind: "weight_scale";
  entries: WeightScaleEntry[];
  /** How scales are printed: `%.7f` or Python repr (default: repr, which keeps full precision). */
  scaleFormat?: "fixed7" | "repr";
}
export interface NameBlock extends BlockBase {
  kind: "asym_op" | "int4_op";
  names: string[];
}
export interface UnknownBlock extends BlockBase {
  kind: "unknown";
  /** The block's lines after the keyword line, verbatim. */
  lines: string[];
}
export type CaliBlock = ThresholdBlock | WeightScaleBlock | NameBlock | UnknownBlock;

/** What the header lines say. Every field is optional: old tables lack the mlir lines. */
export interface CaliHeader {
  mlirVersion?: string;
  mlir?: string;
  /** `# genetated time:` (TPU-MLIR's spelling), Python `datetime.now()` text. */
  generatedTime?: string;
  /** `# quantization threshold calculation method:` (search_threshold tables). */
  method?: string;
  histogramNumber?: number;
  /** `#tpu-mlir-fp8 caliration table` in place of the histogram line: the main block holds FP8 thresholds. */
  fp8?: boolean;
  sampleNumber?: number;
  tuneNumber?: number;
}

export interface CaliTable {
  header: CaliHeader;
  /**
   * The header comment lines as read, verbatim (possibly none). `formatCaliTable` writes these
   * unless header fields are passed to it; when absent it builds the header TPU-MLIR writes from
   * `header`.
   */
  headerLines?: string[];
  /** The main block, in file order. */
  entries: CaliEntry[];
  /** Comment lines inside the main block (after its first entry). */
  comments?: CaliComment[];
  /** Optional blocks, in file order. */
  blocks: CaliBlock[];
}

const FIELD_NAMES = ["threshold", "min", "max"] as const;

/** Which block a `#word` line opens (TPU-MLIR's ImportCalibration `check_flag_line`). */
function blockKind(line: string): CaliBlock["kind"] {
  if (line.includes("#weight_scale")) return "weight_scale";
  if (line.includes("#int4_th")) return "int4_th";
  if (line.includes("#tpu-mlir-fp8") || line.includes("mqbench-fp8")) return "fp8_th";
  if (line.includes("asym_op")) return "asym_op";
  if (line.includes("int4_op")) return "int4_op";
  return "unknown";
}

/** `#word...` (no space after the hash) opens a block; `# text` and `###` are comments. */
function isKeywordLine(line: string): boolean {
  return /^#[^#\s]/.test(line) || (line.startsWith("#") && line.includes("mqbench-fp8"));
}

function newBlock(kind: CaliBlock["kind"], header: string): CaliBlock {
  switch (kind) {
    case "int4_th":
    case "fp8_th":
      return { kind, header, entries: [] };
    case "weight_scale":
      return { kind, header, entries: [] };
    case "asym_op":
    case "int4_op":
      return { kind, header, names: [] };
    default:
      return { kind: "unknown", header, lines: [] };
  }
}

function parseHeader(lines: readonly string[]): CaliHeader {
  const h: CaliHeader = {};
  const int = (s: string): number | undefined => (/^\d+$/.test(s.trim()) ? Number(s.trim()) : undefined);
  for (const l of lines) {
    let m: RegExpExecArray | null;
    if ((m = /^# mlir version:\s?(.*)$/.exec(l))) h.mlirVersion = m[1]!;
    else if ((m = /^# mlir:\s?(.*)$/.exec(l))) h.mlir = m[1]!;
    else if ((m = /^# gene(?:t|r)ated time:\s?(.*)$/.exec(l))) h.generatedTime = m[1]!;
    else if ((m = /^# quantization threshold calculation method:\s?(.*)$/.exec(l))) h.method = m[1]!;
    else if ((m = /^# histogram number:\s?(.*)$/.exec(l))) {
      const v = int(m[1]!);
      if (v !== undefined) h.histogramNumber = v;
    } else if ((m = /^# sample number:\s?(.*)$/.exec(l))) {
      const v = int(m[1]!);
      if (v !== undefined) h.sampleNumber = v;
    } else if ((m = /^# tune number:\s?(.*)$/.exec(l))) {
      const v = int(m[1]!);
      if (v !== undefined) h.tuneNumber = v;
    } else if (l.startsWith("#") && (l.includes("#tpu-mlir-fp8") || l.includes("mqbench-fp8"))) h.fp8 = true;
  }
  return h;
}

/**
 * Parse the text of a calibration table. `file` is used in error messages. Throws
 * `TableLineError` (a ModelFormatError) naming the line for malformed lines, thresholds that are
 * not positive numbers, non-finite min/max, and names listed twice in one block.
 */
export function parseCaliTable(text: string, file?: string): CaliTable {
  const lines = text.split("\n");
  if (lines.length && lines[lines.length - 1] === "") lines.pop();
  const headerLines: string[] = [];
  const entries: CaliEntry[] = [];
  const comments: CaliComment[] = [];
  const blocks: CaliBlock[] = [];
  let block: CaliBlock | undefined; // undefined: main block
  let dataSeen = false;
  let blank = 0; // empty lines seen since the last non-empty one
  const seen = new Map<string, number>(); // names in the current block -> line
  const fail = (lineNo: number, msg: string): never => {
    throw new TableLineError(msg, file, lineNo);
  };

  const parseThreshold = (raw: string, lineNo: number): CaliEntry => {
    const f = raw.trim().split(/\s+/);
    if (f.length !== 4) fail(lineNo, `expected 'name threshold min max', got ${quoteLine(raw)}`);
    const vals = f.slice(1).map((s, i) => {
      const v = parsePyFloat(s);
      if (v === undefined) fail(lineNo, `${FIELD_NAMES[i]} of '${f[0]}' is not a number: '${s}'`);
      return v!;
    });
    const [th, mn, mx] = vals as [number, number, number];
    if (!(th > 0) || !Number.isFinite(th)) fail(lineNo, `threshold of '${f[0]}' must be a positive number, got '${f[1]}'`);
    if (!Number.isFinite(mn) || !Number.isFinite(mx)) fail(lineNo, `min and max of '${f[0]}' must be finite numbers, got '${f[2]}' '${f[3]}'`);
    return { name: f[0]!, threshold: th, min: mn, max: mx };
  };
  const claim = (name: string, lineNo: number, where: string) => {
    const first = seen.get(name);
    if (first !== undefined) fail(lineNo, `'${name}' is listed twice in the ${where} (first at line ${first})`);
    seen.set(name, lineNo);
  };
  const itemCount = (b: CaliBlock | undefined): number =>
    b === undefined ? entries.length : b.kind === "asym_op" || b.kind === "int4_op" ? b.names.length : b.kind === "unknown" ? b.lines.length : (b as ThresholdBlock | WeightScaleBlock).entries.length;
  const addComment = (b: CaliBlock | undefined, c: CaliComment) => {
    if (b === undefined) comments.push(c);
    else (b.comments ??= []).push(c);
  };

  for (let i = 0; i < lines.length; i++) {
    const lineNo = i + 1;
    let line = lines[i]!;
    if (line.endsWith("\r")) line = line.slice(0, -1);
    if (line.trim() === "") {
      blank++;
      continue;
    }
    if (block?.kind === "unknown" && !isKeywordLine(line)) {
      for (; blank > 0; blank--) block.lines.push("");
      block.lines.push(line);
      continue;
    }
    const hadBlank = blank > 0;
    blank = 0;
    if (line.startsWith("#")) {
      if (!dataSeen && block === undefined) {
        // Still in the header: the fp8 marker line lives here too.
        headerLines.push(line);
        continue;
      }
      if (isKeywordLine(line)) {
        block = newBlock(blockKind(line), line);
        if (hadBlank) block.blankBefore = true;
        blocks.push(block);
        seen.clear();
        continue;
      }
      addComment(block, { before: itemCount(block), text: line });
      continue;
    }
    if (block === undefined) {
      dataSeen = true;
      const e = parseThreshold(line, lineNo);
      claim(e.name, lineNo, "main block");
      entries.push(e);
      continue;
    }
    switch (block.kind) {
      case "int4_th":
      case "fp8_th": {
        const e = parseThreshold(line, lineNo);
        claim(e.name, lineNo, `${block.header} block`);
        block.entries.push(e);
        break;
      }
      case "weight_scale": {
        const f = line.trim().split(/\s+/);
        const n = Number(f[1]);
        if (f.length < 2 || !Number.isInteger(n) || n < 0 || f.length < 2 + n) {
          fail(lineNo, `expected '<name> <n> <n scales> [<m> <m zero points>]', got ${quoteLine(line)}`);
        }
        const scales = f.slice(2, 2 + n).map((s) => {
          const v = parsePyFloat(s);
          if (v === undefined || !Number.isFinite(v)) fail(lineNo, `scale of '${f[0]}' is not a finite number: '${s}'`);
          return v!;
        });
        const e: WeightScaleEntry = { name: f[0]!, scales };
        const rest = f.slice(2 + n);
        if (rest.length) {
          const m = Number(rest[0]);
          if (!Number.isInteger(m) || m < 0 || rest.length !== 1 + m) {
            fail(lineNo, `after ${n} scales expected '<m> <m zero points>', got '${rest.join(" ")}'`);
          }
          e.zeroPoints = rest.slice(1).map((s) => {
            const v = Number(s);
            if (!/^[-+]?\d+(\.0*)?$/.test(s)) fail(lineNo, `zero point of '${f[0]}' is not an integer: '${s}'`);
            return v;
          });
        }
        if (block.scaleFormat === undefined) {
          block.scaleFormat = f.slice(2, 2 + n).every((s) => /^-?\d+\.\d{7}$/.test(s)) ? "fixed7" : "repr";
        }
        claim(e.name, lineNo, `${block.header} block`);
        block.entries.push(e);
        break;
      }
      case "asym_op":
      case "int4_op": {
        const f = line.trim().split(/\s+/);
        if (f.length !== 1) fail(lineNo, `expected one op name per line in the ${block.header} block, got ${quoteLine(line)}`);
        claim(f[0]!, lineNo, `${block.header} block`);
        block.names.push(f[0]!);
        break;
      }
    }
  }
  const table: CaliTable = { header: parseHeader(headerLines), headerLines, entries, blocks };
  if (comments.length) table.comments = comments;
  return table;
}

/** The header lines TPU-MLIR's run_calibration writes, from header fields. */
export function caliHeaderLines(h: CaliHeader): string[] {
  const out: string[] = [];
  if (h.mlirVersion !== undefined) out.push(`# mlir version: ${h.mlirVersion}`);
  if (h.mlir !== undefined) out.push(`# mlir: ${h.mlir}`);
  if (h.generatedTime !== undefined) out.push(`# genetated time: ${h.generatedTime}`);
  if (h.method !== undefined) out.push(`# quantization threshold calculation method: ${h.method}`);
  if (h.fp8) out.push("#tpu-mlir-fp8 caliration table");
  else if (h.histogramNumber !== undefined) out.push(`# histogram number: ${h.histogramNumber}`);
  if (h.sampleNumber !== undefined) out.push(`# sample number: ${h.sampleNumber}`);
  if (h.tuneNumber !== undefined) out.push(`# tune number: ${h.tuneNumber}`);
  out.push("###", "# op_name    threshold    min    max");
  return out;
}

/** Python's `str(datetime.now())` for a date (local time), as TPU-MLIR writes it in headers. */
export function pythonTimestamp(d: Date = new Date()): string {
  const p = (n: number, w = 2) => String(n).padStart(w, "0");
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}.${p(d.getMilliseconds() * 1000, 6)}`;
}

function thresholdLine(e: CaliEntry): string {
  return `${e.name} ${formatFixed(e.threshold)} ${formatFixed(e.min)} ${formatFixed(e.max)}`;
}

function withComments(items: string[], comments: CaliComment[] | undefined): string[] {
  if (!comments?.length) return items;
  const out: string[] = [];
  const sorted = [...comments].sort((a, b) => a.before - b.before);
  let c = 0;
  for (let i = 0; i <= items.length; i++) {
    while (c < sorted.length && sorted[c]!.before <= i) out.push(sorted[c++]!.text);
    if (i < items.length) out.push(items[i]!);
  }
  return out;
}

function checkName(name: string, where: string): void {
  if (!name || /\s/.test(name)) {
    throw new ModelFormatError(`cannot write op name ${JSON.stringify(name)} in the ${where}: names must be non-empty and contain no whitespace`);
  }
}

/**
 * Write a calibration table as TPU-MLIR does (`\n` line ends, one space between fields, `%.7f`
 * floats, optional blocks after the main one). Header: the given fields (merged over
 * `table.header`) when `header` is passed, else `table.headerLines` when present, else the
 * fields of `table.header`.
 */
export function formatCaliTable(table: CaliTable, header?: CaliHeader): string {
  const head = header
    ? caliHeaderLines({ ...table.header, ...header })
    : table.headerLines
      ? table.headerLines
      : caliHeaderLines(table.header);
  const out: string[] = [...head];
  for (const e of table.entries) checkName(e.name, "main block");
  out.push(...withComments(table.entries.map(thresholdLine), table.comments));
  for (const b of table.blocks) {
    if (b.blankBefore) out.push("");
    out.push(b.header);
    let items: string[];
    switch (b.kind) {
      case "int4_th":
      case "fp8_th":
        for (const e of b.entries) checkName(e.name, b.header);
        items = b.entries.map(thresholdLine);
        break;
      case "weight_scale": {
        const f = b.scaleFormat === "fixed7" ? (x: number) => formatFixed(x) : formatRepr;
        items = b.entries.map((e) => {
          checkName(e.name, b.header);
          let s = `${e.name} ${e.scales.length} ${e.scales.map(f).join(" ")}`;
          if (e.zeroPoints) s += ` ${e.zeroPoints.length} ${e.zeroPoints.join(" ")}`;
          return s;
        });
        break;
      }
      case "asym_op":
      case "int4_op":
        for (const n of b.names) checkName(n, b.header);
        items = [...b.names];
        break;
      default:
        items = [...b.lines];
    }
    out.push(...withComments(items, b.comments));
  }
  return out.map((l) => `${l}\n`).join("");
}

/** Read a calibration table file. Missing file → MissingFileError; bad lines → TableLineError. */
export async function readCaliTable(path: string): Promise<CaliTable> {
  const bytes = await readFileChecked(path, "calibration table");
  return parseCaliTable(new TextDecoder("utf-8").decode(bytes), path);
}

/** Write a calibration table file atomically (see formatCaliTable). */
export async function writeCaliTable(path: string, table: CaliTable, header?: CaliHeader): Promise<void> {
  await writeFileAtomic(path, new TextEncoder().encode(formatCaliTable(table, header)), "calibration table");
}

// ---------------------------------------------------------------------------------------------
// QuantPlan conversion

/**
 * The plan a calibration table describes. Main-block entries become int8 values (threshold, min,
 * max; method "table"; symmetric unless the name is in `#asym_op`); FP8 tables are marked in the
 * value's `reason` (QuantPlan has no fp8 type). `#int4_op` names become int4 ops; `#int4_th`
 * thresholds become int4 values for names without a main-block entry (a value holds one range in
 * the plan, the table keeps both). `#weight_scale` entries become per-channel int8 scales
 * (axis 0). Unknown blocks are not part of the plan.
 */
export function caliTableToPlan(table: CaliTable, target?: string): QuantPlan {
  const plan = emptyPlan(target);
  const asym = new Set<string>();
  const int4Ops = new Set<string>();
  for (const b of table.blocks) {
    if (b.kind === "asym_op") for (const n of b.names) asym.add(n);
    if (b.kind === "int4_op") for (const n of b.names) int4Ops.add(n);
  }
  const fp8Main = table.header.fp8 === true;
  const put = (e: CaliEntry, type: ValueQuant["type"], reason?: string) => {
    const v: ValueQuant = { type, symmetric: !asym.has(e.name), threshold: e.threshold, min: e.min, max: e.max, method: "table" };
    if (reason) v.reason = reason;
    plan.values.set(e.name, v);
  };
  for (const e of table.entries) put(e, "int8", fp8Main ? "fp8 threshold (#tpu-mlir-fp8 table)" : undefined);
  for (const b of table.blocks) {
    if (b.kind === "fp8_th") for (const e of b.entries) if (!plan.values.has(e.name)) put(e, "int8", "fp8 threshold");
    if (b.kind === "int4_th") for (const e of b.entries) if (!plan.values.has(e.name)) put(e, "int4");
    if (b.kind === "weight_scale") {
      for (const e of b.entries) {
        const v: ValueQuant = { type: "int8", symmetric: !e.zeroPoints?.some((z) => z !== 0), scale: [...e.scales], axis: 0, method: "table" };
        if (e.zeroPoints) v.zeroPoint = [...e.zeroPoints];
        plan.values.set(e.name, v);
      }
    }
  }
  for (const n of int4Ops) plan.ops.set(n, { type: "int4", reason: "#int4_op in calibration table" });
  return plan;
}

export interface PlanToCaliOptions {
  /** Header fields; `generatedTime` defaults to now. */
  header?: CaliHeader;
}

/**
 * A calibration table from a plan: values with a threshold go to the main block (int4/uint4 ones
 * to `#int4_th`), in plan order; thresholds ≤ 1e-5 or NaN are written as 1e-5, as TPU-MLIR does.
 * Missing min/max default to ±threshold (0 for unsigned types; -th·8/7 for int4, as the tool
 * writes). Values with `symmetric: false` are listed in `#asym_op`, ops of type int4 in
 * `#int4_op`, values with per-channel scales and no threshold in `#weight_scale`.
 */
export function planToCaliTable(plan: QuantPlan, opts: PlanToCaliOptions = {}): CaliTable {
  const entries: CaliEntry[] = [];
  const int4: CaliEntry[] = [];
  const asym: string[] = [];
  const ws: WeightScaleEntry[] = [];
  for (const [name, v] of plan.values) {
    if (v.threshold !== undefined) {
      const th = Number.isNaN(v.threshold) || v.threshold <= 1e-5 ? 1e-5 : v.threshold;
      const isInt4 = v.type === "int4" || v.type === "uint4";
      const unsigned = v.type.startsWith("u");
      const min = v.min ?? (unsigned ? 0 : isInt4 ? (-th * 8) / 7 : -th);
      const max = v.max ?? th;
      (isInt4 ? int4 : entries).push({ name, threshold: th, min, max });
      if (!v.symmetric) asym.push(name);
    } else if (v.scale && v.scale.length) {
      const e: WeightScaleEntry = { name, scales: [...v.scale] };
      if (v.zeroPoint) e.zeroPoints = [...v.zeroPoint];
      ws.push(e);
    }
  }
  const blocks: CaliBlock[] = [];
  if (int4.length) blocks.push({ kind: "int4_th", header: "#int4_th", entries: int4, blankBefore: true });
  if (asym.length) blocks.push({ kind: "asym_op", header: "#asym_op", names: asym, blankBefore: true });
  const int4Ops = [...plan.ops].filter(([, o]) => o.type === "int4" || o.type === "uint4").map(([n]) => n);
  if (int4Ops.length) blocks.push({ kind: "int4_op", header: "#int4_op", names: int4Ops, blankBefore: true });
  if (ws.length) blocks.push({ kind: "weight_scale", header: "#weight_scale", entries: ws, scaleFormat: "repr" });
  const header: CaliHeader = { generatedTime: pythonTimestamp(), ...opts.header };
  return { header, entries, blocks };
}
