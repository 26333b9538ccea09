import { describe, expect, it } from "vitest";
import { Graph, Node, type AttrValue } from "../../graph.js";
import { Tensor } from "../../tensor.js";
import { ReferenceExecutor } from "../interpreter.js";

const vals = (t: Tensor | undefined) => Array.from(t!.toNumbers());
const constNode = (out: string, t: Tensor) => new Node({ opType: "Constant", inputs: [], outputs: [out], attrs: { value: { type: "tensor", value: t } } });
const graphAttr = (g: Graph): AttrValue => ({ type: "graph", value: g });
const bool = (v: boolean) => new Tensor("bool", [], Uint8Array.of(v ? 1 : 0));

function branch(name: string, nodes: Node[], out: string): Graph {
  const g = new Graph({ name, nodes });
  g.outputs = [{ name: out }];
  return g;
}

describe("If", () => {
  const thenG = branch("then", [constNode("a", Tensor.f32([2], [1, 2]))], "a");
  const elseG = branch("else", [constNode("b", Tensor.f32([3], [3, 2, 1]))], "b");
  const g = new Graph({ opsets: { "": 13 } });
  g.inputs = [{ name: "c", dtype: "bool", shape: [] }];
  g.nodes = [new Node({ opType: "If", inputs: ["c"], outputs: ["y"], attrs: { then_branch: graphAttr(thenG), else_branch: graphAttr(elseG) } })];
  g.outputs = [{ name: "y" }];

  it("runs the branch the condition picks", () => {
    const ex = new ReferenceExecutor(g);
    expect(vals(ex.runSync({ c: bool(true) }).y)).toEqual([1, 2]);
    expect(vals(ex.runSync({ c: bool(false) }).y)).toEqual([3, 2, 1]);
  });

  // A branch that reads a value of the enclosing graph. The interpreter's runSubgraph only puts
  // the kernel's feeds in scope, so the outer value is not visible: remove `.fails` once the
  // interpreter passes the enclosing scope to subgraphs.
  it("reads values of the enclosing graph", () => {
    const add = new Node({ opType: "Add", inputs: ["x", "x"], outputs: ["d"] });
    const outer = new Graph({ opsets: { "": 13 } });
    outer.inputs = [{ name: "c", dtype: "bool", shape: [] }, { name: "x", dtype: "float32", shape: [2] }];
    outer.nodes = [new Node({
      opType: "If", inputs: ["c"], outputs: ["y"],
      attrs: { then_branch: graphAttr(branch("then", [add], "d")), else_branch: graphAttr(branch("else", [], "x")) },
    })];
    outer.outputs = [{ name: "y" }];
    const ex = new ReferenceExecutor(outer);
    const x = Tensor.f32([2], [1, 5]);
    expect(vals(ex.runSync({ c: bool(true), x }).y)).toEqual([2, 10]);
    expect(vals(ex.runSync({ c: bool(false), x }).y)).toEqual([1, 5]);
  });
});

describe("Loop", () => {
  /** body(i, cond, acc) -> (cond_out = acc + i < limit, acc + i, scan: acc + i) */
  function loopGraph(limit: number): Graph {
    const body = new Graph({ name: "body" });
    body.inputs = [{ name: "i", dtype: "int64", shape: [] }, { name: "cin", dtype: "bool", shape: [] }, { name: "acc", dtype: "int64", shape: [] }];
    body.nodes = [
      new Node({ opType: "Add", inputs: ["acc", "i"], outputs: ["next"] }),
      constNode("lim", Tensor.i64([], [limit])),
      new Node({ opType: "Less", inputs: ["next", "lim"], outputs: ["cout"] }),
      new Node({ opType: "Identity", inputs: ["next"], outputs: ["scan"] }),
    ];
    body.outputs = [{ name: "cout" }, { name: "next" }, { name: "scan", dtype: "int64" }];
    const g = new Graph({ opsets: { "": 13 } });
    g.inputs = [{ name: "M", dtype: "int64", shape: [] }, { name: "c", dtype: "bool", shape: [] }, { name: "a0", dtype: "int64", shape: [] }];
    g.nodes = [new Node({ opType: "Loop", inputs: ["M", "c", "a0"], outputs: ["acc", "scans"], attrs: { body: graphAttr(body) } })];
    g.outputs = [{ name: "acc" }, { name: "scans" }];
    return g;
  }

  it("stops at the trip count, stacking scan outputs", () => {
    const r = new ReferenceExecutor(loopGraph(1000)).runSync({ M: Tensor.i64([], [4]), c: bool(true), a0: Tensor.i64([], [10]) });
    expect(vals(r.acc)).toEqual([16]); // 10 + 0 + 1 + 2 + 3
    expect(r.scans!.shape).toEqual([4]);
    expect(vals(r.scans)).toEqual([10, 11, 13, 16]);
  });
  it("stops when the body's condition turns false", () => {
    const r = new ReferenceExecutor(loopGraph(12)).runSync({ M: Tensor.i64([], [100]), c: bool(true), a0: Tensor.i64([], [10]) });
    expect(vals(r.acc)).toEqual([13]); // 10, 11 (<12 go on), 13 (stop)
    expect(vals(r.scans)).toEqual([10, 11, 13]);
  });
  it("runs no iteration when the initial condition is false", () => {
    const r = new ReferenceExecutor(loopGraph(12)).runSync({ M: Tensor.i64([], [5]), c: bool(false), a0: Tensor.i64([], [7]) });
    expect(vals(r.acc)).toEqual([7]);
    expect(r.scans!.shape).toEqual([0]);
    expect(r.scans!.dtype).toBe("int64");
  });
});
