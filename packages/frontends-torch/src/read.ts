import { ModelFormatError, type Graph } from "@q/ir";
import { openTorchFile } from "./container.js";
import { buildFromDefinition, type DefinitionOptions } from "./definition.js";
import { torchScriptToGraph, type ReadTorchScriptOptions } from "./torchscript.js";

export interface ReadTorchOptions extends ReadTorchScriptOptions, DefinitionOptions {
  /** Model-definition script (.mjs) for weight-only files: Knight's `-uds`. */
  definition?: string;
}

/**
 * Read any PyTorch file as a graph: a TorchScript archive converts directly; a state dict (zip or
 * legacy) needs a model-definition script (`opts.definition`), since it holds weights only.
 */
export async function readTorch(path: string, opts: ReadTorchOptions = {}): Promise<Graph> {
  const ar = await openTorchFile(path);
  if (ar.kind === "torchscript") return torchScriptToGraph(ar, opts);
  if (opts.definition) return buildFromDefinition(opts.definition, path, opts);
  throw new ModelFormatError(
    `this ${ar.kind === "legacy" ? "legacy torch.save file" : "torch.save archive"} holds weights only (a state dict), not a graph. ` +
      `Use the model-definition route: a script that builds the model from the weights (Knight: -f pytorch -m NAME -w ${path} -uds script.mjs; ` +
      `API: buildFromDefinition(script, weights) or readTorch(path, { definition: script })), or save TorchScript (torch.jit.trace + torch.jit.save), or export ONNX`,
    path,
  );
}
