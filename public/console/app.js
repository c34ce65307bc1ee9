// The console's entry: sign-in, the header, and the router. A view is chosen by the URL's query
// (`/console?view=events&ns=default&fn=etl&statuses=FAILED`), so a link or a reload restores it.
import { ApiError, api, clearSession, path, saveSession, session } from "./api.js";
import { currentParams, navigate, viewUrl } from "./dom.js";

/** The views: each module exports render(container, params, context) → optional cleanup. */
const VIEWS = {
  functions: () => import("./views/functions.js"),
  create: () => import("./views/function-form.js"),
  function: () => import("./views/function.js"),
  events: () => import("./views/events.js"),
  event: () => import("./views/event.js"),
};

const elements = {
  signIn: document.getElementById("sign-in"),
  signInForm: document.getElementById("sign-in-form"),
  signInError: document.getElementById("sign-in-error"),
  view: document.getElementById("view"),
  nav: document.getElementById("nav"),
  who: document.getElementById("who"),
  whoId: document.getElementById("who-id"),
  namespaceForm: document.getElementById("namespace-form"),
  namespaceInput: document.getElementById("namespace-input"),
};

let cleanup;
let rendering = 0;

/** Shows the sign-in form (and nothing else). */
function showSignIn() {
  elements.signIn.hidden = false;
  elements.view.replaceChildren();
  for (const part of [elements.nav, elements.who, elements.namespaceForm]) part.hidden = true;
  document.getElementById("secret-id").focus();
}

/** Renders the view the URL names. */
async function route() {
  const render = ++rendering;
  cleanup?.();
  cleanup = undefined;
  const current = session();
  if (!current) return showSignIn();
  elements.signIn.hidden = true;
  for (const part of [elements.nav, elements.who, elements.namespaceForm]) part.hidden = false;
  elements.whoId.textContent = current.secretId;
  const params = currentParams();
  const namespace = params.get("ns") || current.namespace || "default";
  elements.namespaceInput.value = namespace;
  const name = params.get("view") ?? "functions";
  const load = VIEWS[name] ?? VIEWS.functions;
  for (const item of elements.nav.querySelectorAll("[data-nav]")) {
    if (item.dataset.nav === name) item.setAttribute("aria-current", "page");
    else item.removeAttribute("aria-current");
  }
  const module = await load();
  if (render !== rendering) return;
  const container = document.createElement("div");
  elements.view.replaceChildren(container);
  cleanup = await module.render(container, params, { namespace, session: current });
  const heading = container.querySelector("h1");
  if (heading) document.title = `${heading.textContent} · Async Functions console`;
}

elements.signInForm.addEventListener("submit", async (event) => {
  event.preventDefault();
  const data = new FormData(elements.signInForm);
  const credentials = {
    secretId: String(data.get("secretId") ?? "").trim(),
    secretKey: String(data.get("secretKey") ?? "").trim(),
    namespace: String(data.get("namespace") ?? "").trim() || "default",
  };
  elements.signInError.textContent = "";
  if (!credentials.secretId || !credentials.secretKey) {
    elements.signInError.textContent = "Enter both the SecretId and the SecretKey.";
    return;
  }
  const button = elements.signInForm.querySelector("button[type=submit]");
  button.disabled = true;
  try {
    // The cheapest authenticated read that also tells whether the namespace is visible.
    await api("GET", path("v1", "namespaces", credentials.namespace, "functions"), {
      query: { limit: 1 },
      credentials,
    });
    saveSession(credentials);
    elements.signInForm.reset();
    // A shared link opened before signing in shows its view now; otherwise the functions.
    const shared = currentParams().has("view");
    navigate(shared ? `/console${location.search}` : viewUrl("functions", { ns: credentials.namespace }), {
      replace: true,
    });
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) {
      elements.signInError.textContent = "These credentials were refused: check the SecretId and SecretKey.";
    } else if (error instanceof ApiError && (error.status === 404 || error.status === 400)) {
      elements.signInError.textContent = `The namespace “${credentials.namespace}” is not visible with these credentials.`;
    } else {
      elements.signInError.textContent = error.message;
    }
  } finally {
    button.disabled = false;
  }
});

document.getElementById("sign-out").addEventListener("click", () => {
  clearSession();
  navigate("/console", { replace: true });
});

elements.namespaceForm.addEventListener("submit", (event) => {
  event.preventDefault();
  const namespace = elements.namespaceInput.value.trim();
  if (!namespace) return;
  const current = session();
  if (current) saveSession({ ...current, namespace });
  navigate(viewUrl("functions", { ns: namespace }));
});

// Links inside the console change the view without a reload (modified clicks keep the browser's way).
document.addEventListener("click", (event) => {
  const anchor = event.target instanceof Element ? event.target.closest("a[href]") : null;
  if (!anchor || event.defaultPrevented || event.button !== 0) return;
  if (event.metaKey || event.ctrlKey || event.shiftKey || event.altKey || anchor.target) return;
  const url = new URL(anchor.href);
  if (url.origin !== location.origin || url.pathname !== "/console") return;
  event.preventDefault();
  navigate(url.pathname + url.search);
  document.getElementById("main").focus({ preventScroll: true });
});

window.addEventListener("popstate", route);
window.addEventListener("console:navigate", route);
route();
