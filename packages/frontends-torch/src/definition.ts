/**
 * Knight's PyTorch model-definition route (`-f pytorch -m NAME -w weights.pth -uds script`): the
 * user's own script builds the graph with a GraphBuilder from a state dict. Running the user's
 * script is fine (they wrote it); the weights file stays untrusted and goes through the safe
 * unpickler.
 */
import { existsSync } from "node:fs";
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { Graph, GraphBuilder, MissingFileError, ModelFormatError, QError, type Tensor } from "@q/ir";
import { readStateDict, type ReadStateDictOptions } from "./state-dict.js";

/** What a definition script exports: `build`, a default export, a `models` table, or a function named like the model. */
export type BuildFunction = (b: GraphBuilder, weights: Map<string, Tensor>, name?: string) => Graph | void | Promise<Graph | void>;

export interface DefinitionOptions extends ReadStateDictOptions {
  /** Model name (`-m`): picks `models[name]` or an export of that name when the script has several. */
  modelName?: string;
  /** Graph opsets (default { "": 17 }). */
  opsets?: Record<string, number>;
}

function pickBuilder(mod: Record<string, unknown>, name: string | undefined, script: string): BuildFunction {
  const models = mod.models as Record<string, unknown> | undefined;
  const candidates: unknown[] = [];
  if (name) candidates.push(models?.[name], mod[name]);
  candidates.push(mod.build, mod.default);
  const fn = candidates.find((c) => typeof c === "function");
  if (!fn) {
    const what = name ? `'${name}' (in a 'models' object or as a named export), 'build' or a default export` : `'build' or a default export`;
    throw new ModelFormatError(`the model-definition script exports no function ${what}: export build(b, weights, name) that adds the model to the GraphBuilder`, script);
  }
  return fn as BuildFunction;
}

/** Build a graph by running a user model-definition module (.mjs/.js) on a state dict. */
export async function buildFromDefinition(scriptPath: string, weightsPath: string, opts: DefinitionOptions = {}): Promise<Graph> {
  const script = resolve(scriptPath);
  if (!existsSync(script)) throw new MissingFileError(scriptPath, "model-definition script");
  const weights = await readStateDict(weightsPath, opts);
  let mod: Record<string, unknown>;
  try {
    mod = (await import(pathToFileURL(script).href)) as Record<string, unknown>;
  } catch (e) {
    throw new ModelFormatError(`cannot load the model-definition script: ${(e as Error).message}`, scriptPath);
  }
  const fn = pickBuilder(mod, opts.modelName, scriptPath);
  const b = new GraphBuilder({ name: opts.modelName ?? "model", ...(opts.opsets ? { opsets: opts.opsets } : {}) });
  let g: Graph | void;
  try {
    g = await fn(b, weights, opts.modelName);
  } catch (e) {
    if (e instanceof QError) throw e;
    throw new ModelFormatError(`the model-definition script failed: ${(e as Error).message}`, scriptPath);
  }
  const graph = g instanceof Graph ? g : b.build();
  graph.source = weightsPath;
  return graph;
}
