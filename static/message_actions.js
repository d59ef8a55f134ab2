// @ts-check
/// <reference lib="dom" />
/**
 * What a person can do with a message: a toolbar that appears on a message when the pointer is
 * over it (a long press on a touch screen, or focus from the keyboard) with React, Edit (their
 * own) and Delete (their own, or any as an admin). React offers a few emoji and those already on
 * the message; a reaction chip toggles the person's own. Edit happens in place (Enter saves,
 * Escape cancels); Delete asks first. One toolbar moves between messages; the server decides.
 */

import { confirmAction } from "./forms.js";
import { allowedActions, reactionChoices } from "./message_log.js";
import { element } from "./message_view.js";

/** A touch held this long opens the toolbar. */
const LONG_PRESS_MS = 500;

/**
 * What the actions need: the list element and the messages' state, who the person is, the
 * confirmation dialog, and where each change goes.
 * @typedef {{
 *   list: HTMLElement,
 *   messages: import("./message_list.js").MessageList,
 *   me: () => { userName: string, admin: boolean },
 *   confirm: import("./forms.js").ConfirmElements,
 *   send: (command: import("./protocol.js").LogCommand) => void,
 * }} ActionsOptions
 */

/** The toolbar on the message under the pointer, and the edit in place. */
export class MessageActions {
  /** @type {ActionsOptions} */ #o;
  #bar = element("div", "message-actions");
  #picker = element("div", "reaction-picker");
  /** @type {number | null} */ #id = null;
  /** @type {ReturnType<typeof setTimeout> | undefined} */ #pressTimer;

  /** @param {ActionsOptions} options */
  constructor(options) {
    this.#o = options;
    this.#bar.setAttribute("role", "toolbar");
    this.#bar.setAttribute("aria-label", "Message actions");
    this.#picker.hidden = true;
    const list = options.list;
    list.addEventListener("mouseover", (e) => this.#hovered(e.target));
    list.addEventListener("focusin", (e) => this.#hovered(e.target));
    list.addEventListener("mouseleave", () => {
      if (this.#picker.hidden && !this.#bar.contains(document.activeElement)) this.hide();
    });
    list.addEventListener("click", (e) => this.#chipClicked(e.target));
    list.addEventListener("pointerdown", (e) => this.#pressStart(e));
    for (const stop of ["pointerup", "pointercancel", "pointermove"]) {
      list.addEventListener(stop, () => clearTimeout(this.#pressTimer));
    }
    list.addEventListener("contextmenu", (e) => {
      if (
        this.#bar.isConnected && e.target instanceof Node &&
        this.#bar.parentElement?.contains(e.target)
      ) {
        e.preventDefault(); // the long press opened the toolbar; no context menu over it
      }
    });
  }

  /** Takes the toolbar off the message it is on. */
  hide() {
    this.#bar.remove();
    this.#picker.hidden = true;
    this.#id = null;
  }

  /** @param {EventTarget | null} target */
  #hovered(target) {
    const item = messageOf(target);
    if (!item || item.classList.contains("editing")) return;
    const id = Number(item.dataset.id);
    if (id === this.#id && this.#bar.isConnected) return;
    this.#showOn(item, id);
  }

  /** @param {PointerEvent} event */
  #pressStart(event) {
    if (event.pointerType !== "touch") return;
    const item = messageOf(event.target);
    clearTimeout(this.#pressTimer);
    if (!item) return;
    this.#pressTimer = setTimeout(() => this.#showOn(item, Number(item.dataset.id)), LONG_PRESS_MS);
  }

  /**
   * @param {HTMLElement} item
   * @param {number} id
   */
  #showOn(item, id) {
    const state = this.#o.messages.state(id);
    if (!state) return;
    this.#id = id;
    const can = allowedActions(state, this.#o.me());
    const buttons = [barButton("☺", "React", () => this.#togglePicker())];
    if (can.edit) buttons.push(barButton("Edit", "Edit message", () => this.#edit(id)));
    if (can.delete) buttons.push(barButton("Delete", "Delete message", () => this.#delete(id)));
    this.#picker.hidden = true;
    this.#bar.replaceChildren(...buttons, this.#picker);
    item.querySelector(".content")?.append(this.#bar);
  }

  #togglePicker() {
    const state = this.#id === null ? undefined : this.#o.messages.state(this.#id);
    if (!state) return;
    const me = this.#o.me().userName;
    const id = state.id;
    this.#picker.replaceChildren(
      ...reactionChoices(state).map((emoji) => {
        const on = !(state.reactions.get(emoji) ?? []).includes(me);
        const button = barButton(emoji, `React with ${emoji}`, () => {
          this.#o.send({ type: "react", messageId: id, emoji, on });
          this.hide();
        });
        button.classList.add("pick");
        return button;
      }),
    );
    this.#picker.hidden = !this.#picker.hidden;
    if (!this.#picker.hidden) /** @type {HTMLElement | null} */ (this.#picker.firstChild)?.focus();
  }

  /** @param {EventTarget | null} target */
  #chipClicked(target) {
    const chip = target instanceof Element ? target.closest(".reaction") : null;
    const item = messageOf(chip);
    if (!(chip instanceof HTMLElement) || !item) return;
    const id = Number(item.dataset.id);
    const emoji = chip.dataset.emoji ?? "";
    const state = this.#o.messages.state(id);
    if (!state || !emoji) return;
    const on = !(state.reactions.get(emoji) ?? []).includes(this.#o.me().userName);
    this.#o.send({ type: "react", messageId: id, emoji, on });
  }

  /** @param {number} id */
  async #delete(id) {
    this.hide();
    const question = {
      title: "Delete this message?",
      text: "It is removed for everyone in the room. This cannot be undone.",
      ok: "Delete",
    };
    if (await confirmAction(this.#o.confirm, question)) {
      this.#o.send({ type: "delete", messageId: id });
    }
  }

  /** @param {number} id */
  #edit(id) {
    const item = this.#o.messages.element(id);
    const state = this.#o.messages.state(id);
    if (!item || !state) return;
    this.hide();
    editInPlace(item, state.body, (body) => {
      if (body !== state.body) this.#o.send({ type: "edit", messageId: id, body });
    });
  }
}

/**
 * Replaces the message's body with a box holding `body`; Enter saves (a changed, non-blank body),
 * Shift+Enter is a new line, Escape or leaving the box cancels.
 * @param {HTMLElement} item
 * @param {string} body
 * @param {(body: string) => void} save
 */
function editInPlace(item, body, save) {
  const text = /** @type {HTMLElement} */ (item.querySelector(".body"));
  const box = /** @type {HTMLTextAreaElement} */ (element("textarea", "edit-box"));
  box.value = body;
  box.rows = Math.min(8, body.split("\n").length);
  box.setAttribute("aria-label", "Edit message");
  item.classList.add("editing");
  text.hidden = true;
  text.after(box);
  let finished = false;
  const done = () => {
    // Removing the focused box fires its blur, which comes back here.
    if (finished) return;
    finished = true;
    box.remove();
    text.hidden = false;
    item.classList.remove("editing");
  };
  box.addEventListener("keydown", (event) => {
    if (event.key === "Escape") {
      event.preventDefault();
      event.stopPropagation();
      done();
    } else if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      const edited = box.value.trimEnd();
      done();
      if (edited.trim()) save(edited);
    }
  });
  box.addEventListener("blur", done);
  box.focus();
  box.setSelectionRange(box.value.length, box.value.length);
}

/**
 * @param {string} text
 * @param {string} label its accessible name and tooltip
 * @param {() => void} onClick
 */
function barButton(text, label, onClick) {
  const button = /** @type {HTMLButtonElement} */ (element("button", "bar-button", text));
  button.type = "button";
  button.title = label;
  button.setAttribute("aria-label", label);
  button.addEventListener("click", (event) => {
    event.stopPropagation();
    onClick();
  });
  return button;
}

/**
 * The confirmed message an event happened in, or null (outside any, or an unsent one).
 * @param {EventTarget | null} target
 * @returns {HTMLElement | null}
 */
function messageOf(target) {
  if (!(target instanceof Element)) return null;
  const item = target.closest(".message");
  return item instanceof HTMLElement && item.dataset.id !== undefined ? item : null;
}
