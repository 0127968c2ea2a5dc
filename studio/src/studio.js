// The flow editor of the admin pages: CodeMirror in place of the form's textarea,
// the server's check of the text as typed (problems marked at their lines), and
// the graph of the text redrawn beside it. The page works without this script:
// the textarea posts the same form.
//
// Other scripts of the page (the test phone) use window.glueStudio:
//   getText()            the text in the editor now
//   highlight(names)     light the graph's nodes whose titles are names (Graphviz
//                        node ids, e.g. "verify", "outcome verified", "verified step 1");
//                        returns how many it lit, and keeps them lit on the next drawing
//   view                 the CodeMirror EditorView
// and hear "glue-studio:change" on document (detail: {text}) when the text changes.

import { EditorView, basicSetup } from "codemirror";
import { EditorState } from "@codemirror/state";
import { keymap } from "@codemirror/view";
import { yaml } from "@codemirror/lang-yaml";
import { lintGutter, setDiagnostics } from "@codemirror/lint";

const CHECK_DELAY_MS = 300; // after the last key: the check answers well within a second
const ZOOMS = [0.25, 0.4, 0.55, 0.7, 0.85, 1, 1.25, 1.5, 2, 3];

function start() {
  const form = document.getElementById("studio");
  const textarea = document.getElementById("source");
  if (!form || !textarea) return;
  const status = document.getElementById("check-status");
  const list = document.getElementById("problems");
  const graphBox = document.getElementById("graph");
  const graphStatus = document.getElementById("graph-status");
  const token = form.querySelector("input[name=csrf_token]").value;

  let timer = null;
  let asked = 0; // the newest request: older answers are dropped
  let lit = [];
  let zoom = null; // null: fit the box

  const view = new EditorView({
    state: EditorState.create({
      doc: textarea.value,
      extensions: [
        basicSetup,
        yaml(),
        lintGutter(),
        EditorView.lineWrapping, // long comment lines stay readable on a phone
        keymap.of([{ key: "Mod-s", run: () => submit("save") }]),
        EditorView.contentAttributes.of({
          "aria-label": textarea.labels[0] ? textarea.labels[0].textContent : "YAML",
          "aria-describedby": "source-hint check-status",
        }),
        EditorView.updateListener.of((update) => {
          if (!update.docChanged) return;
          const text = update.state.doc.toString();
          textarea.value = text;
          document.dispatchEvent(new CustomEvent("glue-studio:change", { detail: { text } }));
          clearTimeout(timer);
          timer = setTimeout(check, CHECK_DELAY_MS);
        }),
      ],
    }),
  });
  textarea.hidden = true;
  textarea.after(view.dom);
  textarea.labels.forEach((label) =>
    label.addEventListener("click", () => view.focus())
  );
  form.addEventListener("submit", () => {
    textarea.value = view.state.doc.toString();
  });

  function submit(action) {
    const button = form.querySelector(`button[name=action][value=${action}]`);
    if (button) form.requestSubmit(button);
    return true;
  }

  function post(url) {
    const body = new URLSearchParams({ csrf_token: token, source: view.state.doc.toString() });
    return fetch(url, { method: "POST", body, credentials: "same-origin" });
  }

  // A character offset of (1-based line, 0-based column), clamped to the text.
  function offset(doc, line, column) {
    const at = doc.line(Math.min(Math.max(line, 1), doc.lines));
    return Math.min(at.from + Math.max(column, 0), at.to);
  }

  async function check() {
    const mine = ++asked;
    let answer;
    try {
      const response = await post(form.dataset.checkUrl);
      if (!response.ok) throw new Error(`the check answered ${response.status}`);
      answer = await response.json();
    } catch (error) {
      if (mine === asked) status.textContent = `Not checked: ${error.message}.`;
      return;
    }
    if (mine !== asked) return;
    const doc = view.state.doc;
    const diagnostics = answer.problems.map((p) => {
      const from = offset(doc, p.line, p.column);
      const to = Math.max(from, offset(doc, p.line, p.end_column));
      const where = p.field ? `${p.field}: ` : "";
      return {
        from,
        to,
        severity: "error",
        message: where + p.message + (p.hint ? ` (hint: ${p.hint})` : ""),
      };
    });
    view.dispatch(setDiagnostics(view.state, diagnostics));
    showProblems(answer.problems);
    if (answer.ok) drawGraph(mine);
    else graphStatus.textContent = "The graph is of the last text that passed the check.";
  }

  function showProblems(problems) {
    list.replaceChildren();
    status.textContent = problems.length
      ? `${problems.length} problem${problems.length === 1 ? "" : "s"}.`
      : "No problems: this text passes the check.";
    status.className = problems.length ? "bad" : "ok";
    for (const p of problems) {
      const item = document.createElement("li");
      item.dataset.line = p.line;
      const go = document.createElement("button");
      go.type = "button";
      go.className = "quiet line-link";
      go.textContent = `Line ${p.line}`;
      go.addEventListener("click", () => {
        const at = offset(view.state.doc, p.line, p.column);
        view.dispatch({ selection: { anchor: at }, scrollIntoView: true });
        view.focus();
      });
      item.append(go, `: ${p.field ? p.field + ": " : ""}${p.message}`);
      if (p.hint) {
        const hint = document.createElement("span");
        hint.className = "muted";
        hint.textContent = ` (hint: ${p.hint})`;
        item.append(hint);
      }
      list.append(item);
    }
  }

  async function drawGraph(mine) {
    let text;
    try {
      const response = await post(form.dataset.graphUrl);
      if (!response.ok) throw new Error(`the drawing answered ${response.status}`);
      text = await response.text();
    } catch (error) {
      if (mine === asked) graphStatus.textContent = `Graph not drawn: ${error.message}.`;
      return;
    }
    if (mine !== asked) return;
    // Parsed as SVG and adopted, never set as HTML: nothing in it runs.
    const parsed = new DOMParser().parseFromString(text, "image/svg+xml");
    const svg = parsed.documentElement;
    if (svg.nodeName !== "svg") {
      graphStatus.textContent = "Graph not drawn.";
      return;
    }
    svg.setAttribute("role", "img");
    svg.setAttribute("aria-label", "Graph of the text in the editor");
    graphBox.replaceChildren(document.importNode(svg, true));
    graphStatus.textContent = "";
    applyZoom();
    highlight(lit);
  }

  function graphSvg() {
    return graphBox.querySelector("svg");
  }

  function applyZoom() {
    const svg = graphSvg();
    if (!svg) return;
    if (zoom === null) {
      svg.style.width = "100%";
      svg.style.height = "auto";
      return;
    }
    const width = parseFloat(svg.getAttribute("width")) || 600;
    svg.style.width = `${width * zoom}pt`;
    svg.style.height = "auto";
  }

  function highlight(names) {
    lit = Array.from(names || []);
    const svg = graphSvg();
    if (!svg) return 0;
    let count = 0;
    for (const node of svg.querySelectorAll("g.node")) {
      const title = node.querySelector("title");
      const on = !!title && lit.includes(title.textContent);
      node.classList.toggle("lit", on);
      if (on) count += 1;
    }
    return count;
  }

  document.querySelectorAll("[data-zoom]").forEach((button) => {
    button.addEventListener("click", () => {
      const how = button.dataset.zoom;
      if (how === "full") return openFull();
      if (how === "fit") zoom = null;
      else {
        const now = zoom === null ? 1 : zoom;
        const index = ZOOMS.findIndex((z) => z >= now - 1e-9);
        const next = how === "in" ? index + 1 : index - 1;
        zoom = ZOOMS[Math.min(Math.max(next, 0), ZOOMS.length - 1)];
      }
      applyZoom();
    });
  });

  function openFull() {
    const dialog = document.getElementById("graph-full");
    const box = dialog.querySelector(".graph-full-box");
    const shown = graphBox.querySelector("svg, img");
    if (!shown) return;
    const copy = shown.cloneNode(true);
    copy.removeAttribute("style");
    box.replaceChildren(copy);
    dialog.showModal();
  }

  window.glueStudio = {
    getText: () => view.state.doc.toString(),
    highlight,
    view,
  };
  check(); // the opening text: its marks and its graph
}

if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
else start();
