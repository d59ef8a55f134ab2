// @ts-check
/// <reference lib="dom" />
/**
 * "Invite people" (admins): makes a single-use invite link, copies it to the clipboard where the
 * browser allows, and shows it selectable in a dialog for copying by hand.
 */

/**
 * The invite dialog's elements.
 * @typedef {{
 *   dialog: HTMLDialogElement, form: HTMLFormElement, help: HTMLElement,
 *   link: HTMLInputElement, status: HTMLElement, copy: HTMLButtonElement
 * }} InviteElements
 */

/** The invite dialog. */
export class InviteDialog {
  /** @type {InviteElements} */ #ui;
  /** @type {import("./api.js").Api} */ #api;

  /**
   * @param {InviteElements} ui
   * @param {import("./api.js").Api} api
   */
  constructor(ui, api) {
    this.#ui = ui;
    this.#api = api;
    ui.form.addEventListener("submit", (event) => {
      event.preventDefault();
      ui.dialog.close();
    });
    ui.copy.addEventListener("click", () => this.#copy());
  }

  /**
   * Makes an invite and shows it, copied if the browser lets the page write to the clipboard;
   * throws the ApiError when the server refuses.
   */
  async open() {
    const ui = this.#ui;
    const invite = await this.#api.invite();
    ui.link.value = invite.url;
    const until = invite.expiresAt ? new Date(invite.expiresAt) : null;
    ui.help.textContent = "Send this link to one person: it makes one account and works once" +
      (until ? `, until ${until.toLocaleString([], dateStyle)}.` : ".");
    ui.status.textContent = "";
    ui.dialog.showModal();
    ui.link.focus();
    ui.link.select();
    await this.#copy();
  }

  async #copy() {
    const ui = this.#ui;
    ui.link.select();
    const copied = await copyText(ui.link.value);
    ui.status.textContent = copied
      ? "Copied to the clipboard."
      : "Copy the link from the box (the browser does not let the page copy it).";
  }
}

const dateStyle = /** @type {const} */ ({ dateStyle: "medium", timeStyle: "short" });

/**
 * Puts `text` on the clipboard; false when the browser refuses (no permission, or plain http on
 * another machine, where the Clipboard API does not exist).
 * @param {string} text
 * @returns {Promise<boolean>}
 */
async function copyText(text) {
  try {
    if (!navigator.clipboard) return false;
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    return false;
  }
}
