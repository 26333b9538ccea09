import type { Dim } from "../graph.js";
import { normAxis } from "./dims.js";
import { inShape, inType, ts } from "./helpers.js";
import { axesArg } from "./symbolic.js";
import type { InferContext, OpSchema, TypeShape } from "./types.js";
import { schema } from "./helpers.js";

/** Reductions: axes from the attribute (before opset 18; ReduceSum before 13) or the second input. */

const REDUCE = ["ReduceL1", "ReduceL2", "ReduceLogSum", "ReduceLogSumExp", "ReduceMax", "ReduceMean", "ReduceMin", "ReduceProd", "ReduceSum", "ReduceSumSquare"];

function reduceInfer(ctx: InferContext): TypeShape[] {
  const x = inShape(ctx, 0);
  const dt = inType(ctx, 0);
  const keep = ctx.node.int("keepdims", 1) !== 0;
  if (!x) return [ts(dt, undefined)];
  const since = ctx.node.opType === "ReduceSum" ? 13 : 18;
  const axes = axesArg(ctx, since);
  if (axes === null) return [ts(dt, keep ? x.map(() => null) : undefined)]; // axes computed at run time
  let ax: number[];
  if (!axes || axes.length === 0) {
    if (ctx.opset >= since && ctx.node.int("noop_with_empty_axes", 0)) return [ts(dt, x)];
    ax = x.map((_, i) => i);
  } else ax = axes.map((a) => normAxis(a, x.length));
  const out: Dim[] = keep ? x.map((d, i) => (ax.includes(i) ? 1 : d)) : x.filter((_, i) => !ax.includes(i));
  return [ts(dt, out)];
}

export const REDUCE_SCHEMAS: OpSchema[] = REDUCE.map((op) => schema(op, [1, 2], [1, 1], reduceInfer));
