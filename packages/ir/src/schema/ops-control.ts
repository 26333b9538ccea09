import type { Dim } from "../graph.js";
import { inShape, inType, schema, ts } from "./helpers.js";
import type { InferContext, OpSchema, TypeShape } from "./types.js";

/** Control flow: output types come from the bodies, inferred in the enclosing scope. */

function unify(a: TypeShape | undefined, b: TypeShape | undefined): TypeShape {
  const dtype = a?.dtype ?? b?.dtype;
  if (!a?.shape || !b?.shape || a.shape.length !== b.shape.length) return ts(dtype, undefined);
  return ts(dtype, a.shape.map((d, i) => (d === b.shape![i] ? d : null)));
}

function ifInfer(ctx: InferContext): TypeShape[] {
  const th = ctx.node.graph("then_branch");
  const el = ctx.node.graph("else_branch");
  const a = th ? ctx.subgraph(th) : [];
  const b = el ? ctx.subgraph(el) : [];
  // a constant condition picks one branch
  const c = ctx.partial(0)?.values[0];
  if (typeof c === "number") return c ? a : b;
  const n = ctx.node.outputs.length;
  const out: TypeShape[] = [];
  for (let i = 0; i < n; i++) out.push(unify(a[i], b[i]));
  return out;
}

function loopInfer(ctx: InferContext): TypeShape[] {
  const body = ctx.node.graph("body");
  const nCarried = Math.max(0, ctx.node.inputs.length - 2);
  const carried: TypeShape[] = [];
  for (let i = 0; i < nCarried; i++) carried.push(ts(inType(ctx, i + 2), inShape(ctx, i + 2)));
  if (!body) return carried;
  const outs = ctx.subgraph(body, [ts("int64", []), ts("bool", []), ...carried]);
  const res: TypeShape[] = [];
  for (let i = 0; i < nCarried; i++) res.push(unify(carried[i], outs[i + 1]));
  const trip = ctx.partial(0)?.values[0];
  const n: Dim = typeof trip === "number" && !ctx.has(1) ? trip : null;
  for (let k = 1 + nCarried; k < outs.length; k++) {
    const o = outs[k]!;
    res.push(ts(o.dtype, o.shape ? [n, ...o.shape] : undefined));
  }
  return res;
}

export const CONTROL_SCHEMAS: OpSchema[] = [
  schema("If", [1, 1], [1, Infinity], ifInfer),
  schema("Loop", [2, Infinity], [1, Infinity], loopInfer),
];
