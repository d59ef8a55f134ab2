/**
 * The query language of `GET /search`, and its translation into an FTS5 query. parley accepts
 * words (`deploy`), prefixes (`deploy*`) and phrases (`"ship it"`), all of which must match
 * (implicit AND); nothing else is syntax. Every term reaches FTS5 quoted, so nothing a client
 * types can be an FTS5 operator or an FTS5 syntax error.
 *
 * @module
 */

/** The longest query accepted, in UTF-16 code units. */
export const MAX_QUERY_LENGTH = 200;

/** The most terms (words, prefixes, phrases) in one query: each costs a doclist read. */
export const MAX_TERMS = 16;

/** A prefix needs this many letters or digits before `*`: a shorter one reads most of the index. */
export const MIN_PREFIX = 2;

/** A query parley does not accept; the message says what to change (answered as a 400). */
export class SearchQueryError extends Error {
  override name = "SearchQueryError";
}

/** A word, prefix or phrase, or a stray quote, `*` or run of spaces. */
const TERM = /"([^"]*)("?)(\*?)|[^\s"]+/g;

/** What the index's tokenizer (unicode61) makes tokens of: letters, digits, their marks. */
const TOKEN = /[\p{L}\p{N}\p{M}\p{Co}]+/gu;

/**
 * The FTS5 query for `query`, in parley's syntax (see the module documentation); throws
 * {@linkcode SearchQueryError} for an empty or too long query, an unclosed phrase, a `*` that
 * does not end a term, too short a prefix, or too many terms.
 */
export function toFtsQuery(query: string): string {
  if (query.length > MAX_QUERY_LENGTH) {
    throw new SearchQueryError(
      `the query is ${query.length} characters long; search for at most ${MAX_QUERY_LENGTH}`,
    );
  }
  const terms: string[] = [];
  for (const match of query.matchAll(TERM)) {
    const [whole, phrase, closed, star] = match;
    if (phrase !== undefined && closed === "") {
      throw new SearchQueryError('a phrase has no closing quote: write "ship it" with both quotes');
    }
    const text = phrase ?? (whole.endsWith("*") ? whole.slice(0, -1) : whole);
    const prefix = phrase === undefined ? whole.endsWith("*") : star === "*";
    const term = ftsTerm(text, prefix);
    if (term !== null) terms.push(term);
  }
  if (terms.length === 0) {
    throw new SearchQueryError("search for at least one word (letters or digits) in q");
  }
  if (terms.length > MAX_TERMS) {
    throw new SearchQueryError(
      `the query has ${terms.length} words and phrases; search for at most ${MAX_TERMS}`,
    );
  }
  return terms.join(" ");
}

/** One term as an FTS5 string (a prefix with `*`), or null if it holds no token to search for. */
function ftsTerm(text: string, prefix: boolean): string | null {
  if (text.includes("*")) {
    throw new SearchQueryError(
      `"*" may only end a word or phrase, as in deploy*; it cannot stand in ${
        JSON.stringify(text + (prefix ? "*" : ""))
      }`,
    );
  }
  const tokens = text.match(TOKEN);
  if (tokens === null) return null;
  if (prefix && tokens.at(-1)!.length < MIN_PREFIX) {
    throw new SearchQueryError(
      `a prefix needs at least ${MIN_PREFIX} letters before "*", as in de*`,
    );
  }
  // Inside an FTS5 string only `"` is special; the terms above hold none.
  return `"${tokens.join(" ")}"${prefix ? "*" : ""}`;
}
