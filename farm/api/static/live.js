// SPDX-License-Identifier: Apache-2.0
// Live updates of a run page: new console lines and the run's state, polled from the
// JSON API with the page's own session. Lines are added as text, never as markup.
"use strict";
(function () {
  const run = document.getElementById("run");
  if (!run || run.dataset.live !== "yes") {
    return;
  }
  const consolePre = document.getElementById("console");
  const stateCell = document.getElementById("run-state");
  const note = document.getElementById("live-note");
  let after = Number(run.dataset.after) || 0;
  let timer = null;

  function showState(answer) {
    const span = document.createElement("span");
    span.className = "state " + answer.state;
    span.textContent = answer.state;
    stateCell.replaceChildren(span);
  }

  async function poll() {
    let answer;
    try {
      const response = await fetch("/api/runs/" + run.dataset.run + "/console?after=" + after,
        { credentials: "same-origin", headers: { "Accept": "application/json" } });
      if (!response.ok) {
        note.textContent = "(live updates stopped: " + response.status + ")";
        return;
      }
      answer = await response.json();
    } catch (err) {
      note.textContent = "(live updates paused: farm api unreachable)";
      timer = setTimeout(poll, 10000);
      return;
    }
    const atBottom = consolePre.scrollTop + consolePre.clientHeight >= consolePre.scrollHeight - 4;
    for (const line of answer.lines) {
      consolePre.append(document.createTextNode(line.line + "\n"));
      after = line.id;
    }
    if (atBottom) {
      consolePre.scrollTop = consolePre.scrollHeight;
    }
    showState(answer);
    if (answer.done) {
      note.textContent = "(run ended: reload for its verdict)";
      return;
    }
    timer = setTimeout(poll, 3000);
  }
  timer = setTimeout(poll, 1000);
  window.addEventListener("pagehide", function () { clearTimeout(timer); });
})();
