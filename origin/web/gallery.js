// The gallery: the owner's images (GET /v1/images, paginated), thumbnails the browser
// negotiates (sm URLs without a format: AVIF or WebP) over their ThumbHash placeholders until
// they load, metadata, variant URLs, a ready-to-copy <img srcset sizes> snippet with the
// placeholder as its background (signed when the host requires it), delete.

import { api, ApiError, deliverable, formatBytes, getConfig, h, setupSession, sleep, stem } from "./common.js";

const PAGE = 24;
const RESTING = new Set(["ready", "held", "quarantined"]);
const SIGNED_FOR = 30 * 24 * 3600;  // seconds: signed URLs in links and snippets
const DISPLAY_WIDTH = 800;  // the CSS width the snippet's `sizes` assumes at most

const grid = document.getElementById("gallery");
const status = document.getElementById("gallery-status");
const more = document.getElementById("more");
const dialog = document.getElementById("confirm-delete");

let cursor = null;
let generation = 0;  // a sign-out or a new sign-in abandons what an older load was doing

function escapeAttr(text) {
  return String(text).replace(/&/g, "&amp;").replace(/"/g, "&quot;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}

/** The allow-listed widths this image has (never upscaled: at most its own width, at least the smallest). */
function widthsFor(info, config) {
  const smallest = Math.min(...config.widths);
  return config.widths.filter((w) => w <= Math.max(info.width, smallest));
}

function snippet(info, config, url) {
  const widths = widthsFor(info, config);
  const src = widths.find((w) => w >= 600) ?? widths[widths.length - 1];
  const shown = Math.min(info.width, DISPLAY_WIDTH);
  const srcset = widths.map((w) => `${url(info.urls.widths[`w${w}`])} ${w}w`).join(", ");
  return `<img src="${escapeAttr(url(info.urls.widths[`w${src}`]))}"\n` +
    `     srcset="${escapeAttr(srcset)}"\n` +
    `     sizes="(max-width: ${shown}px) 100vw, ${shown}px"\n` +
    `     width="${info.width}" height="${info.height}" alt="${escapeAttr(stem(info.filename))}"\n` +
    `     loading="lazy" decoding="async"` +
    (info.placeholder ? `\n     style="background: url(${escapeAttr(info.placeholder)}) center / cover no-repeat"` : "") + ">";
}

/** Whether a ThumbHash (base64) records transparency: its third byte's top bit. */
function hashHasAlpha(thumbhash) {
  return (atob(thumbhash).charCodeAt(2) & 0x80) !== 0;
}

/**
 * The placeholder behind a thumbnail until it draws: set through the CSSOM (the page's CSP allows no
 * inline style), taken away once a picture with transparency has loaded so it does not show through.
 * An image given no ThumbHash yet uses its placeholder URL, whose first request makes one.
 */
function withPlaceholder(img, info, signed) {
  const source = info.placeholder || (info.urls.placeholder && signed(info.urls.placeholder));
  if (!source) return img;
  img.classList.add("blurred");
  img.style.backgroundImage = `url("${source}")`;
  if (!info.thumbhash || hashHasAlpha(info.thumbhash)) {
    img.addEventListener("load", () => img.style.removeProperty("background-image"), { once: true });
  }
  return img;
}

function variantLinks(info, config) {
  const links = [["original", info.urls.original]];
  for (const w of widthsFor(info, config)) links.push([`w${w}`, info.urls.widths[`w${w}`]]);
  for (const [name, url] of Object.entries(info.urls.square)) links.push([name, url]);
  for (const [name, url] of Object.entries(info.urls.smart)) links.push([name, url]);
  for (const [name, url] of Object.entries(info.urls.presets || {})) links.push([name, url]);  // IMAGEHOST_PRESETS
  return links;
}

function row(term, value) {
  return [h("dt", {}, term), h("dd", {}, value)];
}

function describe(info) {
  const m = info.metadata || {};
  const camera = [m.camera_make, m.camera_model].filter(Boolean).join(" ");
  return h("dl", { class: "meta" },
    row("Size", `${info.width} × ${info.height} px, ${formatBytes(info.bytes)}`),
    row("Format", `${m.format || info.content_type}${m.has_icc_profile ? ", ICC profile" : ""}`),
    row("Camera", camera || "not recorded"),
    row("Captured", m.captured_at ? m.captured_at.replace("T", " ") : "not recorded"),
    row("Location", m.gps_present ? "GPS stripped from public copies" : "no GPS in the upload"),
    row("Uploaded", info.created_at.replace("T", " ").replace("+00:00", " UTC")));
}

/** One card. `signed` maps an API URL to the URL to use (itself, or signed). */
function card(info, config, signed) {
  const name = info.filename || info.id;
  const el = h("li", { class: "card", id: `img-${info.id}`, dataset: { id: info.id, state: info.state } });
  let figure;
  if (info.state === "ready") {
    const sizes = config.thumb_sizes.filter((s) => s >= 150);
    const largest = sizes[sizes.length - 1] ?? config.thumb_sizes[config.thumb_sizes.length - 1];
    const img = h("img", {
      class: "thumb",
      src: signed(info.urls.smart[`sm${largest}`]),
      srcset: sizes.map((s) => `${signed(info.urls.smart[`sm${s}`])} ${s}w`).join(", "),
      sizes: "(max-width: 420px) 90vw, 300px",
      width: 300, height: 300, alt: stem(info.filename), decoding: "async",
    });
    withPlaceholder(img, info, signed);
    figure = h("figure", {}, h("a", { href: signed(info.urls.original), class: "thumb-link" }, img),
      h("figcaption", {}, name));
  } else {
    const why = info.state === "quarantined" ? `refused: ${info.reason}`
      : info.state === "held" ? "held for review" : `${info.state}…`;
    figure = h("figure", {}, h("div", { class: "thumb placeholder", role: "img", "aria-label": `${name}: ${why}` },
      h("span", {}, why)), h("figcaption", {}, name, " ", h("span", { class: `badge ${info.state}` }, info.state)));
  }
  el.append(figure);

  if (info.state === "ready") {
    el.append(describe(info));
    const links = h("ul", { class: "variants" },
      variantLinks(info, config).map(([label, url]) => h("li", {}, h("a", { href: signed(url) }, label))));
    el.append(h("details", {}, h("summary", {}, "Variant URLs"), links,
      h("p", { class: "muted small" }, "Without an extension the format follows the browser's Accept; " +
        "add .avif, .webp, .jpeg or .png to fix it.")));
    const area = h("textarea", { id: `snippet-${info.id}`, readonly: true, rows: 9, spellcheck: "false" });
    area.value = snippet(info, config, signed);
    const copied = h("span", { class: "muted small", role: "status" });
    const copy = h("button", {
      type: "button",
      onclick: async () => {
        area.select();
        try {
          await navigator.clipboard.writeText(area.value);
          copied.textContent = "Copied.";
        } catch {
          copied.textContent = "Selected: press Ctrl+C to copy.";
        }
      },
    }, "Copy snippet");
    el.append(h("details", { class: "embed" }, h("summary", {}, "Embed"),
      h("label", { for: area.id }, "Responsive <img> over the allowed widths"), area,
      h("div", { class: "row" }, copy, copied)));
  } else if (info.state === "quarantined") {
    el.append(h("p", { class: "detail" }, `${info.reason}: ${info.detail}`));
  }
  el.append(h("div", { class: "actions" },
    h("button", { type: "button", class: "danger", onclick: () => remove(info, el) }, `Delete ${name}`)));
  return el;
}

async function render(items, config) {
  const ready = items.filter((i) => i.state === "ready");
  const wanted = ready.flatMap((i) => [i.urls.original, ...Object.values(i.urls.smart),
    ...variantLinks(i, config).map(([, url]) => url), ...(i.placeholder ? [] : [i.urls.placeholder])]);
  const unique = [...new Set(wanted)];
  const urls = await deliverable(unique, SIGNED_FOR);
  const map = new Map(unique.map((u, n) => [u, urls[n]]));
  const signed = (url) => map.get(url) || url;
  return items.map((info) => card(info, config, signed));
}

async function follow(info, config, mine) {
  while (!RESTING.has(info.state) && mine === generation) {
    await sleep(1500);
    try {
      info = await api(info.status_url);
    } catch (err) {
      if (err instanceof ApiError && err.status === 404) return;
      continue;
    }
    const old = document.getElementById(`img-${info.id}`);
    if (RESTING.has(info.state) && old && mine === generation) {
      const [fresh] = await render([info], config);
      old.replaceWith(fresh);
    }
  }
}

async function load(first) {
  const mine = generation;
  const config = await getConfig();
  const params = new URLSearchParams({ limit: String(PAGE) });
  if (!first && cursor !== null) params.set("cursor", String(cursor));
  status.textContent = "Loading…";
  more.disabled = true;
  let page;
  try {
    page = await api(`v1/images?${params}`);
  } catch (err) {
    status.textContent = err.status === 401 ? "The API key is no longer accepted: sign in again."
      : `Could not load your images: ${err.message}`;
    more.disabled = false;
    return;
  }
  if (mine !== generation) return;
  if (first) grid.replaceChildren();
  grid.append(...await render(page.items, config));
  cursor = page.next_cursor;
  more.hidden = cursor === null;
  more.disabled = false;
  const count = grid.children.length;
  status.textContent = count === 0 ? "No images yet: upload some on the Upload page."
    : `${count} image${count === 1 ? "" : "s"}${cursor === null ? "" : " so far"}.`;
  for (const info of page.items) {
    if (!RESTING.has(info.state)) follow(info, config, mine);
  }
  if (first && location.hash.startsWith("#img-")) {
    const target = document.getElementById(location.hash.slice(1));
    target?.classList.add("target");
    target?.scrollIntoView({ block: "center" });
  }
}

function remove(info, el) {
  document.getElementById("confirm-text").textContent =
    `“${info.filename || info.id}”, every size and format of it, and the cached copies will be deleted.`;
  dialog.returnValue = "";
  dialog.showModal();
  dialog.addEventListener("close", async () => {
    if (dialog.returnValue !== "delete") {
      el.querySelector("button.danger")?.focus();
      return;
    }
    try {
      await api(`v1/images/${encodeURIComponent(info.id)}`, { method: "DELETE" });
    } catch (err) {
      status.textContent = `Could not delete: ${err.message}`;
      return;
    }
    const next = el.nextElementSibling || el.previousElementSibling;
    el.remove();
    status.textContent = `Deleted ${info.filename || info.id}.`;
    (next?.querySelector("button.danger") || document.getElementById("main")).focus();
  }, { once: true });
}

more.addEventListener("click", () => load(false));

setupSession({
  as: "owner",
  check: (key) => api("v1/images?limit=1", { key }),
  onSignedIn: () => { generation += 1; cursor = null; load(true); },
  onSignedOut: () => { generation += 1; grid.replaceChildren(); status.textContent = ""; more.hidden = true; },
});
