// The review queue (reviewer key): held images with their score and signed preview;
// A approves, R rejects the focused image; the queue is polled, never reloaded.

import { api, ApiError, h, setupSession, stem } from "./common.js";

const POLL_MS = 3000;
const PREVIEW_REFRESH_MS = 8 * 60 * 1000;  // preview URLs are signed for 10 minutes

const queue = document.getElementById("queue");
const status = document.getElementById("review-status");
const shown = new Map();  // id → {el, img, fetched}
let timer = null;
let generation = 0;

function entryElement(entry) {
  const name = entry.filename || entry.id;
  const score = Number(entry.score ?? 0);
  const img = h("img", {
    class: "preview", src: entry.preview_url, alt: `Preview of ${stem(entry.filename)}`,
    width: entry.width, height: entry.height, decoding: "async",
  });
  const approve = h("button", { type: "button", class: "approve", onclick: () => decide(el, "approve") },
    h("kbd", {}, "A"), " Approve");
  const reject = h("button", { type: "button", class: "danger", onclick: () => decide(el, "reject") },
    h("kbd", {}, "R"), " Reject");
  const el = h("li", {
    class: "review-item", tabindex: "0", dataset: { id: entry.id },
    "aria-label": `${name}, score ${score.toFixed(2)}, uploaded by ${entry.owner}`, "aria-keyshortcuts": "A R",
  },
  h("div", { class: "preview-box" }, img),
  h("div", { class: "info" },
    h("p", { class: "name" }, name),
    h("p", { class: "score" }, "Score ",
      h("meter", { min: 0, max: 1, low: 0.3, high: 0.6, optimum: 0, value: score, "aria-label": "moderation score" }),
      ` ${score.toFixed(2)}`),
    h("dl", { class: "meta" },
      h("dt", {}, "Owner"), h("dd", {}, entry.owner),
      h("dt", {}, "Size"), h("dd", {}, `${entry.width} × ${entry.height} px`),
      h("dt", {}, "Uploaded"), h("dd", {}, entry.created_at.replace("T", " ").replace("+00:00", " UTC")),
      entry.detail ? [h("dt", {}, "Why"), h("dd", {}, entry.detail)] : []),
    h("div", { class: "actions" }, approve, reject)));
  shown.set(entry.id, { el, img, fetched: Date.now() });
  return el;
}

function neighbour(el) {
  return el.nextElementSibling || el.previousElementSibling;
}

function drop(id) {
  const item = shown.get(id);
  if (!item) return;
  const hadFocus = item.el.contains(document.activeElement);
  const next = neighbour(item.el);
  item.el.remove();
  shown.delete(id);
  if (hadFocus) (next || document.getElementById("main")).focus();
}

async function decide(el, action) {
  if (el.getAttribute("aria-busy") === "true") return;
  const id = el.dataset.id;
  const name = el.querySelector(".name").textContent;
  el.setAttribute("aria-busy", "true");
  for (const button of el.querySelectorAll("button")) button.disabled = true;
  try {
    await api(`v1/review/${encodeURIComponent(id)}`, { method: "POST", body: { action } });
    status.textContent = action === "approve" ? `Approved ${name}: it is being processed and will be served.`
      : `Rejected ${name}: it has been deleted.`;
  } catch (err) {
    if (err instanceof ApiError && err.status === 404) {
      status.textContent = `${name} was already decided.`;
    } else {
      status.textContent = `Could not ${action} ${name}: ${err.message}`;
      el.removeAttribute("aria-busy");
      for (const button of el.querySelectorAll("button")) button.disabled = false;
      return;
    }
  }
  drop(id);
}

async function refresh(mine) {
  let entries;
  try {
    entries = (await api("v1/review?limit=100")).items;
  } catch (err) {
    status.textContent = err.status === 401 || err.status === 403
      ? "This key is no longer accepted as a reviewer key: sign in again." : `Could not load the queue: ${err.message}`;
    return;
  }
  if (mine !== generation) return;
  const live = new Set(entries.map((e) => e.id));
  for (const id of [...shown.keys()]) {
    if (!live.has(id) && shown.get(id).el.getAttribute("aria-busy") !== "true") drop(id);
  }
  for (const entry of entries) {
    const item = shown.get(entry.id);
    if (!item) {
      queue.append(entryElement(entry));
    } else if (Date.now() - item.fetched > PREVIEW_REFRESH_MS) {
      item.img.src = entry.preview_url;
      item.fetched = Date.now();
    }
  }
  if (shown.size === 0 && !status.textContent) status.textContent = "Nothing is waiting for review.";
  if (shown.size > 0 && status.textContent === "Nothing is waiting for review.") status.textContent = "";
  const first = queue.querySelector("li.review-item");
  if (first && (document.activeElement === document.body || document.activeElement === null)) first.focus();
}

queue.addEventListener("keydown", (event) => {
  const el = event.target.closest("li.review-item");
  if (!el || event.ctrlKey || event.metaKey || event.altKey) return;
  const key = event.key.toLowerCase();
  if (key === "a") decide(el, "approve");
  else if (key === "r") decide(el, "reject");
  else if (key === "arrowdown" || key === "j") el.nextElementSibling?.focus();
  else if (key === "arrowup" || key === "k") el.previousElementSibling?.focus();
  else return;
  event.preventDefault();
});

function start() {
  stop();
  const mine = ++generation;
  const tick = async () => {
    await refresh(mine);
    if (mine === generation) timer = setTimeout(tick, POLL_MS);
  };
  tick();
}

function stop() {
  generation += 1;
  clearTimeout(timer);
  queue.replaceChildren();
  shown.clear();
  status.textContent = "";
}

setupSession({
  as: "reviewer",
  check: (key) => api("v1/review?limit=1", { key }),
  onSignedIn: start,
  onSignedOut: stop,
});
