/** For the CLI tests: run `q ARGS…` in-process and capture its exit code and output. */
import { bufferIO } from "./io.js";
import { main } from "./main.js";

export async function q(...args: string[]): Promise<{ code: number; out: string; err: string }> {
  const io = bufferIO();
  const code = await main(args, { io });
  return { code, out: io.stdout, err: io.stderr };
}
