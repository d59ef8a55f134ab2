// @ts-check
/// <reference lib="dom" />
/**
 * Private rooms (with accounts): the dialog that makes one, and the dialog that adds people to the
 * room on screen or removes them.
 */

import { closesWith, showFormError, whileBusy } from "./forms.js";
import { nameError, roomError } from "./protocol.js";

/**
 * The two dialogs' elements.
 * @typedef {{
 *   roomDialog: HTMLDialogElement, roomForm: HTMLFormElement, roomName: HTMLInputElement,
 *   roomError: HTMLElement, roomCancel: HTMLButtonElement, roomCreate: HTMLButtonElement,
 *   membersDialog: HTMLDialogElement, membersForm: HTMLFormElement, membersTitle: HTMLElement,
 *   memberName: HTMLInputElement, membersStatus: HTMLElement, membersError: HTMLElement,
 *   membersClose: HTMLButtonElement, memberAdd: HTMLButtonElement,
 *   memberRemove: HTMLButtonElement,
 * }} RoomDialogElements
 */

/**
 * What the dialogs need: their elements, the API, the room on screen, and what to do when a room
 * was made (open it) or its members changed (list the rooms again).
 * @typedef {{
 *   ui: RoomDialogElements,
 *   api: import("./api.js").Api,
 *   room: () => string,
 *   onCreated: (room: string) => void,
 *   onChanged: () => void,
 * }} RoomDialogOptions
 */

/** "New private room" and "Members". */
export class RoomDialogs {
  /** @type {RoomDialogOptions} */ #o;

  /** @param {RoomDialogOptions} options */
  constructor(options) {
    this.#o = options;
    const { ui } = options;
    closesWith(ui.roomDialog, ui.roomCancel);
    closesWith(ui.membersDialog, ui.membersClose);
    ui.roomForm.addEventListener("submit", (event) => this.#create(event));
    ui.membersForm.addEventListener("submit", (event) => this.#change(event));
  }

  /** Opens "New private room". */
  openNewRoom() {
    const { ui } = this.#o;
    ui.roomName.value = "";
    showFormError(ui.roomError, "", [ui.roomName]);
    ui.roomDialog.showModal();
    ui.roomName.focus();
  }

  /**
   * Opens "Members" for the room on screen, shown as `label`; `name` fills the field.
   * @param {string} label
   * @param {string} [name]
   */
  openMembers(label, name = "") {
    const { ui } = this.#o;
    ui.membersTitle.textContent = `People in #${label}`;
    ui.memberName.value = name;
    ui.membersStatus.textContent = "";
    showFormError(ui.membersError, "", [ui.memberName]);
    ui.membersDialog.showModal();
    ui.memberName.focus();
  }

  /** @param {SubmitEvent} event */
  async #create(event) {
    event.preventDefault();
    const { ui, api } = this.#o;
    const room = ui.roomName.value.trim();
    const problem = roomError(room);
    if (problem) {
      showFormError(ui.roomError, problem, [ui.roomName], ui.roomName);
      return;
    }
    try {
      await whileBusy(ui.roomCreate, "Creating…", () => api.createPrivateRoom(room));
      ui.roomDialog.close();
      this.#o.onCreated(room);
    } catch (error) {
      showFormError(ui.roomError, /** @type {Error} */ (error).message, [ui.roomName], ui.roomName);
    }
  }

  /** @param {SubmitEvent} event */
  async #change(event) {
    event.preventDefault();
    const { ui, api } = this.#o;
    const remove = event.submitter === ui.memberRemove;
    const name = ui.memberName.value.trim();
    const room = this.#o.room();
    ui.membersStatus.textContent = "";
    const problem = nameError(name);
    if (problem) {
      showFormError(ui.membersError, problem, [ui.memberName], ui.memberName);
      return;
    }
    const button = remove ? ui.memberRemove : ui.memberAdd;
    try {
      await whileBusy(
        button,
        remove ? "Removing…" : "Adding…",
        () => remove ? api.removeMember(room, name) : api.addMember(room, name),
      );
      showFormError(ui.membersError, "", [ui.memberName]);
      ui.membersStatus.textContent = remove
        ? `${name} was removed from the room.`
        : `${name} was added to the room.`;
      ui.memberName.value = "";
      ui.memberName.focus();
      this.#o.onChanged();
    } catch (error) {
      showFormError(ui.membersError, /** @type {Error} */ (error).message, [ui.memberName]);
    }
  }
}
