import type { KernelTable } from "../types.js";

export const kernels: KernelTable = {};
