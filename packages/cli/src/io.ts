/** Where the CLI writes. Tests pass buffers; the binary passes the process streams. */
export interface CliIO {
  out(s: string): void;
  err(s: string): void;
}

export const processIO: CliIO = {
  out: (s) => process.stdout.write(s),
  err: (s) => process.stderr.write(s),
};

export function bufferIO(): CliIO & { stdout: string; stderr: string } {
  const io = {
    stdout: "",
    stderr: "",
    out(s: string) { io.stdout += s; },
    err(s: string) { io.stderr += s; },
  };
  return io;
}
