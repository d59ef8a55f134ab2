// @ts-check
/**
 * What this browser remembers between visits (the name last used, the server's mode): small
 * strings in localStorage, which may be disabled; then nothing is remembered and nothing fails.
 */

/** The name the person last joined with. */
export const NAME_KEY = "parley.userName";
/** The server's mode last time, so the first view does not flash the wrong form. */
export const MODE_KEY = "parley.mode";

/**
 * The browser's storage, or null where it is disabled.
 * @returns {Storage | null}
 */
export function storage() {
  try {
    return globalThis.localStorage ?? null;
  } catch {
    return null;
  }
}

/**
 * Remembers `value` under `key`, if the browser lets the page.
 * @param {string} key
 * @param {string} value
 */
export function remember(key, value) {
  try {
    storage()?.setItem(key, value);
  } catch { /* storage may be disabled or full */ }
}

/**
 * What is remembered under `key`, or "".
 * @param {string} key
 * @returns {string}
 */
export function remembered(key) {
  try {
    return storage()?.getItem(key) || "";
  } catch {
    return "";
  }
}
