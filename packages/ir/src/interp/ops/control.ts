/**
 * Control flow: If and Loop run their body graphs through ctx.runSubgraph. Values the bodies read
 * from enclosing graphs must be in the scope the interpreter gives runSubgraph.
 */
import type { Graph, Node } from "../../graph.js";
import { Tensor } from "../../tensor.js";
import type { KernelContext, KernelTable } from "../types.js";
import { alloc, copyRun, fail, need, wordsOf } from "./util.js";

function ifKernel(inputs: (Tensor | undefined)[], node: Node, ctx: KernelContext): Tensor[] {
  const cond = need(inputs, 0, "If");
  if (cond.size !== 1) fail(`If: condition has ${cond.size} elements, expected 1`);
  const branch = cond.scalar() !== 0 ? "then_branch" : "else_branch";
  const g = node.graph(branch) ?? fail(`If: missing ${branch}`);
  return ctx.runSubgraph(g, new Map());
}

/** Stack same-shaped tensors along a new leading axis. */
function stack(ts: Tensor[], info: Graph["outputs"][number]): Tensor {
  if (!ts.length) return alloc(info.dtype ?? "float32", [0, ...((info.shape ?? []).map((d) => (typeof d === "number" ? d : 0)))]);
  const first = ts[0]!;
  const out = alloc(first.dtype, [ts.length, ...first.shape]);
  const dst = wordsOf(out.data).w;
  ts.forEach((t, i) => {
    if (t.dtype !== first.dtype || t.shape.length !== first.shape.length || t.shape.some((d, j) => d !== first.shape[j])) {
      fail(`Loop: scan output '${info.name}' changes shape across iterations ([${first.shape.join(",")}] then [${t.shape.join(",")}])`);
    }
    const { w, k } = wordsOf(t.data);
    copyRun(w, 0, dst, i * first.size, first.size, k);
  });
  return out;
}

function loopKernel(inputs: (Tensor | undefined)[], node: Node, ctx: KernelContext): Tensor[] {
  const body = node.graph("body") ?? fail("Loop: missing body");
  const maxTrip = inputs[0] ? inputs[0].scalar() : Infinity;
  const hasCond = !!inputs[1];
  let cond = hasCond ? inputs[1]!.scalar() !== 0 : true;
  let carried = inputs.slice(2).map((t, i) => t ?? fail(`Loop: loop-carried input ${i} is missing`));
  const nCarried = carried.length;
  if (body.inputs.length !== nCarried + 2) fail(`Loop: body takes ${body.inputs.length} inputs, expected ${nCarried + 2}`);
  const nScan = body.outputs.length - 1 - nCarried;
  if (nScan < 0) fail(`Loop: body has ${body.outputs.length} outputs, expected at least ${nCarried + 1}`);
  const scans: Tensor[][] = Array.from({ length: nScan }, () => []);
  for (let i = 0; i < maxTrip && cond; i++) {
    const feeds = new Map<string, Tensor>();
    const iter = new Tensor("int64", [], BigInt64Array.of(BigInt(i)));
    feeds.set(body.inputs[0]!.name, iter);
    feeds.set(body.inputs[1]!.name, new Tensor("bool", [], Uint8Array.of(cond ? 1 : 0)));
    carried.forEach((t, j) => feeds.set(body.inputs[j + 2]!.name, t));
    const outs = ctx.runSubgraph(body, feeds);
    if (hasCond) cond = outs[0]!.scalar() !== 0;
    carried = outs.slice(1, 1 + nCarried);
    for (let s = 0; s < nScan; s++) scans[s]!.push(outs[1 + nCarried + s]!);
  }
  return [...carried, ...scans.map((ts, s) => stack(ts, body.outputs[1 + nCarried + s]!))];
}

export const kernels: KernelTable = {
  If: ifKernel,
  Loop: loopKernel,
};
