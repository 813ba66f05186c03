// Small behaviours the pages opt into with data attributes (no inline script: the CSP forbids it).

// [data-copy="id"]: copy the text of element #id.
document.addEventListener("click", (event) => {
  const button = event.target.closest("[data-copy]");
  if (!button) return;
  const source = document.getElementById(button.dataset.copy);
  if (!source || !navigator.clipboard) return;
  navigator.clipboard.writeText(source.textContent.trim()).then(() => { button.textContent = "Copied"; });
});

// [data-seek-ms]: play the recording from that moment (a transcript turn's time).
document.addEventListener("click", (event) => {
  const turn = event.target.closest("[data-seek-ms]");
  const audio = document.getElementById("recording");
  if (!turn || !audio) return;
  audio.currentTime = Number(turn.dataset.seekMs) / 1000;
  audio.play().catch(() => {});
});

// [data-seek-by-position="audio id"]: a click on the waveform plays from that point of the recording.
document.addEventListener("click", (event) => {
  const strip = event.target.closest("[data-seek-by-position]");
  const audio = strip && document.getElementById(strip.dataset.seekByPosition);
  if (!audio || !isFinite(audio.duration)) return;
  const box = strip.getBoundingClientRect();
  audio.currentTime = Math.max(0, Math.min(1, (event.clientX - box.left) / box.width)) * audio.duration;
  audio.play().catch(() => {});
});

// [data-evidence="field"]: highlight the words an extracted value came from.
document.addEventListener("click", (event) => {
  const link = event.target.closest("[data-evidence]");
  if (!link) return;
  document.querySelectorAll("mark.focused").forEach((m) => m.classList.remove("focused"));
  document.querySelectorAll("mark[data-field]").forEach((m) => {
    if (m.dataset.field === link.dataset.evidence) m.classList.add("focused");
  });
});

// [data-toggle-class][data-toggle-target]: a checkbox that sets a class on another element.
document.addEventListener("change", (event) => {
  const box = event.target.closest("[data-toggle-class]");
  const target = box && document.getElementById(box.dataset.toggleTarget);
  if (target) target.classList.toggle(box.dataset.toggleClass, box.checked);
});

// [data-live="url"]: server-sent events keep this region current. Each "update" carries the
// region's HTML (rendered and escaped by the server); only the children that changed are
// replaced, so a playing recording or an open <details> is left alone.
function swapChildren(region, html) {
  const incoming = document.createElement("template");
  incoming.innerHTML = html;
  const fresh = Array.from(incoming.content.children);
  const current = Array.from(region.children);
  const sameShape = fresh.length === current.length && fresh.every((el, i) => el.id && el.id === current[i].id);
  if (!sameShape) {
    region.replaceChildren(...fresh);
    return;
  }
  fresh.forEach((el, i) => {
    const old = current[i];
    const wasOpen = old.querySelector("details[open]");
    if (wasOpen) {
      const twin = el.querySelector(`details#${wasOpen.id}`);
      if (twin) twin.open = true;
    }
    if (old.outerHTML !== el.outerHTML) old.replaceWith(el);
  });
}

function followLive(region) {
  const source = new EventSource(region.dataset.live);
  source.addEventListener("update", (event) => swapChildren(region, event.data));
  source.addEventListener("signed-out", () => { source.close(); window.location.assign("/dashboard/sign-in"); });
  source.addEventListener("gone", () => source.close());
}

document.querySelectorAll("[data-live]").forEach(followLive);

// [data-fill="input id"][data-value]: put a value into a form input (the sandbox numbers).
document.addEventListener("click", (event) => {
  const button = event.target.closest("[data-fill]");
  const input = button && document.getElementById(button.dataset.fill);
  if (!input) return;
  input.value = button.dataset.value;
  input.focus();
});

// [data-add-row="fieldset id"]: add an empty copy of the fieldset's last .field-row, numbered on.
document.addEventListener("click", (event) => {
  const button = event.target.closest("[data-add-row]");
  const set = button && document.getElementById(button.dataset.addRow);
  if (!set) return;
  const rows = set.querySelectorAll(".field-row");
  if (rows.length >= Number(set.dataset.maxRows || 20)) return;
  const row = rows[rows.length - 1].cloneNode(true);
  row.querySelectorAll("[name]").forEach((input) => {
    input.name = input.name.replace(/^field-\d+-/, `field-${rows.length}-`);
    if (input.tagName === "SELECT") input.selectedIndex = 0; else input.value = "";
  });
  button.before(row);
});
