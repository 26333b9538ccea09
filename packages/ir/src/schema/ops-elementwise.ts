import { dtypeFromOnnx, type DType } from "../dtype.js";
import { broadcastShapes } from "./dims.js";
import { ANY, inShape, inType, like, schema, ts } from "./helpers.js";
import type { InferContext, OpSchema, TypeShape } from "./types.js";

/** Elementwise ops: unary maps, broadcasting binary/variadic ops, comparisons, casts, quantization. */

const unary = (dtype?: DType) => (ctx: InferContext): TypeShape[] => [like(ctx, 0, dtype)];

function broadcastAll(ctx: InferContext, idx?: number[], dtype?: DType, dtypeFrom = 0): TypeShape[] {
  const ids = idx ?? ctx.node.inputs.map((_, i) => i).filter((i) => ctx.has(i));
  const shape = broadcastShapes(ids.map((i) => inShape(ctx, i)));
  return [ts(dtype ?? inType(ctx, dtypeFrom) ?? ids.map((i) => inType(ctx, i)).find((d) => d), shape)];
}

const UNARY = [
  "Abs", "Acos", "Acosh", "Asin", "Asinh", "Atan", "Atanh", "Ceil", "Cos", "Cosh", "Erf", "Exp", "Floor",
  "Log", "Neg", "Reciprocal", "Relu", "Round", "Sigmoid", "Sign", "Sin", "Sinh", "Softplus", "Softsign",
  "Sqrt", "Tan", "Tanh", "HardSigmoid", "HardSwish", "LeakyRelu", "Elu", "Selu", "Celu", "ThresholdedRelu",
  "Gelu", "Mish", "Shrink", "Swish", "BitwiseNot", "ImageScaler", "ScaledTanh", "ParametricSoftplus", "Affine",
];

const BROADCAST = ["Add", "Sub", "Mul", "Div", "Pow", "Mod", "BitShift", "BitwiseAnd", "BitwiseOr", "BitwiseXor", "PRelu"];
const LOGICAL = ["And", "Or", "Xor"];
const COMPARE = ["Equal", "Greater", "Less", "GreaterOrEqual", "LessOrEqual"];
const VARIADIC = ["Min", "Max", "Sum", "Mean"];

function quantOut(ctx: InferContext): DType {
  if (ctx.has(2) && inType(ctx, 2)) return inType(ctx, 2)!;
  const od = ctx.node.int("output_dtype", 0);
  if (od) return dtypeFromOnnx(od) ?? "uint8";
  return "uint8";
}

export const ELEMENTWISE_SCHEMAS: OpSchema[] = [
  ...UNARY.map((op) => schema(op, [1, 1], [1, 1], unary())),
  schema("Clip", [1, 3], [1, 1], unary()),
  schema("Not", [1, 1], [1, 1], unary("bool")),
  schema("IsNaN", [1, 1], [1, 1], unary("bool")),
  schema("IsInf", [1, 1], [1, 1], unary("bool")),
  ...BROADCAST.map((op) => schema(op, [2, 2], [1, 1], (ctx) => broadcastAll(ctx, [0, 1]))),
  ...LOGICAL.map((op) => schema(op, [2, 2], [1, 1], (ctx) => broadcastAll(ctx, [0, 1], "bool"))),
  ...COMPARE.map((op) => schema(op, [2, 2], [1, 1], (ctx) => broadcastAll(ctx, [0, 1], "bool"))),
  ...VARIADIC.map((op) => schema(op, [1, ANY], [1, 1], (ctx) => broadcastAll(ctx))),
  schema("Where", [3, 3], [1, 1], (ctx) => broadcastAll(ctx, [0, 1, 2], inType(ctx, 1) ?? inType(ctx, 2))),
  schema("Cast", [1, 1], [1, 1], (ctx) => [like(ctx, 0, dtypeFromOnnx(ctx.node.int("to", 0)))]),
  schema("CastLike", [2, 2], [1, 1], (ctx) => [ts(inType(ctx, 1), inShape(ctx, 0))]),
  schema("QuantizeLinear", [2, 3], [1, 1], (ctx) => [like(ctx, 0, quantOut(ctx))]),
  schema("DequantizeLinear", [2, 3], [1, 1], (ctx) => [like(ctx, 0, (ctx.opset >= 19 ? inType(ctx, 1) : undefined) ?? "float32")]),
  schema("DynamicQuantizeLinear", [1, 1], [3, 3], (ctx) => [like(ctx, 0, "uint8"), ts("float32", []), ts("uint8", [])]),
  schema("Bernoulli", [1, 1], [1, 1], (ctx) => [like(ctx, 0, dtypeFromOnnx(ctx.node.int("dtype", 0)))]),
];
