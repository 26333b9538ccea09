/** PyTorch reader (not built yet). */
export {};
