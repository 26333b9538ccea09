#!/usr/bin/env node
import { main } from "../dist/index.js";

process.exitCode = await main(["model_transform", ...process.argv.slice(2)], { prog: "model_transform" });
