// Evently back office: the live figures (Server-Sent Events of server-rendered fragments) and
// the organization switcher. Everything else is plain HTML forms.
"use strict";

function liveSections() {
  document.querySelectorAll("[data-live-url]").forEach((section) => {
    const source = new EventSource(section.dataset.liveUrl);
    const state = document.getElementById("live-state");
    ["counts", "charts"].forEach((name) => {
      source.addEventListener(name, (message) => {
        const target = section.querySelector(`[data-live="${name}"]`);
        if (target) {
          // the server renders these fragments (Jinja, autoescaped): trusted markup
          target.innerHTML = message.data;
        }
      });
    });
    source.addEventListener("open", () => { if (state) state.textContent = "live"; });
    source.addEventListener("error", () => { if (state) state.textContent = "reconnecting…"; });
    window.addEventListener("pagehide", () => source.close());
  });
}

function switcher() {
  const select = document.querySelector("[data-switch]");
  if (!select) return;
  select.addEventListener("change", () => { window.location.assign(`/manage/${select.value}`); });
}

document.addEventListener("DOMContentLoaded", () => { liveSections(); switcher(); });
