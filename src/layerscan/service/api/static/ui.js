// Live refresh of the queue page: poll /ui/state.json and redraw the queue, analyzers and images.
"use strict";
(function () {
  const PERIOD_MS = 2000;

  function cell(row, text, cls) {
    const td = row.insertCell();
    td.textContent = text === null || text === undefined ? "" : String(text);
    if (cls) td.className = cls;
    return td;
  }

  function drawQueue(queue) {
    for (const td of document.querySelectorAll("#queue td[data-state]")) {
      td.textContent = String(queue[td.dataset.state] ?? 0);
    }
  }

  function drawWorkers(workers) {
    const body = document.querySelector("#workers tbody");
    body.replaceChildren();
    for (const w of workers) {
      const row = body.insertRow();
      cell(row, w.id);
      cell(row, w.address);
      cell(row, w.threads);
      cell(row, w.busy);
      cell(row, w.status, w.status);
      cell(row, w.last_seen);
    }
  }

  function drawImages(images) {
    const body = document.querySelector("#images tbody");
    body.replaceChildren();
    for (const i of images) {
      const row = body.insertRow();
      row.dataset.digest = i.digest;
      cell(row, i.tags.join(", "));
      const link = document.createElement("a");
      link.href = "/ui/images/" + i.digest;
      link.textContent = i.digest.slice(7, 19);
      cell(row, "").appendChild(link);
      cell(row, i.status, "status " + i.status).title = i.error || "";
      cell(row, i.packages);
      cell(row, i.files);
      cell(row, i.secrets);
      cell(row, i.analyzed_at);
    }
  }

  async function refresh() {
    try {
      const resp = await fetch("/ui/state.json", { cache: "no-store", credentials: "same-origin" });
      if (resp.ok) {
        const state = await resp.json();
        drawQueue(state.queue);
        drawWorkers(state.workers);
        drawImages(state.images);
        document.getElementById("refreshed").textContent = "updated " + new Date().toLocaleTimeString();
      }
    } finally {
      setTimeout(refresh, PERIOD_MS);
    }
  }

  setTimeout(refresh, PERIOD_MS);
})();
