// @ts-check
/// <reference lib="dom" />
/**
 * The forms of a server with accounts: signing in, and making an account, either the first one
 * (an admin, from the setup link) or with an invite. Each reports the signed-in person.
 */

import { passwordError } from "./api.js";
import { showFormError, whileBusy } from "./forms.js";
import { nameError } from "./protocol.js";

/**
 * The two forms' elements.
 * @typedef {{
 *   signInForm: HTMLFormElement, signInName: HTMLInputElement,
 *   signInPassword: HTMLInputElement, signInError: HTMLElement, signIn: HTMLButtonElement,
 *   accountForm: HTMLFormElement, accountIntro: HTMLElement, accountName: HTMLInputElement,
 *   accountPassword: HTMLInputElement, accountError: HTMLElement, accountSubmit: HTMLButtonElement,
 * }} AccountFormElements
 */

/**
 * What the forms need: their elements, the API, how to show one card of the join view, and what
 * to do once the person is signed in.
 * @typedef {{
 *   ui: AccountFormElements,
 *   api: import("./api.js").Api,
 *   showCard: (form: HTMLFormElement) => void,
 *   onSignedIn: (me: import("./api.js").Me) => void,
 * }} AccountFormOptions
 */

/** What the account form says for each way of arriving at it. */
const ACCOUNT_TEXT = {
  setup: { intro: "Create the admin account of this server.", button: "Create admin account" },
  invite: { intro: "You’re invited. Pick a name and a password to join.", button: "Join" },
};

/** The sign-in form and the account form. */
export class AccountForms {
  /** @type {AccountFormOptions} */ #o;
  /** @type {import("./entry.js").Entry} */ #entry = { kind: "chat" };

  /** @param {AccountFormOptions} options */
  constructor(options) {
    this.#o = options;
    options.ui.signInForm.addEventListener("submit", (event) => this.#signIn(event));
    options.ui.accountForm.addEventListener("submit", (event) => this.#create(event));
  }

  /**
   * Shows the sign-in form; `error` says why the person is asked (again), `name` fills the field.
   * @param {string} [error]
   * @param {string} [name]
   */
  showSignIn(error = "", name = "") {
    const { ui } = this.#o;
    this.#o.showCard(ui.signInForm);
    if (name) ui.signInName.value = name;
    ui.signInPassword.value = "";
    showFormError(ui.signInError, error, [ui.signInName, ui.signInPassword]);
    (ui.signInName.value ? ui.signInPassword : ui.signInName).focus();
  }

  /**
   * Shows the form that makes an account from the setup link or an invite.
   * @param {{ kind: "setup", token: string } | { kind: "invite", code: string }} entry
   */
  showAccount(entry) {
    const { ui } = this.#o;
    this.#entry = entry;
    const text = ACCOUNT_TEXT[entry.kind];
    ui.accountIntro.textContent = text.intro;
    ui.accountSubmit.textContent = text.button;
    this.#o.showCard(ui.accountForm);
    const missing = entry.kind === "setup" && !entry.token
      ? "This setup link has no token: use the whole link parley printed when it started."
      : "";
    showFormError(ui.accountError, missing, [ui.accountName, ui.accountPassword]);
    ui.accountName.focus();
  }

  /** @param {SubmitEvent} event */
  async #signIn(event) {
    event.preventDefault();
    const { ui, api } = this.#o;
    const fields = [ui.signInName, ui.signInPassword];
    const name = ui.signInName.value.trim();
    const password = ui.signInPassword.value;
    const problem = nameError(name);
    if (problem || !password) {
      const field = problem ? ui.signInName : ui.signInPassword;
      showFormError(ui.signInError, problem || "Enter your password.", fields, field);
      return;
    }
    showFormError(ui.signInError, "", fields);
    try {
      const me = await whileBusy(ui.signIn, "Signing in…", () => api.signIn(name, password));
      ui.signInPassword.value = "";
      this.#o.onSignedIn(me);
    } catch (error) {
      showFormError(
        ui.signInError,
        /** @type {Error} */ (error).message,
        fields,
        ui.signInPassword,
      );
      ui.signInPassword.select();
    }
  }

  /** @param {SubmitEvent} event */
  async #create(event) {
    event.preventDefault();
    const { ui, api } = this.#o;
    const entry = this.#entry;
    if (entry.kind === "chat") return;
    const fields = [ui.accountName, ui.accountPassword];
    const name = ui.accountName.value.trim();
    const password = ui.accountPassword.value;
    const nameProblem = nameError(name);
    const problem = nameProblem || passwordError(password);
    if (problem) {
      showFormError(
        ui.accountError,
        problem,
        fields,
        nameProblem ? ui.accountName : ui.accountPassword,
      );
      return;
    }
    showFormError(ui.accountError, "", fields);
    try {
      const me = await whileBusy(
        ui.accountSubmit,
        "Creating the account…",
        () =>
          entry.kind === "setup"
            ? api.setup(entry.token, name, password)
            : api.join(entry.code, name, password),
      );
      ui.accountPassword.value = "";
      this.#o.onSignedIn(me);
    } catch (error) {
      const { status, message } = /** @type {import("./api.js").ApiError} */ (error);
      if (entry.kind === "setup" && status === 409) {
        this.showSignIn("This server has its admin already; sign in.");
        return;
      }
      showFormError(ui.accountError, message, fields, status === 409 ? ui.accountName : null);
    }
  }
}
