// The page's logic: no build step, no dependencies. The API base URL comes from config.js.
(function () {
  "use strict";

  const API = (window.API_BASE_URL || "").replace(/\/+$/, "");
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
  let pending = null;

  function showStatus(message, isError) {
    statusLine.textContent = message;
    statusLine.className = "status" + (isError ? " error" : "");
    statusLine.hidden = false;
  }

  function hideStatus() { statusLine.hidden = true; }

  function percent(p) { return (100 * p).toFixed(1) + "%"; }

  function describe(label) {
    return task === "question-type" && QUESTION_LABELS[label] ? `${label} (${QUESTION_LABELS[label]})` : label;
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

  function selectTask(name) {
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

  async function callApi(method, body) {
    const options = { method, headers: {} };
    if (body !== undefined) {
      options.headers["Content-Type"] = "application/json";
      options.body = JSON.stringify(body);
    }
    let response;
    try {
      response = await fetch(`${API}/${task}`, options);
    } catch (err) {
      throw new Error("Could not reach the API. Check your connection, or the API address in config.js.");
    }
    let data = null;
    try { data = await response.json(); } catch (err) { /* not JSON */ }
    if (!response.ok) {
      const reason = data && data.error ? data.error : `the API answered ${response.status} ${response.statusText}`;
      throw new Error(`Sorry, that did not work: ${reason}`);
    }
    if (!data) throw new Error("The API sent an answer that is not JSON.");
    return data;
  }

  async function loadInfo() {
    const forTask = task;
    try {
      const info = await callApi("GET");
      if (forTask !== task) return;
      const m = info.model;
      const accuracy = m.test_accuracy == null ? "" : `, test accuracy ${percent(m.test_accuracy)}`;
      $("model-info").textContent = `Model: ${m.name} (${m.architecture}, from ${m.source_notebook}${accuracy}), version ${m.version}` +
        (m.provisional ? " - provisional" : "");
    } catch (err) {
      if (forTask === task) $("model-info").textContent = err.message;
    }
  }

  function render(data) {
    const prediction = data.prediction || data.predictions[0];
    const label = $("label");
    label.textContent = describe(prediction.label);
    label.className = prediction.label === "positive" || prediction.label === "negative" ? prediction.label : "";
    $("probability").textContent = `with probability ${percent(prediction.probability)}`;
    const bars = $("bars");
    bars.replaceChildren();
    const entries = Object.entries(prediction.probabilities).sort((a, b) => b[1] - a[1]);
    for (const [name, p] of entries) {
      const nameCell = document.createElement("span");
      nameCell.textContent = describe(name);
      const bar = document.createElement("div");
      bar.className = "bar";
      const fill = document.createElement("span");
      fill.style.width = percent(p);
      bar.appendChild(fill);
      const value = document.createElement("span");
      value.textContent = percent(p);
      bars.append(nameCell, bar, value);
    }
    $("model").textContent = `${data.model} ${data.version}`;
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
    const request = (pending = {});
    submit.disabled = true;
    submit.textContent = "Predicting...";
    result.hidden = true;
    showStatus("Asking the model... (the first request after a while can take a few seconds)");
    try {
      const data = await callApi("POST", { text: value });
      if (request !== pending) return;
      hideStatus();
      render(data);
    } catch (err) {
      if (request !== pending) return;
      showStatus(err.message, true);
    } finally {
      if (request === pending) {
        submit.disabled = false;
        submit.textContent = "Predict";
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
