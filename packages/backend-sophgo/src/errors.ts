import { ModelFormatError } from "@q/ir";

/**
 * A bad line in a text table. The message reads `<file>:<line>: <what>` (or `line <n>: <what>`
 * when the text did not come from a file), like a compiler diagnostic.
 */
export class TableLineError extends ModelFormatError {
  constructor(
    message: string,
    readonly path: string | undefined,
    readonly line: number,
  ) {
    super(message, path !== undefined ? `${path}:${line}` : `line ${line}`);
  }
}

/** Quote a line for an error message, shortened when long. */
export function quoteLine(s: string): string {
  const t = s.length > 120 ? `${s.slice(0, 117)}...` : s;
  return `'${t}'`;
}
