// The test phone (_test_phone.html includes it inline): a caller's keys go to
// POST /admin/flows/<name>/try, one turn at a time; the replies come back as the
// caller hears them, as XML, and as the path through the flow's graph.
// Where the call stands is the server's signed token, kept here between turns.
// An editor page may provide window.glueStudio = {getText(), highlight(nodes)}
// and fire "glue-studio:change" on document when the draft changes.
(function () {
  "use strict";

  const root = document.getElementById("test-phone");
  if (!root) return;
  const $ = (id) => document.getElementById(id);
  const platform = $("phone-platform");
  const run = $("phone-run");
  const caller = $("phone-caller");
  const speak = $("phone-speak");
  const asking = $("phone-asking");
  const form = $("phone-keys");
  const digits = $("phone-digits");
  const send = $("phone-send");
  const silence = $("phone-silence");
  const call = $("phone-call");
  const transcript = $("phone-transcript");
  const keypad = Array.from(root.querySelectorAll("button[data-key]"));
  const studio = () => window.glueStudio || null;

  let token = ""; // the server's state of the call and of the trial's lockouts
  let questions = []; // what the phone asks now: one, or all of a platform's form
  let answers = {}; // the answers to those so far (never sent anywhere else)
  let formAnswers = {}; // a platform form keeps its earlier answers between asks
  let platformForm = false; // the platform's own form asks (IfbyPhone, VoipNow)
  let path = []; // the graph nodes this call went through
  let busy = false;
  let live = false;
  let calling = false; // a new call was asked for (Call), not begun by the server

  if (studio() && typeof studio().getText === "function") {
    const draft = document.createElement("option");
    draft.value = "draft";
    draft.textContent = "the draft in the editor";
    run.prepend(draft);
    run.value = "draft";
  }

  function line(className, text) {
    const p = document.createElement("p");
    p.className = className;
    p.textContent = text;
    return p;
  }

  function entry(...children) {
    const li = document.createElement("li");
    li.append(...children);
    transcript.append(li);
    return li;
  }

  function say(text) {
    if (!speak.checked || !("speechSynthesis" in window) || !text) return;
    window.speechSynthesis.speak(new SpeechSynthesisUtterance(text));
  }

  function setLive(on) {
    live = on;
    for (const control of [digits, send, silence, ...keypad]) control.disabled = !on || busy;
    call.textContent = on ? "Hang up" : "Call";
  }

  function light(nodes) {
    path = path.concat(nodes);
    const graph = document.querySelector("[data-trial-graph] svg");
    if (graph) {
      const lit = new Set(path);
      const edges = new Set();
      for (let i = 1; i < path.length; i++) {
        if (path[i - 1] !== path[i]) edges.add(path[i - 1] + "->" + path[i]);
      }
      for (const group of graph.querySelectorAll("g.node, g.edge")) {
        const title = group.querySelector("title");
        const name = title ? title.textContent : "";
        const node = group.classList.contains("node");
        // An edge that leaves and enters by a port is titled `a:s->b:s`.
        const edge = name.split("->").map((end) => end.split(":")[0]).join("->");
        const on = node ? lit.has(name) : edges.has(edge);
        group.classList.toggle("lit", on);
      }
    }
    if (studio() && typeof studio().highlight === "function") studio().highlight(path.slice());
  }

  function ask() {
    const question = questions.find((q) => !(q.name in answers));
    if (!question) return;
    const prompt = question.prompt ? ": \u201c" + question.prompt + "\u201d" : "";
    asking.textContent = "Asks " + question.name + prompt;
    digits.value = "";
    if (platformForm && question.prompt) {
      // The platform's own form asks: Glue sent no reply to read.
      entry(line("hears", "hears: " + question.prompt));
      say(question.prompt);
    }
    digits.focus();
  }

  function show(data) {
    if (data.new_call && !calling) {
      entry(line("note", "A new call begins (the flow or the platform changed)."));
    }
    if (data.new_call) {
      path = [];
      formAnswers = {};
    }
    for (const reply of data.replies) {
      const li = entry(line("outcome", "Glue replies: " + reply.outcome));
      for (const heard of reply.heard) {
        li.append(line(heard.spoken ? "hears" : "note", heard.spoken ? "hears: " + heard.text : heard.text));
        if (heard.spoken) say(heard.text);
      }
      if (reply.xml) {
        const details = document.createElement("details");
        const summary = document.createElement("summary");
        summary.textContent = "XML reply (" + data.platform + ")";
        const pre = document.createElement("pre");
        pre.textContent = reply.xml;
        details.append(summary, pre);
        li.append(details);
      }
    }
    calling = false;
    light(data.path);
    token = data.token;
    questions = data.asks;
    platformForm = data.platform_form;
    answers = {};
    if (data.ended) {
      asking.textContent = "The call has left the flow. Press Call to call again.";
      setLive(false);
      call.focus();
    } else {
      setLive(true);
      ask();
    }
  }

  async function post(fields) {
    const body = new URLSearchParams({
      csrf_token: root.dataset.csrf,
      platform: platform.value,
      caller: caller.value,
      token: token,
      ...fields,
    });
    busy = true;
    setLive(live);
    try {
      if (run.value === "draft") body.set("source", await studio().getText());
      else body.set("version", run.value);
      const response = await fetch(root.dataset.url, {
        method: "POST",
        body: body,
        credentials: "same-origin",
        headers: { Accept: "application/json" },
      });
      const type = response.headers.get("Content-Type") || "";
      const data = type.includes("json") ? await response.json() : {};
      busy = false;
      if (!response.ok) {
        calling = false;
        if (response.status === 400) token = ""; // a token gone stale: the next Call starts afresh
        const li = entry(line("problem", data.error || "The server said " + response.status + "."));
        for (const problem of data.problems || []) li.append(line("problem", problem));
        asking.textContent = "The test call stopped. Press Call to try again.";
        setLive(false);
        return;
      }
      show(data);
    } catch (error) {
      busy = false;
      calling = false;
      entry(line("problem", "No answer from the server: " + error));
      setLive(false);
    }
  }

  function begin() {
    transcript.replaceChildren();
    // The token is kept: it holds the trial's failures, so a lockout can be tried
    // over several calls; the server starts the new call from it.
    path = [];
    formAnswers = {};
    light([]);
    calling = true;
    entry(line("note", "Calling " + root.dataset.name + " on " + platform.value + "\u2026"));
    post({ restart: "1" });
  }

  function hangUp() {
    entry(line("note", "You hung up."));
    asking.textContent = "Press Call to start a test call.";
    if ("speechSynthesis" in window) window.speechSynthesis.cancel();
    setLive(false);
  }

  function answer(keys) {
    const question = questions.find((q) => !(q.name in answers));
    if (!question || busy) return;
    answers[question.name] = keys;
    digits.value = "";
    const shown = keys === "" ? "(silence)" : question.secret ? "\u2022".repeat(keys.length) : keys;
    entry(line("pressed", "pressed: " + shown + " (" + question.name + ")"));
    if (questions.some((q) => !(q.name in answers))) {
      ask();
      return;
    }
    let sent = answers;
    if (platformForm) {
      formAnswers = { ...formAnswers, ...answers };
      sent = formAnswers;
    }
    post({ answers: JSON.stringify(sent) });
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const keys = digits.value.replace(/\s+/g, "");
    if (!/^[0-9*#]*$/.test(keys)) {
      asking.textContent = "A phone has only 0-9, * and #.";
      digits.focus();
      return;
    }
    answer(keys.replace(/#$/, ""));
  });
  silence.addEventListener("click", () => answer(""));
  call.addEventListener("click", () => (live ? hangUp() : begin()));
  for (const key of keypad) {
    key.addEventListener("click", () => {
      digits.value += key.dataset.key;
      // As on a phone, # ends the answer.
      if (key.dataset.key === "#") form.requestSubmit();
    });
  }
  run.addEventListener("change", () => {
    // On its own page the graph shown is the version's: load that page.
    if (run.value !== "draft" && !studio()) {
      const url = new URL(root.dataset.page, window.location.href);
      url.searchParams.set("version", run.value);
      url.searchParams.set("platform", platform.value);
      window.location.assign(url.toString());
    }
  });
  document.addEventListener("glue-studio:change", () => {
    if (live && run.value === "draft") {
      asking.textContent += " (the draft changed: the next keys start a new call)";
    }
  });
})();
