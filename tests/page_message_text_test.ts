/**
 * A message body as the page draws it (static/message_text.js): plain text, http(s) links, inline
 * code and fenced blocks, and nothing else: markup stays text, other schemes are not links.
 */
import assert from "node:assert/strict";
import { httpHref, textParts, trimUrl } from "../static/message_text.js";

Deno.test("plain text is one text part; markup in it is text", () => {
  assert.deepEqual(textParts("hello there"), [{ kind: "text", text: "hello there" }]);
  const html = '<img src=x onerror=alert(1)> <a href="javascript:alert(2)">x</a>';
  assert.deepEqual(textParts(html), [{ kind: "text", text: html }]);
  assert.deepEqual(textParts(""), []);
});

Deno.test("http and https URLs are links; the sentence's punctuation is not part of them", () => {
  assert.deepEqual(textParts("see https://example.com/a?b=1#c, then http://x.org."), [
    { kind: "text", text: "see " },
    { kind: "link", text: "https://example.com/a?b=1#c", href: "https://example.com/a?b=1#c" },
    { kind: "text", text: ", then " },
    { kind: "link", text: "http://x.org", href: "http://x.org/" },
    { kind: "text", text: "." },
  ]);
  assert.deepEqual(textParts("(docs at https://deno.com/manual)"), [
    { kind: "text", text: "(docs at " },
    { kind: "link", text: "https://deno.com/manual", href: "https://deno.com/manual" },
    { kind: "text", text: ")" },
  ]);
  assert.equal(
    trimUrl("https://en.wikipedia.org/wiki/Foo_(bar)"),
    "https://en.wikipedia.org/wiki/Foo_(bar)",
  );
  assert.equal(trimUrl("https://x.org/a)."), "https://x.org/a");
  assert.equal(trimUrl("https://x.org/it's"), "https://x.org/it's");
});

Deno.test("no other scheme is a link, and a link's text cannot smuggle markup", () => {
  for (
    const body of [
      "javascript:alert(1)",
      "data:text/html,<b>x</b>",
      "ftp://x.org/f",
      "file:///etc/passwd",
    ]
  ) {
    assert.ok(textParts(body).every((p) => p.kind === "text"), body);
  }
  assert.equal(httpHref("javascript:alert(1)"), null);
  assert.equal(httpHref("https://"), null);
  assert.equal(httpHref("HTTPS://Example.COM/x"), "https://example.com/x");
  // A quote or angle bracket ends the URL: it cannot reach into an attribute.
  assert.deepEqual(textParts('https://x.org/"onmouseover=alert(1)'), [
    { kind: "link", text: "https://x.org/", href: "https://x.org/" },
    { kind: "text", text: '"onmouseover=alert(1)' },
  ]);
  assert.deepEqual(textParts("<https://x.org/a>"), [
    { kind: "text", text: "<" },
    { kind: "link", text: "https://x.org/a", href: "https://x.org/a" },
    { kind: "text", text: ">" },
  ]);
});

Deno.test("inline code is code, and a URL inside it is not a link", () => {
  assert.deepEqual(textParts("run `deno task test` or `curl https://x.org`"), [
    { kind: "text", text: "run " },
    { kind: "code", text: "deno task test" },
    { kind: "text", text: " or " },
    { kind: "code", text: "curl https://x.org" },
  ]);
  // An unmatched or empty pair of backticks is text.
  assert.deepEqual(textParts("a ` b"), [{ kind: "text", text: "a ` b" }]);
  assert.deepEqual(textParts("empty `` here"), [{ kind: "text", text: "empty `` here" }]);
  // Inline code does not span lines.
  assert.deepEqual(textParts("`a\nb`"), [{ kind: "text", text: "`a\nb`" }]);
});

Deno.test("fenced blocks keep their lines; the language line and fence newlines are dropped", () => {
  const body = "before\n```js\nconst a = 1;\n  if (a) `x`;\n```\nafter https://x.org";
  assert.deepEqual(textParts(body), [
    { kind: "text", text: "before" },
    { kind: "block", text: "const a = 1;\n  if (a) `x`;" },
    { kind: "text", text: "after " },
    { kind: "link", text: "https://x.org", href: "https://x.org/" },
  ]);
  assert.deepEqual(textParts("```one line```"), [{ kind: "block", text: "one line" }]);
  assert.deepEqual(textParts("```\n<b>not bold</b>\n```"), [
    { kind: "block", text: "<b>not bold</b>" },
  ]);
  // An unclosed fence is text (its backticks are not inline code either).
  assert.deepEqual(textParts("```\nhalf"), [{ kind: "text", text: "```\nhalf" }]);
});
