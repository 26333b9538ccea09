import { afterAll, describe, expect, it } from "vitest";
import { kernelFor } from "@q/ir";
import { HAVE_NODE_TESTS, LISTED_OPS, NODE_TESTS, isFloat32Case, listCases, loadCase, runCase, type CaseData } from "./cases.js";
import { KNOWN_FAILURES } from "./known-failures.js";

/**
 * Every node conformance case of a listed op whose data is float32 must pass in the reference
 * interpreter, except those in KNOWN_FAILURES (each with its reason). Cases of other dtypes, and
 * cases of every other op the interpreter has a kernel for, run too and are reported, but only
 * float32 cases of listed ops are required. Q_CONFORMANCE_VERBOSE=1 lists the cases that fail
 * without being required, with the reason.
 */
const cases = listCases().filter((c) => LISTED_OPS.includes(c.op) || kernelFor(c.op) !== undefined);
const tally = new Map<string, { pass: number; fail: number; skip: number }>();
const unrequired: string[] = [];
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
      let d: CaseData;
      try {
        d = loadCase(c);
      } catch (e) {
        if (LISTED_OPS.includes(c.op)) throw e;
        bump(c.op, "skip");
        unrequired.push(`${c.name}: cannot load: ${(e as Error).message}`);
        return;
      }
      if (!LISTED_OPS.includes(c.op) || !isFloat32Case(d) || known) {
        // not required: run it for the report only
        let why: string | null;
        try { why = runCase(d); } catch (e) { why = (e as Error).message; }
        bump(c.op, why ? "skip" : "pass");
        if (why) unrequired.push(`${c.name}: ${known ? `(known) ${known}` : why}`);
        return;
      }
      let why: string | null;
      try { why = runCase(d); } catch (e) { why = (e as Error).message; }
      bump(c.op, why ? "fail" : "pass");
      expect(why).toBeNull();
    });
  }
  afterAll(() => {
    const rows = [...tally].sort(([a], [b]) => a.localeCompare(b)).map(([op, t]) => `${(LISTED_OPS.includes(op) ? op : `${op} *`).padEnd(24)} ${String(t.pass).padStart(3)} passed ${String(t.fail).padStart(3)} failed ${String(t.skip).padStart(3)} not passing, not required (other dtype, unlisted op or known)`);
    console.log(`ONNX node conformance, reference interpreter (* = op not in LISTED_OPS, report only):\n${rows.join("\n")}`);
    if (process.env.Q_CONFORMANCE_VERBOSE && unrequired.length) {
      console.log(`not required and not passing (${unrequired.length}):\n${unrequired.map((u) => `  ${u.slice(0, 300)}`).join("\n")}`);
    }
  });
});

describe.skipIf(HAVE_NODE_TESTS)("ONNX node conformance", () => {
  it.skip(`libonnx-testdata not installed (${NODE_TESTS}); apt-get install libonnx-testdata`, () => {});
});
