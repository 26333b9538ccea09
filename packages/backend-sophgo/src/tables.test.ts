import { existsSync, readdirSync, readFileSync } from "node:fs";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { ModelFormatError, MissingFileError, emptyPlan } from "@q/ir";
import {
  caliTableToPlan, formatCaliTable, parseCaliTable, planToCaliTable, readCaliTable, writeCaliTable,
  formatQTable, parseQTable, planToQTable, qtableToPlan, readQTable, writeQTable, TableLineError,
} from "./index.js";
import { formatFixed, formatRepr } from "./pyfmt.js";

const MODELS = join(__dirname, "../../../../shared/test-models");
const CALI_DIR = join(MODELS, "cali-tables");
const haveModels = existsSync(CALI_DIR);
if (!haveModels) console.warn(`skipping real-table tests: ${CALI_DIR} not found (shared test models absent)`);

function realTables(): string[] {
  if (!haveModels) return [];
  const files = readdirSync(CALI_DIR).filter((f) => f.endsWith("_cali_table")).map((f) => join(CALI_DIR, f));
  const bf = join(MODELS, "onnx/blazeface/blazeface_cali_table");
  if (existsSync(bf)) files.push(bf);
  return files;
}

/** Same lines; numeric fields compared as numbers, everything else as text. */
function expectSameModuloFloats(a: string, b: string): void {
  const la = a.split("\n");
  const lb = b.split("\n");
  expect(la.length).toBe(lb.length);
  la.forEach((l, i) => {
    const fa = l.split(" ");
    const fb = lb[i]!.split(" ");
    expect(fa.length, `line ${i + 1}`).toBe(fb.length);
    fa.forEach((x, k) => {
      const y = fb[k]!;
      if (x !== y && /^[-+]?[\d.]+(e[-+]?\d+)?$/i.test(x)) expect(Number(x), `line ${i + 1} field ${k}`).toBeCloseTo(Number(y), 6);
      else expect(x, `line ${i + 1} field ${k}`).toBe(y);
    });
  });
}

describe("python number formatting", () => {
  it("formats %.7f with round-half-even on the exact binary value and keeps -0", () => {
    expect(formatFixed(4.1234567)).toBe("4.1234567");
    expect(formatFixed(-0)).toBe("-0.0000000");
    expect(formatFixed(-1e-9)).toBe("-0.0000000");
    expect(formatFixed(1e-5)).toBe("0.0000100");
    expect(formatFixed(0.00390625)).toBe("0.0039062"); // exact tie -> even (JS toFixed gives ...63)
    expect(formatFixed(0.01171875)).toBe("0.0117188");
    expect(formatFixed(254)).toBe("254.0000000");
    expect(formatFixed(123456789.5)).toBe("123456789.5000000");
    expect(formatFixed(1.5, 0)).toBe("2");
    expect(formatFixed(2.5, 0)).toBe("2");
  });
  it("formats repr like Python", () => {
    expect(formatRepr(1e-5)).toBe("1e-05");
    expect(formatRepr(0.0001)).toBe("0.0001");
    expect(formatRepr(1)).toBe("1.0");
    expect(formatRepr(123.5)).toBe("123.5");
    expect(formatRepr(1e16)).toBe("1e+16");
    expect(formatRepr(1.2345e-7)).toBe("1.2345e-07");
    expect(formatRepr(0.1)).toBe("0.1");
    expect(formatRepr(-2.5e20)).toBe("-2.5e+20");
  });
});

describe("cali_table", () => {
  it.skipIf(!haveModels)("parses every real table and rewrites it byte for byte", () => {
    const files = realTables();
    expect(files.length).toBeGreaterThanOrEqual(7);
    for (const f of files) {
      const text = readFileSync(f, "utf8");
      const t = parseCaliTable(text, f);
      expect(t.entries.length, f).toBeGreaterThan(5);
      expect(t.header.histogramNumber, f).toBe(2048);
      expect(t.header.generatedTime, f).toMatch(/^20\d\d-/);
      const out = formatCaliTable(t);
      expectSameModuloFloats(out, text);
      expect(out, f).toBe(text); // %.7f reproduces TPU-MLIR's text exactly
      // and through the canonical header (built from fields)
      expectSameModuloFloats(formatCaliTable({ header: t.header, entries: t.entries, blocks: t.blocks }), text);
    }
  });

  it.skipIf(!haveModels)("converts real tables to a plan and back", () => {
    for (const f of realTables()) {
      const t = parseCaliTable(readFileSync(f, "utf8"), f);
      const plan = caliTableToPlan(t);
      expect(plan.values.size).toBe(t.entries.length);
      const first = t.entries[0]!;
      expect(plan.values.get(first.name)).toMatchObject({ type: "int8", symmetric: true, threshold: first.threshold, min: first.min, max: first.max, method: "table" });
      const back = planToCaliTable(plan, { header: t.header });
      expect(formatCaliTable(back)).toBe(readFileSync(f, "utf8"));
    }
  });

  const sample = [
    "# mlir version: v1.7 cali version 1.0",
    "# mlir: model.mlir",
    "# genetated time: 2024-01-02 03:04:05.123456",
    "# histogram number: 2048",
    "# sample number: 10",
    "###",
    "# op_name    threshold    min    max",
    "a 1.0000000 -0.5000000 1.0000000",
    "b/c:0_Conv 2.5000000 0.0000000 2.5000000",
    "",
    "#int4_th",
    "a 0.9000000 -1.0285714 0.9000000",
    "",
    "#asym_op",
    "b/c:0_Conv",
    "#int4_op",
    "a",
    "#weight_scale",
    "conv_weight 3 0.0100000 0.0200000 0.0300000",
    "#future_block v2",
    "anything goes  here",
    "x y z",
    "",
  ].join("\n");

  it("keeps every block and rewrites it unchanged", () => {
    const t = parseCaliTable(sample, "s.txt");
    expect(t.entries.map((e) => e.name)).toEqual(["a", "b/c:0_Conv"]);
    expect(t.blocks.map((b) => b.kind)).toEqual(["int4_th", "asym_op", "int4_op", "weight_scale", "unknown"]);
    expect(t.header).toMatchObject({ mlirVersion: "v1.7 cali version 1.0", mlir: "model.mlir", sampleNumber: 10 });
    expect(formatCaliTable(t)).toBe(sample);
    const plan = caliTableToPlan(t);
    expect(plan.values.get("b/c:0_Conv")!.symmetric).toBe(false);
    expect(plan.ops.get("a")!.type).toBe("int4");
    expect(plan.values.get("conv_weight")!.scale).toEqual([0.01, 0.02, 0.03]);
    const back = formatCaliTable(planToCaliTable(plan, { header: t.header }));
    const bt = parseCaliTable(back);
    expect(bt.entries).toEqual(t.entries);
    expect(bt.blocks.find((b) => b.kind === "asym_op")).toMatchObject({ names: ["b/c:0_Conv"] });
    expect(bt.blocks.find((b) => b.kind === "int4_op")).toMatchObject({ names: ["a"] });
  });

  it("reads fp8 tables (marker in the header) and CRLF line ends", () => {
    const t = parseCaliTable("#tpu-mlir-fp8 caliration table\r\nx 1.5 -1.5118110 1.5\r\n");
    expect(t.header.fp8).toBe(true);
    expect(t.entries).toEqual([{ name: "x", threshold: 1.5, min: -1.511811, max: 1.5 }]);
    expect(caliTableToPlan(t).values.get("x")!.reason).toMatch(/fp8/);
    expect(formatCaliTable(t)).toBe("#tpu-mlir-fp8 caliration table\nx 1.5000000 -1.5118110 1.5000000\n");
  });

  it("names the file and line of bad input", () => {
    const bad = (text: string, re: RegExp) => {
      let err: unknown;
      try {
        parseCaliTable(text, "t.cali");
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(ModelFormatError);
      expect(err).toBeInstanceOf(TableLineError);
      expect((err as Error).message).toMatch(re);
    };
    bad("# h\na 1 2\n", /^t\.cali:2: expected 'name threshold min max', got 'a 1 2'/);
    bad("a 1.0 0 1\nb x 0 1\n", /^t\.cali:2: threshold of 'b' is not a number: 'x'/);
    bad("a 0.0 0 1\n", /^t\.cali:1: threshold of 'a' must be a positive number/);
    bad("a -1 0 1\n", /t\.cali:1: threshold/);
    bad("a nan 0 1\n", /t\.cali:1: threshold/);
    bad("a 1 -inf 1\n", /t\.cali:1: min and max/);
    bad("a 1 0 1\nb 1 0 1\na 2 0 2\n", /^t\.cali:3: 'a' is listed twice in the main block \(first at line 1\)/);
    bad("a 1 0 1\n#asym_op\nx y\n", /^t\.cali:3: expected one op name/);
    bad("a 1 0 1\n#weight_scale\nw 3 0.1 0.2\n", /^t\.cali:3: expected '<name> <n>/);
    expect(() => parseCaliTable("a 1\n")).toThrow(/^line 1: expected/);
  });

  it("writes plans as TPU-MLIR does (clamped thresholds, default ranges) and files atomically", async () => {
    const plan = emptyPlan();
    plan.values.set("x", { type: "int8", symmetric: true, threshold: 0 });
    plan.values.set("y", { type: "uint8", symmetric: true, threshold: 3 });
    plan.values.set("z", { type: "int8", symmetric: true, threshold: 2, min: -1, max: 2 });
    const t = planToCaliTable(plan, { header: { generatedTime: "T", histogramNumber: 2048, sampleNumber: 4 } });
    expect(formatCaliTable(t)).toBe(
      "# genetated time: T\n# histogram number: 2048\n# sample number: 4\n###\n# op_name    threshold    min    max\n" +
        "x 0.0000100 -0.0000100 0.0000100\ny 3.0000000 0.0000000 3.0000000\nz 2.0000000 -1.0000000 2.0000000\n",
    );
    const dir = mkdtempSync(join(tmpdir(), "q-sophgo-"));
    try {
      const p = join(dir, "cali");
      await writeCaliTable(p, t);
      const r = await readCaliTable(p);
      expect(r.entries.map((e) => e.name)).toEqual(["x", "y", "z"]);
      expect(readdirSync(dir)).toEqual(["cali"]);
      await expect(readCaliTable(join(dir, "nope"))).rejects.toBeInstanceOf(MissingFileError);
      await expect(writeCaliTable(join(dir, "no/dir/cali"), t)).rejects.toThrow(/no\/dir/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("qtable", () => {
  it.skipIf(!haveModels)("round-trips the real qtables", () => {
    const files = readdirSync(CALI_DIR).filter((f) => f.endsWith("_qtable"));
    expect(files.length).toBeGreaterThan(0);
    for (const f of files) {
      const text = readFileSync(join(CALI_DIR, f), "utf8");
      const q = parseQTable(text, f);
      expect(q.entries.length).toBeGreaterThan(0);
      expect(formatQTable(q)).toBe(text);
      const plan = qtableToPlan(q);
      expect([...plan.ops.values()].every((o) => o.type === "float32")).toBe(true);
      expect(planToQTable(plan).entries).toEqual(q.entries);
    }
  });

  const sample = [
    "# genetated time: 2024-05-06 07:08:09.000001",
    "# sample number: 30",
    "# chip: bm1684x  mix_mode: F16",
    "# number of F16 layer: 3",
    "# part_quantize ",
    "###",
    "# op_name   quantize_mode",
    "# mix_prec layers by op_shape identification",
    "input3.1 F16",
    "# mix_prec layers by transformer_pattern identification",
    "/a/b:0 W8F16",
    "c F8E4M3",
    "",
  ].join("\n");

  it("parses headers and comments and keeps exact modes through the plan", () => {
    const q = parseQTable(sample, "q");
    expect(q.header).toEqual({ generatedTime: "2024-05-06 07:08:09.000001", sampleNumber: 30, chip: "bm1684x", mixMode: "F16", layerCount: 3, partQuantize: true });
    expect(formatQTable(q)).toBe(sample);
    const plan = qtableToPlan(q);
    expect(plan.ops.get("/a/b:0")).toEqual({ type: "float16", reason: "qtable mode W8F16" });
    const back = planToQTable(plan, { header: q.header });
    expect(back.entries).toEqual(q.entries);
    expect(formatQTable(back)).toBe(
      "# genetated time: 2024-05-06 07:08:09.000001\n# sample number: 30\n# chip: bm1684x  mix_mode: F16\n# number of F16 layer: 3\n# part_quantize \n###\n# op_name   quantize_mode\ninput3.1 F16\n/a/b:0 W8F16\nc F8E4M3\n",
    );
    expect(planToQTable(plan, { defaultMode: "F16" }).entries.map((e) => e.name)).toEqual(["/a/b:0", "c"]);
  });

  it("accepts lower-case modes, ignores single tokens, rejects bad lines", async () => {
    const q = parseQTable("a f16\nlonely\n");
    expect(q.entries).toEqual([{ name: "a", mode: "F16" }]);
    expect(q.ignored).toEqual([{ line: 2, text: "lonely" }]);
    expect(() => parseQTable("a F16\nb INT9\n", "q.txt")).toThrow(/^q\.txt:2: unknown quantize mode 'INT9' for 'b' \(valid: INT8/);
    expect(() => parseQTable("a F16 x\n", "q.txt")).toThrow(/^q\.txt:1: expected 'op_name quantize_mode'/);
    expect(() => parseQTable("a F16\na F32\n", "q.txt")).toThrow(/^q\.txt:2: 'a' is listed as F16 at line 1 and as F32/);
    const plan = emptyPlan();
    plan.ops.set("x", { type: "int16" });
    expect(() => planToQTable(plan)).toThrow(/int16/);
    const dir = mkdtempSync(join(tmpdir(), "q-sophgo-"));
    try {
      await writeQTable(join(dir, "qt"), parseQTable(sample));
      expect(formatQTable(await readQTable(join(dir, "qt")))).toBe(sample);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
