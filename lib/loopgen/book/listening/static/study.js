// loopgen listening test: a static page, no server logic. Data comes from stimuli.js (window.LOOPGEN_STUDY).
// The presentation order is seeded by the listener id; loopgen.book.listening.study.listener_order mirrors it.
(function () {
  "use strict";

  // --- seeded order (keep in step with listener_order in study.py) ---
  function fnv1a32(text) {
    const bytes = new TextEncoder().encode(text);
    let h = 0x811c9dc5;
    for (const b of bytes) {
      h ^= b;
      h = Math.imul(h, 0x01000193) >>> 0;
    }
    return h >>> 0;
  }

  function xorshift32(seed) {
    let x = (seed >>> 0) || 0x9e3779b9;
    return function () {
      x ^= x << 13; x >>>= 0;
      x ^= x >>> 17; x >>>= 0;
      x ^= x << 5; x >>>= 0;
      return x;
    };
  }

  function sanitiseListenerId(raw) {
    return String(raw).trim().replace(/[^A-Za-z0-9_-]/g, "_").slice(0, 40);
  }

  function listenerOrder(ids, listenerId, studySeed) {
    const next = xorshift32(fnv1a32(studySeed + ":" + sanitiseListenerId(listenerId)));
    const order = ids.slice();
    for (let i = order.length - 1; i > 0; i--) {
      const j = Math.floor((next() / 4294967296) * (i + 1));
      const tmp = order[i]; order[i] = order[j]; order[j] = tmp;
    }
    return order;
  }

  function csvText(state) {
    const lines = ["listener_id,stimulus_id,rating"];
    for (const id of state.order) {
      if (state.ratings[id] !== undefined) lines.push(state.listener + "," + id + "," + state.ratings[id]);
    }
    return lines.join("\n") + "\n";
  }

  // exposed for tests and for the curious
  window.loopgenStudy = { fnv1a32: fnv1a32, listenerOrder: listenerOrder, sanitiseListenerId: sanitiseListenerId,
    csvText: csvText };

  const STUDY = window.LOOPGEN_STUDY;
  const $ = function (id) { return document.getElementById(id); };
  if (!STUDY) { $("load-error").hidden = false; $("intro").hidden = true; return; }

  const byId = {};
  for (const s of STUDY.stimuli) byId[s.id] = s;
  let state = null;

  function storageKey(listener) { return "loopgen-study:" + STUDY.study_id + ":" + listener; }
  function save() {
    try { window.localStorage.setItem(storageKey(state.listener), JSON.stringify(state)); } catch (e) { /* private mode */ }
  }
  function load(listener) {
    try {
      const text = window.localStorage.getItem(storageKey(listener));
      const saved = text ? JSON.parse(text) : null;
      if (saved && Array.isArray(saved.order) && saved.order.length === STUDY.stimuli.length) return saved;
    } catch (e) { /* ignore unreadable saved state */ }
    return null;
  }

  function show(section) {
    for (const id of ["intro", "familiarise", "rate", "done"]) $(id).hidden = id !== section;
  }

  function mediaElement(item, label) {
    const li = document.createElement("li");
    const title = document.createElement("div");
    title.textContent = label;
    li.appendChild(title);
    if (item.audio) {
      const player = document.createElement("audio");
      player.controls = true;
      player.preload = "none";
      player.src = item.audio;
      li.appendChild(player);
    }
    const link = document.createElement("a");
    link.href = item.midi;
    link.download = "";
    link.textContent = "MIDI file";
    li.appendChild(link);
    return li;
  }

  function buildRatingOptions() {
    const box = $("rating-options");
    for (let value = 1; value <= 5; value++) {
      const label = document.createElement("label");
      const input = document.createElement("input");
      input.type = "radio";
      input.name = "rating";
      input.value = String(value);
      input.id = "rating-" + value;
      input.addEventListener("change", function () {
        state.ratings[state.order[state.index]] = value;
        save();
        $("next").disabled = false;
      });
      label.appendChild(input);
      label.appendChild(document.createTextNode(value + " " + (STUDY.scale[String(value)] || "")));
      box.appendChild(label);
    }
  }

  function showStimulus() {
    const id = state.order[state.index];
    const item = byId[id];
    const n = state.order.length;
    $("rate").dataset.stimulus = id;
    $("progress").textContent = "Loop " + (state.index + 1) + " of " + n;
    const player = $("player");
    player.pause();
    if (item.audio) { player.hidden = false; player.src = item.audio; } else { player.hidden = true; player.removeAttribute("src"); }
    $("midi-link").href = item.midi;
    const current = state.ratings[id];
    for (const input of document.querySelectorAll("input[name=rating]")) input.checked = Number(input.value) === current;
    $("next").disabled = current === undefined;
    $("next").textContent = state.index === n - 1 ? "Finish" : "Next";
    $("back").disabled = state.index === 0;
    show("rate");
  }

  function finish() {
    state.finished = true;
    save();
    $("player").pause();
    $("done-count").textContent = String(Object.keys(state.ratings).length);
    $("download-name").textContent = "ratings_" + state.listener + ".csv";
    show("done");
  }

  function download() {
    const blob = new Blob([csvText(state)], { type: "text/csv" });
    const url = URL.createObjectURL(blob);
    const a = document.createElement("a");
    a.href = url;
    a.download = "ratings_" + state.listener + ".csv";
    document.body.appendChild(a);
    a.click();
    a.remove();
    setTimeout(function () { URL.revokeObjectURL(url); }, 1000);
  }

  function start() {
    const listener = sanitiseListenerId($("listener-id").value);
    if (!listener || /^_+$/.test(listener)) { $("id-error").hidden = false; return; }
    $("id-error").hidden = true;
    state = load(listener) || {
      listener: listener,
      order: listenerOrder(STUDY.stimuli.map(function (s) { return s.id; }), listener, STUDY.seed),
      ratings: {},
      index: 0,
      familiarised: STUDY.familiarisation.length === 0,
      finished: false,
    };
    save();
    if (state.finished) finish();
    else if (!state.familiarised) show("familiarise");
    else showStimulus();
  }

  // --- wire up ---
  const loopSeconds = (128 * 60 / STUDY.tempo / 4) * STUDY.repeats;  // 8 bars of 16 sixteenths, played `repeats` times
  const minutes = Math.ceil(((STUDY.stimuli.length + STUDY.familiarisation.length) * (loopSeconds + 5)) / 60);
  $("duration-estimate").textContent = String(minutes);
  $("intro-question").textContent = STUDY.question;
  $("rate-question").textContent = STUDY.question + " (1 = not at all, 5 = very much)";
  if (!STUDY.audio_available) $("no-audio").hidden = false;
  STUDY.familiarisation.forEach(function (item, i) {
    $("familiar-list").appendChild(mediaElement(item, "Example " + (i + 1)));
  });
  buildRatingOptions();
  $("start").addEventListener("click", start);
  $("listener-id").addEventListener("keydown", function (e) { if (e.key === "Enter") start(); });
  $("fam-continue").addEventListener("click", function () {
    for (const p of document.querySelectorAll("#familiar-list audio")) p.pause();
    state.familiarised = true; save(); showStimulus();
  });
  $("next").addEventListener("click", function () {
    if (state.ratings[state.order[state.index]] === undefined) return;
    if (state.index === state.order.length - 1) { finish(); return; }
    state.index += 1; save(); showStimulus();
  });
  $("back").addEventListener("click", function () {
    if (state.index > 0) { state.index -= 1; save(); showStimulus(); }
  });
  $("download").addEventListener("click", download);
})();
