/** Sophgo TPU-MLIR backend (not built yet). */
export {};
