/**
 * OWASP Core Rule Set engine: a ModSecurity rule-language (SecLang) implementation that loads
 * CRS v4 as released and plugs into the proxy's rule-engine interface, plus a go-ftw
 * regression-test runner.
 *
 * @module
 */
export { CrsError } from "./_errors.ts";
export {
  type CrsEngine,
  type CrsFileAccess,
  type CrsVerdict,
  loadCrs,
  type LoadCrsOptions,
} from "./crs.ts";
export { type Directive, parseSecLang } from "./parser.ts";
export { detectSqli } from "./libinjection_sqli.ts";
export { detectXss } from "./libinjection_xss.ts";
