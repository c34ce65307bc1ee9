// Small DOM helpers: elements built with text nodes only (nothing from the API is parsed as HTML),
// navigation by the URL's query (so every view can be shared and reloaded), and the confirm dialog.

/** An element: h("a", {href: "..."}, "text", child, ...). `on*` attributes add listeners. */
export function h(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  for (const [key, value] of Object.entries(attributes ?? {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on") && typeof value === "function") element.addEventListener(key.slice(2), value);
    else if (key === "class") element.className = value;
    else if (key === "dataset") Object.assign(element.dataset, value);
    else if (value === true) element.setAttribute(key, "");
    else element.setAttribute(key, String(value));
  }
  append(element, children);
  return element;
}

function append(element, children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

const SVG_NS = "http://www.w3.org/2000/svg";
/** An SVG element (the chart). */
export function svg(tag, attributes = {}, ...children) {
  const element = document.createElementNS(SVG_NS, tag);
  for (const [key, value] of Object.entries(attributes)) element.setAttribute(key, String(value));
  append(element, children);
  return element;
}

/** The console URL of a view with its parameters. */
export function viewUrl(view, params = {}) {
  const query = new URLSearchParams({ view });
  for (const [key, value] of Object.entries(params)) {
    if (value === undefined || value === null || value === "") continue;
    query.set(key, Array.isArray(value) ? value.join(",") : String(value));
  }
  return `/console?${query}`;
}

/** A link to a view, handled by the router (a normal link otherwise: new tab, copy). */
export function link(text, view, params = {}, attributes = {}) {
  return h("a", { href: viewUrl(view, params), ...attributes }, text);
}

/** The current view's parameters. */
export function currentParams() {
  return new URLSearchParams(location.search);
}

/** Goes to a URL of the console without reloading (replace: no new history entry). */
export function navigate(url, { replace = false } = {}) {
  if (replace) history.replaceState(null, "", url);
  else history.pushState(null, "", url);
  window.dispatchEvent(new Event("console:navigate"));
}

/** Asks for confirmation in the modal dialog; resolves true when confirmed. */
export function confirmAction(title, text, confirmLabel = "Confirm") {
  const dialog = document.getElementById("confirm");
  document.getElementById("confirm-title").textContent = title;
  document.getElementById("confirm-text").textContent = text;
  document.getElementById("confirm-ok").textContent = confirmLabel;
  dialog.returnValue = "";
  dialog.showModal();
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "ok"), { once: true });
  });
}

/** A date as local time, to the second (or a dash). */
export function time(value) {
  if (value === null || value === undefined) return "—";
  const date = new Date(value);
  if (Number.isNaN(date.getTime())) return String(value);
  return date.toLocaleString(undefined, { hour12: false });
}

/** A duration in ms as text. */
export function duration(ms) {
  if (ms === null || ms === undefined) return "—";
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(2)} s`;
  return `${Math.floor(ms / 60_000)} min ${Math.round((ms % 60_000) / 1000)} s`;
}

/** A status badge. */
export function badge(status) {
  return h("span", { class: `badge status-${String(status).toLowerCase()}` }, status);
}

/** A message box: kind is "error", "info" or "ok". */
export function notice(kind, ...children) {
  return h("div", { class: `notice ${kind}`, role: kind === "error" ? "alert" : "status" }, ...children);
}

/** A definition list from [label, value] pairs (className "facts pairs": two pairs a row). */
export function facts(pairs, className = "facts") {
  return h(
    "dl",
    { class: className },
    pairs.map(([label, value]) => [h("dt", {}, label), h("dd", {}, value ?? "—")]),
  );
}
