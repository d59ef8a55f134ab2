/**
 * The check a legacy receiver of the load tool makes on each frame: parley's legacy dialect (the
 * Go server's, gorilla `WriteJSON` style) sends exactly one message object per frame,
 * `{"userName":…,"body":…,"timestamp":…,"id":N}` followed by `\n`, and no other event.
 */

/** How every legacy frame starts: the Go server's message object, `userName` first. */
const LEGACY_START = '{"userName":';

/**
 * `ok`: one message object and its `\n`. `multi`: more than one message object, or a newline
 * before the end (several `\n`-separated events). `bad`: anything else, such as a `parley.v1`
 * event or a frame without the trailing newline. A scan, never `JSON.parse`.
 */
export function classifyLegacyFrame(text: string): "ok" | "multi" | "bad" {
  const newline = text.indexOf("\n");
  if (text.indexOf(LEGACY_START, 1) >= 0 || (newline >= 0 && newline < text.length - 1)) {
    return "multi";
  }
  if (
    !text.startsWith(LEGACY_START) || newline !== text.length - 1 ||
    text.charCodeAt(text.length - 2) !== 125 || // "}"
    text.includes('"type":')
  ) {
    return "bad";
  }
  return "ok";
}
