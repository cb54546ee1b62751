/**
 * SQL-injection detection for `@detectSQLi`, following libinjection's algorithm: a SQL
 * tokenizer run in up to five quoting/dialect contexts (as-is, after a single quote, after a
 * double quote; ANSI and MySQL comment rules), token folding down to at most five tokens, and a
 * decision on the resulting fingerprint (e.g. `s&sos` for `' or 'a'='a`).
 *
 * Differences from libinjection, stated so users can judge them (see docs/crs.md):
 * - the keyword table (word → token type) is written for this project from SQL dialect
 *   references, not copied from libinjection;
 * - libinjection decides with a list of ~9,000 known-bad fingerprints. That list is not
 *   available here; instead a fingerprint is judged by a small documented grammar of SQL-injection
 *   shapes (`FINGERPRINT_RULES` below), followed by libinjection's own false-positive filter.
 *
 * @module
 */

type T = string; // one-char token type, libinjection's letters

interface Token {
  type: T;
  val: string;
  strOpen: string;
  strClose: string;
}

const MAX_TOKENS = 5;
const TOKEN_SIZE = 32;
const FLAG_QUOTE_NONE = 1;
const FLAG_QUOTE_SINGLE = 2;
const FLAG_QUOTE_DOUBLE = 4;
const FLAG_SQL_ANSI = 8;
const FLAG_SQL_MYSQL = 16;

// Token types (libinjection letters).
const KEYWORD = "k";
const UNION = "U";
const GROUP = "B";
const EXPRESSION = "E";
const SQLTYPE = "t";
const FUNCTION = "f";
const BAREWORD = "n";
const NUMBER = "1";
const VARIABLE = "v";
const STRING = "s";
const OPERATOR = "o";
const LOGIC = "&";
const COMMENT = "c";
const COLLATE = "A";
const LPAREN = "(";
const RPAREN = ")";
const LBRACE = "{";
const RBRACE = "}";
const DOT = ".";
const COMMA = ",";
const COLON = ":";
const SEMICOLON = ";";
const TSQL = "T";
const UNKNOWN = "?";
const EVIL = "X";
const BACKSLASH = "\\";

function words(type: T, list: string): [string, T][] {
  return list.trim().split(/\s*,\s*/).map((w) => [w, type]);
}

/** Keyword table written for this engine: upper-case word (or two-word phrase) → token type. */
const KEYWORDS = new Map<string, T>([
  ...words(
    EXPRESSION,
    "SELECT,INSERT,UPDATE,DELETE,REPLACE,CREATE,DROP,ALTER,TRUNCATE,RENAME,HANDLER,LOAD,CALL," +
      "SHOW,DESCRIBE,EXPLAIN,GRANT,REVOKE,MERGE,UPSERT,SET,INSERT INTO,DELETE FROM," +
      "SELECT ALL,SELECT DISTINCT,SELECT TOP,LOAD DATA,CREATE TABLE,DROP TABLE,ALTER TABLE",
  ),
  ...words(
    TSQL,
    "DECLARE,EXEC,EXECUTE,WAITFOR,GOTO,PRINT,RAISERROR,SHUTDOWN,BULK,OPENXML,WAITFOR DELAY," +
      "WAITFOR TIME,EXEC MASTER,EXECUTE IMMEDIATE,BEGIN TRANSACTION,BEGIN TRY",
  ),
  ...words(
    UNION,
    "UNION,UNION ALL,UNION DISTINCT,EXCEPT,INTERSECT,MINUS",
  ),
  ...words(
    GROUP,
    "GROUP BY,ORDER BY,HAVING,LIMIT,OFFSET,PROCEDURE ANALYSE,FETCH FIRST,FOR UPDATE,WITH ROLLUP",
  ),
  ...words(
    KEYWORD,
    "FROM,WHERE,INTO,AS,ON,JOIN,TABLE,VALUES,CASE,WHEN,THEN,ELSE,END,DISTINCT,TOP,OUTFILE," +
      "DUMPFILE,INTO OUTFILE,INTO DUMPFILE,IN,NOT IN,USING,NATURAL,CROSS,INNER,OUTER,FULL," +
      "LEFT JOIN,RIGHT JOIN,INNER JOIN,OUTER JOIN,CROSS JOIN,FULL JOIN,NATURAL JOIN,STRAIGHT_JOIN," +
      "INFORMATION_SCHEMA,EXISTS,NOT EXISTS,DATABASE,SCHEMA,PROCEDURE,TRIGGER,INDEX,VIEW," +
      "COLUMN,COLUMNS,TABLES,SHOW TABLES,ASC,DESC,ANY,SOME,BEGIN,COMMIT,ROLLBACK,RETURN," +
      "ELSEIF,WHILE,LOOP,REPEAT,DEFAULT,ADD,CONSTRAINT,PRIMARY,FOREIGN,KEY,REFERENCES," +
      "CASCADE,GLOBAL,SESSION,LOCAL,FOR,WITH,LOCK,UNLOCK,TABLESPACE,ROWNUM,DUAL,SYSOBJECTS," +
      "SYSCOLUMNS,MASTER,XTYPE,LOW_PRIORITY,HIGH_PRIORITY,DELAYED,IGNORE,OR REPLACE",
  ),
  ...words(
    LOGIC,
    "AND,OR,XOR,&&,||,AND NOT,OR NOT,XOR NOT,NAND,NOR",
  ),
  ...words(
    OPERATOR,
    "NOT,LIKE,NOT LIKE,RLIKE,NOT RLIKE,REGEXP,NOT REGEXP,SOUNDS LIKE,IS,IS NOT,BETWEEN," +
      "NOT BETWEEN,DIV,MOD,ESCAPE,GLOB,MATCH,AGAINST,ILIKE,SIMILAR TO,NOT SIMILAR TO," +
      "!=,<>,<=,>=,<<,>>,:=,==,!<,!>,*=,/=,%=,+=,-=,&=,^=,|=,~*,!~,!~*,->,->>,::,!!,<=>",
  ),
  ...words(COLLATE, "COLLATE"),
  ...words(
    SQLTYPE,
    "INT,INTEGER,BIGINT,SMALLINT,TINYINT,MEDIUMINT,VARCHAR,NVARCHAR,NCHAR,VARBINARY,SIGNED," +
      "UNSIGNED,DECIMAL,NUMERIC,FLOAT,DOUBLE,DOUBLE PRECISION,BOOLEAN,BOOL,BLOB,LONGBLOB," +
      "LONGTEXT,MEDIUMTEXT,TINYTEXT,DATETIME,TIMESTAMP,SIGNED INTEGER,UNSIGNED INTEGER," +
      "CHARACTER VARYING,BINARY",
  ),
  ...words(
    NUMBER,
    "NULL,TRUE,FALSE,UNKNOWN",
  ),
  ...words(
    VARIABLE,
    "CURRENT_USER,SESSION_USER,SYSTEM_USER,CURRENT_DATE,CURRENT_TIME,CURRENT_TIMESTAMP," +
      "LOCALTIME,LOCALTIMESTAMP,UTC_DATE,UTC_TIME,UTC_TIMESTAMP",
  ),
  ...words(
    FUNCTION,
    "ABS,ACOS,ADDDATE,AES_DECRYPT,AES_ENCRYPT,ASCII,ASIN,ATAN,ATAN2,AVG,BENCHMARK,BIN," +
      "BIT_LENGTH,CAST,CEIL,CEILING,CHAR,CHR,CHAR_LENGTH,CHARACTER_LENGTH,CHARINDEX,COALESCE," +
      "COMPRESS,CONCAT,CONCAT_WS,CONNECTION_ID,CONV,CONVERT,COS,COT,COUNT,CRC32,CURDATE," +
      "CURTIME,DATE_ADD,DATE_FORMAT,DATE_SUB,DATEDIFF,DAY,DAYNAME,DB_NAME,DBMS_PIPE.RECEIVE_MESSAGE," +
      "DBMS_LOCK.SLEEP,DECODE,DEGREES,DES_DECRYPT,DES_ENCRYPT,ELT,ENCODE,ENCRYPT,EXP,EXPORT_SET," +
      "EXTRACT,EXTRACTVALUE,FIELD,FIND_IN_SET,FLOOR,FORMAT,FOUND_ROWS,FROM_BASE64,FROM_UNIXTIME," +
      "GET_LOCK,GREATEST,GROUP_CONCAT,GTID_SUBSET,HEX,HOST_NAME,IF,IFNULL,IIF,INET_ATON," +
      "INET_NTOA,INSTR,IS_SRVROLEMEMBER,ISNULL,JSON_EXTRACT,JSON_KEYS,LAST_INSERT_ID,LCASE," +
      "LEAST,LEFT,LENGTH,LN,LOAD_FILE,LOCATE,LOG,LOG10,LOG2,LOWER,LPAD,LTRIM,MAKE_SET,MAX,MD5," +
      "MID,MIN,NAME_CONST,NOW,NULLIF,OBJECT_ID,OCT,OPENDATASOURCE,OPENQUERY,OPENROWSET,ORD," +
      "PASSWORD,PG_SLEEP,PG_READ_FILE,PI,POSITION,POW,POWER,QUOTE,QUOTENAME,RAND,RANDOMBLOB," +
      "REPEAT,REVERSE,RIGHT,ROUND,ROW_COUNT,RPAD,RTRIM,SCHEMA_NAME,SHA,SHA1,SHA2,SIGN,SIN," +
      "SLEEP,SOUNDEX,SPACE,SQRT,STRCMP,SUBSTR,SUBSTRING,SUBSTRING_INDEX,SUM,SUSER_NAME," +
      "SYSDATE,TO_CHAR,TO_NUMBER,TRIM,UCASE,UNCOMPRESS,UNHEX,UPDATEXML,UPPER,USER,USER_ID," +
      "USER_NAME,UTL_HTTP.REQUEST,UTL_INADDR.GET_HOST_ADDRESS,UUID,VERSION,XP_CMDSHELL," +
      "SP_EXECUTESQL,SP_PASSWORD,SQLITE_VERSION,LIKELY,UNLIKELY,TYPEOF,ZEROBLOB,LOAD_EXTENSION," +
      "HAS_DBACCESS,CURRENT_SETTING,QUERY_TO_XML,DATABASE_TO_XML,ARRAY_AGG,STRING_AGG," +
      "XMLTYPE,CTXSYS.DRITHSX.SN,MASTER_POS_WAIT,ST_LATFROMGEOHASH,POLYGON,MULTIPOINT," +
      "GEOMETRYCOLLECTION,LINESTRING,EXP,JSON_OBJECT,JSON_ARRAY,ROW",
  ),
]);

function lookupWord(w: string): T | undefined {
  return KEYWORDS.get(w.toUpperCase());
}

const WHITE = " \t\n\v\f\r\xa0\0";
function isWhite(c: string | undefined): boolean {
  return c !== undefined && WHITE.includes(c);
}

/** A copy of a token (its four fields). */
function copyTok(t: Token): Token {
  return { type: t.type, val: t.val, strOpen: t.strOpen, strClose: t.strClose };
}

function tok(type: T, val: string): Token {
  return {
    type,
    val: val.length > TOKEN_SIZE ? val.slice(0, TOKEN_SIZE - 1) : val,
    strOpen: "",
    strClose: "",
  };
}

class State {
  pos = 0;
  current: Token = tok("", "");
  statsCommentDdx = 0;
  statsCommentHash = 0;
  statsFolds = 0;
  statsTokens = 0;
  tokens: Token[] = [];
  constructor(readonly s: string, readonly flags: number) {}
}

function parseStringCore(
  st: State,
  pos: number,
  delim: string,
  offset: number,
): Token & { next: number } {
  const s = st.s;
  let q = s.indexOf(delim, pos + offset);
  const open = offset > 0 ? delim : "";
  for (;;) {
    if (q < 0) {
      const t = tok(STRING, s.slice(pos + offset));
      t.strOpen = open;
      return { ...t, next: s.length };
    }
    // backslash-escaped?
    let bs = 0;
    for (let k = q - 1; k >= pos + offset && s[k] === "\\"; k--) bs++;
    if (bs % 2 === 1) {
      q = s.indexOf(delim, q + 1);
      continue;
    }
    if (q + 1 < s.length && s[q + 1] === delim) {
      q = s.indexOf(delim, q + 2);
      continue;
    }
    const t = tok(STRING, s.slice(pos + offset, q));
    t.strOpen = open;
    t.strClose = delim;
    return { ...t, next: q + 1 };
  }
}

function spanOf(s: string, from: number, chars: string): number {
  let n = 0;
  while (from + n < s.length && chars.includes(s[from + n])) n++;
  return n;
}

const WORD_END = " []{}<>:\\?=@!#~+-*/&|^%(),';\t\n\v\f\r\"\xa0\0";

function parseWord(st: State, pos: number): [Token, number] {
  const s = st.s;
  let wlen = 0;
  while (pos + wlen < s.length && !WORD_END.includes(s[pos + wlen])) wlen++;
  const val = s.slice(pos, pos + wlen);
  for (let i = 0; i < val.length; i++) {
    if (val[i] === "." || val[i] === "`") {
      const ch = lookupWord(val.slice(0, i));
      if (ch !== undefined && ch !== BAREWORD) return [tok(ch, val.slice(0, i)), pos + i];
    }
  }
  const ch = wlen < TOKEN_SIZE ? lookupWord(val) : undefined;
  return [tok(ch ?? BAREWORD, val), pos + wlen];
}

function parseNumber(st: State, pos: number): [Token, number] {
  const s = st.s;
  if (s[pos] === "0" && pos + 1 < s.length) {
    const n = s[pos + 1];
    const digits = n === "x" || n === "X"
      ? "0123456789ABCDEFabcdef"
      : n === "b" || n === "B"
      ? "01"
      : "";
    if (digits) {
      const x = spanOf(s, pos + 2, digits);
      if (x === 0) return [tok(BAREWORD, s.slice(pos, pos + 2)), pos + 2];
      return [tok(NUMBER, s.slice(pos, pos + 2 + x)), pos + 2 + x];
    }
  }
  const start = pos;
  while (pos < s.length && s[pos] >= "0" && s[pos] <= "9") pos++;
  if (pos < s.length && s[pos] === ".") {
    pos++;
    while (pos < s.length && s[pos] >= "0" && s[pos] <= "9") pos++;
    if (pos - start === 1) return [tok(DOT, "."), pos];
  }
  if (pos < s.length && (s[pos] === "e" || s[pos] === "E")) {
    pos++;
    if (pos < s.length && (s[pos] === "+" || s[pos] === "-")) pos++;
    while (pos < s.length && s[pos] >= "0" && s[pos] <= "9") pos++;
  }
  if (pos < s.length && "dDfF".includes(s[pos])) {
    if (
      pos + 1 === s.length || isWhite(s[pos + 1]) || s[pos + 1] === ";" || s[pos + 1] === "u" ||
      s[pos + 1] === "U"
    ) pos++;
  }
  return [tok(NUMBER, s.slice(start, pos)), pos];
}

/** Reads the next token; returns false at the end of input. */
function nextToken(st: State): boolean {
  const s = st.s;
  if (st.pos === 0 && (st.flags & (FLAG_QUOTE_SINGLE | FLAG_QUOTE_DOUBLE))) {
    const r = parseStringCore(st, 0, st.flags & FLAG_QUOTE_SINGLE ? "'" : '"', 0);
    st.current = r;
    st.pos = r.next;
    st.statsTokens++;
    return true;
  }
  while (st.pos < s.length) {
    const pos = st.pos;
    const c = s[pos];
    const code = c.charCodeAt(0);
    let t: Token | undefined;
    let next = pos + 1;
    if (code <= 32 || code === 0xa0) {
      st.pos = next;
      continue;
    }
    switch (c) {
      case "!":
      case "&":
      case "*":
      case ":":
      case "<":
      case "=":
      case ">":
      case "|": {
        if (pos + 2 < s.length && s.slice(pos, pos + 3) === "<=>") {
          t = tok(OPERATOR, "<=>");
          next = pos + 3;
        } else if (pos + 1 < s.length && KEYWORDS.has(s.slice(pos, pos + 2))) {
          t = tok(KEYWORDS.get(s.slice(pos, pos + 2))!, s.slice(pos, pos + 2));
          next = pos + 2;
        } else if (c === ":") t = tok(COLON, ":");
        else t = tok(OPERATOR, c);
        break;
      }
      case '"':
      case "'": {
        const r = parseStringCore(st, pos, c, 1);
        t = r;
        next = r.next;
        break;
      }
      case "#":
        st.statsCommentHash++;
        if (st.flags & FLAG_SQL_MYSQL) {
          const nl = s.indexOf("\n", pos);
          const end = nl < 0 ? s.length : nl;
          t = tok(COMMENT, s.slice(pos, end));
          next = end;
        } else t = tok(OPERATOR, "#");
        break;
      case "$": {
        if (pos + 1 === s.length) {
          t = tok(BAREWORD, "$");
          next = s.length;
          break;
        }
        const x = spanOf(s, pos + 1, "0123456789.,");
        if (x === 0) {
          if (s[pos + 1] === "$") {
            const end = s.indexOf("$$", pos + 2);
            t = tok(STRING, s.slice(pos + 2, end < 0 ? s.length : end));
            t.strOpen = "$";
            t.strClose = end < 0 ? "" : "$";
            next = end < 0 ? s.length : end + 2;
          } else {
            t = tok(BAREWORD, "$");
          }
        } else if (x === 1 && s[pos + 1] === ".") {
          [t, next] = parseWord(st, pos);
        } else {
          t = tok(NUMBER, s.slice(pos, pos + 1 + x));
          next = pos + 1 + x;
        }
        break;
      }
      case "%":
      case "+":
      case "^":
      case "~":
        t = tok(OPERATOR, c);
        break;
      case "(":
      case ")":
      case ",":
      case ";":
      case "{":
      case "}":
        t = tok(c, c);
        break;
      case "-":
        if (
          (pos + 2 < s.length && s[pos + 1] === "-" && isWhite(s[pos + 2])) ||
          (pos + 2 === s.length && s[pos + 1] === "-")
        ) {
          const nl = s.indexOf("\n", pos);
          const end = nl < 0 ? s.length : nl;
          t = tok(COMMENT, s.slice(pos, end));
          next = end;
        } else if (pos + 1 < s.length && s[pos + 1] === "-" && (st.flags & FLAG_SQL_ANSI)) {
          st.statsCommentDdx++;
          const nl = s.indexOf("\n", pos);
          const end = nl < 0 ? s.length : nl;
          t = tok(COMMENT, s.slice(pos, end));
          next = end;
        } else t = tok(OPERATOR, "-");
        break;
      case "/": {
        if (pos + 1 === s.length || s[pos + 1] !== "*") {
          t = tok(OPERATOR, "/");
          break;
        }
        const end = s.indexOf("*/", pos + 2);
        const clen = end < 0 ? s.length - pos : end + 2 - pos;
        let type = COMMENT;
        const inner = end < 0 ? "" : s.slice(pos + 2, end);
        if (end >= 0 && inner.includes("/*")) type = EVIL;
        else if (s[pos + 2] === "!") type = EVIL; // MySQL executable comment
        t = tok(type, s.slice(pos, pos + clen));
        next = pos + clen;
        break;
      }
      case "\\":
        if (s[pos + 1] === "N") {
          t = tok(NUMBER, "\\N");
          next = pos + 2;
        } else t = tok(BACKSLASH, "\\");
        break;
      case "@": {
        let p1 = pos + 1;
        if (s[p1] === "@") p1++;
        if (p1 < s.length && (s[p1] === "'" || s[p1] === '"' || s[p1] === "`")) {
          const r = parseStringCore(st, p1, s[p1], 1);
          t = { ...r, type: VARIABLE };
          next = r.next;
          break;
        }
        const x = spanOf(
          s,
          p1,
          "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ._$",
        );
        t = tok(VARIABLE, s.slice(pos, p1 + x));
        next = p1 + x;
        break;
      }
      case "[": {
        const end = s.indexOf("]", pos);
        const e = end < 0 ? s.length : end + 1;
        t = tok(BAREWORD, s.slice(pos, e));
        next = e;
        break;
      }
      case "`": {
        const r = parseStringCore(st, pos, "`", 1);
        t = { ...r, type: lookupWord(r.val) === FUNCTION ? FUNCTION : BAREWORD };
        next = r.next;
        break;
      }
      case "?":
      case "]":
        t = tok(UNKNOWN, c);
        break;
      case ".":
      case "0":
      case "1":
      case "2":
      case "3":
      case "4":
      case "5":
      case "6":
      case "7":
      case "8":
      case "9":
        [t, next] = parseNumber(st, pos);
        break;
      default: {
        const lc = c.toLowerCase();
        if ((lc === "x" || lc === "b") && s[pos + 1] === "'") {
          const digits = lc === "x" ? "0123456789ABCDEFabcdef" : "01";
          const x = spanOf(s, pos + 2, digits);
          if (s[pos + 2 + x] === "'") {
            t = tok(NUMBER, s.slice(pos, pos + 3 + x));
            next = pos + 3 + x;
            break;
          }
        }
        if ((lc === "e" || lc === "n") && s[pos + 1] === "'") {
          const r = parseStringCore(st, pos, "'", 2);
          t = r;
          next = r.next;
          break;
        }
        if (lc === "q" && s[pos + 1] === "'" && pos + 2 < s.length) {
          const open = s[pos + 2];
          const close =
            ({ "(": ")", "[": "]", "{": "}", "<": ">" } as Record<string, string>)[open] ?? open;
          const end = s.indexOf(close + "'", pos + 3);
          t = tok(STRING, s.slice(pos + 3, end < 0 ? s.length : end));
          t.strOpen = "'";
          t.strClose = end < 0 ? "" : "'";
          next = end < 0 ? s.length : end + 2;
          break;
        }
        [t, next] = parseWord(st, pos);
      }
    }
    st.pos = next;
    if (t && t.type !== "") {
      st.current = t;
      st.statsTokens++;
      return true;
    }
  }
  return false;
}

function isUnaryOp(t: Token): boolean {
  if (t.type !== OPERATOR) return false;
  const v = t.val.toUpperCase();
  return v === "+" || v === "-" || v === "!" || v === "!!" || v === "NOT" || v === "~";
}
function isArithmeticOp(t: Token): boolean {
  return t.type === OPERATOR && t.val.length === 1 && "*/-+%".includes(t.val);
}

function mergeWords(a: Token, b: Token): boolean {
  const okA = "knoUfETt".includes(a.type) && a.type !== "";
  const okB = "knoUfETt&".includes(b.type) && b.type !== "";
  if (!okA || !okB) return false;
  const merged = `${a.val} ${b.val}`;
  if (merged.length >= TOKEN_SIZE) return false;
  const ch = lookupWord(merged);
  if (ch === undefined) return false;
  a.type = ch;
  a.val = merged;
  return true;
}

const FUNC_LIKE = new Set([
  "USER_ID",
  "USER_NAME",
  "DATABASE",
  "PASSWORD",
  "USER",
  "CURRENT_USER",
  "CURRENT_DATE",
  "CURRENT_TIME",
  "CURRENT_TIMESTAMP",
  "LOCALTIME",
  "LOCALTIMESTAMP",
]);

/** libinjection's folding: returns the number of tokens kept in `st.tokens`. */
function fold(st: State): number {
  const v = st.tokens;
  let lastComment: Token | undefined;
  let pos = 0;
  let left = 0;
  let more = true;
  const take = (): boolean => {
    const ok = nextToken(st);
    if (ok) v[pos] = copyTok(st.current);
    return ok;
  };
  // Skip leading comments, left parens, SQL types and unary operators.
  for (;;) {
    more = take();
    if (!more) break;
    const t = v[0];
    if (!(t.type === COMMENT || t.type === LPAREN || t.type === SQLTYPE || isUnaryOp(t))) break;
  }
  if (!more) return 0;
  pos = 1;
  for (;;) {
    if (pos >= MAX_TOKENS) {
      const ty = (i: number): T => v[i]?.type;
      if (
        (ty(0) === NUMBER && (ty(1) === OPERATOR || ty(1) === COMMA) && ty(2) === LPAREN &&
          ty(3) === NUMBER && ty(4) === RPAREN) ||
        (ty(0) === BAREWORD && ty(1) === OPERATOR && ty(2) === LPAREN &&
          (ty(3) === BAREWORD || ty(3) === NUMBER) && ty(4) === RPAREN) ||
        (ty(0) === NUMBER && ty(1) === RPAREN && ty(2) === COMMA && ty(3) === LPAREN &&
          ty(4) === NUMBER) ||
        (ty(0) === BAREWORD && ty(1) === RPAREN && ty(2) === OPERATOR && ty(3) === LPAREN &&
          ty(4) === BAREWORD)
      ) {
        if (pos > MAX_TOKENS) {
          v[1] = v[MAX_TOKENS];
          pos = 2;
        } else pos = 1;
        left = 0;
      }
    }
    if (!more || left >= MAX_TOKENS) {
      left = pos;
      break;
    }
    while (more && pos <= MAX_TOKENS && pos - left < 2) {
      more = nextToken(st);
      if (more) {
        if (st.current.type === COMMENT) lastComment = copyTok(st.current);
        else {
          lastComment = undefined;
          v[pos] = copyTok(st.current);
          pos++;
        }
      }
    }
    if (pos - left < 2) {
      left = pos;
      continue;
    }
    const a = v[left];
    const b = v[left + 1];
    if (a.type === STRING && b.type === STRING) {
      pos--;
      st.statsFolds++;
      continue;
    } else if (a.type === SEMICOLON && b.type === SEMICOLON) {
      pos--;
      st.statsFolds++;
      continue;
    } else if ((a.type === OPERATOR || a.type === LOGIC) && (isUnaryOp(b) || b.type === SQLTYPE)) {
      pos--;
      st.statsFolds++;
      left = 0;
      continue;
    } else if (a.type === LPAREN && isUnaryOp(b)) {
      pos--;
      st.statsFolds++;
      if (left > 0) left--;
      continue;
    } else if (mergeWords(a, b)) {
      // b is absorbed into a; shift the rest down
      v.splice(left + 1, 1);
      pos--;
      st.statsFolds++;
      if (left > 0) left--;
      continue;
    } else if (
      a.type === SEMICOLON && b.type === FUNCTION && b.val.slice(0, 2).toUpperCase() === "IF"
    ) {
      b.type = TSQL;
      continue;
    } else if (
      (a.type === BAREWORD || a.type === VARIABLE) && b.type === LPAREN &&
      FUNC_LIKE.has(a.val.toUpperCase())
    ) {
      a.type = FUNCTION;
      continue;
    } else if (
      a.type === KEYWORD && (a.val.toUpperCase() === "IN" || a.val.toUpperCase() === "NOT IN")
    ) {
      a.type = b.type === LPAREN ? OPERATOR : BAREWORD;
      continue;
    } else if (
      a.type === OPERATOR && (a.val.toUpperCase() === "LIKE" || a.val.toUpperCase() === "NOT LIKE")
    ) {
      if (b.type === LPAREN) a.type = FUNCTION;
    } else if (a.type === SQLTYPE && "n1t(fvs".includes(b.type)) {
      v[left] = b;
      v.splice(left + 1, 1);
      pos--;
      st.statsFolds++;
      left = 0;
      continue;
    } else if (a.type === COLLATE && b.type === BAREWORD) {
      if (b.val.includes("_")) {
        b.type = SQLTYPE;
        left = 0;
      }
    } else if (a.type === BACKSLASH) {
      if (isArithmeticOp(b)) a.type = NUMBER;
      else {
        v[left] = b;
        v.splice(left + 1, 1);
        pos--;
        st.statsFolds++;
      }
      left = 0;
      continue;
    } else if (
      (a.type === LPAREN && b.type === LPAREN) || (a.type === RPAREN && b.type === RPAREN)
    ) {
      v.splice(left + 1, 1);
      pos--;
      left = 0;
      st.statsFolds++;
      continue;
    } else if (a.type === LBRACE && b.type === BAREWORD) {
      if (b.val.length === 0) {
        b.type = EVIL;
        return left + 2;
      }
      v.splice(left, 2);
      left = 0;
      pos -= 2;
      st.statsFolds += 2;
      continue;
    } else if (b.type === RBRACE) {
      v.splice(left + 1, 1);
      pos--;
      left = 0;
      st.statsFolds++;
      continue;
    }
    while (more && pos <= MAX_TOKENS && pos - left < 3) {
      more = nextToken(st);
      if (more) {
        if (st.current.type === COMMENT) lastComment = copyTok(st.current);
        else {
          lastComment = undefined;
          v[pos] = copyTok(st.current);
          pos++;
        }
      }
    }
    if (pos - left < 3) {
      left = pos;
      continue;
    }
    const x = v[left];
    const y = v[left + 1];
    const z = v[left + 2];
    const drop2 = (): void => {
      v.splice(left + 1, 2);
      pos -= 2;
      left = 0;
    };
    const dropMiddle = (): void => {
      v.splice(left + 1, 1);
      pos--;
      left = 0;
    };
    if (x.type === NUMBER && y.type === OPERATOR && z.type === NUMBER) {
      drop2();
      continue;
    } else if (x.type === OPERATOR && y.type !== LPAREN && z.type === OPERATOR) {
      drop2();
      continue;
    } else if (x.type === LOGIC && z.type === LOGIC) {
      drop2();
      continue;
    } else if (x.type === VARIABLE && y.type === OPERATOR && "v1n".includes(z.type)) {
      drop2();
      continue;
    } else if (
      (x.type === BAREWORD || x.type === NUMBER) && y.type === OPERATOR &&
      (z.type === NUMBER || z.type === BAREWORD)
    ) {
      drop2();
      continue;
    } else if (
      "n1vs".includes(x.type) && y.type === OPERATOR && y.val === "::" && z.type === SQLTYPE
    ) {
      drop2();
      st.statsFolds += 2;
      continue;
    } else if ("n1sv".includes(x.type) && y.type === COMMA && "1nsv".includes(z.type)) {
      drop2();
      continue;
    } else if (
      (x.type === EXPRESSION || x.type === GROUP || x.type === COMMA) && isUnaryOp(y) &&
      z.type === LPAREN
    ) {
      dropMiddle();
      continue;
    } else if (
      (x.type === KEYWORD || x.type === EXPRESSION || x.type === GROUP) && isUnaryOp(y) &&
      "1nvsf".includes(z.type)
    ) {
      dropMiddle();
      continue;
    } else if (x.type === COMMA && isUnaryOp(y) && "1nvs".includes(z.type)) {
      v.splice(left + 1, 1);
      left = 0;
      pos -= 3;
      // back up: the tokens before are re-examined
      v.splice(Math.max(pos, 0), v.length);
      if (pos < 0) pos = 0;
      continue;
    } else if (x.type === COMMA && isUnaryOp(y) && z.type === FUNCTION) {
      dropMiddle();
      continue;
    } else if (x.type === BAREWORD && y.type === DOT && z.type === BAREWORD) {
      drop2();
      continue;
    } else if (x.type === EXPRESSION && y.type === DOT && z.type === BAREWORD) {
      dropMiddle();
      continue;
    } else if (x.type === FUNCTION && y.type === LPAREN && z.type !== RPAREN) {
      if (x.val.toUpperCase() === "USER") x.type = BAREWORD;
    }
    left++;
  }
  if (left < MAX_TOKENS && lastComment) {
    v[left] = lastComment;
    left++;
  }
  if (left > MAX_TOKENS) left = MAX_TOKENS;
  return left;
}

function fingerprintOf(st: State): string {
  const n = fold(st);
  const v = st.tokens;
  if (
    n > 2 && v[n - 1].type === BAREWORD && v[n - 1].strOpen === "`" && v[n - 1].val.length === 0 &&
    v[n - 1].strClose === ""
  ) {
    v[n - 1].type = COMMENT;
  }
  let fp = "";
  for (let i = 0; i < n; i++) fp += v[i].type;
  if (fp.includes(EVIL)) {
    st.tokens = [tok(EVIL, "X")];
    return EVIL;
  }
  st.tokens.length = n;
  return fp;
}

/**
 * The fingerprint grammar (in place of libinjection's fingerprint list). Each rule is a shape
 * of SQL that a lone value must not have once placed in a query:
 */
const FINGERPRINT_RULES: RegExp[] = [
  /X/, // nested or executable comments /*! … */
  /U[E(]/, // UNION SELECT, UNION (SELECT
  /^[s1nv]\)*U./, // value [)] UNION …
  /;[ETkUB]/, // stacked query: ; SELECT / ; DECLARE / ; DROP …
  /T/, // T-SQL statements: WAITFOR, EXEC, DECLARE …
  /^[s1v]\)*&[s1vn](?:$|[ockU;B)&v])/, // ' OR 1=1, 1 OR 1--, ' OR 'a'='a
  /^[s1v]\)*&[f(]/, // 1 AND sleep(, ' OR (
  /^n\)*&[s1vf(]/, // word OR 1=1
  /^[s1nv]\)*[o&]f\(/, // ' + sleep(5), 1 AND benchmark(
  /^s\)*f\(/, // ' sleep(5) — a call right after the closing quote
  /^f\([1sv]/, // sleep(20), benchmark('…') as the whole value
  /^[s1v]\)*B/, // ' ORDER BY / GROUP BY / LIMIT
  /^[s1nv]\)*c$/, // value then comment: admin'--, 1/*
  /^[s1v]\)*o[s1v]&/, // '='' OR …
  /^[s1v]\)*;/, // '; …
  /^E[1sfv(*o]/, // SELECT 1, SELECT @@version, SELECT * …
  /^E[nk]k/, // SELECT x FROM, DELETE FROM t
  /^[s1]\)*k[s1nvf(]/, // ' INTO OUTFILE, 1 FROM …
  /^[s1v]\)+o/, // ') = …
];

/** Results of {@linkcode blacklisted} (fingerprints are at most five characters). */
const BLACKLISTED = new Map<string, boolean>();

function blacklisted(fp: string): boolean {
  let hit = BLACKLISTED.get(fp);
  if (hit === undefined) {
    hit = FINGERPRINT_RULES.some((re) => re.test(fp));
    if (BLACKLISTED.size < 100000) BLACKLISTED.set(fp, hit);
  }
  return hit;
}

/** libinjection's false-positive filter for short fingerprints. */
function notWhitelist(st: State, fp: string): boolean {
  const v = st.tokens;
  const s = st.s;
  if (fp.length > 1 && fp[fp.length - 1] === COMMENT && s.toLowerCase().includes("sp_password")) {
    return true;
  }
  if (fp.length === 2) {
    if (fp[1] === UNION) return st.statsTokens !== 2;
    if (v[1].val[0] === "#") return false;
    if (v[0].type === BAREWORD && v[1].type === COMMENT && v[1].val[0] !== "/") return false;
    if (v[0].type === NUMBER && v[1].type === COMMENT && v[1].val[0] === "/") return true;
    if (v[0].type === NUMBER && v[1].type === COMMENT) {
      if (st.statsTokens > 2) return true;
      const i = s.indexOf(v[0].val);
      const ch = s.charCodeAt(i + v[0].val.length);
      if (ch <= 32) return true;
      const c2 = s[i + v[0].val.length + 1];
      if (ch === 47 && c2 === "*") return true;
      if (ch === 45 && c2 === "-") return true;
      return false;
    }
    if (v[1].val.length > 2 && v[1].val[0] === "-") return false;
  } else if (fp.length === 3) {
    if (fp === "sos" || fp === "s&s") {
      if (v[0].strOpen === "" && v[2].strClose === "" && v[0].strClose === v[2].strOpen) {
        return true;
      }
      return false;
    } else if (["s&n", "n&1", "1&1", "1&v", "1&s"].includes(fp)) {
      if (st.statsTokens === 3) return false;
    } else if (v[1].type === KEYWORD) {
      if (v[1].val.length < 5 || v[1].val.slice(0, 4).toUpperCase() !== "INTO") return false;
    }
  }
  return true;
}

function check(s: string, flags: number): { fp: string; hit: boolean; st: State } {
  const st = new State(s, flags);
  const fp = fingerprintOf(st);
  return { fp, hit: fp !== "" && blacklisted(fp) && notWhitelist(st, fp), st };
}

/**
 * Detects SQL injection in one value.
 *
 * @param s The value (a byte string).
 * @returns The fingerprint that matched (CRS logs it as TX.0), or undefined.
 * @example
 * ```ts
 * import { detectSqli } from "./libinjection_sqli.ts";
 * if (detectSqli("1' OR '1'='1") === undefined) throw new Error("missed");
 * if (detectSqli("O'Reilly and sons") !== undefined) throw new Error("false positive");
 * ```
 */
export function detectSqli(s: string): string | undefined {
  if (s.length === 0) return undefined;
  let r = check(s, FLAG_QUOTE_NONE | FLAG_SQL_ANSI);
  if (r.hit) return r.fp;
  if (r.st.statsCommentDdx > 0 || r.st.statsCommentHash > 0) {
    r = check(s, FLAG_QUOTE_NONE | FLAG_SQL_MYSQL);
    if (r.hit) return r.fp;
  }
  if (s.includes("'")) {
    r = check(s, FLAG_QUOTE_SINGLE | FLAG_SQL_ANSI);
    if (r.hit) return r.fp;
    if (r.st.statsCommentDdx > 0 || r.st.statsCommentHash > 0) {
      r = check(s, FLAG_QUOTE_SINGLE | FLAG_SQL_MYSQL);
      if (r.hit) return r.fp;
    }
  }
  if (s.includes('"')) {
    r = check(s, FLAG_QUOTE_DOUBLE | FLAG_SQL_MYSQL);
    if (r.hit) return r.fp;
  }
  return undefined;
}

/** The fingerprint of a value in the no-quote ANSI context (for diagnostics and tests). */
export function sqliFingerprint(s: string, context: "none" | "single" | "double" = "none"): string {
  const flags = context === "single"
    ? FLAG_QUOTE_SINGLE | FLAG_SQL_ANSI
    : context === "double"
    ? FLAG_QUOTE_DOUBLE | FLAG_SQL_MYSQL
    : FLAG_QUOTE_NONE | FLAG_SQL_ANSI;
  return fingerprintOf(new State(s, flags));
}
