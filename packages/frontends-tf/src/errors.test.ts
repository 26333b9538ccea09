import { mkdtempSync, writeFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { GraphError, MissingFileError, ModelFormatError, UnknownOpError } from "@q/ir";
import { readTf } from "./index.js";
import { arange, constF, graphDef, node, placeholder } from "./tf-builder.test-util.js";

const dir = mkdtempSync(join(tmpdir(), "q-tf-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function write(name: string, bytes: Uint8Array): string {
  const p = join(dir, name);
  writeFileSync(p, bytes);
  return p;
}

const good = () => graphDef([
  placeholder("x", [1, 4]),
  constF("w", [4, 16], arange(64, 0.5)),
  node("MatMul", "mm", ["x", "w"]),
  node("Relu", "y", ["mm"]),
]);

describe("readTf errors", () => {
  it("reads a small valid graph (sanity)", async () => {
    const g = await readTf(write("good.pb", good()));
    expect(g.inputs.map((v) => v.name)).toEqual(["x"]);
    expect(g.outputs.map((v) => v.name)).toEqual(["y"]);
  });

  it("unknown op → UnknownOpError naming the node and the op", async () => {
    const p = write("unknown.pb", graphDef([placeholder("x", [1, 4]), node("FancyNewOp", "blocks/fancy_1", ["x"]), node("Relu", "y", ["blocks/fancy_1"])]));
    const err = await readTf(p).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UnknownOpError);
    const e = err as UnknownOpError;
    expect(e.opType).toBe("FancyNewOp");
    expect(e.nodeName).toBe("blocks/fancy_1");
    expect(e.message).toMatch(/blocks\/fancy_1/);
    expect(e.message).toMatch(/FancyNewOp/);
    expect(e.message).toContain(p);
  });

  it("truncated .pb → ModelFormatError naming the file", async () => {
    const bytes = good();
    const p = write("truncated.pb", bytes.subarray(0, bytes.length - 40));
    const err = await readTf(p).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ModelFormatError);
    expect((err as Error).message).toContain(p);
    expect((err as Error).message).toMatch(/truncated/);
  });

  it("a file that is not a GraphDef → ModelFormatError", async () => {
    const p = write("text.pb", new TextEncoder().encode("this is not a protobuf at all\n"));
    await expect(readTf(p)).rejects.toBeInstanceOf(ModelFormatError);
  });

  it("missing file → MissingFileError", async () => {
    const p = join(dir, "nope.pb");
    const err = await readTf(p).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(MissingFileError);
    expect((err as Error).message).toContain(p);
  });

  it("an output name that does not exist → GraphError naming it and listing candidates", async () => {
    const p = write("good2.pb", good());
    const err = await readTf(p, { outputs: ["does/not/exist"] }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(GraphError);
    expect((err as Error).message).toMatch(/'does\/not\/exist' is not a node/);
    expect((err as Error).message).toMatch(/y/);
    await expect(readTf(p, { outputs: ["mm:3"] })).rejects.toThrow(/'mm:3'.*no output 3/);
    await expect(readTf(p, { inputs: ["nope"] })).rejects.toThrow(/input 'nope' is not a node/);
  });

  it("inputs/outputs by tensor name (node:k), cutting the graph", async () => {
    const p = write("good3.pb", good());
    const g = await readTf(p, { inputs: ["mm:0"], outputs: ["y:0"], inputShapes: { mm: [2, 16] } });
    expect(g.inputs.map((v) => [v.name, v.shape])).toEqual([["mm", [2, 16]]]);
    expect(g.outputs.map((v) => v.name)).toEqual(["y"]);
    expect(g.nodes.map((n) => n.opType)).toEqual(["Relu"]);
  });
});
