import { afterAll, describe, expect, it } from "vitest";
import { HAVE_NODE_TESTS, LISTED_OPS, NODE_TESTS, isFloat32Case, listCases, loadCase, runCase } from "./cases.js";
import { KNOWN_FAILURES } from "./known-failures.js";

/**
 * Every node conformance case of a listed op whose data is float32 must pass in the reference
 * interpreter, except those in KNOWN_FAILURES (each with its reason). Cases of other ops and other
 * dtypes run too and are reported, but only float32 cases of listed ops are required.
 */
const cases = listCases().filter((c) => LISTED_OPS.includes(c.op));
const tally = new Map<string, { pass: number; fail: number; skip: number }>();
const bump = (op: string, k: "pass" | "fail" | "skip") => {
  const t = tally.get(op) ?? { pass: 0, fail: 0, skip: 0 };
  t[k]++;
  tally.set(op, t);
};

describe.skipIf(!HAVE_NODE_TESTS)(`ONNX node conformance (${NODE_TESTS})`, () => {
  it("finds cases for every listed op", () => {
    const ops = new Set(cases.map((c) => c.op));
    expect(LISTED_OPS.filter((o) => !ops.has(o))).toEqual([]);
  });
  for (const c of cases) {
    const known = KNOWN_FAILURES[c.name];
    it(`${c.op} ${c.name}`, () => {
      if (known && /sequence|optional/.test(known)) {
        bump(c.op, "skip");
        return;
      }
      const d = loadCase(c);
      if (!isFloat32Case(d) || known) {
        // not required: run it for the report only
        let why: string | null;
        try { why = runCase(d); } catch (e) { why = (e as Error).message; }
        bump(c.op, why ? "skip" : "pass");
        return;
      }
      let why: string | null;
      try { why = runCase(d); } catch (e) { why = (e as Error).message; }
      bump(c.op, why ? "fail" : "pass");
      expect(why).toBeNull();
    });
  }
  afterAll(() => {
    const rows = [...tally].sort(([a], [b]) => a.localeCompare(b)).map(([op, t]) => `${op.padEnd(24)} ${String(t.pass).padStart(3)} passed ${String(t.fail).padStart(3)} failed ${String(t.skip).padStart(3)} not required (other dtype or known)`);
    console.log(`ONNX node conformance, reference interpreter:\n${rows.join("\n")}`);
  });
});

describe.skipIf(HAVE_NODE_TESTS)("ONNX node conformance", () => {
  it.skip(`libonnx-testdata not installed (${NODE_TESTS}); apt-get install libonnx-testdata`, () => {});
});
