import { defineConfig } from "vitest/config";
import { readdirSync, existsSync } from "node:fs";
import { resolve } from "node:path";

// Tests import workspace packages from source, so `vitest` needs no build step.
const pkgs = readdirSync(resolve(__dirname, "packages")).filter((d) =>
  existsSync(resolve(__dirname, "packages", d, "src/index.ts")),
);
const alias = Object.fromEntries(pkgs.map((d) => [`@q/${d}`, resolve(__dirname, "packages", d, "src/index.ts")]));

export default defineConfig({
  resolve: { alias },
  test: {
    include: ["packages/*/src/**/*.test.ts", "tools/**/*.test.ts"],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    pool: "forks",
  },
});
