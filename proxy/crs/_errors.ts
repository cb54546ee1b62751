/** The one error class of the CRS engine. */
export class CrsError extends Error {
  /** What went wrong: a SecLang syntax error, an unknown directive/operator/variable/action/
   * transformation, a bad regular expression, an unreadable file, or a bad test file. */
  readonly code:
    | "PARSE"
    | "UNKNOWN_DIRECTIVE"
    | "UNKNOWN_OPERATOR"
    | "UNKNOWN_VARIABLE"
    | "UNKNOWN_ACTION"
    | "UNKNOWN_TRANSFORMATION"
    | "BAD_REGEX"
    | "BAD_RULE"
    | "READ"
    | "BAD_TEST";
  /** Creates an error; `message` names the file:line and how to fix the input. */
  constructor(code: CrsError["code"], message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "CrsError";
    this.code = code;
  }
}
