// Every script of the site lives here: the Content-Security-Policy allows no inline script or
// handler, so templates mark elements with data- attributes and this file gives them behaviour.

// A refused form (422) that names where it goes (HX-Retarget) is the form sent back with why
// next to its field and the text as typed: htmx leaves 4xx answers out unless told to swap.
document.addEventListener("htmx:beforeSwap", (event) => {
  const xhr = event.detail.xhr;
  if (xhr.status !== 422 || !xhr.getResponseHeader("HX-Retarget")) return;
  event.detail.shouldSwap = true;
  event.detail.isError = false;
});
document.addEventListener("htmx:afterSwap", (event) => {
  const xhr = event.detail.xhr;
  if (xhr.status !== 422 || !xhr.getResponseHeader("HX-Retarget")) return;
  const form = document.querySelector(xhr.getResponseHeader("HX-Retarget"));
  form?.querySelector("[aria-invalid]")?.focus();  // the field to correct, its error read out
});

// Shows why an htmx request failed (rate limit, expired session) in the status line.
document.addEventListener("htmx:responseError", (event) => {
  const line = document.getElementById("status-line");
  if (!line) return;
  const text = event.detail.xhr.responseText || "";
  let message = text.length < 300 ? text : "";
  try { message = JSON.parse(text).detail || message; } catch (_) { /* plain text */ }
  line.textContent = message || `Request failed (${event.detail.xhr.status}).`;
  line.hidden = false;
});

// A button marked data-copy="ID" copies that element's text (the paper page's citation). It
// is hidden until this script runs; where the clipboard is not allowed (plain http on another
// host) it selects the text instead, for the visitor to copy.
document.addEventListener("DOMContentLoaded", () => {
  for (const button of document.querySelectorAll("button[data-copy]")) button.hidden = false;
});
document.addEventListener("click", (event) => {
  const button = event.target.closest?.("button[data-copy]");
  const source = button && document.getElementById(button.dataset.copy);
  if (!source) return;
  const select = () => window.getSelection()?.selectAllChildren(source);
  if (!navigator.clipboard) return select();
  navigator.clipboard.writeText(source.textContent).then(
    () => { button.textContent = "Copied"; },
    select,
  );
});

// A form marked data-reset-after-post (the comment form) empties itself once its post
// succeeds, drops the error a refused post left, and the "no comments yet" line goes.
document.addEventListener("htmx:afterRequest", (event) => {
  const form = event.detail.elt;
  if (event.detail.xhr.status >= 300 || !form.matches("form[data-reset-after-post]")) return;
  // a form sent back refused holds the typed text as its default: empty it, not back to that
  for (const field of form.querySelectorAll("textarea")) field.defaultValue = "";
  form.reset();
  form.querySelector("[data-form-error]")?.remove();
  for (const field of form.querySelectorAll("[aria-invalid]")) {
    field.removeAttribute("aria-invalid");
    field.removeAttribute("aria-describedby");
  }
  document.querySelector(".no-comments")?.remove();
});

// A form marked data-submit-once (deleting a comment) sends one request however often its
// button is clicked: the second click of a double-click would otherwise land on "not found".
document.addEventListener("submit", (event) => {
  const form = event.target.closest?.("form[data-submit-once]");
  if (!form) return;
  if (form.dataset.sent) return event.preventDefault();
  form.dataset.sent = "1";
});

// A form marked data-confirm="question" (deleting a collection) asks before it is sent; it
// asks first (capture), so a form refused here is not counted as sent by data-submit-once.
document.addEventListener("submit", (event) => {
  const form = event.target.closest?.("form[data-confirm]");
  if (!form || window.confirm(form.dataset.confirm)) return;
  event.preventDefault();
  event.stopImmediatePropagation();
}, true);

// A page that comes back with a refused form's error (a form far down the settings page, on a
// phone) shows the error, not the top of the page.
document.addEventListener("DOMContentLoaded", () => {
  const error = document.querySelector("main .notice.error[role=alert]");
  if (error && error.getBoundingClientRect().top > window.innerHeight) {
    error.scrollIntoView({ block: "center" });
  }
});
