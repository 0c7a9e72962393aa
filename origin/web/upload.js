// The upload page: pick or drop files; each goes straight to its pre-signed URL
// (PUT to the origin's local store, or a presigned POST form to S3) with progress,
// then its state is followed on its status_url until it rests.

import { api, ApiError, deliverable, formatBytes, getConfig, h, ownOrigin, session, setupSession, sleep, stem }
  from "./common.js";

const RESTING = new Set(["ready", "held", "quarantined"]);
const POLL_MS = 600;
const LABEL = {
  flagged: "not sent",
  asking: "asking for an upload URL…",
  sending: "uploading…",
  requested: "waiting for the bytes…",
  uploaded: "uploaded, queued",
  validating: "validating…",
  moderating: "moderating…",
  processing: "processing…",
  ready: "ready",
  held: "held for review",
  quarantined: "refused",
  refused: "refused",
  failed: "failed",
};
const REASON = {
  unsupported_type: "not an image this host accepts",
  too_large: "over the size limit",
  too_many_pixels: "too many pixels",
  side_too_long: "a side is too long",
  too_many_frames: "too many animation frames",
  corrupt: "the image is damaged or incomplete",
  malware: "the malware scan found something",
};

const list = document.getElementById("uploads");
const empty = document.getElementById("empty");
const input = document.getElementById("files");
const drop = document.getElementById("drop");

/** What the browser can tell before sending: the server still judges every file it receives. */
function precheck(file, config) {
  if (file.size > config.max_bytes) {
    return `${formatBytes(file.size)} is over the ${formatBytes(config.max_bytes)} limit`;
  }
  if (file.size === 0) return "the file is empty";
  if (file.type && !config.accepted_types.includes(file.type)) {
    return `${file.type} is not an image type this host accepts`;
  }
  return "";
}

class Upload {
  constructor(file, config) {
    this.file = file;
    this.config = config;
    this.progress = h("progress", { max: 100, value: 0, "aria-label": `Upload of ${file.name}` });
    this.stateText = h("span", { class: "state-text" });
    this.detail = h("p", { class: "detail" });
    this.actions = h("div", { class: "actions" });
    this.el = h("li", { class: "upload" },
      h("div", { class: "upload-head" },
        h("span", { class: "name" }, file.name),
        h("span", { class: "size muted" }, formatBytes(file.size))),
      this.progress,
      h("p", { class: "state", "aria-live": "polite" }, this.stateText),
      this.detail,
      this.actions);
  }

  set(state, detail = "", label = LABEL[state] || state) {
    this.el.dataset.state = state;
    this.stateText.textContent = label;
    this.detail.textContent = detail;
  }

  flag(why) {
    this.set("flagged", `${why}. The host would refuse it.`);
    const anyway = h("button", { type: "button", onclick: () => { anyway.remove(); this.start(); } },
      "Send anyway");
    this.actions.replaceChildren(anyway);
  }

  async start() {
    this.actions.replaceChildren();
    this.set("asking");
    let target;
    try {
      target = await api("v1/uploads", {
        method: "POST",
        body: { filename: this.file.name, content_type: this.file.type, size: this.file.size },
      });
    } catch (err) {
      this.refused(err);
      return;
    }
    this.id = target.id;
    this.el.dataset.id = target.id;
    this.set("sending");
    try {
      await this.send(target);
    } catch (err) {
      this.refused(err);
      return;
    }
    this.progress.value = 100;
    this.set("uploaded");
    await this.follow(target.status_url);
  }

  refused(err) {
    if (err instanceof ApiError && err.status === 401) {
      this.set("failed", "The API key is no longer accepted: sign in again.");
    } else if (err instanceof ApiError || err instanceof UploadRefused) {
      this.set("refused", `${err.message} (${err.code})`);
    } else {
      this.set("failed", err.message);
    }
  }

  /** XMLHttpRequest rather than fetch: it reports upload progress. */
  send(target) {
    return new Promise((resolve, reject) => {
      const xhr = new XMLHttpRequest();
      let body;
      if (target.method === "PUT") {
        xhr.open("PUT", ownOrigin(target.url));  // the origin's own upload URL; the token is in it
        for (const [name, value] of Object.entries(target.headers || {})) xhr.setRequestHeader(name, value);
        body = this.file;
      } else {
        xhr.open("POST", target.url);  // a presigned POST: straight to the bucket
        body = new FormData();
        for (const [name, value] of Object.entries(target.fields || {})) body.append(name, value);
        body.append("file", this.file, this.file.name);  // S3 wants the file last
      }
      xhr.upload.addEventListener("progress", (event) => {
        if (event.lengthComputable) this.progress.value = Math.round((event.loaded / event.total) * 100);
      });
      xhr.addEventListener("load", () => {
        if (xhr.status >= 200 && xhr.status < 300) resolve();
        else reject(UploadRefused.from(xhr));
      });
      xhr.addEventListener("error", () => reject(new Error("the upload did not reach the host")));
      xhr.addEventListener("abort", () => reject(new Error("the upload was cancelled")));
      xhr.send(body);
    });
  }

  async follow(statusUrl) {
    for (;;) {
      let info;
      try {
        info = await api(statusUrl);
      } catch (err) {
        if (err instanceof ApiError && err.status !== 503) { this.refused(err); return; }
        await sleep(POLL_MS * 3);
        continue;
      }
      this.show(info);
      if (RESTING.has(info.state)) return;
      await sleep(POLL_MS);
    }
  }

  show(info) {
    if (info.state === "quarantined") {
      this.el.dataset.reason = info.reason;
      this.set("quarantined", `${info.detail} (${info.reason})`, `refused: ${REASON[info.reason] || info.reason}`);
    } else if (info.state === "held") {
      const score = info.moderation_score === undefined ? "" : ` (score ${info.moderation_score})`;
      this.set("held", `Moderation held it for a reviewer${score}; nothing is served until it is approved.`);
    } else if (info.state === "ready") {
      this.set("ready", `${info.width} × ${info.height} px, served in every size and format`);
      const sizes = this.config.thumb_sizes;
      const size = sizes.find((s) => s >= 128) ?? sizes[sizes.length - 1];
      const link = h("a", { href: `gallery#img-${info.id}` }, "Open in the gallery");
      this.actions.replaceChildren(link);
      deliverable([info.urls.smart[`sm${size}`]]).then(([src]) => {
        link.before(h("img", { class: "mini", src, alt: stem(this.file.name), width: 64, height: 64 }));
      }, () => {});
    } else {
      this.set(info.state);
    }
  }
}

class UploadRefused extends Error {
  static from(xhr) {
    let message = `HTTP ${xhr.status}`;
    let code = `http_${xhr.status}`;
    const text = xhr.responseText || "";
    try {
      const body = JSON.parse(text);  // the origin: {"error", "message"}
      message = body.message || message;
      code = body.error || code;
    } catch {
      const xml = new DOMParser().parseFromString(text, "application/xml");  // S3: <Error><Code>…
      code = xml.querySelector("Code")?.textContent || code;
      message = xml.querySelector("Message")?.textContent || message;
    }
    const err = new UploadRefused(message);
    err.code = code;
    return err;
  }
}

async function add(files) {
  const config = await getConfig();
  for (const file of files) {
    const upload = new Upload(file, config);
    list.prepend(upload.el);
    empty.hidden = true;
    const why = precheck(file, config);
    if (why) upload.flag(why);
    else upload.start();
  }
}

function main() {
  setupSession({
    as: "owner",
    check: (key) => api("v1/images?limit=1", { key }),
    onSignedIn: () => {},
  });
  getConfig().then((config) => {
    document.getElementById("limits").textContent =
      `Up to ${formatBytes(config.max_bytes)} each: JPEG, PNG, WebP, AVIF, GIF or HEIC. ` +
      "Every file is checked, scanned and moderated before it is served.";
  });

  input.addEventListener("change", () => {
    add([...input.files]);
    input.value = "";
  });
  for (const type of ["dragenter", "dragover"]) {
    drop.addEventListener(type, (event) => {
      event.preventDefault();
      drop.classList.add("over");
    });
  }
  for (const type of ["dragleave", "drop"]) {
    drop.addEventListener(type, () => drop.classList.remove("over"));
  }
  drop.addEventListener("drop", (event) => {
    event.preventDefault();
    if (session.key) add([...event.dataTransfer.files]);
  });
}

main();
