// Evently storefront: a seated event's seat map (issue 34, docs/storefront.md "Seat map").
// Loaded before app.js on seated event pages only; app.js's event page calls
// window.EventlySeatMap with its API client and its one reserve path (`hold`).
// The SVG is drawn by the server (api/storefront/seatmap.py): <g data-s> sections of <g data-r>
// rows of <circle data-l> seats; a circle's category is the class kN of its row (or its own).
// For a stadium: one delegated listener per kind of input and a roving tabindex (only the seat
// in focus is in the tab order and carries a role and a label), no node per seat is created.
"use strict";
window.EventlySeatMap = (ctx) => {
  const svg = document.getElementById("seat-map");
  if (!svg) return null;
  const { eventId, api, hold } = ctx;
  const $ = (id) => document.getElementById(id);
  const show = (text, kind) => ctx.show($("seat-message"), text, kind);
  const currency = svg.dataset.currency;
  const max = Number(svg.dataset.max) || 10;
  const prices = {}; // category class index -> price in cents (absent: not on sale)
  for (const li of document.querySelectorAll("#seat-legend [data-k]")) {
    if (li.dataset.price) prices[li.dataset.k] = Math.round(Number(li.dataset.price) * 100);
  }
  const cents = (c) => `${(c / 100).toFixed(2)} ${currency}`;
  // the event's price line: a seated event's prices are its categories'
  const all = Object.values(prices);
  if (all.length && $("event-price")) {
    const lo = Math.min(...all);
    const hi = Math.max(...all);
    $("event-price").textContent = lo === hi ? `${cents(lo)} per seat` : `${cents(lo)} to ${cents(hi)} per seat, by category`;
  }
  const kOf = (node) => {
    const m = /(?:^|\s)k(\d+)(?:\s|$)/.exec(node.getAttribute("class") || "");
    return m ? m[1] : null;
  };
  const FLAGS = { wheelchair: "wheelchair space", companion: "companion seat", restricted_view: "restricted view", aisle: "aisle seat", obstructed: "obstructed view" };

  // ---- the seats, read once from the drawing ------------------------------------------------
  const els = [];
  const ids = [];
  const info = []; // [section, row, label, k]
  const xs = [];
  const ys = [];
  const byId = new Map();
  for (const sec of svg.querySelectorAll("g[data-s]")) {
    for (const row of sec.querySelectorAll("g[data-r]")) {
      const rowK = kOf(row);
      for (const c of row.children) {
        if (c.tagName !== "circle") continue;
        const i = els.length;
        const id = `${sec.dataset.s}-${row.dataset.r}-${c.dataset.l}`;
        els.push(c);
        ids.push(id);
        info.push([sec.dataset.s, row.dataset.r, c.dataset.l, kOf(c) || rowK]);
        xs.push(Number(c.getAttribute("cx")));
        ys.push(Number(c.getAttribute("cy")));
        byId.set(id, i);
        c.seat = i;
      }
    }
  }
  const taken = new Set(); // indexes of taken or blocked seats
  const selected = new Map(); // seat id -> index, in the order picked
  const priceOf = (i) => prices[info[i][3]];
  const where = (i) => `Section ${info[i][0]}, row ${info[i][1]}, seat ${info[i][2]}`;
  const label = (i) => {
    const p = priceOf(i);
    const flags = (els[i].dataset.f || "").split(" ").filter(Boolean).map((f) => FLAGS[f] || f);
    return [where(i), p === undefined ? "not on sale" : cents(p), ...flags, taken.has(i) ? "taken" : ""].filter(Boolean).join(", ");
  };

  // ---- roving focus: one seat in the tab order ----------------------------------------------
  let active = -1;
  const dress = (i) => {
    const c = els[i];
    c.setAttribute("role", "checkbox");
    c.setAttribute("aria-label", label(i));
    c.setAttribute("aria-checked", selected.has(ids[i]) ? "true" : "false");
  };
  const activate = (i, focus) => {
    if (i < 0 || i === active) {
      if (focus && i >= 0) els[i].focus();
      return;
    }
    if (active >= 0) {
      const prev = els[active];
      prev.removeAttribute("tabindex");
      prev.removeAttribute("role");
      prev.removeAttribute("aria-label");
      prev.removeAttribute("aria-checked");
    }
    active = i;
    dress(i);
    els[i].setAttribute("tabindex", "0");
    if (focus) {
      reveal(i);
      els[i].focus();
    }
  };
  // the nearest seat in a direction (dx, dy: -1/0/1), rows counted before columns
  const nearest = (i, dx, dy) => {
    let best = -1;
    let score = Infinity;
    const x0 = xs[i];
    const y0 = ys[i];
    for (let j = 0; j < els.length; j++) {
      const ex = xs[j] - x0;
      const ey = ys[j] - y0;
      const along = dx ? ex * dx : ey * dy;
      if (along <= 0.5) continue;
      const across = dx ? Math.abs(ey) : Math.abs(ex);
      const s = along + across * 3;
      if (s < score) {
        score = s;
        best = j;
      }
    }
    return best;
  };

  // ---- the view: zoom and pan on the viewBox -------------------------------------------------
  const base = svg.viewBox.baseVal;
  const home = { x: base.x, y: base.y, w: base.width, h: base.height };
  const minW = Math.min(300, home.w / 4); // at the closest: 30 seats across, or a quarter of a small map
  let vb = { ...home };
  const apply = () => svg.setAttribute("viewBox", `${vb.x} ${vb.y} ${vb.w} ${vb.h}`);
  const clampPan = () => {
    vb.x = Math.min(Math.max(vb.x, home.x - vb.w / 2), home.x + home.w - vb.w / 2);
    vb.y = Math.min(Math.max(vb.y, home.y - vb.h / 2), home.y + home.h - vb.h / 2);
  };
  const zoom = (factor, cx = vb.x + vb.w / 2, cy = vb.y + vb.h / 2) => {
    const w = Math.min(Math.max(vb.w * factor, minW), home.w);
    const f = w / vb.w;
    vb = { x: cx - (cx - vb.x) * f, y: cy - (cy - vb.y) * f, w, h: vb.h * f };
    clampPan();
    apply();
  };
  const reveal = (i) => {
    const r = 6;
    if (xs[i] - r >= vb.x && xs[i] + r <= vb.x + vb.w && ys[i] - r >= vb.y && ys[i] + r <= vb.y + vb.h) return;
    vb.x = xs[i] - vb.w / 2;
    vb.y = ys[i] - vb.h / 2;
    clampPan();
    apply();
  };
  const toMap = (clientX, clientY) => {
    const m = svg.getScreenCTM();
    if (!m) return { x: vb.x + vb.w / 2, y: vb.y + vb.h / 2 };
    const p = new DOMPoint(clientX, clientY).matrixTransform(m.inverse());
    return { x: p.x, y: p.y };
  };
  $("zoom-in").addEventListener("click", () => zoom(1 / 1.6));
  $("zoom-out").addEventListener("click", () => zoom(1.6));
  $("zoom-reset").addEventListener("click", () => {
    vb = { ...home };
    apply();
  });
  svg.addEventListener("wheel", (e) => {
    e.preventDefault();
    const p = toMap(e.clientX, e.clientY);
    zoom(Math.exp(Math.max(-100, Math.min(100, e.deltaY)) * 0.004), p.x, p.y);
  }, { passive: false });
  // drag to pan (mouse, pen, one finger), pinch to zoom (two fingers)
  const pointers = new Map();
  let dragged = false;
  let pinch = 0;
  svg.addEventListener("pointerdown", (e) => {
    pointers.set(e.pointerId, { x: e.clientX, y: e.clientY, x0: e.clientX, y0: e.clientY });
    if (pointers.size === 1) dragged = false;
    if (pointers.size === 2) {
      const [a, b] = [...pointers.values()];
      pinch = Math.hypot(a.x - b.x, a.y - b.y);
    }
  });
  svg.addEventListener("pointermove", (e) => {
    const p = pointers.get(e.pointerId);
    if (!p) return;
    const m = svg.getScreenCTM();
    const unit = m ? 1 / m.a : 1;
    if (pointers.size === 2) {
      p.x = e.clientX;
      p.y = e.clientY;
      const [a, b] = [...pointers.values()];
      const d = Math.hypot(a.x - b.x, a.y - b.y);
      if (pinch > 0 && d > 0) {
        const mid = toMap((a.x + b.x) / 2, (a.y + b.y) / 2);
        zoom(pinch / d, mid.x, mid.y);
      }
      pinch = d;
      dragged = true;
      return;
    }
    if (!dragged && Math.hypot(e.clientX - p.x0, e.clientY - p.y0) < 5) return;
    if (!dragged) svg.setPointerCapture(e.pointerId);
    dragged = true;
    vb.x -= (e.clientX - p.x) * unit;
    vb.y -= (e.clientY - p.y) * unit;
    p.x = e.clientX;
    p.y = e.clientY;
    clampPan();
    apply();
  });
  const up = (e) => {
    pointers.delete(e.pointerId);
    if (pointers.size < 2) pinch = 0;
  };
  svg.addEventListener("pointerup", up);
  svg.addEventListener("pointercancel", up);

  // ---- picking ------------------------------------------------------------------------------
  const list = $("my-seats");
  const total = $("my-seats-total");
  const submit = $("hold-seats");
  const drawSelection = () => {
    let sum = 0;
    const items = [];
    for (const [id, i] of selected) {
      sum += priceOf(i) || 0;
      const li = document.createElement("li");
      li.dataset.seat = id;
      const text = document.createElement("span");
      text.textContent = `${where(i)} · ${priceOf(i) === undefined ? "not on sale" : cents(priceOf(i))} `;
      const remove = document.createElement("button");
      remove.type = "button";
      remove.className = "link";
      remove.dataset.remove = id;
      remove.textContent = "Remove";
      remove.setAttribute("aria-label", `Remove ${where(i)}`);
      li.append(text, remove);
      items.push(li);
    }
    list.replaceChildren(...items);
    total.textContent = selected.size
      ? `${selected.size} seat${selected.size === 1 ? "" : "s"} · total ${cents(sum)}`
      : "No seats selected yet.";
    submit.disabled = !selected.size;
  };
  const paint = (i) => {
    const c = els[i];
    c.classList.toggle("taken", taken.has(i));
    c.classList.toggle("sel", selected.has(ids[i]));
    if (taken.has(i)) c.setAttribute("aria-disabled", "true");
    else c.removeAttribute("aria-disabled");
    if (i === active) dress(i);
  };
  const toggle = (i) => {
    if (taken.has(i)) {
      show(`${where(i)} is taken. Choose a free seat.`, "error");
      return;
    }
    if (priceOf(i) === undefined) {
      show(`${where(i)} is not on sale.`, "error");
      return;
    }
    if (selected.has(ids[i])) selected.delete(ids[i]);
    else if (selected.size >= max) {
      show(`One booking holds at most ${max} seats.`, "error");
      return;
    } else selected.set(ids[i], i);
    show("");
    paint(i);
    drawSelection();
  };
  svg.addEventListener("click", (e) => {
    if (dragged) return;
    const i = e.target && e.target.seat;
    if (typeof i !== "number") return;
    activate(i, true);
    toggle(i);
  });
  svg.addEventListener("keydown", (e) => {
    const i = active;
    if (i < 0) return;
    const moves = { ArrowRight: [1, 0], ArrowLeft: [-1, 0], ArrowDown: [0, 1], ArrowUp: [0, -1] };
    if (moves[e.key]) {
      e.preventDefault();
      const j = nearest(i, ...moves[e.key]);
      if (j >= 0) activate(j, true);
    } else if (e.key === "Enter" || e.key === " ") {
      e.preventDefault();
      toggle(i);
    } else if (e.key === "+" || e.key === "=") {
      zoom(1 / 1.6, xs[i], ys[i]);
    } else if (e.key === "-") {
      zoom(1.6, xs[i], ys[i]);
    }
  });
  list.addEventListener("click", (e) => {
    const id = e.target && e.target.dataset && e.target.dataset.remove;
    if (!id || !selected.has(id)) return;
    const i = selected.get(id);
    selected.delete(id);
    paint(i);
    drawSelection();
    (list.querySelector("button[data-remove]") || submit).focus();
  });

  // ---- the live state: GET /events/{id}/seats (ETag), on every stream message ----------------
  let etag = null;
  let busy = false;
  let again = false;
  const lost = (gone) => {
    if (gone.length) {
      show(`${gone.map(where).join("; ")} ${gone.length === 1 ? "was" : "were"} just taken by someone else${selected.size ? "; your other seats are still selected" : ""}.`, "error");
    }
  };
  const refresh = async () => {
    if (busy) {
      again = true;
      return;
    }
    busy = true;
    do {
      again = false;
      const r = await api("GET", `/api/v1/events/${eventId}/seats`, undefined, etag ? { "If-None-Match": etag } : {});
      if (r.status === 200 && r.data) {
        etag = r.headers.get("ETag");
        const now = new Set();
        for (const id of [...r.data.taken, ...r.data.blocked]) {
          const i = byId.get(id);
          if (i !== undefined) now.add(i);
        }
        const changed = [...taken].filter((i) => !now.has(i)).concat([...now].filter((i) => !taken.has(i)));
        taken.clear();
        for (const i of now) taken.add(i);
        const gone = [];
        for (const i of changed) {
          if (taken.has(i) && selected.has(ids[i])) {
            selected.delete(ids[i]);
            gone.push(i);
          }
          paint(i);
        }
        if (gone.length) {
          drawSelection();
          lost(gone);
        }
        svg.dataset.version = etag || "";
      }
    } while (again);
    busy = false;
  };
  submit.addEventListener("click", async () => {
    const res = await hold({ event_id: eventId, seats: [...selected.keys()] }, submit, $("seat-message"));
    if (!res || res.status !== 409 || !res.data || res.data.code !== "seats_taken") return;
    // all or none: name the seats someone else took, keep the others selected
    const gone = [];
    for (const id of res.data.seats || []) {
      const i = byId.get(id);
      if (i === undefined) continue;
      taken.add(i);
      if (selected.delete(id)) gone.push(i);
      paint(i);
    }
    drawSelection();
    if (gone.length) {
      show(`Sorry: ${gone.map(where).join("; ")} ${gone.length === 1 ? "was" : "were"} just taken by someone else, so nothing was held.${selected.size ? " Your other seats are still selected: pick another and try again." : " Pick other seats and try again."}`, "error");
    }
    refresh();
  });

  // the first free seat is the map's one stop in the tab order
  drawSelection();
  activate(0, false);
  refresh().then(() => {
    if (taken.has(active)) {
      const free = els.findIndex((_, i) => !taken.has(i));
      if (free >= 0) activate(free, false);
    }
  });
  return { refresh };
};
