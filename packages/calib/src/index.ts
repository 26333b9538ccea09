/** Calibration statistics and thresholds (not built yet). */
export {};
