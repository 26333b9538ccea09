import { QError } from "@q/ir";

/**
 * A pickle that asks for something outside the allow-list (a global such as `os.system`, an opcode
 * that builds arbitrary objects). Nothing from the pickle has been run when this is thrown.
 */
export class UnsafePickleError extends QError {
  constructor(
    message: string,
    file?: string,
    /** The refused global as `module.name`, when a global was the reason. */
    readonly global?: string,
  ) {
    super("E_UNSAFE_PICKLE", message, file);
  }
}
