// Functions: the namespace's functions, searched by name and paged (GET .../functions).
import { api, path } from "../api.js";
import { currentParams, h, link, navigate, time, viewUrl } from "../dom.js";
import { errorNotice } from "./common.js";

/** Functions per page. */
const PAGE_SIZE = 20;
/** Wait after the last keystroke before searching, in ms. */
const SEARCH_DEBOUNCE_MS = 250;

export async function render(container, params, { namespace }) {
  const search = params.get("search") ?? "";
  const offset = Math.max(0, Number.parseInt(params.get("offset") ?? "0", 10) || 0);
  const input = h("input", {
    id: "function-search",
    type: "search",
    value: search,
    maxlength: 60,
    placeholder: "part of a name",
    autocomplete: "off",
  });
  const results = h("div", { class: "results" }, h("p", { class: "muted" }, "Loading…"));
  container.append(
    h(
      "div",
      { class: "title-row" },
      h("h1", {}, "Functions ", h("span", { class: "muted" }, `in ${namespace}`)),
      link("Create function", "create", { ns: namespace }, { class: "button primary" }),
    ),
    h(
      "form",
      { class: "toolbar", role: "search", onsubmit: (event) => event.preventDefault() },
      h("label", { for: "function-search" }, "Search by name"),
      input,
    ),
    results,
  );
  let timer;
  input.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(() => {
      const next = input.value.trim();
      navigate(viewUrl("functions", { ns: namespace, search: next }), { replace: true });
    }, SEARCH_DEBOUNCE_MS);
  });
  if (currentParams().has("search")) {
    input.focus();
    input.setSelectionRange(input.value.length, input.value.length);
  }

  try {
    const { body } = await api("GET", path("v1", "namespaces", namespace, "functions"), {
      query: { search: search || undefined, offset, limit: PAGE_SIZE },
    });
    results.replaceChildren(table(body, namespace, search, offset));
  } catch (error) {
    results.replaceChildren(errorNotice(error, { namespace }));
  }
  return () => clearTimeout(timer);
}

function table(body, namespace, search, offset) {
  if (body.total === 0) {
    return h(
      "p",
      { class: "empty" },
      search ? `No function's name contains “${search}”.` : "No functions in this namespace yet. ",
      search ? "" : link("Create one", "create", { ns: namespace }),
    );
  }
  const rows = body.functions.map((fn) =>
    h(
      "tr",
      {},
      h("td", {}, link(fn.name, "function", { ns: namespace, fn: fn.name })),
      h("td", {}, fn.runtime),
      h("td", {}, fn.asyncRunEnable ? "async" : "sync"),
      h("td", { class: "num" }, `${fn.timeout} s`),
      h("td", { class: "num" }, `${fn.memorySize} MB`),
      h("td", { class: "num" }, String(fn.maxConcurrency)),
      h("td", {}, time(fn.updatedAt)),
      h("td", {}, link("Events", "events", { ns: namespace, fn: fn.name })),
    ),
  );
  const last = Math.min(offset + body.functions.length, body.total);
  return h(
    "div",
    {},
    h(
      "table",
      { class: "grid", id: "functions-table" },
      h("caption", { class: "sr-only" }, `Functions of ${namespace}`),
      h(
        "thead",
        {},
        h(
          "tr",
          {},
          ["Name", "Runtime", "Execution", "Timeout", "Memory", "Concurrency", "Updated", ""].map((label) =>
            h("th", { scope: "col" }, label),
          ),
        ),
      ),
      h("tbody", {}, rows),
    ),
    pager(offset, last, body.total, PAGE_SIZE, (next) => viewUrl("functions", { ns: namespace, search, offset: next })),
  );
}

/** Previous/next links and "first–last of total". */
export function pager(offset, last, total, size, urlOf) {
  return h(
    "nav",
    { class: "pager", "aria-label": "Pages" },
    offset > 0 ? h("a", { href: urlOf(Math.max(0, offset - size)), rel: "prev" }, "← Previous") : h("span"),
    h("span", { class: "muted" }, `${total === 0 ? 0 : offset + 1}–${last} of ${total}`),
    last < total ? h("a", { href: urlOf(offset + size), rel: "next" }, "Next →") : h("span"),
  );
}
