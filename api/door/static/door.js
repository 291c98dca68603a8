// Evently door scanner (issue 30, docs/door.md). Online: every scan is POST /api/v1/checkin/redeem
// (the server's first scan wins). Offline, or when the server cannot answer: the ticket's Ed25519
// signature is checked here with the event's public keys, it is refused when the kept list says
// revoked or already admitted, otherwise admitted and queued in IndexedDB with its scanned_at;
// the queue uploads (oldest scan first, each under its own nonce) when the network is back, and
// the server's refusals of those uploads are listed as conflicts.
/* global jsQR */

const EVENT_ID = document.body.dataset.eventId;
const CSRF = document.querySelector('meta[name="csrf-token"]').content;
const CONTEXT = new TextEncoder().encode("evently/ticket/v1\0");
const REPEAT_MS = 2500; // the same code in front of the camera again: asked again after this
const ADMITTED_MS = 3000; // a green answer clears itself; a red one waits for "Scan next"
const $ = (id) => document.getElementById(id);

const state = {
  keys: [], // CryptoKey[]
  revoked: new Set(),
  admitted: new Map(), // ticket id -> {at, device}
  counts: { admitted: 0, refused: 0, uploaded: 0 },
  conflicts: [],
  busy: false,
  uploading: false,
  lastCode: null,
  lastAt: 0,
  stream: null,
  timer: null,
  answerTimer: null,
};

// ---- IndexedDB: keys, the event's list, counts, the queue of offline scans -------------------

const db = new Promise((resolve, reject) => {
  const open = indexedDB.open("evently-door", 1);
  open.onupgradeneeded = () => {
    open.result.createObjectStore("kv");
    open.result.createObjectStore("queue", { keyPath: "nonce" });
  };
  open.onsuccess = () => resolve(open.result);
  open.onerror = () => reject(open.error);
});

async function store(name, mode, fn) {
  const d = await db;
  return new Promise((resolve, reject) => {
    const t = d.transaction(name, mode);
    const req = fn(t.objectStore(name));
    t.oncomplete = () => resolve(req ? req.result : undefined);
    t.onerror = () => reject(t.error);
  });
}
const kvGet = (k) => store("kv", "readonly", (s) => s.get(k));
const kvPut = (k, v) => store("kv", "readwrite", (s) => s.put(v, k));
const queued = () => store("queue", "readonly", (s) => s.getAll());
const enqueue = (scan) => store("queue", "readwrite", (s) => s.put(scan));
const dequeue = (nonce) => store("queue", "readwrite", (s) => s.delete(nonce));

// ---- the ticket format (evently/tickets/signing.py) -------------------------------------------

const B32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

function base32(text) {
  const out = [];
  let bits = 0;
  let value = 0;
  for (const c of text) {
    const i = B32.indexOf(c);
    if (i < 0) throw new Error("not base32");
    value = ((value << 5) | i) & 0xffff;
    bits += 5;
    if (bits >= 8) {
      bits -= 8;
      out.push((value >>> bits) & 0xff);
    }
  }
  if (value & ((1 << bits) - 1)) throw new Error("not canonically encoded");
  return new Uint8Array(out);
}

function hex(bytes) {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

function uuid(bytes) {
  const h = hex(bytes);
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

function parse(secret) {
  const text = secret.trim().toUpperCase();
  if (!text.startsWith("EVT1.")) throw new Error("not an Evently ticket");
  const raw = base32(text.slice(5));
  if (raw.length < 42 + 64) throw new Error("the code is cut short");
  if (raw[0] !== 1) throw new Error("unknown ticket version");
  if (raw[1] & ~1) throw new Error("unknown ticket flags");
  const bodyLength = 42 + (raw[1] & 1 ? 16 : 0);
  if (raw.length !== bodyLength + 64) throw new Error("the code has the wrong length");
  return {
    secret: text,
    ticketId: uuid(raw.subarray(2, 18)),
    eventId: uuid(raw.subarray(18, 34)),
    seat: new DataView(raw.buffer).getUint32(34),
    body: raw.slice(0, bodyLength),
    signature: raw.slice(bodyLength),
  };
}

async function verified(ticket) {
  const message = new Uint8Array(CONTEXT.length + ticket.body.length);
  message.set(CONTEXT);
  message.set(ticket.body, CONTEXT.length);
  for (const key of state.keys) {
    if (await crypto.subtle.verify({ name: "Ed25519" }, key, ticket.signature, message)) return true;
  }
  return false;
}

async function loadKeys(published) {
  state.keys = await Promise.all(
    published.map((k) =>
      crypto.subtle.importKey(
        "raw",
        Uint8Array.from(atob(k.public_key), (c) => c.charCodeAt(0)),
        { name: "Ed25519" },
        false,
        ["verify"],
      ),
    ),
  );
}

// ---- the API, on the page's cookie session ----------------------------------------------------

async function api(method, path, body) {
  const send = () =>
    fetch(path, {
      method,
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": CSRF, Accept: "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  let r = await send();
  if (r.status === 401) {
    const renewed = await fetch("/session/renew", { method: "POST", headers: { "X-CSRF-Token": CSRF } });
    if (renewed.ok) r = await send();
    else setStatus("camera-status", "Your session has ended: log in again (scans are kept).");
  }
  return r;
}

async function refreshKeys() {
  try {
    const r = await api("GET", "/api/v1/checkin/keys");
    if (r.ok) {
      const body = await r.json();
      await kvPut("keys", body.keys);
      await loadKeys(body.keys);
      return;
    }
  } catch (_) {
    /* offline: the kept keys below */
  }
  const kept = await kvGet("keys");
  if (kept) await loadKeys(kept);
}

async function refreshList() {
  let list = null;
  try {
    const r = await api("GET", `/api/v1/checkin/events/${EVENT_ID}/revocations`);
    if (r.ok) {
      list = await r.json();
      await kvPut(`list:${EVENT_ID}`, list);
    }
  } catch (_) {
    /* offline */
  }
  list = list || (await kvGet(`list:${EVENT_ID}`));
  if (!list) return;
  for (const id of list.revoked) state.revoked.add(id);
  for (const a of list.checked_in) {
    if (!state.admitted.has(a.ticket_id)) {
      state.admitted.set(a.ticket_id, { at: a.checked_in_at, device: a.device_id });
    }
  }
  render();
}

// ---- answers ----------------------------------------------------------------------------------

function clock(iso) {
  return new Date(iso).toLocaleTimeString("en-GB", { hour: "2-digit", minute: "2-digit" });
}

function gate() {
  const value = $("gate").value.trim();
  return /^[A-Za-z0-9._:@ -]{1,100}$/.test(value) ? value : "gate";
}

function setStatus(id, text) {
  $(id).textContent = text;
}

function show(kind, title, detail) {
  const answer = $("answer");
  clearTimeout(state.answerTimer);
  answer.dataset.kind = kind;
  $("answer-title").textContent = title;
  $("answer-detail").textContent = detail;
  answer.hidden = false;
  $("answer-next").focus();
  if (kind === "admitted") state.answerTimer = setTimeout(dismiss, ADMITTED_MS);
}

function dismiss() {
  clearTimeout(state.answerTimer);
  if ($("answer").hidden) return;
  $("answer").hidden = true;
  state.lastAt = Date.now(); // the code still in front of the camera waits REPEAT_MS
  $("code").focus();
}

function admitted(detail) {
  state.counts.admitted += 1;
  saveCounts();
  show("admitted", "Admitted", detail);
}

function refused(detail) {
  state.counts.refused += 1;
  saveCounts();
  show("refused", "Refused", detail);
}

function alreadyIn(at, device) {
  refused(`Already checked in at ${clock(at)} on ${device || "another gate"}.`);
}

// a reserved seat as the server names it ("Section B, row 7, seat 12"), else the serial
function seat(ticket, holder, place) {
  return `${place || `Seat ${ticket.seat}`}${holder ? ` · ${holder}` : ""}`;
}

// ---- one scan ---------------------------------------------------------------------------------

async function check(text) {
  if (state.busy) return;
  state.busy = true;
  try {
    let ticket;
    try {
      ticket = parse(text);
    } catch (e) {
      return refused(`Not a valid ticket: ${e.message}.`);
    }
    if (!state.keys.length) await refreshKeys();
    if (!(await verified(ticket))) return refused("Not a valid ticket: its signature does not verify.");
    if (ticket.eventId !== EVENT_ID) return refused("This ticket is for another event.");
    const nonce = crypto.randomUUID();
    if (navigator.onLine) {
      let r = null;
      try {
        r = await api("POST", "/api/v1/checkin/redeem", {
          secret: ticket.secret,
          nonce,
          device_id: gate(),
          event_id: EVENT_ID,
        });
      } catch (_) {
        r = null; // the network failed: decide here, upload the same nonce later
      }
      if (r && r.status < 500 && r.status !== 429 && r.status !== 401) return answerFrom(ticket, r);
    }
    return offline(ticket, nonce);
  } finally {
    state.busy = false;
    render();
  }
}

async function answerFrom(ticket, r) {
  const body = await r.json();
  if (r.ok) {
    state.admitted.set(ticket.ticketId, { at: body.checked_in_at, device: body.device_id });
    return admitted(seat(ticket, body.ticket.holder_name, body.ticket.place));
  }
  switch (body.code) {
    case "already_checked_in":
      state.admitted.set(ticket.ticketId, { at: body.checked_in_at, device: body.device_id });
      return alreadyIn(body.checked_in_at, body.device_id);
    case "ticket_revoked":
      state.revoked.add(ticket.ticketId);
      return refused("This ticket was cancelled or refunded.");
    case "wrong_event":
      return refused("This ticket is for another event.");
    case "ticket_not_found":
      return refused("Not a ticket this door admits.");
    default:
      return refused(body.detail || body.title || "Refused by the server.");
  }
}

async function offline(ticket, nonce) {
  if (state.revoked.has(ticket.ticketId)) return refused("This ticket was cancelled or refunded.");
  const prior = state.admitted.get(ticket.ticketId);
  if (prior) return alreadyIn(prior.at, prior.device);
  const scan = {
    nonce,
    secret: ticket.secret,
    ticket_id: ticket.ticketId,
    seat: ticket.seat,
    device_id: gate(),
    scanned_at: new Date().toISOString(),
  };
  state.admitted.set(ticket.ticketId, { at: scan.scanned_at, device: scan.device_id });
  await enqueue(scan);
  return admitted(`${seat(ticket)} · checked on this phone, uploads when online`);
}

// ---- the upload of offline scans ---------------------------------------------------------------

async function upload() {
  if (state.uploading || !navigator.onLine) return;
  state.uploading = true;
  try {
    const scans = (await queued()).sort((a, b) => a.scanned_at.localeCompare(b.scanned_at));
    for (const scan of scans) {
      let r;
      try {
        r = await api("POST", "/api/v1/checkin/redeem", {
          secret: scan.secret,
          nonce: scan.nonce,
          device_id: scan.device_id,
          scanned_at: scan.scanned_at,
          event_id: EVENT_ID,
        });
      } catch (_) {
        break; // still offline: next time
      }
      if (r.status >= 500 || r.status === 429 || r.status === 401) break;
      const body = await r.json();
      if (!r.ok) conflict(scan, body);
      state.counts.uploaded += 1;
      await dequeue(scan.nonce);
      saveCounts();
    }
  } finally {
    state.uploading = false;
    render();
  }
  if (navigator.onLine) await refreshList();
}

function conflict(scan, body) {
  const here = `admitted here offline at ${clock(scan.scanned_at)} on ${scan.device_id}`;
  let why;
  if (body.code === "already_checked_in") {
    why = `already checked in at ${clock(body.checked_in_at)} on ${body.device_id}`;
    state.admitted.set(scan.ticket_id, { at: body.checked_in_at, device: body.device_id });
  } else if (body.code === "ticket_revoked") {
    why = "the ticket was cancelled or refunded";
  } else {
    why = body.detail || body.title || "refused by the server";
  }
  const text = `Conflict: seat ${scan.seat} (ticket ${scan.ticket_id.slice(0, 8)}) was ${here}, but ${why}.`;
  state.conflicts.unshift(text);
  kvPut(`conflicts:${EVENT_ID}`, state.conflicts.slice(0, 200));
  $("announce").textContent = text;
}

// ---- the camera ---------------------------------------------------------------------------------

const canvas = document.createElement("canvas");
const ctx = canvas.getContext("2d", { willReadFrequently: true });

function frame() {
  const video = $("video");
  if (state.busy || !$("answer").hidden || video.readyState < 2 || !video.videoWidth) return;
  canvas.width = video.videoWidth;
  canvas.height = video.videoHeight;
  ctx.drawImage(video, 0, 0, canvas.width, canvas.height);
  const image = ctx.getImageData(0, 0, canvas.width, canvas.height);
  const code = jsQR(image.data, image.width, image.height, { inversionAttempts: "dontInvert" });
  if (!code || !code.data) return;
  if (code.data === state.lastCode && Date.now() - state.lastAt < REPEAT_MS) return;
  state.lastCode = code.data;
  state.lastAt = Date.now();
  check(code.data);
}

async function startCamera() {
  try {
    state.stream = await navigator.mediaDevices.getUserMedia({
      audio: false,
      video: { facingMode: "environment", width: { ideal: 640 }, height: { ideal: 480 } },
    });
  } catch (e) {
    setStatus("camera-status", `No camera (${e.name}): type the codes below.`);
    return;
  }
  const video = $("video");
  video.srcObject = state.stream;
  await video.play().catch(() => {});
  state.timer = setInterval(frame, 150);
  $("camera").textContent = "Stop camera";
  $("camera").setAttribute("aria-pressed", "true");
  setStatus("camera-status", "Camera on: hold a ticket's QR code in front of it.");
}

function stopCamera() {
  clearInterval(state.timer);
  if (state.stream) for (const track of state.stream.getTracks()) track.stop();
  state.stream = null;
  $("video").srcObject = null;
  $("camera").textContent = "Start camera";
  $("camera").setAttribute("aria-pressed", "false");
  setStatus("camera-status", "Camera off.");
}

// ---- the page -----------------------------------------------------------------------------------

async function saveCounts() {
  render();
  await kvPut(`counts:${EVENT_ID}`, state.counts);
}

async function render() {
  $("count-admitted").textContent = String(state.counts.admitted);
  $("count-refused").textContent = String(state.counts.refused);
  $("count-uploaded").textContent = String(state.counts.uploaded);
  $("count-all").textContent = String(state.admitted.size);
  $("count-queued").textContent = String((await queued()).length);
  const list = $("conflicts");
  list.replaceChildren(
    ...state.conflicts.map((text) => {
      const li = document.createElement("li");
      li.textContent = text;
      return li;
    }),
  );
  $("conflicts-none").hidden = state.conflicts.length > 0;
}

function network() {
  const on = navigator.onLine;
  const el = $("network");
  el.dataset.state = on ? "online" : "offline";
  el.textContent = on ? "Online" : "Offline: checking on this phone";
  if (on) upload();
}

async function start() {
  $("gate").value = localStorage.getItem("evently-door-gate") || "gate-1";
  $("gate").addEventListener("change", () => localStorage.setItem("evently-door-gate", gate()));
  $("camera").addEventListener("click", () => (state.stream ? stopCamera() : startCamera()));
  $("answer-next").addEventListener("click", dismiss);
  document.addEventListener("keydown", (e) => {
    if (e.key === "Escape" && !$("answer").hidden) dismiss();
  });
  $("manual").addEventListener("submit", (e) => {
    e.preventDefault();
    const value = $("code").value;
    if (!value.trim()) return;
    $("code").value = "";
    check(value);
  });
  window.addEventListener("online", network);
  window.addEventListener("offline", network);
  state.counts = { ...state.counts, ...((await kvGet(`counts:${EVENT_ID}`)) || {}) };
  state.conflicts = (await kvGet(`conflicts:${EVENT_ID}`)) || [];
  await refreshKeys();
  await refreshList();
  network();
  setInterval(() => {
    if (navigator.onLine) upload();
  }, 10000);
  setInterval(() => {
    if (navigator.onLine && !state.uploading) refreshList();
  }, 30000);
  document.body.dataset.ready = "yes";
}

start();
