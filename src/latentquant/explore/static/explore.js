// The latentquant explorer's page. Two modes, one script:
//   live:   the server decodes each code (GET /api/decode.png), encodes strip images, samples GAN priors;
//   static: an exported file; every traversal image is embedded, so one latent moves at a time from the start.
// The data (runs, latents, NMI, scores; in static mode the images) is a JSON element of the page itself.
(function () {
  "use strict";
  const DATA = JSON.parse(document.getElementById("lq-data").textContent);
  const STATIC = DATA.mode === "static";
  const runs = DATA.runs;
  const codes = runs.map((run) => (run.start ? run.start.slice() : null));
  const DEBOUNCE_MS = 25; // while dragging: coalesce input events, decode the latest code

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (key === "class") node.className = value;
      else if (key === "text") node.textContent = value;
      else node.setAttribute(key, value);
    }
    for (const child of children) if (child != null) node.append(child);
    return node;
  }

  function fmt(value, digits) {
    if (value === null || value === undefined) return "–";
    if (typeof value !== "number") return String(value);
    return Number.isInteger(value) ? String(value) : value.toFixed(digits === undefined ? 3 : digits);
  }

  function nearestIndex(values, v) {
    let best = 0;
    for (let k = 1; k < values.length; k++) if (Math.abs(values[k] - v) < Math.abs(values[best] - v)) best = k;
    return best;
  }

  // --- decoding (live) --------------------------------------------------------------------------------------
  // One request in flight per run; a code asked for meanwhile waits and only the newest is sent.
  const inflight = runs.map(() => false);
  const pending = runs.map(() => false);
  const released = runs.map(() => null); // performance.now() of the last slider release
  const timers = runs.map(() => null);

  function codeText(r) { return codes[r].map(String).join(","); }

  function showError(r, text) { document.getElementById(`err-${r}`).textContent = text || ""; }

  async function decode(r) {
    if (inflight[r]) { pending[r] = true; return; }
    inflight[r] = true; pending[r] = false;
    const text = codeText(r);
    const t0 = released[r];
    try {
      const response = await fetch(`api/decode.png?run=${r}&z=${encodeURIComponent(text)}`);
      if (!response.ok) {
        const body = await response.json().catch(() => ({}));
        showError(r, body.error || `decoding failed (${response.status})`);
      } else {
        const url = URL.createObjectURL(await response.blob());
        const img = document.getElementById(`img-${r}`);
        await new Promise((resolve) => {
          img.onload = img.onerror = resolve;
          const old = img.src;
          img.src = url;
          if (old.startsWith("blob:")) URL.revokeObjectURL(old);
        });
        img.dataset.code = text;
        const timing = /dur=([0-9.]+)/.exec(response.headers.get("Server-Timing") || "");
        if (timing) img.dataset.serverMs = timing[1];
        if (t0 !== null) img.dataset.latencyMs = (performance.now() - t0).toFixed(1);
        showError(r, "");
      }
    } catch (e) {
      showError(r, `the explorer server did not answer (${e})`);
    } finally {
      inflight[r] = false;
      if (pending[r]) decode(r);
    }
  }

  function schedule(r, now) {
    clearTimeout(timers[r]);
    if (now) decode(r);
    else timers[r] = setTimeout(() => decode(r), DEBOUNCE_MS);
  }

  // --- static traversals ------------------------------------------------------------------------------------
  function showStatic(r, j, k) {
    const run = runs[r];
    const img = document.getElementById(`img-${r}`);
    if (j === null) { img.src = run.start_image; img.dataset.shown = "start"; return; }
    img.src = run.traversals[j][k];
    img.dataset.shown = `${j}:${k}`;
  }

  // --- controls ---------------------------------------------------------------------------------------------
  function sliderValues(latent, r) { return STATIC ? runs[r].traversal_values[latent.index] : latent.values; }

  function setSliders(r) {
    runs[r].latents.forEach((latent) => {
      const slider = document.getElementById(`lat-${r}-${latent.index}`);
      const v = codes[r][latent.index];
      const values = sliderValues(latent, r);
      if (values) slider.value = String(nearestIndex(values, v));
      else slider.value = String(v);
      updateReadout(r, latent);
    });
  }

  function updateReadout(r, latent) {
    const slider = document.getElementById(`lat-${r}-${latent.index}`);
    const values = sliderValues(latent, r);
    const v = values ? values[Number(slider.value)] : Number(slider.value);
    document.getElementById(`val-${r}-${latent.index}`).textContent = fmt(v);
    const ticks = document.getElementById(`ticks-${r}-${latent.index}`);
    if (ticks) ticks.querySelectorAll("span").forEach((s, k) => s.classList.toggle("on", k === Number(slider.value)));
  }

  function latentRow(r, latent) {
    const values = sliderValues(latent, r);
    const label = latent.factor === null ? "no factor"
      : `${latent.factor} · NMI ${fmt(latent.nmi, 2)}`;
    const name = el("div", { class: "name" }, el("b", { text: `z${latent.index}` }),
      el("small", { text: latent.active ? label : `${label} · inactive` }));
    const attrs = values ? { type: "range", min: "0", max: String(values.length - 1), step: "1" }
      : { type: "range", min: String(latent.low), max: String(latent.high), step: "any" };
    const slider = el("input", { ...attrs, id: `lat-${r}-${latent.index}`, "aria-label": `latent ${latent.index}` });
    const row = el("div", { class: latent.active ? "latent" : "latent inactive", "data-latent": latent.index },
      name, slider, el("output", { id: `val-${r}-${latent.index}` }));
    if (values && (latent.kind === "codebook" || STATIC)) {
      row.append(el("div", { class: "ticks", id: `ticks-${r}-${latent.index}` },
        ...values.map((v) => el("span", { text: fmt(v, 2) }))));
    }
    const total = latent.usage.reduce((a, b) => a + b, 0) || 1;
    const peak = Math.max(...latent.usage, 1);
    row.append(el("div", { class: "usage", title: latent.kind === "codebook"
      ? "evaluation images per codebook value" : "histogram of the evaluation set's values" },
      ...latent.usage.map((count) => el("div", { style: `height:${(100 * count / peak).toFixed(1)}%`,
        title: `${count} (${(100 * count / total).toFixed(1)}%)` }))));
    slider.addEventListener("input", () => {
      updateReadout(r, latent);
      if (STATIC) { moveStatic(r, latent); return; }
      codes[r][latent.index] = values ? values[Number(slider.value)] : Number(slider.value);
      schedule(r, false);
    });
    slider.addEventListener("change", () => {
      if (STATIC) return;
      released[r] = performance.now();
      codes[r][latent.index] = values ? values[Number(slider.value)] : Number(slider.value);
      schedule(r, true);
    });
    return row;
  }

  function moveStatic(r, latent) {
    // Precomputed traversals move one latent from the start: the others go back to the start's values.
    const run = runs[r];
    codes[r] = run.start.slice();
    const k = Number(document.getElementById(`lat-${r}-${latent.index}`).value);
    run.latents.forEach((other) => {
      if (other.index === latent.index) return;
      const slider = document.getElementById(`lat-${r}-${other.index}`);
      slider.value = String(nearestIndex(run.traversal_values[other.index], run.start[other.index]));
      updateReadout(r, other);
    });
    showStatic(r, latent.index, k);
  }

  function scoresTable(run) {
    const names = { infom: "InfoM", infoe: "InfoE", infoc: "InfoC", psnr: "PSNR (dB)", active_latents: "active latents",
      step: "evaluated at step" };
    const rows = Object.entries(run.scores).map(([key, value]) =>
      el("tr", {}, el("td", { text: names[key] || key }), el("td", { class: "num", text: fmt(value) })));
    if (!rows.length) return el("p", { class: "muted", text: "no evaluation logged yet" });
    return el("table", { class: "scores" }, ...rows);
  }

  function heatmap(run) {
    const head = el("tr", {}, el("th", {}), ...run.latents.map((l) => el("th", { text: `z${l.index}` })));
    const rows = run.factors.map((factor, k) => el("tr", {}, el("th", { text: factor }),
      ...run.nmi[k].map((v) => {
        const t = v === null ? 0 : Math.max(0, Math.min(1, v));
        const shade = Math.round(255 * (1 - t));
        return el("td", { class: "cell", title: `NMI(${factor}; z) = ${fmt(v)}`,
          style: `background: rgb(${shade},${Math.round(255 - 150 * t)},255);color:${t > 0.55 ? "#fff" : "#222"}`,
          text: v === null ? "–" : v.toFixed(2) });
      })));
    return el("table", { class: "heat" }, head, ...rows);
  }

  function runPanel(run, r) {
    const title = `${run.name}`;
    const sub = `${run.model} · ${run.dataset} ${run.image_size}px · step ${run.step}`;
    const img = el("img", { id: `img-${r}`, class: "decoded", alt: `decoded image of ${run.name}` });
    const top = el("div", { class: "top" }, img, el("div", {}, scoresTable(run)));
    const panel = el("section", { class: "run", id: `run-${r}` }, el("h2", { text: title }),
      el("div", { class: "muted", text: sub }), top, el("div", { class: "error", id: `err-${r}` }));
    if (!STATIC && run.family === "gan") {
      const button = el("button", { id: `sample-${r}`, type: "button", text: "random prior sample" });
      button.addEventListener("click", () => sampleRun(r));
      panel.append(button);
    }
    if (STATIC) {
      const button = el("button", { id: `reset-${r}`, type: "button", text: "back to the start" });
      button.addEventListener("click", () => { codes[r] = run.start.slice(); setSliders(r); showStatic(r, null); });
      panel.append(button);
    }
    panel.append(el("h3", { text: "Latents (label: the factor each shares most information with)" }));
    run.latents.forEach((latent) => panel.append(latentRow(r, latent)));
    panel.append(el("h3", { text: "NMI between factors and latents (InfoMEC, evaluation set)" }), heatmap(run));
    return panel;
  }

  // --- starting points (live) -------------------------------------------------------------------------------
  async function pick(k) {
    document.querySelectorAll("#strip img.pick").forEach((img, i) => img.classList.toggle("chosen", i === k));
    const response = await fetch("api/encode", { method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ image: k }) });
    const body = await response.json();
    if (!response.ok) { showError(0, body.error); return; }
    body.codes.forEach((code, r) => { codes[r] = code; setSliders(r); released[r] = null; schedule(r, true); });
    document.getElementById("original").src = `api/image/${k}.png`;
    document.getElementById("strip").dataset.picked = String(k);
  }

  async function sampleRun(r) {
    const seed = Math.floor(Math.random() * 1e9);
    const response = await fetch(`api/sample?run=${r}&seed=${seed}`);
    const body = await response.json();
    if (!response.ok) { showError(r, body.error); return; }
    codes[r] = body.z; setSliders(r); released[r] = null; schedule(r, true);
  }

  // --- the page ---------------------------------------------------------------------------------------------
  const root = document.getElementById("app");
  if (!STATIC) {
    const strip = el("div", { id: "strip" }, el("span", { class: "muted", text: "start from:" }));
    for (let k = 0; k < DATA.strip; k++) {
      const img = el("img", { id: `strip-${k}`, class: "pick", src: `api/image/${k}.png`, alt: `dataset image ${k}`,
        title: "encode this image" });
      img.addEventListener("click", () => pick(k));
      strip.append(img);
    }
    strip.append(el("span", { class: "muted", text: "chosen:" }),
      el("img", { id: "original", class: "original", alt: "the chosen dataset image" }));
    root.append(strip);
  }
  const panels = el("div", { id: "runs" });
  runs.forEach((run, r) => panels.append(runPanel(run, r)));
  root.append(panels);
  if (STATIC) {
    runs.forEach((run, r) => { setSliders(r); showStatic(r, null); });
  } else if (DATA.strip > 0) {
    pick(0);
  }
})();
