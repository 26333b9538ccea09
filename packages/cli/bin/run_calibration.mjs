#!/usr/bin/env node
import { main } from "../dist/index.js";

process.exitCode = await main(["run_calibration", ...process.argv.slice(2)], { prog: "run_calibration" });
