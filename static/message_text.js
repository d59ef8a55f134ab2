// @ts-check
/**
 * A message body as the parts the page draws: plain text, links (`http://` and `https://` only),
 * inline `` `code` `` and fenced ``` blocks. Nothing here is HTML: the page makes a text node, an
 * `<a>`, a `<code>` or a `<pre>` of each part, so markup in a body stays text. No DOM here.
 */

/**
 * One part of a body. `href` is the link's parsed URL, always http or https.
 * @typedef {{ kind: "text", text: string }
 *   | { kind: "link", text: string, href: string }
 *   | { kind: "code", text: string }
 *   | { kind: "block", text: string }} TextPart
 */

const FENCE = "```";
// A fence's first line may name a language ("```js"); it is not part of the code.
const LANGUAGE_LINE = /^[\w+#.-]*[ \t]*\n/;
const INLINE_CODE = /`([^`\n]+)`/g;
// Stops at whitespace and at characters that end a URL written in prose or markup.
const URL_CANDIDATE = /\bhttps?:\/\/[^\s<>"`]+/gi;
const TRAILING = /[.,;:!?'*]+$/;
const CLOSERS = new Map([[")", "("], ["]", "["], ["}", "{"]]);

/**
 * The parts of `body`, in order. An unclosed fence or backtick is text.
 * @param {string} body
 * @returns {TextPart[]}
 */
export function textParts(body) {
  /** @type {TextPart[]} */
  const parts = [];
  let rest = body;
  for (;;) {
    const open = rest.indexOf(FENCE);
    const close = open < 0 ? -1 : rest.indexOf(FENCE, open + FENCE.length);
    if (close < 0) break;
    // The block is a block of its own: the newlines next to its fences would be blank lines.
    inlineParts(rest.slice(0, open).replace(/\r?\n$/, ""), parts);
    parts.push({ kind: "block", text: blockText(rest.slice(open + FENCE.length, close)) });
    rest = rest.slice(close + FENCE.length).replace(/^\r?\n/, "");
  }
  inlineParts(rest, parts);
  return merged(parts);
}

/**
 * A fenced block's code: without the language line and the newlines next to the fences.
 * @param {string} inner
 */
function blockText(inner) {
  const withoutLanguage = LANGUAGE_LINE.test(inner) && inner.includes("\n")
    ? inner.replace(LANGUAGE_LINE, "")
    : inner;
  return withoutLanguage.replace(/\r?\n$/, "");
}

/**
 * Text outside fences: inline code, and links in what is not code.
 * @param {string} text
 * @param {TextPart[]} parts
 */
function inlineParts(text, parts) {
  let at = 0;
  for (const match of text.matchAll(INLINE_CODE)) {
    linkParts(text.slice(at, match.index), parts);
    parts.push({ kind: "code", text: match[1] });
    at = match.index + match[0].length;
  }
  linkParts(text.slice(at), parts);
}

/**
 * Plain text with its http(s) URLs as links.
 * @param {string} text
 * @param {TextPart[]} parts
 */
function linkParts(text, parts) {
  let at = 0;
  for (const match of text.matchAll(URL_CANDIDATE)) {
    const candidate = trimUrl(match[0]);
    const href = httpHref(candidate);
    if (href === null) continue;
    if (match.index > at) parts.push({ kind: "text", text: text.slice(at, match.index) });
    parts.push({ kind: "link", text: candidate, href });
    at = match.index + candidate.length;
  }
  if (at < text.length) parts.push({ kind: "text", text: text.slice(at) });
}

/**
 * A URL as written in a sentence, without the punctuation after it: a full stop, or a closing
 * bracket that opened before the URL ("(see https://x.org/a)"), not one of its own ("…/Foo_(bar)").
 * @param {string} url
 */
export function trimUrl(url) {
  let trimmed = url;
  for (;;) {
    const before = trimmed;
    trimmed = trimmed.replace(TRAILING, "");
    const last = trimmed.at(-1) ?? "";
    const opener = CLOSERS.get(last);
    if (opener !== undefined && count(trimmed, last) > count(trimmed, opener)) {
      trimmed = trimmed.slice(0, -1);
    }
    if (trimmed === before) return trimmed;
  }
}

/**
 * @param {string} text
 * @param {string} char
 */
function count(text, char) {
  return text.split(char).length - 1;
}

/**
 * The address a link goes to, or null unless it parses as an http or https URL.
 * @param {string} text
 * @returns {string | null}
 */
export function httpHref(text) {
  let url;
  try {
    url = new URL(text);
  } catch {
    return null;
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") return null;
  return url.hostname ? url.href : null;
}

/**
 * Adjacent text parts joined into one.
 * @param {TextPart[]} parts
 * @returns {TextPart[]}
 */
function merged(parts) {
  /** @type {TextPart[]} */
  const out = [];
  for (const part of parts) {
    const last = out.at(-1);
    if (part.kind === "text" && part.text === "") continue;
    if (part.kind === "text" && last?.kind === "text") last.text += part.text;
    else out.push(part);
  }
  return out;
}
