// Evently storefront: the one script of every page (no framework, no build step).
// It talks to the JSON API (/api/v1) with the visitor's cookie session; state-changing calls
// carry the page's CSRF token. Every problem+json `code` a buyer can meet has a message here.
"use strict";
(() => {
  const body = document.body;
  const $ = (sel, root = document) => root.querySelector(sel);
  const csrf = $('meta[name="csrf-token"]').content;
  // the server's clock, not the visitor's: the hold countdown must be true even when the
  // device's clock is wrong (offset measured when the page was rendered)
  const clockOffset = Number(body.dataset.serverNow) - Date.now();
  const serverNow = () => Date.now() + clockOffset;
  // a guest booking's page (issue 32) is opened with its access key (?key=): every call about
  // the booking carries it instead of a session
  const bookingKey = new URLSearchParams(location.search).get("key");

  const MESSAGES = {
    sold_out: "Sold out: there are not enough seats left for that many tickets. Try fewer seats, or join the waitlist.",
    hold_expired: "Your hold has ended and the seats were released. You can try to book again.",
    booking_not_held: "This booking is no longer held.",
    payment_declined: "Your card was declined and nothing was charged. Your seats stay held until the timer runs out: try another card.",
    overloaded: "We are very busy right now: too many people are booking at once. Please try again in a few seconds.",
    rate_limited: "Too many attempts in a short time. Wait a moment and try again.",
    event_not_on_sale: "This event is not on sale.",
    event_not_found: "We could not find this event.",
    booking_not_found: "We could not find this booking.",
    quantity_too_large: "That is more tickets than one booking may hold.",
    seats_available: "Seats are on sale again: book them directly.",
    already_waitlisted: "You are already on this event's waitlist.",
    offer_expired: "This offer has ended; the seats went to the next person in line.",
    unauthorized: "Your session has ended. Please log in again.",
    invalid_token: "Your session has ended. Please log in again.",
    token_expired: "Your session has ended. Please reload the page or log in again.",
    csrf_failed: "This page is out of date. Reload it and try again.",
    network: "We could not reach Evently. Check your connection and try again.",
    ticket_type_sold_out: "That ticket type is sold out. Choose another type, or fewer tickets.",
    ticket_type_not_found: "That ticket type is not available. Reload the page and choose again.",
    sales_closed: "Sales for that ticket type are not open right now.",
    too_many_of_type: "That is more tickets of this type than one booking may hold.",
    duplicate_lines: "Choose each ticket type once.",
    seats_taken: "Some of those seats were just taken by someone else; nothing was held. Choose other seats.",
    seats_invalid: "Those seats are not part of this event. Reload the page and choose again.",
    promo_code_unknown: "We do not know that promo code. Check its spelling.",
    promo_code_expired: "That promo code is not valid any more (or not yet).",
    promo_code_used_up: "That promo code has been used up.",
    promo_code_not_applicable: "That promo code does not apply to this ticket type.",
    answers_required: "Some required questions are not answered yet: see the marked fields.",
    answers_closed: "The organizer no longer accepts changes to attendees' names and answers.",
    transfer_closed: "This event's tickets can no longer be transferred.",
    ticket_revoked: "This ticket was transferred already: its code no longer works.",
    already_checked_in: "This ticket was used at the door already; it cannot be transferred.",
    booking_not_confirmed: "Tickets can be transferred once the booking is paid.",
    invalid_email: "Check the email address: it does not look right.",
  };
  const explain = (p) => (p && (MESSAGES[p.code] || p.detail || p.title)) || "Something went wrong. Please try again.";

  // a page open longer than the access token lives renews it from the session, once at a
  // time (two renewals racing would spend the session token twice and end the session)
  let renewing = null;
  const renew = () => {
    renewing = renewing || fetch("/session/renew", { method: "POST", credentials: "same-origin", headers: { "X-CSRF-Token": csrf } })
      .then((r) => r.status === 204, () => false)
      .finally(() => setTimeout(() => { renewing = null; }, 1000));
    return renewing;
  };

  async function api(method, path, data, headers = {}, again = true) {
    const init = { method, credentials: "same-origin", headers: { Accept: "application/json", ...headers } };
    if (method !== "GET") init.headers["X-CSRF-Token"] = csrf;
    if (bookingKey && path.startsWith("/api/v1/bookings/")) init.headers["Evently-Booking-Key"] = bookingKey;
    if (data !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(data);
    }
    let res;
    try {
      res = await fetch(path, init);
    } catch (_) {
      return { status: 0, data: { code: "network" }, headers: new Headers() };
    }
    if (res.status === 401 && again && body.dataset.signedIn === "yes" && (await renew())) {
      return api(method, path, data, headers, false);
    }
    let parsed = null;
    const text = await res.text();
    if (text) {
      try { parsed = JSON.parse(text); } catch (_) { parsed = null; }
    }
    return { status: res.status, data: parsed, headers: res.headers };
  }

  const el = (tag, attrs = {}, ...children) => {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) {
      if (k === "text") node.textContent = v;
      else node.setAttribute(k, v);
    }
    for (const c of children) if (c) node.append(c);
    return node;
  };
  const show = (node, text, kind) => {
    node.textContent = text;
    node.hidden = !text;
    if (kind) node.dataset.kind = kind;
  };
  const money = (amount, currency) => {
    try {
      return new Intl.NumberFormat(undefined, { style: "currency", currency }).format(Number(amount));
    } catch (_) {
      return `${amount} ${currency}`;
    }
  };
  const when = (iso) => new Date(iso).toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
  const newKey = () => {
    const b = crypto.getRandomValues(new Uint8Array(16));
    return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
  };
  const retryAfter = (r, fallback) => Math.min(Number(r.headers.get("Retry-After")) || fallback, 10);

  // ---- home: search, filters, suggestions -------------------------------------------------
  function home() {
    const form = $("#search");
    const params = new URLSearchParams(location.search);
    for (const [k, v] of params) {
      const field = form.elements.namedItem(k);
      if (!field) continue;
      if (field.type === "checkbox") field.checked = v === "true";
      else field.value = v;
      if (k !== "q") $("details.filters").open = true;
    }
    form.addEventListener("submit", (e) => {
      // send only the filled fields (an empty filter is no filter)
      e.preventDefault();
      const q = new URLSearchParams();
      for (const [k, v] of new FormData(form)) {
        const value = String(v).trim();
        if (value && !(k === "sort" && value === "relevance")) q.set(k, value);
      }
      location.search = q.toString();
    });
    const status = $("#search-status");
    const list = $("#results");
    (async () => {
      const q = new URLSearchParams();
      for (const [k, v] of params) if (v.trim()) q.set(k, v.trim());
      q.set("limit", "20");
      status.textContent = "Searching…";
      const r = await api("GET", `/api/v1/search?${q}`);
      if (r.status !== 200) {
        status.textContent = r.status === 422 ? "Check the filters: one of them is not valid." : explain(r.data);
        return;
      }
      status.textContent = r.data.total ? `${r.data.total} event${r.data.total === 1 ? "" : "s"} found` : "No events match. Try other words or fewer filters.";
      for (const ev of r.data.items) {
        list.append(el("li", { class: "card" },
          el("h2", {}, el("a", { href: `/events/${ev.id}`, text: ev.name })),
          el("p", { class: "muted", text: `${when(ev.starts_at)} · ${ev.venue.name}, ${ev.venue.city}` }),
          el("p", { text: `${money(ev.price, ev.currency)} · ${ev.has_seats ? "Seats available" : "Sold out"}` })));
      }
    })();
    // suggestions as you type (a datalist: the browser's own accessible combobox)
    const input = $("#q");
    const datalist = $("#suggestions");
    let timer = 0;
    let last = "";
    input.addEventListener("input", () => {
      clearTimeout(timer);
      timer = setTimeout(async () => {
        const text = input.value.trim();
        if (!text || text === last) return;
        last = text;
        const r = await api("GET", `/api/v1/search/suggestions?${new URLSearchParams({ q: text, limit: "8" })}`);
        if (r.status !== 200 || input.value.trim() !== text) return;
        datalist.replaceChildren(...r.data.items.map((s) => el("option", { value: s.text, label: `${s.text} (${s.kind})` })));
      }, 150);
    });
  }

  // ---- event: details, live availability, hold, waitlist ----------------------------------
  // `changed` (a seated event's map, issue 34): called on every stream message and poll tick
  function liveAvailability(eventId, render, modeNode, changed) {
    let etag = null;
    let polling = false;
    const poll = async () => {
      polling = true;
      for (;;) {
        if (!document.hidden) {
          const r = await api("GET", `/api/v1/events/${eventId}/availability`, undefined, etag ? { "If-None-Match": etag } : {});
          if (r.status === 200) {
            etag = r.headers.get("ETag");
            render(r.data);
          }
          if (changed) changed();
        }
        await sleep(2000);
      }
    };
    const startPolling = () => {
      if (polling) return;
      modeNode.textContent = "Updated every few seconds.";
      poll();
    };
    // The event's stream (docs/waiting-room.md): `snapshot` when it opens,
    // then `availability` after each seat change and `sold_out` when the last seat goes, each
    // with the counters (available, held, sold). The browser resumes a dropped stream itself
    // (Last-Event-ID). Where the stream cannot open, the page polls the availability endpoint
    // (with its ETag) instead.
    if (!("EventSource" in window)) return startPolling();
    let last = {};
    const update = (d) => {
      last = Object.assign({}, last, d);
      if (typeof last.available !== "number") return;
      if (typeof last.capacity !== "number" && typeof last.held === "number") {
        last.capacity = last.available + last.held + (last.sold || 0);
      }
      render(last);
    };
    api("GET", `/api/v1/events/${eventId}/availability`).then((r) => r.status === 200 && update(r.data));
    const es = new EventSource(`/api/v1/events/${eventId}/stream`);
    let opened = false;
    const onData = (e) => {
      if (changed) changed();
      try {
        const d = JSON.parse(e.data);
        if (d && typeof d.available === "number") update(d);
      } catch (_) { /* not an availability message */ }
    };
    es.onopen = () => { opened = true; modeNode.textContent = "Live."; };
    es.onmessage = onData;
    for (const name of ["snapshot", "availability", "sold_out"]) es.addEventListener(name, onData);
    // a seated event: `seats` after each seated hold (the map reads GET /seats again)
    if (changed) es.addEventListener("seats", () => changed());
    es.onerror = () => {
      if (!opened || es.readyState === EventSource.CLOSED) {
        es.close();
        startPolling();
      }
    };
  }

  async function eventPage() {
    const eventId = $("#event").dataset.eventId;
    const msg = $("#event-message");
    const reserveForm = $("#reserve-form");
    const waitForm = $("#waitlist-form");
    const r = await api("GET", `/api/v1/events/${eventId}`);
    if (r.status !== 200) {
      $("#event-name").textContent = "Event not found";
      show(msg, explain(r.data), "error");
      return;
    }
    const ev = r.data;
    document.title = `${ev.name} · Evently`;
    $("#event-name").textContent = ev.name;
    $("#event-when").textContent = `${when(ev.starts_at)} – ${when(ev.ends_at)}`;
    $("#event-where").textContent = `${ev.venue.name}, ${ev.venue.address}, ${ev.venue.city}`;
    $("#event-description").textContent = ev.description;
    $("#event-price").textContent = `${money(ev.price, ev.currency)} per seat`;
    // the refund policy, before anyone pays (issue 29)
    $("#event-refunds").textContent = ev.refund_summary ? `${ev.refund_summary}.` : "";
    // ticket types: the choice appears when the event sells more than its default type
    const typeSelect = $("#ticket-type");
    const types = ev.ticket_types || [];
    if (typeSelect && (types.length > 1 || (types.length === 1 && !types[0].is_default))) {
      for (const t of types) {
        const option = document.createElement("option");
        option.value = t.id;
        const state = !t.on_sale ? "not on sale now" : t.available === 0 ? "sold out" : `${t.available} left`;
        option.textContent = `${t.name} — ${money(t.price, t.currency)} (${state})`;
        option.disabled = !t.on_sale || t.available === 0;
        typeSelect.append(option);
      }
      const first = types.find((t) => t.on_sale && t.available > 0);
      if (first) typeSelect.value = first.id;
      $("#ticket-type-field").hidden = false;
    }
    const availability = $("#availability");
    let soldOut = false;
    const render = (a) => {
      availability.dataset.available = String(a.available);
      if (a.status && a.status !== "published") {
        availability.textContent = "This event is not on sale.";
        if (reserveForm) reserveForm.hidden = true;
        if ($("#seat-picker")) $("#seat-picker").hidden = true;
        return;
      }
      soldOut = a.available === 0;
      availability.textContent = soldOut
        ? `Sold out.${a.held ? ` ${a.held} seat${a.held === 1 ? " is" : "s are"} held by buyers paying now and may come back.` : ""}`
        : `${a.available} of ${a.capacity} seats available.`;
      if (reserveForm) reserveForm.hidden = soldOut;
      if (waitForm) waitForm.hidden = !soldOut;
    };
    // Holds seats with `body` (a quantity, lines, or a seated event's seat ids) through the one
    // reserve path: guest buyer, promo code, idempotency key, waiting room. Goes to checkout
    // when held; otherwise says why in `node` and returns the refused answer.
    const hold = async (body, button, node) => {
      button.disabled = true;
      show(node, "Holding your seats…", "info");
      // one key per attempt: a retry after a lost answer gets the same booking
      const key = newKey();
      const code = $("#promo-code") ? $("#promo-code").value.trim() : "";
      if (code) body.promo_code = code;
      if ($("#guest-email")) {
        // continue as guest (issue 32): no account, the booking belongs to this email
        body.buyer = { email: $("#guest-email").value.trim(), name: $("#guest-name").value.trim() };
        if (!body.buyer.email || !body.buyer.name) {
          button.disabled = false;
          show(node, "Enter your name and email address to book as a guest.", "error");
          $(body.buyer.name ? "#guest-email" : "#guest-name").focus();
          return null;
        }
      }
      const reserve = async (admissionToken) => {
        const headers = { "Idempotency-Key": key };
        if (admissionToken) headers["Admission-Token"] = admissionToken;
        let r;
        for (let attempt = 0; attempt < 3; attempt++) {
          r = await api("POST", "/api/v1/bookings/reserve", body, headers);
          if (r.status !== 0) break;
          await sleep(1000);
        }
        return r;
      };
      let res = await reserve(null);
      if (res.status === 403 && res.data && res.data.code === "admission_required") {
        // a queued on-sale: take a place in the waiting room, wait for admission, then
        // reserve with the admission token (docs/waiting-room.md)
        res = await waitingRoom(eventId, node, reserve, body.buyer);
        if (res === null) {
          button.disabled = false;
          return null;
        }
      }
      if (res.status === 201 || res.status === 202) {
        // 202 pending: the booking exists or is still being made; checkout waits for it
        const guest = res.data.access_key ? `?key=${encodeURIComponent(res.data.access_key)}` : "";
        location.assign(`/checkout/${res.data.booking_id}${guest}`);
        return null;
      }
      button.disabled = false;
      if (res.status === 503 && res.data && res.data.code === "overloaded") {
        show(node, `${explain(res.data)} (retry in ${retryAfter(res, 2)} s)`, "error");
      } else {
        show(node, explain(res.data), "error");
      }
      if (res.data && res.data.code === "sold_out" && waitForm) waitForm.hidden = false;
      return res;
    };
    // a seated event (issue 34): the map (static/seatmap.js, on seated pages only)
    const seatMap = window.EventlySeatMap ? window.EventlySeatMap({ eventId, api, hold, show }) : null;
    const defaultType = types.find((t) => t.is_default);
    liveAvailability(eventId, render, $("#live-mode"), seatMap && seatMap.refresh);
    if (reserveForm) {
      // the button stays disabled until this handler is attached (a click before would submit
      // the form natively and reload the page)
      $("#reserve").disabled = false;
      reserveForm.addEventListener("submit", async (e) => {
        e.preventDefault();
        const button = $("#reserve");
        const quantity = Number($("#quantity").value);
        if (!Number.isInteger(quantity) || quantity < 1) {
          show(msg, "Choose how many seats (at least 1).", "error");
          $("#quantity").focus();
          return;
        }
        const body = { event_id: eventId };
        if (typeSelect && !$("#ticket-type-field").hidden && typeSelect.value) {
          body.lines = [{ ticket_type_id: typeSelect.value, quantity }];
        } else {
          body.quantity = quantity;
        }
        const together = $("#together");
        if (together) {
          // a seated event's best available (issue 34): together or not, of the chosen category
          if (body.lines) body.lines[0].together = together.checked;
          else if (!together.checked && defaultType) body.lines = [{ ticket_type_id: defaultType.id, quantity, together: false }];
          if (body.lines) delete body.quantity;
        }
        await hold(body, button, msg);
      });
    }
    if (waitForm) {
      waitForm.addEventListener("submit", async (e) => {
        e.preventDefault();
        const quantity = Number($("#waitlist-quantity").value);
        const body = { event_id: eventId, quantity };
        // a seated event: wait for one category's seats (its ticket type), or any seat
        const waitFor = $("#waitlist-type");
        if (waitFor && waitFor.value) body.ticket_type_id = waitFor.value;
        $("#join-waitlist").disabled = true;
        const res = await api("POST", "/api/v1/waitlist/join", body);
        if (res.status === 201) {
          location.assign(`/waitlist/${res.data.entry_id}`);
          return;
        }
        $("#join-waitlist").disabled = false;
        show(msg, explain(res.data), "error");
      });
    }
  }

  // The waiting room: one place per buyer and event (asking again gives the same place); the
  // page asks for its state when the server says to, and reserves once admitted. Returns the
  // reserve's answer, or null when there is nothing to reserve (sold out, or the place lapsed).
  // A guest (issue 32) joins with the buyer's email: a place of its own, whose admission is good
  // for a guest reserve with that email.
  async function waitingRoom(eventId, msg, reserve, buyer) {
    let q = await api("POST", `/api/v1/events/${eventId}/queue`, buyer ? { buyer } : undefined);
    for (;;) {
      if (q.status !== 200 && q.status !== 201) {
        show(msg, explain(q.data), "error");
        return null;
      }
      const t = q.data;
      if (t.state === "admitted" && t.admission_token) {
        show(msg, "It is your turn: holding your seats…", "info");
        return reserve(t.admission_token);
      }
      if (t.state === "sold_out") {
        show(msg, "Sold out while you waited. You can join the waitlist below.", "error");
        const waitForm = $("#waitlist-form");
        if (waitForm) waitForm.hidden = false;
        return null;
      }
      if (t.state === "expired") {
        show(msg, "Your turn came and went. Try again to take a new place in line.", "error");
        return null;
      }
      const wait = t.estimated_wait_seconds;
      show(
        msg,
        `This on-sale is queued, first come first served. You are number ${t.position} in line` +
          (wait > 0 ? ` (about ${wait} s). ` : ". ") +
          "Keep this page open: your seats are held as soon as it is your turn.",
        "info",
      );
      await sleep(Math.max(1, t.poll_after_seconds || 2) * 1000);
      q = await api("GET", `/api/v1/events/${eventId}/queue/${encodeURIComponent(t.queue_ticket)}`);
    }
  }

  // ---- attendees and questions (issue 32) --------------------------------------------------
  // One fieldset per seat (in the booking's order: its lines in order, each line's seats in a
  // row — the i-th attendee names the i-th ticket) and one for the booking. The API's rules
  // (evently/questions.py): blank text is no answer, a required checkbox must be ticked, a
  // required multiple choice needs an option, a country is two capital letters.
  const seatTypes = (b) => {
    const lines = b.lines || [];
    if (!lines.length) return Array.from({ length: b.quantity }, () => null);
    const seats = [];
    for (const l of lines) for (let i = 0; i < l.quantity; i++) seats.push({ id: l.ticket_type_id, name: l.name });
    return seats;
  };
  const applies = (q, type) => !q.ticket_type_ids || !q.ticket_type_ids.length || (type !== null && q.ticket_type_ids.includes(type.id));
  const answered = (q, v) => (q.kind === "checkbox" ? v === true : Array.isArray(v) ? v.length > 0 : typeof v === "string" && v.trim() !== "");
  const invalidAnswer = (q, v) => {
    if (q.kind === "country" && typeof v === "string" && v && !/^[A-Z]{2}$/.test(v)) return "Enter the country's two-letter code, for example NO or DE.";
    if (q.kind === "text" && typeof v === "string" && v.length > 1000) return "At most 1000 characters.";
    return "";
  };
  function questionField(q, prefix, value) {
    const id = `${prefix}-q-${q.id}`;
    const label = q.required ? `${q.label} (required)` : q.label;
    const error = el("p", { class: "field-error", id: `${id}-error`, hidden: "" });
    let node;
    let read;
    let targets;
    if (q.kind === "checkbox") {
      const input = el("input", { type: "checkbox", id, "aria-describedby": error.id });
      if (q.required) input.required = true;
      input.checked = value === true;
      node = el("div", { class: "field" }, el("div", { class: "field check" }, input, el("label", { for: id, text: label })), error);
      read = () => input.checked;
      targets = [input];
    } else if (q.kind === "multiple_choice") {
      const boxes = (q.options || []).map((o, i) => {
        const box = el("input", { type: "checkbox", id: `${id}-${i}`, value: o, "aria-describedby": error.id });
        box.checked = Array.isArray(value) && value.includes(o);
        return box;
      });
      node = el("fieldset", { class: "field", id },
        el("legend", { text: label }),
        ...boxes.map((box, i) => el("div", { class: "field check" }, box, el("label", { for: box.id, text: q.options[i] }))),
        error);
      read = () => boxes.filter((x) => x.checked).map((x) => x.value);
      targets = boxes;
    } else if (q.kind === "choice") {
      const select = el("select", { id, "aria-describedby": error.id },
        el("option", { value: "", text: "Choose…" }),
        ...(q.options || []).map((o) => el("option", { value: o, text: o })));
      if (q.required) select.required = true;
      select.value = typeof value === "string" ? value : "";
      node = el("div", { class: "field" }, el("label", { for: id, text: label }), select, error);
      read = () => select.value || null;
      targets = [select];
    } else {
      const country = q.kind === "country";
      const input = el("input", { type: "text", id, maxlength: country ? "2" : "1000", autocomplete: country ? "country" : "off", "aria-describedby": error.id });
      if (q.required) input.required = true;
      input.value = typeof value === "string" ? value : "";
      const hint = country ? el("span", { class: "muted small", text: "Two-letter code, for example NO" }) : null;
      node = el("div", { class: "field" }, el("label", { for: id, text: label }), hint, input, error);
      read = () => {
        const v = input.value.trim();
        return v ? (country ? v.toUpperCase() : input.value) : null;
      };
      targets = [input];
    }
    node.dataset.question = q.id;
    const setError = (text) => {
      show(error, text, "error");
      for (const t of targets) t.setAttribute("aria-invalid", text ? "true" : "false");
    };
    return { q, node, read, setError, focus: () => targets[0] && targets[0].focus() };
  }
  // Builds the form when the event asks questions; returns { save, markRequired } or null.
  async function attendeesForm(bookingId, b) {
    const form = $("#attendees-form");
    if (!form) return null;
    const e = await api("GET", `/api/v1/events/${b.event_id}`);
    const questions = e.status === 200 ? e.data.questions || [] : [];
    if (!questions.length) return null;
    const got = await api("GET", `/api/v1/bookings/${bookingId}/attendees`);
    const prior = got.status === 200 ? got.data : { attendees: [], answers: {}, answers_until: null };
    const msg = $("#attendees-message");
    const seats = seatTypes(b).map((type, i) => {
      const given = prior.attendees[i] || {};
      const prefix = `attendee-${i + 1}`;
      const name = el("input", { type: "text", id: `${prefix}-name`, autocomplete: "off", maxlength: "200" });
      name.value = given.name || "";
      const email = el("input", { type: "email", id: `${prefix}-email`, autocomplete: "off", maxlength: "320" });
      email.value = given.email || "";
      const fields = questions.filter((q) => q.per === "ticket" && applies(q, type)).map((q) => questionField(q, prefix, (given.answers || {})[q.id]));
      const fieldset = el("fieldset", { class: "seat-fields", "data-seat": String(i + 1) },
        el("legend", { text: `Ticket ${i + 1}${type ? ` · ${type.name}` : ""}` }),
        el("div", { class: "field" }, el("label", { for: name.id, text: "Name" }), name),
        el("div", { class: "field" }, el("label", { for: email.id, text: "Email (optional)" }), email),
        ...fields.map((f) => f.node));
      return { fieldset, name, email, fields };
    });
    const bookingFields = questions.filter((q) => q.per === "booking").map((q) => questionField(q, "booking", prior.answers[q.id]));
    const parts = seats.map((x) => x.fieldset);
    if (bookingFields.length) {
      parts.push(el("fieldset", { class: "seat-fields", "data-seat": "booking" }, el("legend", { text: "About this booking" }), ...bookingFields.map((f) => f.node)));
    }
    if (prior.answers_until) {
      parts.push(el("p", { class: "muted small", id: "answers-until", text: `You can change these until ${when(prior.answers_until)}.` }));
    }
    $("#attendees-fields").replaceChildren(...parts);
    form.hidden = false;
    const all = () => [...seats.flatMap((x) => x.fields), ...bookingFields];
    const answersOf = (fields) => {
      const out = {};
      for (const f of fields) {
        const v = f.read();
        if (v !== null && !(Array.isArray(v) && !v.length)) out[f.q.id] = v;
      }
      return out;
    };
    const validate = () => {
      let first = null;
      for (const f of all()) {
        const v = f.read();
        const text = f.q.required && !answered(f.q, v) ? "Please answer this question." : invalidAnswer(f.q, v);
        f.setError(text);
        if (text && !first) first = f;
      }
      return first;
    };
    const save = async () => {
      const first = validate();
      if (first) {
        show(msg, MESSAGES.answers_required, "error");
        first.focus();
        return false;
      }
      const body = {
        attendees: seats.map((x) => {
          const a = { name: x.name.value.trim(), answers: answersOf(x.fields) };
          if (x.email.value.trim()) a.email = x.email.value.trim();
          return a;
        }),
        answers: answersOf(bookingFields),
      };
      const button = $("#save-attendees");
      button.disabled = true;
      const r = await api("PUT", `/api/v1/bookings/${bookingId}/attendees`, body);
      button.disabled = false;
      if (r.status === 200) {
        show(msg, "Attendees saved.", "ok");
        return true;
      }
      show(msg, explain(r.data), "error");
      if (r.data && r.data.code === "invalid_email") {
        const bad = seats.find((x) => x.email.value.trim() && r.data.detail && r.data.detail.includes(x.email.value.trim())) || seats.find((x) => x.email.value.trim());
        if (bad) bad.email.focus();
      }
      return false;
    };
    // the API's 422 answers_required names the questions: mark the unanswered ones
    const markRequired = (problem) => {
      let first = null;
      for (const f of all()) {
        if (problem.detail && problem.detail.includes(f.q.id) && !answered(f.q, f.read())) {
          f.setError("Please answer this question.");
          if (!first) first = f;
        }
      }
      show(msg, MESSAGES.answers_required, "error");
      if (first) first.focus();
    };
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      await save();
    });
    return { save, markRequired };
  }

  // A confirmed booking's valid tickets, each with a "Transfer this ticket" form (issue 32):
  // the ticket's code stops working and the new attendee gets a new ticket by email.
  async function ticketTransfers(bookingId) {
    const section = $("#booking-tickets");
    const rows = $("#ticket-rows");
    const msg = $("#transfer-message");
    if (!section) return;
    const load = async () => {
      for (let i = 0; i < 10; i++) {
        const t = await api("GET", `/api/v1/bookings/${bookingId}/tickets`);
        if (t.status === 200 && t.data.tickets.length) return t.data.tickets;
        await sleep(1000); // tickets are issued just after the confirmation
      }
      return [];
    };
    const row = (tk) => {
      const formId = `transfer-${tk.id}`;
      const toggle = el("button", { type: "button", class: "secondary transfer-toggle", "aria-expanded": "false", "aria-controls": formId, text: "Transfer this ticket" });
      const name = el("input", { type: "text", id: `${formId}-name`, autocomplete: "off", maxlength: "200", required: "" });
      const email = el("input", { type: "email", id: `${formId}-email`, autocomplete: "off", maxlength: "320", required: "" });
      const error = el("p", { class: "field-error", id: `${formId}-error`, role: "alert", hidden: "" });
      name.setAttribute("aria-describedby", error.id);
      email.setAttribute("aria-describedby", error.id);
      const submit = el("button", { type: "submit", text: "Transfer" });
      const form = el("form", { id: formId, class: "transfer-form", novalidate: "", hidden: "", "aria-label": `Transfer ${tk.label}` },
        el("p", { class: "muted small", text: "The new attendee gets a new ticket by email; this ticket's code stops working at the door." }),
        el("div", { class: "field" }, el("label", { for: name.id, text: "New attendee's name" }), name),
        el("div", { class: "field" }, el("label", { for: email.id, text: "New attendee's email" }), email),
        error, submit);
      toggle.addEventListener("click", () => {
        const opening = form.hidden;
        form.hidden = !opening;
        toggle.setAttribute("aria-expanded", String(opening));
        if (opening) name.focus();
      });
      form.addEventListener("submit", async (ev) => {
        ev.preventDefault();
        const body = { name: name.value.trim(), email: email.value.trim() };
        name.setAttribute("aria-invalid", body.name ? "false" : "true");
        email.setAttribute("aria-invalid", body.email ? "false" : "true");
        if (!body.name || !body.email) {
          show(error, "Enter the new attendee's name and email address.", "error");
          (body.name ? email : name).focus();
          return;
        }
        submit.disabled = true;
        const r = await api("POST", `/api/v1/bookings/${bookingId}/tickets/${tk.id}/transfer`, body);
        submit.disabled = false;
        if (r.status === 200) {
          await draw();
          show(msg, `Transferred to ${r.data.name}: their new ticket is on its way to ${r.data.email}.`, "ok");
          msg.focus();
          return;
        }
        show(error, explain(r.data), "error");
        if (r.data && r.data.code === "invalid_email") {
          email.setAttribute("aria-invalid", "true");
          email.focus();
        }
      });
      return el("li", { class: "ticket-row", "data-ticket-id": tk.id }, el("span", { class: "ticket-label", text: `${tk.label} ` }), toggle, form);
    };
    const draw = async () => {
      const valid = (await load()).filter((t) => t.status === "valid");
      rows.replaceChildren(...valid.map(row));
      section.hidden = !valid.length;
    };
    msg.tabIndex = -1;
    await draw();
  }

  // ---- checkout: the true countdown, payment, pending and expiry ---------------------------
  async function checkoutPage() {
    const bookingId = $("#checkout").dataset.bookingId;
    const summary = $("#booking-summary");
    const msg = $("#checkout-message");
    const next = $("#checkout-next");
    const hold = $("#hold");
    const payForm = $("#pay-form");
    const countdown = $("#countdown");
    let timer = 0;
    let booking = null;
    let stripe = null;
    let card = null;
    let attendees = null; // the questions' form (a promise), once the booking is known
    let transfers = null;

    const fetchBooking = async () => {
      for (;;) {
        const r = await api("GET", `/api/v1/bookings/${bookingId}`);
        if (r.status === 202) {
          // the reserve answered late (202 pending): the hold is being made; wait for it
          summary.textContent = "Your seats are being reserved: our servers are a little slow right now. This page updates by itself.";
          await sleep(retryAfter(r, 2) * 1000);
          continue;
        }
        if (r.status === 0 || r.status >= 500) {
          summary.textContent = explain(r.data);
          await sleep(2000);
          continue;
        }
        return r;
      }
    };
    const ended = async (b) => {
      clearInterval(timer);
      hold.hidden = true;
      payForm.hidden = true;
      const back = el("a", { href: `/events/${b.event_id}`, id: "back-to-event", text: "Back to the event" });
      const texts = {
        expired: "Your hold has ended: the time ran out and your seats were released.",
        cancelled: "You gave the seats back; nothing was charged.",
        rejected: "These seats could not be held: the event sold out.",
      };
      show(msg, texts[b.status] || `This booking is ${b.status}.`, "error");
      const a = await api("GET", `/api/v1/events/${b.event_id}/availability`);
      const extra = a.status === 200 ? ` ${a.data.available} seat${a.data.available === 1 ? " is" : "s are"} available now.` : "";
      next.replaceChildren(document.createTextNode(`${extra.trim()} `), back);
      next.hidden = false;
    };
    let policyShown = false;
    const showRefundPolicy = async (b) => {
      // the event's refund policy, in one sentence, before payment (issue 29)
      if (policyShown) return;
      policyShown = true;
      const e = await api("GET", `/api/v1/events/${b.event_id}`);
      const node = $("#refund-policy");
      if (e.status === 200 && e.data.refund_summary && node) {
        node.textContent = `${e.data.refund_summary}.`;
        node.hidden = false;
      }
    };
    // issue 31: the breakdown before the buyer pays (tickets, discount, fees, taxes, total)
    const renderPrice = (p) => {
      const table = $("#price-breakdown");
      if (!table || !p) return;
      const rows = [["Tickets", money(p.subtotal, p.currency)]];
      if (Number(p.discount) > 0) rows.push(["Discount", `− ${money(p.discount, p.currency)}`]);
      if (Number(p.fees) > 0) rows.push(["Fees", money(p.fees, p.currency)]);
      for (const t of p.taxes || []) {
        rows.push([`${t.included ? "incl. " : "+ "}${t.name} ${Number(t.rate)} %`, money(t.amount, p.currency)]);
      }
      rows.push(["Total", money(p.total, p.currency)]);
      table.tBodies[0].replaceChildren(...rows.map(([label, value], i) => {
        const tr = document.createElement("tr");
        if (i === rows.length - 1) tr.className = "total";
        tr.append(el("th", { text: label, scope: "row" }), el("td", { text: value }));
        return tr;
      }));
      table.hidden = false;
    };
    const billing = () => {
      const form = new FormData(payForm);
      const out = {
        name: String(form.get("billing_name") || "").trim(),
        address: String(form.get("billing_address") || "").trim(),
        vat_id: String(form.get("billing_vat_id") || "").trim(),
      };
      return out.name || out.address || out.vat_id ? out : undefined;
    };
    const render = (b) => {
      booking = b;
      if (b.status === "held") showRefundPolicy(b);
      if ((b.status === "held" || b.status === "confirmed") && !attendees) attendees = attendeesForm(bookingId, b);
      if (b.status === "confirmed" && !transfers) transfers = ticketTransfers(bookingId);
      if (b.status !== "held" && b.status !== "confirmed") $("#attendees-form").hidden = true;
      summary.textContent = `${b.quantity} seat${b.quantity === 1 ? "" : "s"} · ${money(b.amount, b.currency)} · ${b.status}`;
      summary.dataset.status = b.status;
      const linesNode = $("#booking-lines");
      if (linesNode && b.lines && b.lines.length) {
        const items = b.lines.map((l) => {
          const li = document.createElement("li");
          const discount = Number(l.discount) > 0 ? `, ${money(l.discount, b.currency)} off` : "";
          li.textContent = `${l.quantity} × ${l.name} at ${money(l.unit_price, b.currency)}${discount}`;
          return li;
        });
        linesNode.replaceChildren(...items);
        linesNode.hidden = false;
      }
      // a seated event's booking (issue 34): its seats, by section, row and seat
      const seatsNode = $("#booking-seats");
      if (seatsNode) {
        const seats = b.seats || [];
        seatsNode.textContent = seats.length ? `Your seats: ${seats.map((x) => `Section ${x.section}, row ${x.row}, seat ${x.label}`).join("; ")}.` : "";
        seatsNode.hidden = !seats.length;
      }
      renderPrice(b.price);
      if (b.status === "held") {
        hold.hidden = false;
        payForm.hidden = false;
        startCountdown(Date.parse(b.hold_expires_at));
        $("#hold-until").textContent = `Held until ${new Date(b.hold_expires_at).toLocaleTimeString()}.`;
      } else if (b.status === "confirmed") {
        clearInterval(timer);
        hold.hidden = true;
        payForm.hidden = true;
        show(msg, "", "ok");
        summary.textContent = `Booking confirmed: ${b.quantity} seat${b.quantity === 1 ? "" : "s"}, ${money(b.amount, b.currency)} paid.`;
        if (bookingKey) {
          // a guest: the tickets from here (and from the link in the confirmation email)
          next.replaceChildren(
            el("a", { href: `/api/v1/bookings/${bookingId}/tickets.pdf?key=${encodeURIComponent(bookingKey)}`, id: "see-bookings", download: `tickets-${bookingId}.pdf`, text: "Download your tickets (PDF)" }),
            el("span", { class: "muted small", text: " Keep this page's link (it is in your confirmation email too): it opens your booking without an account." }),
          );
        } else {
          next.replaceChildren(el("a", { href: "/bookings", id: "see-bookings", text: "See your tickets in My bookings" }));
        }
        next.hidden = false;
        $("#see-bookings").focus();
      } else {
        ended(b);
      }
    };
    const startCountdown = (expiresAt) => {
      clearInterval(timer);
      const tick = () => {
        const left = Math.max(0, Math.ceil((expiresAt - serverNow()) / 1000));
        countdown.textContent = `${String(Math.floor(left / 60)).padStart(2, "0")}:${String(left % 60).padStart(2, "0")}`;
        countdown.dataset.secondsLeft = String(left);
        if (left === 0) {
          clearInterval(timer);
          lapse();
        }
      };
      tick();
      timer = setInterval(tick, 250);
    };
    // the countdown reached zero: the server releases the seats; show it when it has
    const lapse = async () => {
      payForm.hidden = true;
      show(msg, "Time is up: your hold is ending…", "error");
      for (let i = 0; i < 60; i++) {
        const r = await fetchBooking();
        if (r.status === 200 && r.data.status !== "held") return render(r.data);
        await sleep(1000);
      }
    };
    const pay = async (e) => {
      e.preventDefault();
      const button = $("#pay");
      button.disabled = true;
      // the questions first: nothing is charged while a required answer is missing
      const questions = attendees ? await attendees : null;
      if (questions && !(await questions.save())) {
        button.disabled = false;
        return;
      }
      show(msg, "Paying…", "info");
      let method;
      if (stripe) {
        const made = await stripe.createPaymentMethod({ type: "card", card });
        if (made.error) {
          button.disabled = false;
          show(msg, made.error.message || MESSAGES.payment_declined, "error");
          return;
        }
        method = made.paymentMethod.id;
      } else {
        method = new FormData(payForm).get("payment_method");
      }
      const r = await api("POST", "/api/v1/bookings/confirm", { booking_id: bookingId, payment_method: method, billing: billing() });
      button.disabled = false;
      if (r.status === 200) {
        const b = await fetchBooking();
        return render(b.data);
      }
      if (r.status === 202) {
        if (r.data.status === "requires_action" && stripe && r.data.client_secret) {
          const done = await stripe.handleNextAction({ clientSecret: r.data.client_secret });
          if (done.error) return show(msg, done.error.message || MESSAGES.payment_declined, "error");
        }
        show(msg, r.data.status === "requires_action"
          ? "Your bank asks you to confirm this payment. Your seats stay held meanwhile; this page updates when the payment is confirmed."
          : "Your payment is being processed; this page updates when it is confirmed.", "info");
        for (let i = 0; i < 600; i++) {
          await sleep(2000);
          const b = await fetchBooking();
          if (b.status === 200 && b.data.status !== "held") return render(b.data);
        }
        return;
      }
      if (r.data && r.data.code === "answers_required" && questions) {
        show(msg, "", "error");
        questions.markRequired(r.data);
        return;
      }
      if (r.data && (r.data.code === "hold_expired" || r.data.code === "booking_not_held")) {
        const b = await fetchBooking();
        if (b.status === 200) render(b.data);
      }
      show(msg, explain(r.data), "error");
      if (r.data && r.data.code === "payment_declined") $("#card-visa") && $("#card-visa").focus();
    };
    payForm.addEventListener("submit", pay);
    $("#cancel-hold").addEventListener("click", async () => {
      const r = await api("DELETE", `/api/v1/bookings/${bookingId}`);
      if (r.status !== 200) return show(msg, explain(r.data), "error");
      const b = await fetchBooking();
      render(b.data);
    });
    if (body.dataset.provider === "stripe" && window.Stripe && body.dataset.stripeKey) {
      stripe = window.Stripe(body.dataset.stripeKey);
      card = stripe.elements().create("card");
      card.mount("#card-element");
    }
    const r = await fetchBooking();
    if (r.status !== 200) {
      summary.textContent = explain(r.data);
      return;
    }
    render(r.data);
  }

  // ---- my bookings and tickets -------------------------------------------------------------
  async function bookingsPage() {
    const status = $("#bookings-status");
    const list = $("#bookings");
    const r = await api("GET", "/api/v1/users/bookings?limit=50");
    if (r.status !== 200) {
      status.textContent = explain(r.data);
      return;
    }
    status.textContent = r.data.total ? `${r.data.total} booking${r.data.total === 1 ? "" : "s"}` : "No bookings yet.";
    const names = new Map();
    for (const b of r.data.items) {
      if (!names.has(b.event_id)) {
        names.set(b.event_id, api("GET", `/api/v1/events/${b.event_id}`).then((e) => (e.status === 200 ? e.data.name : "Event")));
      }
      const item = el("li", { class: "card", "data-booking-id": b.id, "data-status": b.status });
      list.append(item);
      item.append(el("h2", {}, el("a", { href: `/events/${b.event_id}`, text: await names.get(b.event_id) })),
        el("p", { class: "booking-status", text: `${b.quantity} seat${b.quantity === 1 ? "" : "s"} · ${money(b.amount, b.currency)} · ${b.status}` }));
      if (b.status === "held") item.append(el("p", {}, el("a", { href: `/checkout/${b.id}`, text: "Pay now" })));
      if (b.status === "confirmed") {
        item.append(await tickets(b.id));
        item.append(el("p", {}, el("a", { href: `/checkout/${b.id}`, text: "Attendees and ticket transfers" })));
      }
    }
  }
  async function tickets(bookingId) {
    const box = el("div", { class: "tickets" });
    for (let i = 0; i < 10; i++) {
      const t = await api("GET", `/api/v1/bookings/${bookingId}/tickets`);
      if (t.status === 200 && t.data.tickets.length) {
        const ul = el("ul", { class: "ticket-list", "aria-label": "Tickets" });
        for (const tk of t.data.tickets) {
          ul.append(el("li", { class: "ticket" },
            tk.qr_svg_url ? el("img", { src: tk.qr_svg_url, alt: `QR code of ticket ${tk.label}`, width: "120", height: "120" }) : null,
            el("span", { text: `${tk.label} · ${tk.status}` })));
        }
        box.append(ul);
        if (t.data.pdf_url) box.append(el("a", { href: t.data.pdf_url, class: "button", text: "Download tickets (PDF)" }));
        return box;
      }
      await sleep(1000); // tickets are issued just after the confirmation
    }
    box.append(el("p", { class: "muted", text: "Your tickets are being issued; reload in a moment." }));
    return box;
  }

  // ---- waitlist: position, offer, accept ---------------------------------------------------
  async function waitlistPage() {
    const entryId = $("#waitlist").dataset.entryId;
    const status = $("#waitlist-status");
    const offer = $("#offer");
    const msg = $("#waitlist-message");
    let entry = null;
    const load = async () => {
      const r = await api("GET", `/api/v1/waitlist/${entryId}`);
      if (r.status !== 200) {
        status.textContent = explain(r.data);
        return false;
      }
      entry = r.data;
      $("#waitlist-event").href = `/events/${entry.event_id}`;
      status.dataset.status = entry.status;
      offer.hidden = entry.status !== "offered";
      if (entry.status === "waiting") {
        status.textContent = `You are number ${entry.position} in line for ${entry.quantity} seat${entry.quantity === 1 ? "" : "s"}. We will offer you seats as soon as some come back.`;
      } else if (entry.status === "offered") {
        status.textContent = "Seats came back and they are reserved for you.";
        const until = entry.offer && entry.offer.expires_at ? ` until ${new Date(entry.offer.expires_at).toLocaleTimeString()}` : "";
        $("#offer-text").textContent = `${entry.offer ? entry.offer.seats : entry.quantity} seats are yours to take${until}.`;
      } else if (entry.status === "accepted" && entry.offer && entry.offer.booking_id) {
        status.textContent = "You took the offer.";
        location.assign(`/checkout/${entry.offer.booking_id}`);
        return false;
      } else {
        status.textContent = { expired: "Your offer has ended.", left: "You left the waitlist." }[entry.status] || entry.status;
        return false;
      }
      return true;
    };
    $("#accept-offer").addEventListener("click", async () => {
      const r = await api("POST", `/api/v1/waitlist/${entryId}/accept`);
      if (r.status === 201) return location.assign(`/checkout/${r.data.booking_id}`);
      show(msg, explain(r.data), "error");
    });
    $("#decline-offer").addEventListener("click", async () => {
      const r = await api("DELETE", `/api/v1/waitlist/${entryId}`);
      if (r.status !== 200) show(msg, explain(r.data), "error");
      await load();
    });
    while (await load()) await sleep(2000);
  }

  const pages = { home, event: eventPage, checkout: checkoutPage, bookings: bookingsPage, waitlist: waitlistPage };
  const run = pages[body.dataset.page];
  if (run) run();
})();
