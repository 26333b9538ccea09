/**
 * TPU-MLIR quantize table (`qtable`, spec sophgo.md §1.2): per-op precision overrides for mixed
 * precision. Reader rules follow the compiler (`ConvertTopToTpu::init_qtable`): empty lines and
 * `#...` lines are skipped, `name MODE` lines are entries (MODE upper-cased, checked against the
 * modes the compiler knows), a single-token line is ignored (kept in `ignored`), anything else is
 * an error. Comment lines are kept where they are so a table rewrites unchanged.
 */
import { emptyPlan, QError, readFileChecked, writeFileAtomic, type QuantPlan, type QuantType } from "@q/ir";
import { quoteLine, TableLineError } from "./errors.js";
import { pythonTimestamp } from "./cali-table.js";

/** The modes a qtable entry may name (`module::Mode` symbols, plus QDQ). */
export const QTABLE_MODES = ["INT8", "UINT8", "INT4", "BF16", "F16", "F32", "W8F16", "W8BF16", "W4F16", "W4BF16", "F8E4M3", "F8E5M2", "QDQ"] as const;
export type QMode = (typeof QTABLE_MODES)[number];

export function isQMode(s: string): s is QMode {
  return (QTABLE_MODES as readonly string[]).includes(s);
}

export interface QTableEntry {
  name: string;
  mode: QMode;
}

export interface QTableHeader {
  generatedTime?: string;
  sampleNumber?: number;
  chip?: string;
  mixMode?: string;
  /** `# number of <mode> layer: N` */
  layerCount?: number;
  /** `# part_quantize` (pattern-match tables). */
  partQuantize?: boolean;
}

export interface QTable {
  header: QTableHeader;
  /** Comment lines before the first entry, verbatim (written unless header fields are passed). */
  headerLines?: string[];
  entries: QTableEntry[];
  /** Comment lines after the first entry: written before entry `before`. */
  comments?: { before: number; text: string }[];
  /** Single-token lines, which TPU-MLIR ignores (not written back). */
  ignored?: { line: number; text: string }[];
}

function parseHeader(lines: readonly string[]): QTableHeader {
  const h: QTableHeader = {};
  for (const l of lines) {
    let m: RegExpExecArray | null;
    if ((m = /^# gene(?:t|r)ated time:\s?(.*)$/.exec(l))) h.generatedTime = m[1]!;
    else if ((m = /^# sample number:\s*(\d+)\s*$/.exec(l))) h.sampleNumber = Number(m[1]);
    else if ((m = /^# chip:\s*(\S+)\s+mix_mode:\s*(\S+)/.exec(l))) {
      h.chip = m[1]!;
      h.mixMode = m[2]!;
    } else if ((m = /^# number of \S+ layer:\s*(\d+)\s*$/.exec(l))) h.layerCount = Number(m[1]);
    else if (/^# part_quantize\s*$/.test(l)) h.partQuantize = true;
  }
  return h;
}

/**
 * Parse a qtable. Throws TableLineError (a ModelFormatError) for a line with more than two
 * fields, an unknown mode (naming the valid ones), or an op listed twice with different modes.
 */
export function parseQTable(text: string, file?: string): QTable {
  const lines = text.split("\n");
  if (lines.length && lines[lines.length - 1] === "") lines.pop();
  const headerLines: string[] = [];
  const entries: QTableEntry[] = [];
  const comments: { before: number; text: string }[] = [];
  const ignored: { line: number; text: string }[] = [];
  const seen = new Map<string, { mode: QMode; line: number }>();
  for (let i = 0; i < lines.length; i++) {
    const lineNo = i + 1;
    let line = lines[i]!;
    if (line.endsWith("\r")) line = line.slice(0, -1);
    if (line.trim() === "") continue;
    if (line.trimStart().startsWith("#")) {
      if (entries.length === 0) headerLines.push(line);
      else comments.push({ before: entries.length, text: line });
      continue;
    }
    const f = line.trim().split(/\s+/);
    if (f.length === 1) {
      ignored.push({ line: lineNo, text: line });
      continue;
    }
    if (f.length !== 2) throw new TableLineError(`expected 'op_name quantize_mode', got ${quoteLine(line)}`, file, lineNo);
    const mode = f[1]!.toUpperCase();
    if (!isQMode(mode)) {
      throw new TableLineError(`unknown quantize mode '${f[1]}' for '${f[0]}' (valid: ${QTABLE_MODES.join(", ")})`, file, lineNo);
    }
    const prev = seen.get(f[0]!);
    if (prev && prev.mode !== mode) {
      throw new TableLineError(`'${f[0]}' is listed as ${prev.mode} at line ${prev.line} and as ${mode} here`, file, lineNo);
    }
    if (!prev) seen.set(f[0]!, { mode, line: lineNo });
    entries.push({ name: f[0]!, mode });
  }
  const t: QTable = { header: parseHeader(headerLines), headerLines, entries };
  if (comments.length) t.comments = comments;
  if (ignored.length) t.ignored = ignored;
  return t;
}

/** The header lines TPU-MLIR's search tools write. */
export function qtableHeaderLines(h: QTableHeader): string[] {
  const out: string[] = [];
  if (h.generatedTime !== undefined) out.push(`# genetated time: ${h.generatedTime}`);
  if (h.sampleNumber !== undefined) out.push(`# sample number: ${h.sampleNumber}`);
  if (h.chip !== undefined || h.mixMode !== undefined) out.push(`# chip: ${h.chip ?? ""}  mix_mode: ${h.mixMode ?? ""}`);
  if (h.layerCount !== undefined) out.push(`# number of ${h.mixMode ?? ""} layer: ${h.layerCount}`);
  if (h.partQuantize) out.push("# part_quantize ");
  out.push("###", "# op_name   quantize_mode");
  return out;
}

/**
 * Write a qtable: `name MODE` lines, `\n` line ends. Header: the given fields (merged over
 * `table.header`) when `header` is passed, else `table.headerLines` when present, else the
 * fields of `table.header`.
 */
export function formatQTable(table: QTable, header?: QTableHeader): string {
  const head = header ? qtableHeaderLines({ ...table.header, ...header }) : table.headerLines ? table.headerLines : qtableHeaderLines(table.header);
  const out = [...head];
  const comments = [...(table.comments ?? [])].sort((a, b) => a.before - b.before);
  let c = 0;
  table.entries.forEach((e, i) => {
    while (c < comments.length && comments[c]!.before <= i) out.push(comments[c++]!.text);
    if (!e.name || /\s/.test(e.name)) throw new QError("E_FORMAT", `cannot write op name ${JSON.stringify(e.name)} in a qtable: names must be non-empty and contain no whitespace`);
    if (!isQMode(e.mode)) throw new QError("E_FORMAT", `cannot write '${e.name}' with mode '${String(e.mode)}' (valid: ${QTABLE_MODES.join(", ")})`);
    out.push(`${e.name} ${e.mode}`);
  });
  while (c < comments.length) out.push(comments[c++]!.text);
  return out.map((l) => `${l}\n`).join("");
}

export async function readQTable(path: string): Promise<QTable> {
  const bytes = await readFileChecked(path, "quantize table");
  return parseQTable(new TextDecoder("utf-8").decode(bytes), path);
}

export async function writeQTable(path: string, table: QTable, header?: QTableHeader): Promise<void> {
  await writeFileAtomic(path, new TextEncoder().encode(formatQTable(table, header)), "quantize table");
}

// ---------------------------------------------------------------------------------------------
// QuantPlan conversion

const MODE_TYPE: Record<QMode, QuantType> = {
  INT8: "int8",
  UINT8: "uint8",
  INT4: "int4",
  BF16: "bfloat16",
  F16: "float16",
  F32: "float32",
  // weight-only modes: activations stay in the float type
  W8F16: "float16",
  W4F16: "float16",
  W8BF16: "bfloat16",
  W4BF16: "bfloat16",
  // QuantPlan has no fp8 type: the nearest 16-bit float, the exact mode is kept in `reason`
  F8E4M3: "float16",
  F8E5M2: "float16",
  QDQ: "int8",
};

const TYPE_MODE: Partial<Record<QuantType, QMode>> = {
  int8: "INT8",
  uint8: "UINT8",
  int4: "INT4",
  bfloat16: "BF16",
  float16: "F16",
  float32: "F32",
};

/** The QuantPlan type an op gets for a qtable mode. */
export function qmodeToQuantType(mode: QMode): QuantType {
  return MODE_TYPE[mode];
}

/**
 * Put the table's per-op modes into a plan (a new one, or `into`): `ops[name] = { type, reason:
 * "qtable mode <MODE>" }`. The exact mode survives in the reason, so W8F16 or F8E4M3 round-trip.
 */
export function qtableToPlan(table: QTable, into?: QuantPlan): QuantPlan {
  const plan = into ?? emptyPlan(table.header.chip);
  for (const e of table.entries) plan.ops.set(e.name, { type: MODE_TYPE[e.mode], reason: `qtable mode ${e.mode}` });
  return plan;
}

export interface PlanToQTableOptions {
  /** The deploy mode (`--quantize`): ops of this mode are left out, as TPU-MLIR's tools do. */
  defaultMode?: QMode;
  header?: QTableHeader;
}

/**
 * A qtable from the plan's per-op types. The mode is taken from a `qtable mode <MODE>` reason
 * when it agrees with the type, else from the type. Types without a TPU-MLIR mode (int16,
 * uint16, uint4) are an error.
 */
export function planToQTable(plan: QuantPlan, opts: PlanToQTableOptions = {}): QTable {
  const entries: QTableEntry[] = [];
  for (const [name, op] of plan.ops) {
    const m = /\bqtable mode (\S+)/.exec(op.reason ?? "");
    const mode: QMode | undefined = m && isQMode(m[1]!) && MODE_TYPE[m[1]!] === op.type ? m[1]! : TYPE_MODE[op.type];
    if (!mode) throw new QError("E_UNSUPPORTED", `op '${name}' has type ${op.type}, which TPU-MLIR cannot run (qtable modes: ${QTABLE_MODES.join(", ")})`);
    if (mode === opts.defaultMode) continue;
    entries.push({ name, mode });
  }
  const header: QTableHeader = { generatedTime: pythonTimestamp(), ...opts.header };
  if (plan.target !== undefined && header.chip === undefined) header.chip = plan.target;
  return { header, entries };
}
