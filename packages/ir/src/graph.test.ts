import { describe, expect, it } from "vitest";
import { Graph, Node } from "./graph.js";
import { Tensor } from "./tensor.js";
import { GraphError } from "./errors.js";

/** x -> A -> a -> B -> b -> D -> y ; x -> C -> c -> D ; weights w on B */
function diamond(): Graph {
  const g = new Graph({ opsets: { "": 17 } });
  g.inputs = [{ name: "x", dtype: "float32", shape: [1, 4] }];
  g.outputs = [{ name: "y" }];
  g.initializers.set("w", Tensor.f32([4], [1, 2, 3, 4]));
  g.initializers.set("unused", Tensor.f32([1], [0]));
  // deliberately out of order
  g.nodes = [
    new Node({ name: "D", opType: "Add", inputs: ["b", "c"], outputs: ["y"] }),
    new Node({ name: "B", opType: "Mul", inputs: ["a", "w"], outputs: ["b"] }),
    new Node({ name: "C", opType: "Neg", inputs: ["x"], outputs: ["c"] }),
    new Node({ name: "A", opType: "Relu", inputs: ["x"], outputs: ["a"] }),
    new Node({ name: "dead", opType: "Exp", inputs: ["x"], outputs: ["z"] }),
  ];
  return g;
}

const names = (ns: Node[]) => ns.map((n) => n.name);

describe("Graph", () => {
  it("topoSort puts producers before consumers", () => {
    const g = diamond();
    const order = names(g.topoSort());
    const pos = (n: string) => order.indexOf(n);
    expect(order).toHaveLength(5);
    expect(pos("A")).toBeLessThan(pos("B"));
    expect(pos("B")).toBeLessThan(pos("D"));
    expect(pos("C")).toBeLessThan(pos("D"));
  });

  it("topoSort reports cycles and dangling reads with the value name", () => {
    const g = diamond();
    g.nodes.push(new Node({ name: "E", opType: "Relu", inputs: ["nowhere"], outputs: ["e"] }));
    expect(() => g.topoSort()).toThrow(GraphError);
    expect(() => g.topoSort()).toThrow(/'nowhere'/);
    const c = diamond();
    c.nodes[3]!.inputs = ["y"]; // A reads y, which depends on A
    expect(() => c.topoSort()).toThrow(/cycle/);
  });

  it("prune drops dead nodes and unused initializers", () => {
    const g = diamond().prune();
    expect(names(g.nodes).sort()).toEqual(["A", "B", "C", "D"]);
    expect([...g.initializers.keys()]).toEqual(["w"]);
  });

  it("extract takes the nodes between named values", () => {
    const g = diamond();
    const sub = g.extract(["a"], ["b"]);
    expect(names(sub.nodes)).toEqual(["B"]);
    expect(sub.inputs.map((i) => i.name)).toEqual(["a"]);
    expect([...sub.initializers.keys()]).toEqual(["w"]);
    const mid = g.extract(["x"], ["b", "c"]);
    expect(names(mid.nodes).sort()).toEqual(["A", "B", "C"]);
    // cut does not cover x's other path
    expect(() => g.extract(["a"], ["y"])).toThrow(/'x'/);
    // the original is untouched
    expect(g.nodes).toHaveLength(5);
  });

  it("replaceUses, insertNode and removeNode keep the graph consistent", () => {
    const g = diamond().prune();
    g.topoSort();
    const a = g.nodes.find((n) => n.name === "A")!;
    const clip = new Node({ name: "clip", opType: "Clip", inputs: ["a"], outputs: ["a_clipped"] });
    g.replaceUses("a", "a_clipped");
    clip.inputs = ["a"];
    g.insertNode(clip, a);
    expect(g.nodes.find((n) => n.name === "B")!.inputs[0]).toBe("a_clipped");
    expect(() => g.topoSort()).not.toThrow();
    g.removeNode(clip, true);
    expect(g.nodes.find((n) => n.name === "B")!.inputs[0]).toBe("a");
    expect(g.uniqueName("a")).toBe("a_1");
  });

  it("consumers and producers see reads made inside subgraphs", () => {
    const g = diamond();
    const then = new Graph();
    then.outputs = [{ name: "t" }];
    then.nodes = [new Node({ opType: "Identity", inputs: ["c"], outputs: ["t"] })];
    const els = new Graph();
    els.outputs = [{ name: "e" }];
    els.nodes = [new Node({ opType: "Identity", inputs: ["b"], outputs: ["e"] })];
    const iff = new Node({ name: "if", opType: "If", inputs: ["cond"], outputs: ["o"], attrs: { then_branch: { type: "graph", value: then }, else_branch: { type: "graph", value: els } } });
    g.inputs.push({ name: "cond", dtype: "bool", shape: [] });
    g.nodes.unshift(iff);
    g.outputs = [{ name: "o" }];
    expect(g.consumers().get("c")!.map((n) => n.name).sort()).toEqual(["D", "if"]);
    const order = names(g.topoSort());
    expect(order.indexOf("if")).toBeGreaterThan(order.indexOf("B"));
    expect(order.indexOf("if")).toBeGreaterThan(order.indexOf("C"));
    g.prune();
    expect(names(g.nodes).sort()).toEqual(["A", "B", "C", "if"]);
  });

  it("clone is deep for nodes and attributes", () => {
    const g = diamond();
    g.nodes[0]!.setInts("perm", [1, 0]);
    const c = g.clone();
    c.nodes[0]!.ints("perm")!.push(7);
    c.nodes[0]!.inputs[0] = "q";
    expect(g.nodes[0]!.ints("perm")).toEqual([1, 0]);
    expect(g.nodes[0]!.inputs[0]).toBe("b");
  });

  it("typed attribute getters reject the wrong kind, naming node and attribute", () => {
    const n = new Node({ name: "conv1", opType: "Conv", inputs: [], outputs: [], attrs: { group: { type: "string", value: "2" } } });
    expect(() => n.int("group")).toThrow(/conv1.*'group'.*string/);
    expect(n.int("missing", 3)).toBe(3);
  });
});
