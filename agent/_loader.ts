/**
 * Imports a verified bundle's entry from memory.
 *
 * Each module the entry reaches becomes a `blob:` URL holding its verified text, made
 * dependencies first, with every relative import specifier rewritten to the URL of the module it
 * names. Nothing is written to or read from disk, so the code that runs is exactly the code
 * that was checked.
 *
 * Limits (docs/release.md): modules are `.ts`, `.mts`, `.js`, `.mjs` or `.json`; a module may
 * import only files of the bundle (specifiers starting `./` or `../`, as plain string literals)
 * and `node:` built-ins; `import()` must be given a string literal to reach a bundle file;
 * imports may not form a cycle; `import.meta.url` is a `blob:` URL.
 *
 * @module
 */
import { pathProblem } from "./_archive.ts";
import { AgentError } from "./error.ts";

/** A module specifier found in source text. */
export interface ImportSite {
  /** Index of the opening quote. */
  start: number;
  /** Index just past the closing quote. */
  end: number;
  /** The specifier as written between the quotes. */
  specifier: string;
  /** Whether the literal holds an escape sequence (refused: its value is ambiguous to us). */
  escaped: boolean;
}

type Token = { kind: "word" | "punct" | "other"; value: string };

const BEFORE_EXPRESSION = new Set([
  "return",
  "typeof",
  "instanceof",
  "in",
  "of",
  "new",
  "delete",
  "void",
  "throw",
  "case",
  "do",
  "else",
  "yield",
  "await",
]);

function isImportContext(t: Token[]): boolean {
  const [a, b, c] = [t.at(-1), t.at(-2), t.at(-3)];
  const notMember = (x: Token | undefined) => !(x?.kind === "punct" && x.value === ".");
  if (a?.kind === "word" && a.value === "from") return notMember(b);
  if (a?.kind === "word" && a.value === "import") return notMember(b);
  return a?.kind === "punct" && a.value === "(" && b?.kind === "word" && b.value === "import" &&
    notMember(c);
}

/**
 * Finds the string-literal specifiers of `import … from`, `export … from`, `import "…"` and
 * `import("…")` in JavaScript or TypeScript source, skipping comments, strings, template
 * literals and regular expressions.
 *
 * @param source the module's text
 * @returns the specifiers, in source order
 */
export function findImports(source: string): ImportSite[] {
  const sites: ImportSite[] = [];
  const tokens: Token[] = [];
  const push = (kind: Token["kind"], value: string) => {
    tokens.push({ kind, value });
    if (tokens.length > 3) tokens.shift();
  };
  // One entry per open `${`: the number of `{` opened inside it and not yet closed.
  const templates: number[] = [];
  const n = source.length;
  let i = 0;
  const scanTemplate = () => { // from just inside a template literal or after its `}`
    while (i < n) {
      const ch = source[i];
      if (ch === "\\") i += 2;
      else if (ch === "`") {
        i++;
        push("other", "`");
        return;
      } else if (ch === "$" && source[i + 1] === "{") {
        i += 2;
        templates.push(0);
        push("punct", "{");
        return;
      } else i++;
    }
  };
  while (i < n) {
    const c = source[i];
    if (c === " " || c === "\t" || c === "\n" || c === "\r" || c === "\uFEFF") {
      i++;
    } else if (c === "/" && source[i + 1] === "/") {
      const eol = source.indexOf("\n", i);
      i = eol === -1 ? n : eol;
    } else if (c === "/" && source[i + 1] === "*") {
      const close = source.indexOf("*/", i + 2);
      i = close === -1 ? n : close + 2;
    } else if (c === "'" || c === '"') {
      const start = i++;
      let escaped = false;
      while (i < n && source[i] !== c && source[i] !== "\n") {
        if (source[i] === "\\") {
          escaped = true;
          i++;
        }
        i++;
      }
      i = Math.min(i, n); // a trailing backslash steps past the end
      const closed = source[i] === c;
      if (closed) i++;
      if (isImportContext(tokens)) {
        const specifier = source.slice(start + 1, closed ? i - 1 : i);
        sites.push({ start, end: i, specifier, escaped: escaped || !closed });
      }
      push("other", "string");
    } else if (c === "`") {
      i++;
      scanTemplate();
    } else if (c === "}" && templates.length > 0 && templates.at(-1) === 0) {
      templates.pop();
      i++;
      scanTemplate();
    } else if (c === "/") {
      const prev = tokens.at(-1);
      const regexAllowed = prev === undefined ||
        (prev.kind === "punct" && prev.value !== ")" && prev.value !== "]") ||
        (prev.kind === "word" && BEFORE_EXPRESSION.has(prev.value));
      i++;
      if (regexAllowed) {
        let inClass = false;
        while (i < n && source[i] !== "\n") {
          const ch = source[i++];
          if (ch === "\\") i++;
          else if (ch === "[") inClass = true;
          else if (ch === "]") inClass = false;
          else if (ch === "/" && !inClass) break;
        }
        while (i < n && /[a-z]/.test(source[i])) i++;
        push("other", "regex");
      } else {
        push("punct", "/");
      }
    } else if (/[A-Za-z_$\u0080-\uffff]/.test(c)) {
      const start = i++;
      while (i < n && /[\w$\u0080-\uffff]/.test(source[i])) i++;
      push("word", source.slice(start, i));
    } else if (/[0-9]/.test(c)) {
      while (i < n && /[\w.]/.test(source[i])) i++;
      push("other", "number");
    } else {
      if (templates.length > 0) {
        if (c === "{") templates[templates.length - 1]++;
        else if (c === "}") templates[templates.length - 1]--;
      }
      i++;
      push("punct", c);
    }
  }
  return sites;
}

const MEDIA_TYPES: Record<string, string> = {
  ".ts": "application/typescript",
  ".mts": "application/typescript",
  ".js": "text/javascript",
  ".mjs": "text/javascript",
  ".json": "application/json",
};

function mediaTypeOf(path: string): string | undefined {
  const dot = path.lastIndexOf(".");
  return dot > path.lastIndexOf("/") ? MEDIA_TYPES[path.slice(dot)] : undefined;
}

/** One module of a load plan. */
export interface PlannedModule {
  /** Path in the bundle. */
  path: string;
  /** Media type of its blob. */
  mediaType: string;
  /** Its verified text. */
  source: string;
  /** Relative imports to rewrite: where, and which bundle path each names. */
  rewrites: { start: number; end: number; target: string }[];
}

/** The modules to import, dependencies before the modules that import them; entry last. */
export interface LoadPlan {
  /** Modules in import order. */
  modules: PlannedModule[];
}

const decoder = new TextDecoder("utf-8", { fatal: true });

function resolveSpecifier(from: string, specifier: string): string | null {
  if (/[?#]/.test(specifier)) return null;
  const segments = from.split("/").slice(0, -1);
  for (const part of specifier.split("/")) {
    if (part === ".") continue;
    if (part === "..") {
      if (segments.length === 0) return null;
      segments.pop();
    } else segments.push(part);
  }
  const path = segments.join("/");
  return pathProblem(path) === null ? path : null;
}

/**
 * Works out which bundle files the entry imports, and in what order, without running anything.
 *
 * @param files the verified files by path
 * @param entry the entry's path
 * @returns the plan
 * @throws {AgentError} `LOAD_FAILED` naming the module and specifier that cannot be loaded
 */
export function planModules(files: ReadonlyMap<string, Uint8Array>, entry: string): LoadPlan {
  const fail = (problem: string): never => {
    throw new AgentError("LOAD_FAILED", `Cannot load the bundle's entry: ${problem}`);
  };
  const modules: PlannedModule[] = [];
  const state = new Map<string, "visiting" | "done">();
  const visit = (path: string, chain: string[]): void => {
    if (state.get(path) === "done") return;
    if (state.get(path) === "visiting") {
      fail(`import cycle ${[...chain.slice(chain.indexOf(path)), path].join(" → ")}`);
    }
    const bytes = files.get(path);
    if (bytes === undefined) return fail(`${chain.at(-1)} imports "${path}", not in the bundle`);
    const mediaType = mediaTypeOf(path);
    if (mediaType === undefined) {
      return fail(`"${path}" is not a module (.ts, .mts, .js, .mjs or .json)`);
    }
    let source = "";
    try {
      source = decoder.decode(bytes);
    } catch {
      fail(`"${path}" is not UTF-8 text`);
    }
    state.set(path, "visiting");
    const rewrites: PlannedModule["rewrites"] = [];
    if (mediaType !== "application/json") {
      for (const site of findImports(source)) {
        const where = `${path} imports "${site.specifier}"`;
        if (site.escaped) fail(`${where}: escape sequences in specifiers are not supported`);
        if (site.specifier.startsWith("node:")) continue;
        if (!site.specifier.startsWith("./") && !site.specifier.startsWith("../")) {
          fail(`${where}: a bundle may import only its own files ("./…") and node: built-ins`);
        }
        const target = resolveSpecifier(path, site.specifier);
        if (target === null) fail(`${where}: the path leaves the bundle or is not acceptable`);
        visit(target!, [...chain, path]);
        rewrites.push({ start: site.start, end: site.end, target: target! });
      }
    }
    state.set(path, "done");
    modules.push({ path, mediaType, source, rewrites });
  };
  if (mediaTypeOf(entry) === "application/json") fail(`the entry "${entry}" is JSON`);
  visit(entry, []);
  return { modules };
}

/**
 * Imports the entry of a plan from in-memory `blob:` URLs.
 *
 * @param plan from {@link planModules}
 * @returns the entry's module namespace
 * @throws {AgentError} `LOAD_FAILED` when a module does not compile or its top level throws
 */
export async function importPlan(plan: LoadPlan): Promise<Record<string, unknown>> {
  const urls = new Map<string, string>();
  for (const m of plan.modules) {
    let text = m.source;
    for (const r of [...m.rewrites].sort((a, b) => b.start - a.start)) {
      text = text.slice(0, r.start) + JSON.stringify(urls.get(r.target)) + text.slice(r.end);
    }
    urls.set(m.path, URL.createObjectURL(new Blob([text], { type: m.mediaType })));
  }
  const entry = plan.modules.at(-1)!;
  try {
    return await import(urls.get(entry.path)!);
  } catch (cause) {
    throw new AgentError(
      "LOAD_FAILED",
      `Cannot load the bundle's entry ${entry.path}: ${
        cause instanceof Error ? cause.message : String(cause)
      }`,
      { cause },
    );
  }
}
