import yargs, { type Argv } from "yargs";
import { isQError, UsageError } from "@q/ir";
import { writeOnnx } from "@q/frontends-onnx";
import { loadModel, parseInputShapes, type LoadOptions } from "./load.js";
import { describeModel, formatInfo } from "./info.js";
import { runModel } from "./run.js";
import { modelTransform, runCalibration } from "./tpu.js";
import { processIO, type CliIO } from "./io.js";

export interface MainOptions {
  prog?: string;
  io?: CliIO;
}

/**
 * The `q` command line. Returns the exit code: 0 ok, 2 for errors the user can fix (bad file, bad
 * flag, unknown op, mismatched input), 1 for internal errors.
 */
export async function main(argv: string[], opts: MainOptions = {}): Promise<number> {
  const io = opts.io ?? processIO;
  let code = 0;
  const guard = (fn: (a: Record<string, unknown>) => Promise<void>) => async (a: Record<string, unknown>) => {
    code = await handle(io, () => fn(a));
  };
  const cli: Argv = yargs(argv)
    .scriptName(opts.prog ?? "q")
    .usage("$0 <command> [options]\n\nPost-training quantization toolkit.")
    .command(
      "info <model>",
      "Inputs, outputs, op histogram, parameters and MACs of a model",
      (y) => y.positional("model", { type: "string", demandOption: true, describe: "model file (.onnx)" })
        .option("json", { type: "boolean", default: false, describe: "print JSON" })
        .options(MODEL_OPTIONS),
      guard(async (a) => {
        const model = a.model as string;
        const g = await loadModel(model, loadOptions(a));
        const info = describeModel(g, model);
        io.out(a.json ? JSON.stringify(info, null, 2) + "\n" : formatInfo(info));
      }),
    )
    .command(
      "run <model>",
      "Run a model on inputs from an .npz/.npy file and write its outputs as .npz",
      (y) => y.positional("model", { type: "string", demandOption: true })
        .option("input", { alias: "i", type: "string", demandOption: true, describe: "inputs (.npz keyed by input name, or .npy for a one-input model)" })
        .option("output", { alias: "o", type: "string", describe: "output .npz (default <model>_outputs.npz)" })
        .option("executor", { choices: ["ort", "reference"] as const, default: "ort" as const, describe: "ONNX Runtime or the reference interpreter" })
        .option("dump-all", { type: "boolean", default: false, describe: "also write every intermediate value" })
        .options(MODEL_OPTIONS),
      guard(async (a) => {
        const model = a.model as string;
        const g = await loadModel(model, loadOptions(a));
        const r = await runModel(g, {
          model, input: a.input as string, executor: a.executor as "ort" | "reference", dumpAll: !!a.dumpAll,
          ...(a.output ? { output: a.output as string } : {}),
        }, io.err);
        io.out(`wrote ${Object.keys(r.tensors).length} arrays to ${r.path}\n`);
      }),
    )
    .command(
      "convert <model>",
      "Convert a model to ONNX",
      (y) => y.positional("model", { type: "string", demandOption: true })
        .option("output", { alias: "o", type: "string", demandOption: true, describe: "output .onnx" })
        .options(MODEL_OPTIONS)
        .option("external-data", { type: "string", describe: "store weights in this file beside the model" }),
      guard(async (a) => {
        const out = a.output as string;
        if (!out.endsWith(".onnx")) throw new UsageError(`-o ${out}: the output must be an .onnx file`);
        const g = await loadModel(a.model as string, loadOptions(a));
        writeOnnx(g, out, a.externalData ? { externalData: a.externalData as string } : {});
        io.out(`wrote ${out} (${g.nodes.length} nodes)\n`);
      }),
    )
    .command(
      "model_transform",
      "TPU-MLIR model_transform: model → top-dialect .mlir + weight .npz (and test input/result files)",
      (y) => y
        .option("model_name", { type: "string", demandOption: true, describe: "module name; base of the file names" })
        .option("model_def", { type: "string", demandOption: true, describe: "model file (.onnx, .prototxt, .pb, .pdmodel, .pt, ...)" })
        .option("model_data", { type: "string", describe: "weights (.caffemodel, .pdiparams, .pth)" })
        .option("input_shapes", { type: "string", describe: "e.g. [[1,3,224,224]]" })
        .option("input_types", { type: "string", describe: "accepted for compatibility (float32)" })
        .option("output_names", { type: "string", describe: "cut the model at these values" })
        .options(PREPROCESS_OPTIONS)
        .option("test_input", { type: "string", describe: "image/.npz/.npy (comma list, one per input) to check the .mlir with" })
        .option("test_result", { type: "string", describe: "npz for every value of the .mlir run on --test_input" })
        .option("tolerance", { type: "string", default: "0.99,0.99", describe: "min cosine,euclid of .mlir vs the original model" })
        .option("excepts", { type: "string", describe: "values left out of the comparison" })
        .option("mlir", { type: "string", demandOption: true, describe: "output .mlir" }),
      guard((a) => modelTransform(a, io)),
    )
    .command(
      "run_calibration <mlir_file>",
      "TPU-MLIR run_calibration: statistics over a dataset → cali_table",
      (y) => y
        .positional("mlir_file", { type: "string", demandOption: true, describe: "top .mlir from model_transform, or a model file" })
        .option("dataset", { type: "string", describe: "folder of images / .npz / .npy" })
        .option("data_list", { type: "string", describe: "file with one sample per line (comma-separated for multi-input)" })
        .option("input_num", { type: "number", default: 0, describe: "samples to use (0 = all)" })
        .option("cali_method", { type: "string", default: "use_kl", describe: "use_kl, use_max, use_percentile9999, use_mse, use_aciq_gauss, use_aciq_laplace, use_torch_observer_for_cali" })
        .option("histogram_bin_num", { type: "number", default: 2048 })
        .option("tune_num", { type: "number", default: 5, describe: "threshold tuning samples (0 = no tuning)" })
        .option("tune_list", { type: "string" })
        .option("search", { type: "string", default: "False", describe: "False (search_threshold / search_qtable: not yet)" })
        .option("inference_num", { type: "number", default: 30 })
        .option("bc_inference_num", { type: "number", default: 30 })
        .option("expected_cos", { type: "number", default: 0.99 })
        .option("min_layer_cos", { type: "number", default: 0.99 })
        .option("processor", { alias: "chip", type: "string", default: "bm1684x" })
        .option("we", { type: "boolean", default: false })
        .option("bc", { type: "boolean", default: false })
        .option("sq", { type: "boolean", default: false })
        .option("part_asymmetric", { alias: "part_asymmtric", type: "boolean", default: false })
        .option("part_quantize", { type: "string" })
        .option("kurtosis_analysis", { type: "boolean", default: false })
        .option("debug_cmd", { type: "string", default: "" })
        .option("debug_log", { type: "boolean", default: false })
        .option("cache", { type: "string", describe: "statistics cache folder: a rerun with the same model and data skips the forward passes" })
        .option("calibration_table", { alias: "o", type: "string", describe: "output cali_table" })
        .option("model_data", { type: "string" })
        .option("input_shapes", { type: "string" })
        .options(PREPROCESS_OPTIONS),
      guard((a) => runCalibration(a, io)),
    )
    .demandCommand(1, "name a command: info, run, convert, model_transform or run_calibration")
    .strict()
    .help()
    .version(false)
    .exitProcess(false)
    .fail((msg, err) => {
      if (err) throw err;
      throw new UsageError(`${msg} (see --help)`);
    });
  try {
    await cli.parseAsync();
  } catch (e) {
    return handle(io, () => Promise.reject(e));
  }
  return code;
}

/** Input preprocessing, as model_transform stores it on top.Input. */
const PREPROCESS_OPTIONS = {
  resize_dims: { type: "string", describe: "h,w to resize to before the center crop" },
  keep_aspect_ratio: { type: "boolean", default: false },
  mean: { type: "string", describe: "per channel, e.g. 123.675,116.28,103.53" },
  scale: { type: "string", describe: "per channel: x' = (x - mean) * scale" },
  pixel_format: { choices: ["rgb", "bgr", "gray", "rgba"], default: "bgr" },
  channel_format: { choices: ["nchw", "nhwc"], default: "nchw" },
  pad_value: { type: "number", default: 0 },
  pad_type: { choices: ["center", "normal"], default: "center" },
} as const;

/** Options every command that reads a model takes. */
const MODEL_OPTIONS = {
  weights: { type: "string", describe: "separate weight file: .caffemodel, .pdiparams, or the .pth of a definition script" },
  inputs: { type: "string", describe: "TensorFlow: input tensor names, comma-separated" },
  outputs: { type: "string", describe: "TensorFlow: output tensor names, comma-separated" },
  "input-shapes": { type: "string", describe: "shapes for free input dims, e.g. x:1,3,224,224;y:1,10" },
  definition: { type: "string", describe: "PyTorch weights-only file: the model-definition script (.mjs)" },
  "model-name": { type: "string", describe: "model to pick from a definition script" },
} as const;

const list = (v: unknown) => (typeof v === "string" && v ? v.split(",").map((s) => s.trim()).filter(Boolean) : undefined);

function loadOptions(a: Record<string, unknown>): LoadOptions {
  const o: LoadOptions = {};
  if (a.weights) o.weights = a.weights as string;
  const inputs = list(a.inputs), outputs = list(a.outputs);
  if (inputs) o.inputs = inputs;
  if (outputs) o.outputs = outputs;
  const shapes = parseInputShapes(a.inputShapes as string | undefined);
  if (shapes) o.inputShapes = shapes;
  if (a.definition) o.definition = a.definition as string;
  if (a.modelName) o.modelName = a.modelName as string;
  return o;
}

async function handle(io: CliIO, fn: () => Promise<void>): Promise<number> {
  try {
    await fn();
    return 0;
  } catch (e) {
    if (isQError(e)) {
      io.err(`error: ${e.message.trim().replace(/\s*\n\s*/g, " ")}\n`);
      return e.exitCode;
    }
    io.err(`internal error: ${e instanceof Error ? (process.env.Q_DEBUG ? e.stack : e.message) : String(e)}\n`);
    return 1;
  }
}
