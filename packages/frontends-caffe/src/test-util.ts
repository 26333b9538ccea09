/**
 * Helpers for this package's tests: write small .caffemodel files (BVLC `layer` or V1 `layers`,
 * packed or unpacked data, BlobShape or legacy dims) and run a graph on both executors.
 * Not exported from the package.
 */
import protobuf from "protobufjs";
import { ReferenceExecutor, Tensor, type Feeds, type Graph } from "@q/ir";

export interface TestBlob {
  shape: number[];
  data: ArrayLike<number>;
  /** Write num/channels/height/width (4-D, padded with leading 1s) instead of BlobShape. */
  legacy?: boolean;
}

export interface TestLayer {
  name: string;
  /** V2 type string, or V1 enum number. */
  type?: string | number;
  blobs: TestBlob[];
}

/** Encode a NetParameter holding only names, types and blobs. */
export function encodeCaffemodel(layers: TestLayer[], opts: { v1?: boolean; unpacked?: boolean } = {}): Uint8Array {
  const w = protobuf.Writer.create();
  for (const l of layers) {
    w.uint32(((opts.v1 ? 2 : 100) << 3) | 2).fork();
    w.uint32(((opts.v1 ? 4 : 1) << 3) | 2).string(l.name);
    if (l.type !== undefined) {
      if (opts.v1) w.uint32((5 << 3) | 0).int32(Number(l.type));
      else w.uint32((2 << 3) | 2).string(String(l.type));
    }
    for (const b of l.blobs) {
      w.uint32(((opts.v1 ? 6 : 7) << 3) | 2).fork();
      if (b.legacy) {
        const d = [...new Array<number>(Math.max(0, 4 - b.shape.length)).fill(1), ...b.shape];
        d.forEach((v, i) => w.uint32(((i + 1) << 3) | 0).int32(v));
      } else {
        w.uint32((7 << 3) | 2).fork();
        w.uint32((1 << 3) | 2).fork();
        for (const d of b.shape) w.int64(d);
        w.ldelim();
        w.ldelim();
      }
      if (opts.unpacked) {
        for (let i = 0; i < b.data.length; i++) w.uint32((5 << 3) | 5).float(b.data[i]!);
      } else {
        w.uint32((5 << 3) | 2).fork();
        for (let i = 0; i < b.data.length; i++) w.float(b.data[i]!);
        w.ldelim();
      }
      w.ldelim();
    }
    w.ldelim();
  }
  return w.finish();
}

/** Deterministic values in [-1, 1). */
export function randn(shape: number[], seed = 1): Tensor {
  let a = seed >>> 0;
  const n = shape.reduce((x, y) => x * y, 1);
  const d = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    d[i] = (((t ^ (t >>> 14)) >>> 0) / 4294967296) * 2 - 1;
  }
  return new Tensor("float32", shape, d);
}

/** Run on the reference interpreter and on ONNX Runtime; returns both results. */
export async function runBoth(g: Graph, feeds: Feeds): Promise<{ ref: Record<string, Tensor>; ort: Record<string, Tensor> }> {
  const ref = await new ReferenceExecutor(g).run(feeds);
  const { OrtExecutor } = await import("@q/ort");
  const ex = await OrtExecutor.create(g);
  try {
    return { ref, ort: await ex.run(feeds) };
  } finally {
    await ex.dispose();
  }
}

/** Largest |a - b|. */
export function maxAbs(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i]! - b[i]!);
    if (!(d <= m)) m = d;
  }
  return m;
}
