/** The q command line, importable for scripts and tests. */
export { main, type MainOptions } from "./main.js";
export { loadModel, detectFormat, type ModelFormat, type LoadOptions } from "./load.js";
export { describeModel, formatInfo, type ModelInfo } from "./info.js";
export { runModel, matchInputs } from "./run.js";
export { bufferIO, processIO, type CliIO } from "./io.js";
