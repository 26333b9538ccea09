/**
 * State dicts: `readStateDict(path)` -> Map of name -> dense Tensor, from torch.save zip archives,
 * legacy files, checkpoints that nest the weights ({'state_dict': ...}) and TorchScript archives
 * (parameters and buffers named by their attribute path).
 */
import { ModelFormatError, type Tensor } from "@q/ir";
import { openTorchFile, type TorchArchive } from "./container.js";
import { TensorRef, TorchObject, describe } from "./pickle.js";

export interface ReadStateDictOptions {
  /**
   * Entry of a checkpoint dict that holds the weights. Default: the top level when it holds tensors,
   * else the first of 'state_dict', 'model_state_dict', 'model', 'net', 'module', 'state', 'weights'
   * that does, else the first nested dict holding tensors.
   */
  key?: string;
  /**
   * Prefix to strip from every name. Default: "module." (DataParallel) when every name carries it.
   * `false` keeps names as they are.
   */
  stripPrefix?: string | false;
}

const PREFERRED_KEYS = ["state_dict", "model_state_dict", "model", "net", "module", "state", "weights"];

const hasTensors = (m: unknown): m is Map<unknown, unknown> => m instanceof Map && [...m.values()].some((v) => v instanceof TensorRef);

/** Find the tensor dict inside a checkpoint object. */
export function findStateDict(value: unknown, file: string, key?: string): Map<unknown, unknown> {
  if (key !== undefined) {
    if (!(value instanceof Map) || !value.has(key)) throw new ModelFormatError(`the file has no entry '${key}' (top level is ${describe(value)}${value instanceof Map ? ` with keys ${[...value.keys()].slice(0, 10).join(", ")}` : ""})`, file);
    const v = value.get(key);
    if (!hasTensors(v)) throw new ModelFormatError(`entry '${key}' holds no tensors`, file);
    return v;
  }
  if (hasTensors(value)) return value;
  if (value instanceof Map) {
    for (const k of PREFERRED_KEYS) if (hasTensors(value.get(k))) return value.get(k) as Map<unknown, unknown>;
    for (const v of value.values()) if (hasTensors(v)) return v;
  }
  if (value instanceof TensorRef) return new Map([["tensor", value]]);
  throw new ModelFormatError(`no state dict found: the file holds ${describe(value)} without tensors`, file);
}

/** Parameters and buffers of a TorchScript module tree, by attribute path. */
export function scriptModuleTensors(root: TorchObject): Map<string, TensorRef> {
  const out = new Map<string, TensorRef>();
  const walk = (o: TorchObject, path: string) => {
    for (const [k, v] of o.attrs) {
      const p = path ? `${path}.${k}` : k;
      if (v instanceof TensorRef) out.set(p, v);
      else if (v instanceof TorchObject) walk(v, p);
    }
  };
  walk(root, "");
  return out;
}

/** Tensors of an opened archive, by name (see ReadStateDictOptions). */
export function stateDictOf(ar: TorchArchive, opts: ReadStateDictOptions = {}): Map<string, Tensor> {
  let refs: [string, TensorRef][];
  if (ar.value instanceof TorchObject) {
    refs = [...scriptModuleTensors(ar.value)];
  } else {
    const dict = findStateDict(ar.value, ar.file, opts.key);
    refs = [];
    for (const [k, v] of dict) if (v instanceof TensorRef) refs.push([String(k), v]);
  }
  let strip = opts.stripPrefix;
  if (strip === undefined) strip = refs.length > 0 && refs.every(([k]) => k.startsWith("module.")) ? "module." : false;
  const out = new Map<string, Tensor>();
  for (const [k, ref] of refs) {
    const name = strip && k.startsWith(strip) ? k.slice(strip.length) : k;
    out.set(name, ar.tensor(ref, `tensor '${k}'`));
  }
  return out;
}

/** Read the weights of a PyTorch file as name -> Tensor (dense, row-major). */
export async function readStateDict(path: string, opts: ReadStateDictOptions = {}): Promise<Map<string, Tensor>> {
  return stateDictOf(await openTorchFile(path), opts);
}
