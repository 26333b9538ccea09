import { describe, expect, it } from "vitest";
import { existsSync, mkdtempSync, writeFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ModelFormatError, QError, Tensor } from "@q/ir";
import { UnsafePickleError, allowedGlobals, isTuple, parseTorchBytes, readStateDict, unpickle, TensorRef } from "./index.js";
import { PickleWriter, legacyFile, scriptArchive, stateDictPickle, zipArchive } from "./testing/fixtures.js";

const tmp = mkdtempSync(join(tmpdir(), "q-torch-pickle-"));
/** The file each payload would create if anything in it ran. */
const PWNED = join(tmp, "pwned");

/** Assert `fn` throws an UnsafePickleError naming `global`, and that the payload did not run. */
async function expectRefused(fn: () => unknown, global: string, file?: string): Promise<UnsafePickleError> {
  let err: unknown;
  try {
    await fn();
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(UnsafePickleError);
  const e = err as UnsafePickleError;
  expect(e).toBeInstanceOf(QError);
  expect(e.code).toBe("E_UNSAFE_PICKLE");
  expect(e.exitCode).toBe(2);
  expect(e.global).toBe(global);
  expect(e.message).toContain(`'${global}'`);
  if (file) expect(e.message).toContain(file);
  expect(existsSync(PWNED)).toBe(false);
  return e;
}

/** `<callable>(args...)` via GLOBAL + REDUCE: the classic pickle exploit. */
function globalReduce(module: string, name: string, arg: string, proto = 2): Uint8Array {
  return new PickleWriter().proto(proto).global(module, name).mark().str(arg).tuple().reduce().stop().bytes();
}
function stackGlobalReduce(module: string, name: string, arg: string): Uint8Array {
  // protocol 4 framing, as pickle.dumps(protocol=4) writes it
  const body = new PickleWriter().stackGlobal(module, name).op(0x94).mark().shortStr(arg).tuple().reduce().stop().bytes();
  const frame = new Uint8Array(9);
  frame[0] = 0x95;
  new DataView(frame.buffer).setBigUint64(1, BigInt(body.length), true);
  return Uint8Array.from([0x80, 0x04, ...frame, ...body]);
}

describe("safe unpickler: malicious pickles", () => {
  const cmd = `touch ${PWNED}`;

  it("refuses os.system / posix.system via GLOBAL + REDUCE", async () => {
    await expectRefused(() => unpickle(globalReduce("os", "system", cmd), { file: "evil.pkl" }), "os.system", "evil.pkl");
    await expectRefused(() => unpickle(globalReduce("posix", "system", cmd)), "posix.system");
    await expectRefused(() => unpickle(globalReduce("nt", "system", cmd)), "nt.system");
  });

  it("refuses builtins.eval / exec / getattr and subprocess.Popen via STACK_GLOBAL (protocol 4)", async () => {
    await expectRefused(() => unpickle(stackGlobalReduce("builtins", "eval", `__import__('os').system('${cmd}')`)), "builtins.eval");
    await expectRefused(() => unpickle(stackGlobalReduce("builtins", "exec", "import os")), "builtins.exec");
    await expectRefused(() => unpickle(stackGlobalReduce("builtins", "getattr", "x")), "builtins.getattr");
    await expectRefused(() => unpickle(stackGlobalReduce("subprocess", "Popen", cmd)), "subprocess.Popen");
    await expectRefused(() => unpickle(globalReduce("subprocess", "check_output", cmd, 3)), "subprocess.check_output");
  });

  it("refuses user classes (whole-model torch.save) and numpy reconstructors with a hint", async () => {
    const p = new PickleWriter().proto(2).global("models.resnet", "ResNet").emptyTuple().newobj().emptyDict().build().stop();
    const e = await expectRefused(() => unpickle(p.bytes()), "models.resnet.ResNet");
    expect(e.message).toMatch(/state_dict/);
    await expectRefused(() => unpickle(globalReduce("numpy.core.multiarray", "_reconstruct", "x")), "numpy.core.multiarray._reconstruct");
    await expectRefused(() => unpickle(globalReduce("torch.nn.modules.conv", "Conv2d", "x")), "torch.nn.modules.conv.Conv2d");
  });

  it("refuses a payload hidden after valid tensors inside a state dict", async () => {
    const t = Tensor.f32([2], [1, 2]);
    const p = stateDictPickle([["w", { key: "0", storage: t, size: [2], stride: [1] }]]);
    // one more entry whose value is os.system(cmd)
    p.str("evil").global("os", "system").mark().str(cmd).tuple().reduce().setitem().stop();
    await expectRefused(() => unpickle(p.bytes()), "os.system");
  });

  it("refuses REDUCE / NEWOBJ on allow-listed names that are not callables, and refused opcodes", () => {
    const storageCall = new PickleWriter().proto(2).global("torch", "FloatStorage").emptyTuple().reduce().stop();
    expect(() => unpickle(storageCall.bytes())).toThrow(UnsafePickleError);
    // REDUCE on a plain string (a callable smuggled from the memo)
    const strCall = new PickleWriter().proto(2).str("os.system").emptyTuple().reduce().stop();
    expect(() => unpickle(strCall.bytes())).toThrow(UnsafePickleError);
    // INST 'os\nsystem\n' and OBJ build objects from arbitrary classes
    const inst = Uint8Array.from([0x80, 0x02, 0x28, 0x58, 1, 0, 0, 0, 0x78, 0x69, ...Array.from("os\nsystem\n", (c) => c.charCodeAt(0)), 0x2e]);
    expect(() => unpickle(inst)).toThrow(/INST/);
    expect(() => unpickle(Uint8Array.from([0x80, 0x02, 0x28, 0x6f, 0x2e]))).toThrow(/OBJ/);
    expect(() => unpickle(Uint8Array.from([0x80, 0x02, 0x82, 0x01, 0x2e]))).toThrow(/EXT/);
    expect(() => unpickle(Uint8Array.from([0x80, 0x02, 0x50, 0x78, 0x0a, 0x2e]))).toThrow(/PERSID/);
    // persistent ids must be ('storage', ...)
    const pid = new PickleWriter().proto(2).mark().str("module").str("x").tuple().binpersid().stop();
    expect(() => unpickle(pid.bytes())).toThrow(UnsafePickleError);
    // __torch__ classes are TorchScript records only inside TorchScript archives
    const ts = new PickleWriter().proto(2).global("__torch__", "M").emptyTuple().newobj().stop();
    expect(() => unpickle(ts.bytes())).toThrow(UnsafePickleError);
    expect(unpickle(ts.bytes(), { torchScript: true }).value).toMatchObject({ className: "__torch__.M" });
    // APPEND only to lists, SETITEM only to dicts
    const appendTuple = new PickleWriter().proto(2).emptyTuple().int(1).op(0x61).stop();
    expect(() => unpickle(appendTuple.bytes())).toThrow(UnsafePickleError);
    const setitemList = new PickleWriter().proto(2).emptyList().int(1).int(2).setitem().stop();
    expect(() => unpickle(setitemList.bytes())).toThrow(UnsafePickleError);
  });

  it("refuses os.system inside a zip .pth, a legacy file and a TorchScript data.pkl, naming the file", async () => {
    const evil = globalReduce("os", "system", cmd);
    const zipPath = join(tmp, "evil.pth");
    writeFileSync(zipPath, zipArchive("evil", evil, new Map()));
    await expectRefused(() => readStateDict(zipPath), "os.system", zipPath);

    const legacyPath = join(tmp, "evil_legacy.pth");
    writeFileSync(legacyPath, legacyFile(evil, new Map()));
    await expectRefused(() => readStateDict(legacyPath), "os.system", legacyPath);

    const sg = join(tmp, "evil_sg.pth");
    writeFileSync(sg, zipArchive("archive", stackGlobalReduce("builtins", "eval", "1"), new Map()));
    await expectRefused(() => readStateDict(sg), "builtins.eval", sg);

    // TorchScript archive whose module tree smuggles a subprocess call
    const ts = scriptArchive("    return x", {}, {
      extraPickle: (p) => {
        p.str("evil").global("subprocess", "Popen").mark().str(cmd).tuple().reduce();
      },
    });
    await expectRefused(() => parseTorchBytes(ts, "evil_script.pt"), "subprocess.Popen", "evil_script.pt");
  });

  it("ensures the payload really targets the marker file (control: nothing created it)", () => {
    expect(existsSync(PWNED)).toBe(false);
    rmSync(tmp, { recursive: true, force: true });
  });
});

describe("safe unpickler: data", () => {
  it("reads protocol 2 containers, numbers and strings", () => {
    const p = new PickleWriter().proto(2).emptyDict().mark()
      .str("a").int(7).str("b").int(-5).str("c").int(70000).str("d").float(91.78)
      .str("e").mark().int(1).int(2).tuple().str("f").emptyList().mark().int(3).int(4).appends()
      .str("g").none().str("h").bool(true).str("i").int(2 ** 40)
      .str("j").global("builtins", "set").mark().emptyList().mark().int(1).int(2).appends().tuple().reduce()
      .setitems().stop();
    const v = unpickle(p.bytes()).value as Map<string, unknown>;
    expect(v.get("a")).toBe(7);
    expect(v.get("b")).toBe(-5);
    expect(v.get("c")).toBe(70000);
    expect(v.get("d")).toBeCloseTo(91.78);
    expect(isTuple(v.get("e"))).toBe(true);
    expect(v.get("e")).toEqual([1, 2]);
    expect(isTuple(v.get("f"))).toBe(false);
    expect(v.get("f")).toEqual([3, 4]);
    expect(v.get("g")).toBe(null);
    expect(v.get("h")).toBe(true);
    expect(v.get("i")).toBe(2 ** 40);
    expect(v.get("j")).toEqual(new Set([1, 2]));
  });

  it("reads protocol 4 framing, MEMOIZE, STACK_GLOBAL of allow-listed names, bytes via _codecs.encode", () => {
    const body = new PickleWriter().stackGlobal("collections", "OrderedDict").op(0x94).emptyTuple().reduce().op(0x94)
      .mark().shortStr("k").op(0x94).op(0x43, 2, 0xab, 0xcd)
      .shortStr("s").global("_codecs", "encode").mark().str("\u00ff\u0001").str("latin1").tuple().reduce()
      .setitems().stop().bytes();
    const frame = new Uint8Array(9);
    frame[0] = 0x95;
    new DataView(frame.buffer).setBigUint64(1, BigInt(body.length), true);
    const v = unpickle(Uint8Array.from([0x80, 0x04, ...frame, ...body])).value as Map<string, unknown>;
    expect([...v.keys()]).toEqual(["k", "s"]);
    expect(Array.from(v.get("k") as Uint8Array)).toEqual([0xab, 0xcd]);
    expect(Array.from(v.get("s") as Uint8Array)).toEqual([0xff, 0x01]);
  });

  it("turns _rebuild_tensor_v2 into a TensorRef and lists the allow-list", () => {
    const t = Tensor.f32([6], [0, 1, 2, 3, 4, 5]);
    const p = stateDictPickle([["w", { key: "0", storage: t, offset: 1, size: [2, 2], stride: [1, 2] }]]).stop();
    const { value, storages } = unpickle(p.bytes());
    const ref = (value as Map<string, unknown>).get("w") as TensorRef;
    expect(ref).toBeInstanceOf(TensorRef);
    expect(ref.size).toEqual([2, 2]);
    expect(ref.stride).toEqual([1, 2]);
    expect(ref.offset).toBe(1);
    expect(storages.map((s) => s.key)).toEqual(["0"]);
    const allowed = allowedGlobals();
    expect(allowed).toContain("torch._utils._rebuild_tensor_v2");
    expect(allowed).toContain("collections.OrderedDict");
    expect(allowed.some((g) => g.startsWith("os.") || g.startsWith("builtins.eval") || g.startsWith("subprocess"))).toBe(false);
  });

  it("reports truncated and non-pickle data as ModelFormatError", () => {
    const p = stateDictPickle([["w", { key: "0", storage: Tensor.f32([1], [1]), size: [1], stride: [1] }]]).stop().bytes();
    expect(() => unpickle(p.subarray(0, p.length - 10), { file: "cut.pkl" })).toThrow(ModelFormatError);
    expect(() => unpickle(p.subarray(0, p.length - 10), { file: "cut.pkl" })).toThrow(/cut\.pkl.*truncated/);
    expect(() => unpickle(Uint8Array.from([0x80, 0x02, 0x01]))).toThrow(/unsupported pickle opcode/);
  });
});
