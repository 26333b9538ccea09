/**
 * Test helpers: build small Paddle programs (.pdmodel bytes) and LoDTensor records in memory.
 * Used by the tests only (not exported from the package).
 */
import { Tensor } from "@q/ir";
import { ATTR, ProgramDescT, TensorDescT, VT } from "./proto.js";

export type AttrInit = { type: number } & Record<string, unknown>;
export const at = {
  i: (i: number): AttrInit => ({ type: ATTR.INT, i }),
  f: (f: number): AttrInit => ({ type: ATTR.FLOAT, f }),
  s: (s: string): AttrInit => ({ type: ATTR.STRING, s }),
  b: (b: boolean): AttrInit => ({ type: ATTR.BOOLEAN, b }),
  ints: (ints: number[]): AttrInit => ({ type: ATTR.INTS, ints }),
  floats: (floats: number[]): AttrInit => ({ type: ATTR.FLOATS, floats }),
  longs: (longs: number[]): AttrInit => ({ type: ATTR.LONGS, longs }),
};

export interface VarInit { name: string; dims: number[]; dtype?: number; persistable?: boolean }
export interface OpInit {
  type: string;
  inputs?: Record<string, string[]>;
  outputs?: Record<string, string[]>;
  attrs?: Record<string, AttrInit>;
}

/** A one-block program: feed ops for `feeds`, then `ops`, then fetch ops for `fetches`. */
export function buildProgram(vars: VarInit[], feeds: string[], ops: OpInit[], fetches: string[]): Uint8Array {
  const slots = (r: Record<string, string[]> = {}) => Object.entries(r).map(([parameter, args]) => ({ parameter, arguments: args }));
  const attrs = (r: Record<string, AttrInit> = {}) => Object.entries(r).map(([name, a]) => ({ name, ...a }));
  const allOps = [
    ...feeds.map((f, col) => ({ type: "feed", inputs: slots({ X: ["feed"] }), outputs: slots({ Out: [f] }), attrs: attrs({ col: at.i(col) }) })),
    ...ops.map((o) => ({ type: o.type, inputs: slots(o.inputs), outputs: slots(o.outputs), attrs: attrs(o.attrs) })),
    ...fetches.map((f, col) => ({ type: "fetch", inputs: slots({ X: [f] }), outputs: slots({ Out: ["fetch"] }), attrs: attrs({ col: at.i(col) }) })),
  ];
  const varDescs = [
    { name: "feed", type: { type: VT.FEED_MINIBATCH }, persistable: true },
    { name: "fetch", type: { type: VT.FETCH_LIST }, persistable: true },
    ...vars.map((v) => ({
      name: v.name,
      type: { type: VT.LOD_TENSOR, lod_tensor: { tensor: { data_type: v.dtype ?? VT.FP32, dims: v.dims } } },
      persistable: v.persistable ?? false,
    })),
  ];
  const msg = ProgramDescT.fromObject({
    blocks: [{ idx: 0, parent_idx: -1, vars: varDescs, ops: allOps }],
    version: { version: 2003002 },
  });
  return ProgramDescT.encode(msg).finish();
}

/** One LoDTensor record (version 0, no LoD) holding a float32 tensor. */
export function lodRecord(t: Tensor): Uint8Array {
  if (t.dtype !== "float32") throw new Error("lodRecord: float32 only");
  const desc = TensorDescT.encode(TensorDescT.fromObject({ data_type: VT.FP32, dims: [...t.shape] })).finish();
  const data = new Uint8Array((t.data as Float32Array).slice().buffer);
  const out = new Uint8Array(4 + 8 + 4 + 4 + desc.length + data.length);
  const dv = new DataView(out.buffer);
  let p = 0;
  dv.setUint32(p, 0, true); p += 4;
  dv.setBigUint64(p, 0n, true); p += 8;
  dv.setUint32(p, 0, true); p += 4;
  dv.setInt32(p, desc.length, true); p += 4;
  out.set(desc, p); p += desc.length;
  out.set(data, p);
  return out;
}

/** A combined params file: records in name-sorted order. */
export function combinedParams(params: Record<string, Tensor>): Uint8Array {
  const recs = Object.keys(params).sort().map((k) => lodRecord(params[k]!));
  const out = new Uint8Array(recs.reduce((a, r) => a + r.length, 0));
  let p = 0;
  for (const r of recs) { out.set(r, p); p += r.length; }
  return out;
}
