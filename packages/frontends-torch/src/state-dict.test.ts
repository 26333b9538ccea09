import { afterAll, describe, expect, it } from "vitest";
import { mkdtempSync, rmSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { MissingFileError, ModelFormatError, Tensor, f32ToBf16Bits, f32ToF16Bits } from "@q/ir";
import { readOnnx } from "@q/frontends-onnx";
import { parseTorchBytes, readStateDict, readTorch, stateDictOf } from "./index.js";
import { PickleWriter, legacyFile, stateDictPickle, writeTensor, zipArchive } from "./testing/fixtures.js";
import { HAVE_SHARED, SHARED, SKIP_SHARED_MSG } from "../../../tools/testing/shared-models.js";

const tmp = mkdtempSync(join(tmpdir(), "q-torch-sd-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const R20 = join(SHARED, "torch/resnet20_cifar10");

describe("state dicts from hand-made archives", () => {
  it("reads float32/float16/bfloat16/int64/bool storages, offsets and strided views", () => {
    const f = Tensor.f32([6], [0, 1, 2, 3, 4, 5]);
    const h = new Tensor("float16", [3], Uint16Array.from([1, -2, 0.5].map(f32ToF16Bits)));
    const bf = new Tensor("bfloat16", [2], Uint16Array.from([3, -0.25].map(f32ToBf16Bits)));
    const l = Tensor.i64([3], [7, -1, 2 ** 40]);
    const b = new Tensor("bool", [2], Uint8Array.from([1, 0]));
    const pkl = stateDictPickle([
      ["dense", { key: "0", storage: f, size: [2, 3], stride: [3, 1] }],
      ["transposed", { key: "0", storage: f, size: [3, 2], stride: [1, 3] }], // shares storage 0
      ["offset", { key: "0", storage: f, offset: 4, size: [2], stride: [1] }],
      ["half", { key: "1", storage: h, size: [3], stride: [1] }],
      ["bf16", { key: "2", storage: bf, size: [2], stride: [1] }],
      ["long", { key: "3", storage: l, size: [3], stride: [1] }],
      ["scalar", { key: "3", storage: l, offset: 2, size: [], stride: [] }],
      ["mask", { key: "4", storage: b, size: [2], stride: [1] }],
    ]).stop().bytes();
    const storages = new Map([["0", f], ["1", h], ["2", bf], ["3", l], ["4", b]]);
    for (const bigEndian of [false, true]) {
      const sd = stateDictOf(parseTorchBytes(zipArchive("archive", pkl, storages, {}, bigEndian), "t.pth"));
      expect(sd.get("dense")!.shape).toEqual([2, 3]);
      expect(sd.get("dense")!.toArray()).toEqual([0, 1, 2, 3, 4, 5]);
      expect(sd.get("transposed")!.toArray()).toEqual([0, 3, 1, 4, 2, 5]);
      expect(sd.get("offset")!.toArray()).toEqual([4, 5]);
      expect(sd.get("half")!.dtype).toBe("float16");
      expect(sd.get("half")!.toArray()).toEqual([1, -2, 0.5]);
      expect(sd.get("bf16")!.dtype).toBe("bfloat16");
      expect(sd.get("bf16")!.toArray()).toEqual([3, -0.25]);
      expect(sd.get("long")!.dtype).toBe("int64");
      expect(Array.from(sd.get("long")!.data as BigInt64Array)).toEqual([7n, -1n, 2n ** 40n]);
      expect(sd.get("scalar")!.shape).toEqual([]);
      expect(sd.get("scalar")!.toArray()).toEqual([2 ** 40]);
      expect(sd.get("mask")!.dtype).toBe("bool");
      expect(sd.get("mask")!.toArray()).toEqual([1, 0]);
    }
  });

  it("finds nested state dicts, strips 'module.' and skips plain entries", async () => {
    const f = Tensor.f32([2], [1, 2]);
    const p = new PickleWriter().proto(2).emptyDict().mark().str("epoch").int(3).str("best_prec1").float(91.5).str("state_dict");
    p.global("collections", "OrderedDict").emptyTuple().reduce().mark();
    p.str("module.fc.weight");
    writeTensor(p, { key: "0", storage: f, size: [2], stride: [1] });
    p.str("module.fc.bias");
    writeTensor(p, { key: "0", storage: f, offset: 1, size: [1], stride: [1] });
    p.setitems().setitems().stop();
    const path = join(tmp, "ckpt.pth");
    writeFileSync(path, zipArchive("ckpt", p.bytes(), new Map([["0", f]])));
    expect([...(await readStateDict(path)).keys()]).toEqual(["fc.weight", "fc.bias"]);
    expect([...(await readStateDict(path, { stripPrefix: false })).keys()]).toEqual(["module.fc.weight", "module.fc.bias"]);
    expect([...(await readStateDict(path, { key: "state_dict", stripPrefix: "module.fc." })).keys()]).toEqual(["weight", "bias"]);
    await expect(readStateDict(path, { key: "model" })).rejects.toThrow(/no entry 'model'/);
  });

  it("reads the legacy format (4-argument _rebuild_tensor, 6-tuple ids, sorted keys)", () => {
    const a = Tensor.f32([4], [1, 2, 3, 4]);
    const b = Tensor.f32([2], [5, 6]);
    const obj = new PickleWriter().proto(2).emptyDict().mark().str("state_dict");
    obj.global("collections", "OrderedDict").emptyTuple().reduce().mark();
    obj.str("module.a");
    writeTensor(obj, { key: "9400", storage: a, size: [2, 2], stride: [2, 1] }, true);
    obj.str("module.b");
    writeTensor(obj, { key: "10", storage: b, size: [2], stride: [1] }, true);
    obj.setitems().setitems().stop();
    const bytes = legacyFile(obj.bytes(), new Map([["9400", a], ["10", b]]));
    const ar = parseTorchBytes(bytes, "legacy.th");
    expect(ar.kind).toBe("legacy");
    const sd = stateDictOf(ar);
    expect(sd.get("a")!.toArray()).toEqual([1, 2, 3, 4]);
    expect(sd.get("b")!.toArray()).toEqual([5, 6]);
    // truncated in the storage section
    expect(() => parseTorchBytes(bytes.subarray(0, bytes.length - 4), "legacy_cut.th")).toThrow(/legacy_cut\.th.*truncated/);
  });

  it("rejects truncated, corrupt and unknown files with ModelFormatError naming the file", async () => {
    const f = Tensor.f32([4], [1, 2, 3, 4]);
    const zip = zipArchive("x", stateDictPickle([["w", { key: "0", storage: f, size: [4], stride: [1] }]]).stop().bytes(), new Map([["0", f]]));
    const cut = join(tmp, "cut.pth");
    writeFileSync(cut, zip.subarray(0, Math.floor(zip.length / 2)));
    await expect(readStateDict(cut)).rejects.toBeInstanceOf(ModelFormatError);
    await expect(readStateDict(cut)).rejects.toThrow(cut);
    // a view beyond its storage
    const bad = zipArchive("x", stateDictPickle([["w", { key: "0", storage: f, offset: 2, size: [4], stride: [1] }]]).stop().bytes(), new Map([["0", f]]));
    expect(() => stateDictOf(parseTorchBytes(bad, "bad.pth"))).toThrow(/bad\.pth.*reaches element 5/);
    expect(() => parseTorchBytes(new TextEncoder().encode("hello world"), "hello.txt")).toThrow(/hello\.txt: not a PyTorch file/);
    await expect(readStateDict(join(tmp, "missing.pth"))).rejects.toBeInstanceOf(MissingFileError);
  });

  it("refuses to make a graph from a state dict without a definition script", async () => {
    const f = Tensor.f32([1], [1]);
    const path = join(tmp, "weights.pth");
    writeFileSync(path, zipArchive("weights", stateDictPickle([["w", { key: "0", storage: f, size: [1], stride: [1] }]]).stop().bytes(), new Map([["0", f]])));
    await expect(readTorch(path)).rejects.toThrow(/weights only.*model-definition route.*-uds/);
    await expect(readTorch(path)).rejects.toBeInstanceOf(ModelFormatError);
  });
});

describe.skipIf(!HAVE_SHARED)("state dicts of the real ResNet-20 files", () => {
  if (!HAVE_SHARED) it.skip(SKIP_SHARED_MSG, () => {});

  it("reads the zip state dict, the legacy checkpoint and the TorchScript parameters identically", async () => {
    const sd = await readStateDict(join(R20, "resnet20_cifar10_state_dict.pth"));
    const legacy = await readStateDict(join(R20, "orig/resnet20-12fca82f.th"));
    const script = await readStateDict(join(R20, "resnet20_cifar10_traced.pt"));
    expect(sd.size).toBe(116); // 19 conv/bn layers x ... + linear; includes num_batches_tracked
    expect(sd.get("conv1.weight")!.shape).toEqual([16, 3, 3, 3]);
    expect(sd.get("linear.weight")!.shape).toEqual([10, 64]);
    expect(sd.get("bn1.num_batches_tracked")!.dtype).toBe("int64");
    // the legacy checkpoint has 'module.' keys (stripped) and no num_batches_tracked (older torch)
    const floatKeys = [...sd.keys()].filter((k) => !k.endsWith("num_batches_tracked"));
    expect([...legacy.keys()]).toEqual(floatKeys);
    for (const k of floatKeys) {
      expect(legacy.get(k)!.shape).toEqual(sd.get(k)!.shape);
      expect(Array.from(legacy.get(k)!.data as Float32Array)).toEqual(Array.from(sd.get(k)!.data as Float32Array));
      expect(Array.from(script.get(k)!.data as Float32Array)).toEqual(Array.from(sd.get(k)!.data as Float32Array));
    }
    expect([...script.keys()].sort()).toEqual([...sd.keys()].sort());
  });

  it("matches the ONNX export's initializers where the names correspond", async () => {
    const sd = await readStateDict(join(R20, "resnet20_cifar10_state_dict.pth"));
    const g = await readOnnx(join(R20, "resnet20_cifar10.onnx"));
    const common = [...g.initializers.keys()].filter((k) => sd.has(k));
    expect(common.length).toBeGreaterThan(0);
    for (const k of common) {
      expect(Array.from(g.initializers.get(k)!.toNumbers())).toEqual(Array.from(sd.get(k)!.toNumbers()));
    }
    expect(common).toEqual(["linear.weight", "linear.bias"]);
    // the export folded each BN into its conv (generated names): W' = W * gamma / sqrt(var + eps)
    const convs = g.nodes.filter((n) => n.opType === "Conv");
    const convKeys = [...sd.keys()].filter((k) => /conv\d\.weight$/.test(k));
    expect(convs.length).toBe(19);
    expect(convKeys.length).toBe(19);
    convs.forEach((node, i) => {
      const k = convKeys[i]!;
      const bn = k.replace(/conv(\d)\.weight$/, "bn$1.");
      const w = sd.get(k)!.toNumbers();
      const gamma = sd.get(`${bn}weight`)!.toNumbers();
      const vr = sd.get(`${bn}running_var`)!.toNumbers();
      const folded = g.initializers.get(node.inputs[1]!)!.toNumbers();
      expect(folded.length).toBe(w.length);
      const per = w.length / gamma.length;
      let maxErr = 0;
      for (let j = 0; j < w.length; j++) {
        const c = Math.floor(j / per);
        maxErr = Math.max(maxErr, Math.abs(folded[j]! - (w[j]! * gamma[c]!) / Math.sqrt(vr[c]! + 1e-5)));
      }
      expect(maxErr).toBeLessThan(1e-5);
    });
  });

  it("names the file when the real archive is truncated", async () => {
    const bytes = readFileSync(join(R20, "resnet20_cifar10_state_dict.pth"));
    for (const [name, n] of [["r20_head.pth", 5000], ["r20_half.pth", bytes.length >> 1], ["r20_tail.pth", bytes.length - 30]] as const) {
      const p = join(tmp, name);
      writeFileSync(p, bytes.subarray(0, n));
      const err = await readStateDict(p).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ModelFormatError);
      expect((err as Error).message).toContain(p);
    }
    const legacyBytes = readFileSync(join(R20, "orig/resnet20-12fca82f.th"));
    const lp = join(tmp, "r20_legacy_cut.th");
    writeFileSync(lp, legacyBytes.subarray(0, legacyBytes.length - 100));
    await expect(readStateDict(lp)).rejects.toThrow(new RegExp(`${lp}.*truncated`));
  });
});
