// @ts-check
/**
 * Mentions: whether a message names the person (the server lists the names its `@name` tokens
 * refer to in `mentions`), and `@` autocompletion of the names present while typing. No DOM here.
 */

/** At most this many names are offered at once. */
export const MAX_SUGGESTIONS = 6;

/**
 * Whether `me` is among a message's mentions.
 * @param {readonly string[]} mentions
 * @param {string} me
 * @returns {boolean}
 */
export function mentionsMe(mentions, me) {
  return me !== "" && mentions.includes(me);
}

// An `@` at the start or after whitespace, then the name typed so far, up to the caret.
const TYPED_MENTION = /(?:^|\s)@([^\s@]*)$/u;

/**
 * The mention being typed just before the caret: where its `@` is and the name typed so far;
 * null when the caret is not in one.
 * @param {string} text
 * @param {number} caret
 * @returns {{ start: number, query: string } | null}
 */
export function mentionAt(text, caret) {
  const match = TYPED_MENTION.exec(text.slice(0, caret));
  if (!match) return null;
  const query = match[1];
  return { start: caret - query.length - 1, query };
}

/**
 * The names to offer for `query`: present people other than `me` whose name starts with it
 * (ignoring case), then those that contain it; alphabetical within each, at most `max`.
 * @param {string} query
 * @param {readonly string[]} names
 * @param {string} me
 * @param {number} [max]
 * @returns {string[]}
 */
export function suggestNames(query, names, me, max = MAX_SUGGESTIONS) {
  const q = query.toLowerCase();
  const others = [...new Set(names)].filter((name) => name !== me);
  const byName = (/** @type {string} */ a, /** @type {string} */ b) =>
    a.localeCompare(b, undefined, { sensitivity: "base" });
  const starts = others.filter((name) => name.toLowerCase().startsWith(q)).sort(byName);
  const contains = others.filter((name) => !name.toLowerCase().startsWith(q))
    .filter((name) => name.toLowerCase().includes(q)).sort(byName);
  return [...starts, ...contains].slice(0, max);
}

/**
 * The text with the mention being typed (from `start` to the caret) replaced by `@name ` and
 * the caret after it.
 * @param {string} text
 * @param {number} start where the `@` is
 * @param {number} caret
 * @param {string} name
 * @returns {{ text: string, caret: number }}
 */
export function completeMention(text, start, caret, name) {
  const inserted = `@${name} `;
  const after = text.slice(caret).replace(/^\S*/, "").replace(/^ /, "");
  return { text: text.slice(0, start) + inserted + after, caret: start + inserted.length };
}
