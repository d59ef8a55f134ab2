// @ts-check
/** How a person is drawn wherever their name appears: a colour from their name and an initial. */

const HUES = 8;

/**
 * The colour class for a name: the same name always gets the same one of the page's hues.
 * @param {string} name
 * @returns {string}
 */
export function hueOf(name) {
  let hash = 0;
  for (const ch of name) hash = (hash * 31 + /** @type {number} */ (ch.codePointAt(0))) >>> 0;
  return `hue-${hash % HUES}`;
}

/**
 * The letter shown in a name's avatar.
 * @param {string} name
 * @returns {string}
 */
export function initialOf(name) {
  const first = [...name.trim()][0] || "?";
  return first.toUpperCase();
}
