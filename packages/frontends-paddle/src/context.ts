import type { AttrValue, DType, Tensor } from "@q/ir";

/** A Paddle attribute value after decoding (LONG/LONGS arrive as numbers). */
export type PaddleAttr = number | string | boolean | number[] | string[] | boolean[];

/**
 * What an op builder sees: the Paddle op (slots resolved to IR value names, attributes, the declared
 * type of its variables) and the means to add IR nodes and constants.
 */
export interface OpCtx {
  readonly type: string;
  /** A name for messages: op type and first output. */
  readonly label: string;

  /** IR value read through the first argument of an input slot; undefined when the slot is empty. */
  in(slot: string): string | undefined;
  /** Like `in`, but the slot must be filled. */
  need(slot: string): string;
  /** IR values of every argument of an input slot. */
  ins(slot: string): string[];
  /** Paddle variable name of the first argument of an input slot (for `dims`/`dtype`). */
  inVar(slot: string): string | undefined;
  /** Paddle variable names of an output slot. */
  outVars(slot: string): string[];
  /** IR name for writing the first variable of an output slot (renamed when written twice). */
  out(slot: string): string;
  /** IR names for writing every variable of an output slot. */
  outs(slot: string): string[];

  has(attr: string): boolean;
  i(attr: string, dflt: number): number;
  f(attr: string, dflt: number): number;
  s(attr: string, dflt: string): string;
  b(attr: string, dflt: boolean): boolean;
  ints(attr: string, dflt: number[]): number[];
  floats(attr: string, dflt: number[]): number[];

  /** Declared dims of a Paddle variable (−1 = unknown), or undefined when it is not a tensor. */
  dims(paddleVar: string | undefined): number[] | undefined;
  /** Declared element type of a Paddle variable. */
  dtype(paddleVar: string | undefined): DType | undefined;

  /** Add an IR node. */
  emit(opType: string, inputs: string[], outputs: string[], attrs?: Record<string, AttrValue>): void;
  /** Add one node with a fresh output and return that output. */
  op1(opType: string, inputs: string[], attrs?: Record<string, AttrValue>, hint?: string): string;
  /** A fresh IR value name. */
  tmp(hint: string): string;
  /** Add a constant (initializer) and return its name. */
  konstant(t: Tensor, hint: string): string;
  /** Bind a Paddle output variable to a constant instead of a node output. */
  bindConst(paddleVar: string, t: Tensor): void;
  /** The constant value of an IR value (parameters, folded constants), if it has one. */
  value(irName: string): Tensor | undefined;
  /** A 1-D int64 constant. */
  i64(values: readonly number[]): string;
  /** A scalar constant of `dtype` (float32 when omitted). */
  scalar(v: number, dtype?: DType): string;

  /** Throw UnknownOpError: this op (or this use of it) cannot be converted. */
  unsupported(detail: string): never;
  /** Throw ModelFormatError: the op is malformed. */
  bad(detail: string): never;
}

/** Converts one Paddle op into IR nodes. */
export type OpBuilder = (c: OpCtx) => void;

/** IR attribute values. */
export const A = {
  i: (value: number): AttrValue => ({ type: "int", value }),
  f: (value: number): AttrValue => ({ type: "float", value }),
  s: (value: string): AttrValue => ({ type: "string", value }),
  is: (value: number[]): AttrValue => ({ type: "ints", value }),
  fs: (value: number[]): AttrValue => ({ type: "floats", value }),
};
