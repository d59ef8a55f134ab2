// @ts-check
/// <reference lib="dom" />
/**
 * What the page's forms share: an error shown under the fields (and the field it is about marked),
 * a button that says what it is doing while a request is out, and modal dialogs.
 */

/**
 * Shows `text` in `error` ("" clears it) and marks `field` invalid (and focuses it) if there is one.
 * @param {HTMLElement} error
 * @param {string} text
 * @param {HTMLInputElement[]} fields every field of the form; all but `field` are marked valid
 * @param {HTMLInputElement | null} [field]
 */
export function showFormError(error, text, fields, field = null) {
  error.textContent = text;
  for (const each of fields) each.setAttribute("aria-invalid", String(each === field));
  field?.focus();
}

/**
 * Runs `work` with `button` disabled and showing `text`; afterwards the button is as it was.
 * @template T
 * @param {HTMLButtonElement} button
 * @param {string} text
 * @param {() => Promise<T>} work
 * @returns {Promise<T>}
 */
export async function whileBusy(button, text, work) {
  const label = button.textContent;
  button.disabled = true;
  button.textContent = text;
  try {
    return await work();
  } finally {
    button.disabled = false;
    button.textContent = label;
  }
}

/**
 * The elements of a confirmation dialog.
 * @typedef {{
 *   dialog: HTMLDialogElement, form: HTMLFormElement, title: HTMLElement, text: HTMLElement,
 *   ok: HTMLButtonElement, cancel: HTMLButtonElement
 * }} ConfirmElements
 */

/**
 * Asks the person to confirm something that cannot be undone; true if they did.
 * @param {ConfirmElements} ui
 * @param {{ title: string, text: string, ok: string }} question
 * @returns {Promise<boolean>}
 */
export function confirmAction(ui, question) {
  ui.title.textContent = question.title;
  ui.text.textContent = question.text;
  ui.ok.textContent = question.ok;
  return new Promise((resolve) => {
    const done = (/** @type {boolean} */ answer) => {
      ui.form.removeEventListener("submit", onSubmit);
      ui.cancel.removeEventListener("click", onCancel);
      ui.dialog.removeEventListener("close", onCancel);
      if (ui.dialog.open) ui.dialog.close();
      resolve(answer);
    };
    const onSubmit = (/** @type {SubmitEvent} */ event) => {
      event.preventDefault();
      done(true);
    };
    const onCancel = () => done(false);
    ui.form.addEventListener("submit", onSubmit);
    ui.cancel.addEventListener("click", onCancel);
    ui.dialog.addEventListener("close", onCancel);
    ui.dialog.showModal();
    ui.cancel.focus();
  });
}

/**
 * Closes `dialog` when `cancel` is clicked; Escape closes it by itself.
 * @param {HTMLDialogElement} dialog
 * @param {HTMLButtonElement} cancel
 */
export function closesWith(dialog, cancel) {
  cancel.addEventListener("click", () => dialog.close());
}
