// @ts-check
/// <reference lib="dom" />
/**
 * The message box: Enter sends (Shift+Enter is a new line), the box grows with its text, typing
 * tells the others (paced), and `@` offers the names of the people present, picked with the
 * arrow keys and Enter or Tab, or a click.
 */

import { completeMention, mentionAt, suggestNames } from "./mentions.js";
import { TypingPacer } from "./typing.js";

/**
 * What the composer needs: its form, box and suggestion list, who is present and who the
 * person is, where a message goes, and where a typing ping goes.
 * @typedef {{
 *   form: HTMLFormElement,
 *   box: HTMLTextAreaElement,
 *   suggestions: HTMLElement,
 *   present: () => readonly string[],
 *   me: () => string,
 *   send: (body: string) => void,
 *   typing: () => void,
 * }} ComposerOptions
 */

const growsByItself = typeof CSS !== "undefined" && CSS.supports?.("field-sizing", "content");

/**
 * Drops leading blank lines and trailing whitespace; keeps indentation and inner newlines.
 * @param {string} text
 */
export function cleanBody(text) {
  return text.replace(/^(?:[ \t]*\r?\n)+/, "").trimEnd();
}

/** The message box and its suggestions. */
export class Composer {
  /** @type {ComposerOptions} */ #o;
  #pacer = new TypingPacer();
  /** @type {string[]} */ #names = [];
  #selected = 0;
  #start = 0;

  /** @param {ComposerOptions} options */
  constructor(options) {
    this.#o = options;
    const box = options.box;
    options.form.addEventListener("submit", (e) => this.#submit(e));
    box.addEventListener("keydown", (e) => this.#keydown(e));
    box.addEventListener("input", () => {
      this.grow();
      this.#suggest();
      if (box.value.trim() && this.#pacer.typed()) options.typing();
    });
    box.addEventListener("blur", () => this.#close());
    // A click picks before the box loses focus.
    options.suggestions.addEventListener("pointerdown", (e) => e.preventDefault());
    options.suggestions.addEventListener("click", (e) => {
      const item = e.target instanceof Element ? e.target.closest("[data-name]") : null;
      if (item instanceof HTMLElement) this.#pick(item.dataset.name ?? "");
    });
  }

  /** Fits the box to its text where the browser does not. */
  grow() {
    if (growsByItself) return;
    const box = this.#o.box;
    box.style.height = "auto";
    box.style.height = `${Math.min(box.scrollHeight, 160)}px`;
  }

  /**
   * Puts a message back into the box, before what is there.
   * @param {string} body
   */
  restore(body) {
    const draft = this.#o.box.value.trim();
    this.#o.box.value = draft ? `${body}\n${draft}` : body;
    this.grow();
    this.#o.box.focus();
  }

  /** @param {SubmitEvent} event */
  #submit(event) {
    event.preventDefault();
    const body = cleanBody(this.#o.box.value);
    if (!body) return;
    this.#o.box.value = "";
    this.grow();
    this.#close();
    this.#pacer.sent();
    this.#o.send(body);
    this.#o.box.focus();
  }

  /** @param {KeyboardEvent} event */
  #keydown(event) {
    if (this.#names.length > 0 && this.#suggestionKey(event)) return;
    if (event.key !== "Enter" || event.shiftKey || event.isComposing || event.keyCode === 229) {
      return;
    }
    event.preventDefault();
    this.#o.form.requestSubmit();
  }

  /**
   * Arrow keys move through the suggestions, Enter or Tab picks, Escape closes; true if handled.
   * @param {KeyboardEvent} event
   */
  #suggestionKey(event) {
    const count = this.#names.length;
    switch (event.key) {
      case "ArrowDown":
      case "ArrowUp":
        this.#selected = (this.#selected + (event.key === "ArrowDown" ? 1 : count - 1)) % count;
        this.#draw();
        break;
      case "Enter":
      case "Tab":
        if (event.shiftKey || event.isComposing) return false;
        this.#pick(this.#names[this.#selected]);
        break;
      case "Escape":
        this.#close();
        break;
      default:
        return false;
    }
    event.preventDefault();
    event.stopPropagation();
    return true;
  }

  #suggest() {
    const box = this.#o.box;
    const at = mentionAt(box.value, box.selectionStart ?? box.value.length);
    const names = at ? suggestNames(at.query, this.#o.present(), this.#o.me()) : [];
    if (!at || names.length === 0) {
      this.#close();
      return;
    }
    this.#start = at.start;
    this.#names = names;
    this.#selected = 0;
    this.#draw();
  }

  /** @param {string} name */
  #pick(name) {
    const box = this.#o.box;
    const caret = box.selectionStart ?? box.value.length;
    const done = completeMention(box.value, this.#start, caret, name);
    box.value = done.text;
    box.setSelectionRange(done.caret, done.caret);
    this.#close();
    this.grow();
  }

  #draw() {
    const list = this.#o.suggestions;
    list.replaceChildren(...this.#names.map((name, i) => {
      const li = document.createElement("li");
      li.textContent = `@${name}`;
      li.dataset.name = name;
      li.id = `mention-${i}`;
      li.setAttribute("role", "option");
      li.setAttribute("aria-selected", String(i === this.#selected));
      return li;
    }));
    list.hidden = false;
    this.#o.box.setAttribute("aria-activedescendant", `mention-${this.#selected}`);
  }

  #close() {
    this.#names = [];
    this.#o.suggestions.hidden = true;
    this.#o.suggestions.replaceChildren();
    this.#o.box.removeAttribute("aria-activedescendant");
  }
}
