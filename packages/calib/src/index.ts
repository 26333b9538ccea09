/** Calibration: datasets and preprocessing, statistics in one pass, threshold methods, calibrate(). */
export * from "./stats.js";
export * from "./thresholds.js";
export * from "./weights.js";
export * from "./preprocess.js";
export * from "./dataset.js";
export * from "./collect.js";
export * from "./calibrate.js";
export * from "./equalize.js";
export * from "./smoothquant.js";
export * from "./tune.js";
