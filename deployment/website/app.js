// The page's logic: no build step, no dependencies. Settings come from config.js: the API base URL
// and how long to wait for an answer. Nothing inline: the page's Content-Security-Policy forbids it.
(function () {
  "use strict";

  const API = String(window.API_BASE_URL || "").replace(/\/+$/, "");
  const TIMEOUT_MS = Number(window.API_TIMEOUT_MS) > 0 ? Number(window.API_TIMEOUT_MS) : 15000;
  const MAX_CHARS = 20000;
  const TASKS = {
    "sentiment": {
      label: "Your movie review",
      placeholder: "This film was a delight from start to finish...",
      examples: [
        "This film is great! The acting is superb and the story kept me hooked until the very end.",
        "A dull, lifeless movie. I want those two hours of my life back.",
        "Not bad at all, just not good either.",
        "Awful!",
        "The cinematography was breathtaking, but the plot made no sense whatsoever.",
      ],
    },
    "question-type": {
      label: "Your question",
      placeholder: "Who painted the Mona Lisa?",
      examples: [
        "Who is the Secretary-General of the United Nations?",
        "How many minutes are in six hundred and eighteen hours?",
        "What continent is Bulgaria in?",
        "What does WYSIWYG stand for?",
        "What is a golden parachute?",
        "What is the best-selling fruit?",
      ],
    },
  };
  const QUESTION_LABELS = {
    HUM: "a person or group", ENTY: "an entity", DESC: "a description", NUM: "a number or date",
    LOC: "a place", ABBR: "an abbreviation",
  };

  const $ = (id) => document.getElementById(id);
  const form = $("form"), text = $("text"), submit = $("submit"), statusLine = $("status"), result = $("result");
  let task = "sentiment";
  // Every request is tagged with the task (tab) it was made for and a sequence number; only the
  // latest request of the tab on screen may show its answer, so a late answer is dropped.
  let sequence = 0;
  let pending = null;      // the prediction request waiting for an answer: {task, seq, controller}
  let infoRequest = null;  // the same for the model information in the footer

  // A message written for the reader. Any other error is a bug of this page: the reader gets a
  // plain sentence instead of a JavaScript error message.
  class Problem extends Error {}
  const UNEXPECTED = "Something went wrong on this page. Please try again, or reload it.";
  const NOT_UNDERSTOOD = "The API sent an answer this page does not understand. Please try again later.";

  function readable(err) { return err instanceof Problem ? err.message : UNEXPECTED; }

  function startRequest(forTask, previous) {
    if (previous) previous.controller.abort();
    return { task: forTask, seq: ++sequence, controller: new AbortController() };
  }

  function isCurrent(request, latest) {
    return latest !== null && request.seq === latest.seq && request.task === task;
  }

  function showStatus(message, isError) {
    statusLine.textContent = message;
    statusLine.className = "status" + (isError ? " error" : "");
    statusLine.hidden = false;
  }

  function hideStatus() { statusLine.hidden = true; }

  function percent(p) { return (100 * p).toFixed(1) + "%"; }

  function describe(label, forTask) {
    return forTask === "question-type" && QUESTION_LABELS[label] ? `${label} (${QUESTION_LABELS[label]})` : label;
  }

  function renderExamples() {
    const list = $("examples");
    list.replaceChildren();
    for (const example of TASKS[task].examples) {
      const item = document.createElement("li");
      const button = document.createElement("button");
      button.type = "button";
      button.className = "example";
      button.textContent = example;
      button.addEventListener("click", () => { text.value = example; updateCount(); predict(); });
      item.appendChild(button);
      list.appendChild(item);
    }
  }

  function updateCount() {
    const n = text.value.length;
    $("count").textContent = n > MAX_CHARS * 0.8 ? `${n.toLocaleString()} / ${MAX_CHARS.toLocaleString()} characters` : "";
  }

  function setBusy(busy) {
    submit.disabled = busy;
    submit.textContent = busy ? "Predicting..." : "Predict";
  }

  function selectTask(name) {
    if (pending) {  // its answer belongs to the other tab: cancel it
      pending.controller.abort();
      pending = null;
      setBusy(false);
    }
    task = name;
    for (const tab of document.querySelectorAll(".tabs button")) {
      tab.setAttribute("aria-selected", String(tab.dataset.task === name));
    }
    $("text-label").textContent = TASKS[name].label;
    text.placeholder = TASKS[name].placeholder;
    result.hidden = true;
    hideStatus();
    renderExamples();
    loadInfo();
  }

  // One call to the API route of `request.task`: the parsed JSON answer, or a Problem saying what
  // went wrong. Gives up after TIMEOUT_MS; request.controller.abort() cancels it.
  async function callApi(request, method, body) {
    const options = { method, headers: {}, signal: request.controller.signal };
    if (body !== undefined) {
      options.headers["Content-Type"] = "application/json";
      options.body = JSON.stringify(body);
    }
    let timedOut = false;
    const timer = setTimeout(() => { timedOut = true; request.controller.abort(); }, TIMEOUT_MS);
    const stopped = () => new Problem(timedOut
      ? `The API did not answer within ${Math.round(TIMEOUT_MS / 100) / 10} seconds. Please try again in a moment.`
      : "The request was cancelled.");
    try {
      let response;
      try {
        response = await fetch(`${API}/${request.task}`, options);
      } catch (err) {
        if (request.controller.signal.aborted) throw stopped();
        throw new Problem("Could not reach the API. Check your connection, or the API address this site was built with.");
      }
      let data = null;
      try {
        data = await response.json();
      } catch (err) {
        if (request.controller.signal.aborted) throw stopped();
        /* not JSON: said below */
      }
      if (!response.ok) {
        const reason = data && typeof data.error === "string" && data.error
          ? data.error : `the API answered ${response.status} ${response.statusText}`.trim();
        throw new Problem(`Sorry, that did not work: ${reason}`);
      }
      if (data === null || typeof data !== "object" || Array.isArray(data)) {
        throw new Problem("The API sent an answer that is not JSON. Please try again later.");
      }
      if (typeof data.task === "string" && data.task !== request.task) throw new Problem(NOT_UNDERSTOOD);
      return data;
    } finally {
      clearTimeout(timer);
    }
  }

  function isProbability(p) { return typeof p === "number" && p >= 0 && p <= 1; }

  // The answer's first prediction, checked to have everything render() shows; else a Problem.
  function firstPrediction(data) {
    const prediction = data.prediction || (Array.isArray(data.predictions) ? data.predictions[0] : null);
    const ok = prediction && typeof prediction === "object" && typeof prediction.label === "string" &&
      isProbability(prediction.probability) && prediction.probabilities && typeof prediction.probabilities === "object" &&
      Object.keys(prediction.probabilities).length > 0 && Object.values(prediction.probabilities).every(isProbability);
    if (!ok) throw new Problem(NOT_UNDERSTOOD);
    return prediction;
  }

  async function loadInfo() {
    const request = (infoRequest = startRequest(task, infoRequest));
    $("model-info").textContent = "Checking the API...";
    try {
      const info = await callApi(request, "GET");
      const m = info.model;
      if (!m || typeof m !== "object" || typeof m.name !== "string") throw new Problem(NOT_UNDERSTOOD);
      if (!isCurrent(request, infoRequest)) return;
      const details = [
        typeof m.architecture === "string" ? m.architecture : null,
        typeof m.source_notebook === "string" ? `from ${m.source_notebook}` : null,
        typeof m.test_accuracy === "number" ? `test accuracy ${percent(m.test_accuracy)}` : null,
      ].filter(Boolean).join(", ");
      $("model-info").textContent = `Model: ${m.name}` + (details ? ` (${details})` : "") +
        (typeof m.version === "string" ? `, version ${m.version}` : "") + (m.provisional ? " - provisional" : "");
    } catch (err) {
      if (isCurrent(request, infoRequest)) $("model-info").textContent = readable(err);
    }
  }

  function render(data, prediction, forTask) {
    const label = $("label");
    label.textContent = describe(prediction.label, forTask);
    label.className = prediction.label === "positive" || prediction.label === "negative" ? prediction.label : "";
    $("probability").textContent = `with probability ${percent(prediction.probability)}`;
    const bars = $("bars");
    bars.replaceChildren();
    const entries = Object.entries(prediction.probabilities).sort((a, b) => b[1] - a[1]);
    for (const [name, p] of entries) {
      const nameCell = document.createElement("span");
      nameCell.textContent = describe(name, forTask);
      const bar = document.createElement("div");
      bar.className = "bar";
      const fill = document.createElement("span");
      fill.style.width = percent(p);
      bar.appendChild(fill);
      const value = document.createElement("span");
      value.textContent = percent(p);
      bars.append(nameCell, bar, value);
    }
    $("model").textContent = [data.model, data.version].filter((part) => typeof part === "string").join(" ");
    result.hidden = false;
  }

  async function predict() {
    const value = text.value;
    if (!value.trim()) {
      result.hidden = true;
      showStatus(task === "sentiment" ? "Please type a review first." : "Please type a question first.", true);
      text.focus();
      return;
    }
    if (value.length > MAX_CHARS) {
      showStatus(`That is ${value.length.toLocaleString()} characters; the limit is ${MAX_CHARS.toLocaleString()}.`, true);
      return;
    }
    const request = (pending = startRequest(task, pending));
    setBusy(true);
    result.hidden = true;
    showStatus("Asking the model... (the first request after a while can take a few seconds)");
    try {
      const data = await callApi(request, "POST", { text: value });
      const prediction = firstPrediction(data);
      if (!isCurrent(request, pending)) return;
      hideStatus();
      render(data, prediction, request.task);
    } catch (err) {
      if (!isCurrent(request, pending)) return;
      result.hidden = true;
      showStatus(readable(err), true);
    } finally {
      if (isCurrent(request, pending)) {
        pending = null;
        setBusy(false);
      }
    }
  }

  form.addEventListener("submit", (event) => { event.preventDefault(); predict(); });
  text.addEventListener("input", updateCount);
  text.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) { event.preventDefault(); predict(); }
  });
  for (const tab of document.querySelectorAll(".tabs button")) {
    tab.addEventListener("click", () => selectTask(tab.dataset.task));
  }
  selectTask("sentiment");
})();
