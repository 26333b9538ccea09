/**
 * Errors a user can cause. Each carries a stable `code`, names the file / op / line it is about
 * and says what to do. The CLI prints `error: <message>` without a stack and exits with `exitCode`.
 */
export class QError extends Error {
  readonly exitCode: number = 2;
  constructor(
    readonly code: string,
    message: string,
    readonly file?: string,
  ) {
    super(file ? `${file}: ${message}` : message);
    this.name = new.target.name;
  }
}

/** A model or data file that cannot be parsed: truncated, corrupt, wrong format. */
export class ModelFormatError extends QError {
  constructor(message: string, file?: string) {
    super("E_FORMAT", message, file);
  }
}

/** An operator that q (or one of its executors) does not know. */
export class UnknownOpError extends QError {
  constructor(
    readonly opType: string,
    readonly domain: string,
    readonly nodeName: string,
    detail: string,
    file?: string,
  ) {
    super("E_UNKNOWN_OP", `node '${nodeName}' uses op ${domain ? domain + "." : ""}${opType}: ${detail}`, file);
  }
}

/** A file that does not exist or cannot be read. */
export class MissingFileError extends QError {
  constructor(file: string, what: string) {
    super("E_MISSING_FILE", `${what} not found (check the path)`, file);
  }
}

/** Data that does not fit the model: wrong input names, shapes or dtypes. */
export class InputMismatchError extends QError {
  constructor(message: string, file?: string) {
    super("E_INPUT_MISMATCH", message, file);
  }
}

/** A graph that is not valid: a value with no producer, a cycle, a bad attribute. */
export class GraphError extends QError {
  constructor(message: string, file?: string) {
    super("E_GRAPH", message, file);
  }
}

/** A bad command-line flag or option value. */
export class UsageError extends QError {
  constructor(message: string) {
    super("E_USAGE", message);
  }
}

/** True for errors that should be shown to the user without a stack trace. */
export function isQError(e: unknown): e is QError {
  return e instanceof QError;
}
