/** Subgraph pattern rules (not built yet). */
export {};
