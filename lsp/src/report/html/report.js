// Script of the HTML scan report (compiled into lsp/src/report/html.rs). It reads the report
// data from the #periodic-data JSON block and draws the table, the filter and the detail
// panel. Text from the report only ever reaches the page through textContent, never as HTML.
"use strict";
(function () {
  const data = JSON.parse(document.getElementById("periodic-data").textContent);
  const patterns = data.patterns;
  const byId = new Map(patterns.map((pattern) => [pattern.id, pattern]));

  const LANGUAGE_COLOURS = {
    python: "#3572a5", javascript: "#f1e05a", jsx: "#f1e05a", typescript: "#3178c6", tsx: "#3178c6",
    java: "#b07219", rust: "#dea584", go: "#00add8", c: "#6e7781", cpp: "#f34b7d", "c++": "#f34b7d",
    csharp: "#178600", "c#": "#178600", ruby: "#9b111e",
  };
  const KIND_COLOURS = { T1: "#d7263d", T2: "#f49d37", T3: "#3f88c5" };
  const KIND_LABELS = { T1: "T1 exact", T2: "T2 renamed", T3: "T3 near-miss" };

  function hashHue(text) {
    let hash = 0;
    for (let index = 0; index < text.length; index += 1) hash = (hash * 31 + text.charCodeAt(index)) | 0;
    return Math.abs(hash) % 360;
  }
  function languageColour(language) {
    return LANGUAGE_COLOURS[String(language).toLowerCase()] || `hsl(${hashHue(String(language))}, 45%, 55%)`;
  }
  function kindColour(kind) {
    return KIND_COLOURS[kind] || "#8a8f98";
  }
  // Dark text on light tiles, light text on dark ones (relative luminance of the colour).
  function textColourFor(colour) {
    const probe = document.createElement("span");
    probe.style.color = colour;
    document.body.appendChild(probe);
    const rgb = getComputedStyle(probe).color.match(/\d+(\.\d+)?/g).slice(0, 3).map(Number);
    probe.remove();
    const [r, g, b] = rgb.map((channel) => {
      const value = channel / 255;
      return value <= 0.03928 ? value / 12.92 : Math.pow((value + 0.055) / 1.055, 2.4);
    });
    return 0.2126 * r + 0.7152 * g + 0.0722 * b > 0.4 ? "#1d1f24" : "#ffffff";
  }
  const textColourCache = new Map();
  function textColour(colour) {
    if (!textColourCache.has(colour)) textColourCache.set(colour, textColourFor(colour));
    return textColourCache.get(colour);
  }

  function element(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }
  function formatNumber(value) {
    return Number(value).toLocaleString("en-US");
  }
  function memberLabel(member) {
    return `${member.path}:${member.start_line}-${member.end_line}`;
  }

  function applyColours(node, pattern) {
    const languages = pattern.languages.length ? pattern.languages : ["unknown"];
    const first = languageColour(languages[0]);
    const languageBackground = languages.length > 1
      ? `linear-gradient(135deg, ${first} 0 55%, ${languageColour(languages[1])} 55% 100%)`
      : first;
    node.style.setProperty("--lang-bg", languageBackground);
    node.style.setProperty("--lang-fg", textColour(first));
    const kind = kindColour(pattern.kind);
    node.style.setProperty("--kind-bg", kind);
    node.style.setProperty("--kind-fg", textColour(kind));
  }

  // ---- the table -------------------------------------------------------------------------
  // Tiles are drawn a page at a time, in the current order and filter, and the next page
  // when the reader scrolls near the end of the table or asks for it: a tree with tens of thousands of patterns
  // opens as fast as a small one. `?page-size=N` in the address changes the page.
  const PAGE_SIZE = (() => {
    const asked = Number(new URLSearchParams(location.search).get("page-size"));
    return Number.isInteger(asked) && asked > 0 ? asked : 500;
  })();
  const table = document.getElementById("table");
  const tiles = new Map();
  const searchText = new Map();
  let order = patterns;
  let matches = patterns;
  let drawn = 0;

  function tileFor(pattern) {
    let tile = tiles.get(pattern.id);
    if (tile) return tile;
    tile = element("button", `tile size-${pattern.size}`);
    tile.type = "button";
    tile.setAttribute("role", "listitem");
    tile.dataset.patternId = pattern.id;
    tile.dataset.kind = pattern.kind;
    tile.dataset.languages = pattern.languages.join(" ");
    tile.title = `${pattern.name}\n${pattern.id} · ${pattern.kind} · ${pattern.members.length} copies · ${pattern.duplicated_lines} duplicated lines`;
    const top = element("span", "top");
    top.append(element("span", "number", String(pattern.number)), element("span", "copies", `×${pattern.members.length}`));
    const bottom = element("span", "bottom");
    bottom.append(element("span", "id", pattern.id), element("span", "lines", `${pattern.duplicated_lines} ln`));
    tile.append(top, element("span", "symbol", pattern.symbol), element("span", "name", pattern.name), bottom);
    applyColours(tile, pattern);
    tile.addEventListener("click", () => openDetail(pattern.id));
    tiles.set(pattern.id, tile);
    return tile;
  }

  function haystack(pattern) {
    let text = searchText.get(pattern.id);
    if (text === undefined) {
      text = [
        pattern.name, pattern.id, pattern.kind, ...pattern.languages,
        ...pattern.members.flatMap((member) => [member.path, member.name, member.language]),
      ].join("\n").toLowerCase();
      searchText.set(pattern.id, text);
    }
    return text;
  }

  const more = element("button", "more");
  more.type = "button";
  more.id = "more";
  more.hidden = true;
  table.after(more);

  function drawMore() {
    const end = Math.min(matches.length, drawn + PAGE_SIZE);
    const fragment = document.createDocumentFragment();
    for (let index = drawn; index < end; index += 1) fragment.appendChild(tileFor(matches[index]));
    table.appendChild(fragment);
    drawn = end;
    const left = matches.length - drawn;
    more.hidden = left === 0;
    more.textContent = `Show ${formatNumber(Math.min(left, PAGE_SIZE))} more (${formatNumber(left)} not shown yet)`;
  }
  function redraw() {
    table.replaceChildren();
    drawn = 0;
    drawMore();
  }
  more.addEventListener("click", drawMore);
  // Scrolling near the end of the table draws the next page (one page per scroll event).
  window.addEventListener("scroll", () => {
    if (!more.hidden && more.getBoundingClientRect().top < window.innerHeight + 600) drawMore();
  }, { passive: true });

  // ---- header extras: language bar and legends --------------------------------------------
  const languageBar = document.getElementById("language-bar");
  const totalLines = data.languages.reduce((sum, language) => sum + language.lines, 0);
  for (const language of data.languages) {
    if (!totalLines || !language.lines) continue;
    const part = element("span");
    part.style.width = `${(100 * language.lines) / totalLines}%`;
    part.style.background = languageColour(language.name);
    part.title = `${language.name}: ${formatNumber(language.lines)} lines, ${formatNumber(language.duplicated_lines)} duplicated`;
    languageBar.appendChild(part);
  }

  const legend = document.getElementById("legend");
  function drawLegend(mode) {
    legend.replaceChildren();
    const entries = new Map();
    for (const pattern of patterns) {
      const keys = mode === "kind" ? [pattern.kind] : pattern.languages;
      for (const key of keys) entries.set(key, (entries.get(key) || 0) + 1);
    }
    for (const [key, count] of [...entries].sort((a, b) => b[1] - a[1])) {
      const item = element("span", "legend-item");
      const swatch = element("span", "swatch");
      swatch.style.background = mode === "kind" ? kindColour(key) : languageColour(key);
      item.append(swatch, document.createTextNode(`${mode === "kind" ? KIND_LABELS[key] || key : key} (${count})`));
      legend.appendChild(item);
    }
  }

  // ---- filtering, sorting, colouring ------------------------------------------------------
  const filterInput = document.getElementById("filter");
  const kindBoxes = [...document.querySelectorAll('input[name="kind"]')];
  const shownCount = document.getElementById("shown-count");
  const empty = document.getElementById("empty");
  const knownKinds = new Set(kindBoxes.map((box) => box.value));

  function applyFilter() {
    const terms = filterInput.value.toLowerCase().split(/\s+/).filter(Boolean);
    const kinds = new Set(kindBoxes.filter((box) => box.checked).map((box) => box.value));
    // A kind without a checkbox is never hidden by the checkboxes.
    matches = order.filter((pattern) =>
      (kinds.has(pattern.kind) || !knownKinds.has(pattern.kind)) && terms.every((term) => haystack(pattern).includes(term)));
    const shown = matches.length;
    redraw();
    shownCount.textContent = `${formatNumber(shown)} of ${formatNumber(patterns.length)} patterns`;
    if (!patterns.length) {
      empty.textContent = "No duplicated code found: the table is empty.";
      empty.hidden = false;
    } else if (!shown) {
      empty.textContent = "No pattern matches the filter.";
      empty.hidden = false;
    } else {
      empty.hidden = true;
    }
  }
  let filterQueued = false;
  function queueFilter() {
    if (filterQueued) return;
    filterQueued = true;
    requestAnimationFrame(() => {
      filterQueued = false;
      applyFilter();
    });
  }
  filterInput.addEventListener("input", queueFilter);
  for (const box of kindBoxes) box.addEventListener("change", applyFilter);

  const SORTS = {
    lines: (a, b) => b.duplicated_lines - a.duplicated_lines || a.number - b.number,
    copies: (a, b) => b.members.length - a.members.length || a.number - b.number,
    similarity: (a, b) => b.similarity - a.similarity || a.number - b.number,
    name: (a, b) => a.name.localeCompare(b.name) || a.number - b.number,
  };
  document.getElementById("sort").addEventListener("change", (event) => {
    order = [...patterns].sort(SORTS[event.target.value] || SORTS.lines);
    applyFilter();
  });

  for (const radio of document.querySelectorAll('input[name="colour"]')) {
    radio.addEventListener("change", () => {
      if (!radio.checked) return;
      document.body.dataset.colour = radio.value;
      drawLegend(radio.value);
    });
  }

  // ---- the detail panel -------------------------------------------------------------------
  const detail = document.getElementById("detail");
  let selectedTile = null;

  function normalisedLine(line) {
    return line.replace(/\s+/g, " ").trim();
  }

  function codeBlock(member, changedLines) {
    const pre = element("pre", "code");
    const code = element("code");
    const lines = member.code.split("\n");
    lines.forEach((line, offset) => {
      const row = element("span", "line");
      if (changedLines && changedLines.has(offset)) row.classList.add("changed");
      // The trailing newline keeps copied code multi-line; the number is not selectable.
      row.append(element("span", "ln", String(member.start_line + offset)), document.createTextNode(`${line}\n`));
      code.appendChild(row);
    });
    pre.appendChild(code);
    return pre;
  }

  // For near-miss clones, marks the lines of each copy that have no identical line (up to
  // whitespace) in any other shown copy: that is where the copies drifted apart.
  function changedLinesPerMember(pattern, shown) {
    if (pattern.kind !== "T3") return shown.map(() => null);
    const lineSets = shown.map((member) => new Set((member.code || "").split("\n").map(normalisedLine)));
    return shown.map((member, index) => {
      if (!member.code) return null;
      const changed = new Set();
      member.code.split("\n").forEach((line, offset) => {
        const key = normalisedLine(line);
        if (!key) return;
        const elsewhere = lineSets.some((set, other) => other !== index && set.has(key));
        if (!elsewhere) changed.add(offset);
      });
      return changed;
    });
  }

  function openDetail(patternId) {
    const pattern = byId.get(patternId);
    if (!pattern) return;
    if (selectedTile) selectedTile.classList.remove("selected");
    // A pattern opened from a link may lie past the tiles drawn so far.
    selectedTile = tiles.get(patternId) || null;
    if (selectedTile) selectedTile.classList.add("selected");

    detail.replaceChildren();
    detail.dataset.patternId = pattern.id;
    applyColours(detail, pattern);

    const head = element("div", "detail-head");
    const titleBlock = element("div");
    const facts = element("div", "facts");
    facts.append(
      element("code", "", pattern.id),
      document.createTextNode(
        ` · ${KIND_LABELS[pattern.kind] || pattern.kind} · ${Math.round(pattern.similarity * 100)}% similar · ` +
        `${pattern.members.length} copies · ${formatNumber(pattern.duplicated_lines)} duplicated lines · ` +
        `${pattern.languages.join(", ") || "unknown language"}`,
      ),
    );
    titleBlock.append(element("h2", "", pattern.name), facts);
    const close = element("button", "close", "×");
    close.type = "button";
    close.id = "detail-close";
    close.setAttribute("aria-label", "Close the detail panel");
    close.addEventListener("click", closeDetail);
    head.append(element("div", "mini", pattern.symbol), titleBlock, close);

    const shown = pattern.members.filter((member) => member.code !== undefined || member.no_code_reason);
    const listedOnly = pattern.members.filter((member) => !shown.includes(member));
    const changed = changedLinesPerMember(pattern, shown);
    const members = element("div", "members");
    shown.forEach((member, index) => {
      const column = element("section", "member");
      column.dataset.path = member.path;
      column.dataset.startLine = String(member.start_line);
      const memberHead = element("div", "member-head");
      memberHead.append(element("span", "path", memberLabel(member)));
      if (member.name) memberHead.append(element("span", "unit", ` · ${member.name}`));
      column.appendChild(memberHead);
      if (member.code !== undefined) {
        column.appendChild(codeBlock(member, changed[index]));
        if (member.omitted_lines) {
          column.appendChild(element("div", "omitted", `… ${formatNumber(member.omitted_lines)} more lines not shown`));
        }
      } else {
        column.appendChild(element("div", "no-code", `Code not shown: ${member.no_code_reason}`));
      }
      members.appendChild(column);
    });
    detail.append(head, members);
    if (listedOnly.length) {
      const others = element("div", "others");
      others.append(document.createTextNode(`${listedOnly.length} more copies: `));
      listedOnly.forEach((member, index) => {
        if (index) others.append(document.createTextNode(", "));
        others.append(element("code", "", memberLabel(member)));
      });
      detail.appendChild(others);
    }
    detail.hidden = false;
    document.body.classList.add("detail-open");
    setAddress(`#${pattern.id}`);
  }

  function closeDetail() {
    detail.hidden = true;
    delete detail.dataset.patternId;
    document.body.classList.remove("detail-open");
    if (selectedTile) {
      selectedTile.classList.remove("selected");
      selectedTile.focus();
      selectedTile = null;
    }
    setAddress(location.pathname + location.search);
  }

  // Keeps the open pattern in the address so a link can point at it. Some browsers refuse
  // history changes on file: pages; the panel works the same without it.
  function setAddress(address) {
    try {
      history.replaceState(null, "", address);
    } catch (error) {
      // Deliberately ignored: the address is a convenience.
    }
  }

  document.addEventListener("keydown", (event) => {
    if (event.key === "Escape" && !detail.hidden) closeDetail();
    if (event.key === "/" && document.activeElement !== filterInput) {
      event.preventDefault();
      filterInput.focus();
    }
  });

  drawLegend("language");
  applyFilter();
  const linked = decodeURIComponent(location.hash.slice(1));
  if (byId.has(linked)) openDetail(linked);
})();
