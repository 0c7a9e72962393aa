// Shared by the pages: the API key session, JSON calls, /v1/config, signed URLs, small DOM helpers.
//
// The key is typed once into the header form and kept in sessionStorage (this tab,
// until it closes). It is sent only as an Authorization header, and only to this
// page's own origin: every keyed request goes through api(), which resolves
// relative URLs and re-bases absolute ones from API answers onto location.origin.
// It never goes into a URL and is never logged.

const SLOT = { owner: "imagehost.key.owner", reviewer: "imagehost.key.reviewer" };

export class ApiError extends Error {
  constructor(status, body) {
    super(body?.message || `HTTP ${status}`);
    this.status = status;
    this.code = body?.error || `http_${status}`;
  }
}

/** A URL from an API answer, moved onto this page's origin (the key goes nowhere else). */
export function ownOrigin(url) {
  const u = new URL(url, document.baseURI);
  return u.origin === location.origin ? u.href : new URL(u.pathname + u.search, location.origin).href;
}

let role = "owner";

export const session = {
  get role() { return role; },
  get key() { return sessionStorage.getItem(SLOT[role]) || ""; },
  set(key) { sessionStorage.setItem(SLOT[role], key); },
  clear() { sessionStorage.removeItem(SLOT[role]); },
};

export async function api(path, { method = "GET", body, key = session.key } = {}) {
  const headers = { Accept: "application/json" };
  if (key) headers.Authorization = `Bearer ${key}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const resp = await fetch(ownOrigin(path), {
    method, headers, body: body === undefined ? undefined : JSON.stringify(body),
    credentials: "omit", cache: "no-store",
  });
  const data = resp.status === 204 ? null : await resp.json().catch(() => null);
  if (!resp.ok) throw new ApiError(resp.status, data);
  return data;
}

let config;
/** GET /v1/config, once: {max_bytes, widths, thumb_sizes, signing_required, accepted_types}. */
export function getConfig() {
  config ??= api("v1/config", { key: "" });
  return config;
}

/**
 * Delivery URLs for `urls` (absolute, from API answers) that this browser can load:
 * unchanged, or signed in one POST /v1/sign when the host requires signatures.
 */
export async function deliverable(urls, expiresIn = 3600) {
  const { signing_required: signing } = await getConfig();
  if (!signing || urls.length === 0) return urls;
  const out = [];
  for (let i = 0; i < urls.length; i += 500) {
    const paths = urls.slice(i, i + 500).map((u) => new URL(u).pathname);
    const signed = await api("v1/sign", { method: "POST", body: { paths, expires_in: expiresIn } });
    out.push(...signed.urls);
  }
  return out;
}

/** h("li", {class: "x", dataset: {id}}, child, "text", …): a small element builder (no innerHTML). */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (name === "dataset") Object.assign(el.dataset, value);
    else if (name.startsWith("on")) el.addEventListener(name.slice(2), value);
    else if (name in el && name !== "list" && typeof value !== "string") el[name] = value;
    else el.setAttribute(name, value === true ? "" : value);
  }
  el.append(...children.flat().filter((c) => c !== undefined && c !== null && c !== false));
  return el;
}

export function formatBytes(n) {
  if (n < 1024) return `${n} B`;
  const units = ["KB", "MB", "GB"];
  let i = -1;
  do { n /= 1024; i += 1; } while (n >= 1024 && i < units.length - 1);
  return `${n.toFixed(n < 10 ? 1 : 0)} ${units[i]}`;
}

/** "IMG_0001.HEIC" → "IMG_0001": alt text and labels from file names. */
export function stem(filename) {
  const name = (filename || "").split(/[\\/]/).pop();
  return name.replace(/\.[A-Za-z0-9]{1,5}$/, "") || "image";
}

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * The header's sign-in form. `check(key)` proves a key (an API call that needs it);
 * `onSignedIn()` runs once a key is held, now or on a later sign-in.
 */
export function setupSession({ as = "owner", check, onSignedIn, onSignedOut }) {
  role = as;
  const form = document.getElementById("signin");
  const input = document.getElementById("key");
  const error = document.getElementById("signin-error");
  const signedIn = document.getElementById("signed-in");
  const signOut = document.getElementById("signout");
  const gate = document.getElementById("gate");

  const show = (held) => {
    form.hidden = held;
    signedIn.hidden = !held;
    if (gate) gate.hidden = held;
    document.body.classList.toggle("has-key", held);
  };

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const key = input.value.trim();
    if (!key) return;
    error.textContent = "";
    try {
      await check(key);
    } catch (err) {
      error.textContent = err.status === 401 ? "This key is not known to the host."
        : err.status === 403 ? `This key cannot do that (${as === "reviewer" ? "a reviewer key is needed" : err.message}).`
          : `Could not check the key: ${err.message}`;
      input.focus();
      return;
    }
    input.value = "";
    session.set(key);
    show(true);
    onSignedIn();
  });

  signOut.addEventListener("click", () => {
    session.clear();
    show(false);
    onSignedOut?.();
    input.focus();
  });

  if (session.key) {
    show(true);
    onSignedIn();
  } else {
    show(false);
  }
}
