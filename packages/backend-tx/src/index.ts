/** Tsingmicro TX backend (not built yet). */
export {};
