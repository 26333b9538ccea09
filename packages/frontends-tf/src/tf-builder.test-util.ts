/** Helpers for tests: tiny GraphDefs built by hand, and running an IR graph on both executors. */
import { expect } from "vitest";
import { ReferenceExecutor, type Feeds, type Graph, type Tensor } from "@q/ir";
import { OrtExecutor } from "@q/ort";
import { TF_DTYPE, encodeGraphDef, type PAttr, type PNode } from "./index.js";

const enc = new TextEncoder();
type A = Record<string, PAttr>;

export const F = TF_DTYPE.FLOAT;
export const I32 = TF_DTYPE.INT32;

export function placeholder(name: string, shape: number[], dtype: number = F): PNode {
  return { name, op: "Placeholder", attr: { dtype: { type: dtype }, shape: { shape: { dim: shape.map((size) => ({ size })) } } } };
}

export function constF(name: string, shape: number[], values: number[]): PNode {
  const bytes = new Uint8Array(Float32Array.from(values).buffer);
  return { name, op: "Const", attr: { dtype: { type: F }, value: { tensor: { dtype: F, tensor_shape: { dim: shape.map((size) => ({ size })) }, tensor_content: bytes } } } };
}

export function constI(name: string, shape: number[], values: number[]): PNode {
  return { name, op: "Const", attr: { dtype: { type: I32 }, value: { tensor: { dtype: I32, tensor_shape: { dim: shape.map((size) => ({ size })) }, int_val: values } } } };
}

export function node(op: string, name: string, input: string[], attr: A = {}): PNode {
  return { name, op, input, attr: { T: { type: F }, ...attr } };
}

export const s = (v: string): PAttr => ({ s: enc.encode(v) });
export const i = (v: number): PAttr => ({ i: v });
export const f = (v: number): PAttr => ({ f: v });
export const b = (v: boolean): PAttr => ({ b: v });
export const li = (v: number[]): PAttr => ({ list: { i: v } });

export function graphDef(nodes: PNode[]): Uint8Array {
  return encodeGraphDef({ node: nodes });
}

export function arange(n: number, scale = 1, offset = 0): number[] {
  return Array.from({ length: n }, (_, k) => k * scale + offset);
}

/** Run on the reference interpreter and ONNX Runtime; both must agree; returns the reference results. */
export async function runBoth(g: Graph, feeds: Feeds): Promise<Record<string, Tensor>> {
  const ref = await new ReferenceExecutor(g).run(feeds);
  const ort = await OrtExecutor.create(g);
  try {
    const o = await ort.run(feeds);
    for (const [k, t] of Object.entries(ref)) {
      expect([...o[k]!.shape], `${k}: ort shape`).toEqual([...t.shape]);
      const a = t.toNumbers(), c = o[k]!.toNumbers();
      for (let j = 0; j < a.length; j++) expect(Math.abs(a[j]! - c[j]!), `${k}[${j}] ref ${a[j]} ort ${c[j]}`).toBeLessThanOrEqual(1e-4 * (1 + Math.abs(a[j]!)));
    }
  } finally {
    await ort.dispose();
  }
  return ref;
}

export function close(got: Tensor | undefined, shape: number[], want: number[], tol = 1e-5): void {
  expect(got).toBeDefined();
  expect([...got!.shape]).toEqual(shape);
  const a = got!.toNumbers();
  expect(a.length).toBe(want.length);
  for (let j = 0; j < a.length; j++) expect(Math.abs(a[j]! - want[j]!), `[${j}] got ${a[j]} want ${want[j]}`).toBeLessThanOrEqual(tol * (1 + Math.abs(want[j]!)));
}
