// Berth: progressive enhancement for the Register Repository form (Refresh without a page
// load, a typeahead over up to 50,000 branches) and the Create Credential form. Every page
// works without this script.
(function () {
  "use strict";
  const MAX_SHOWN = 50;

  function el(tag, attrs, text) {
    const e = document.createElement(tag);
    for (const k in attrs || {}) e.setAttribute(k, attrs[k]);
    if (text !== undefined) e.textContent = text;
    return e;
  }

  // Step titles come from the server (the form's data-step-titles), so they read as on the
  // pages it renders.
  let stepTitles = {};

  function stepsTable(steps) {
    const wrap = el("div", { class: "tablewrap" });
    const t = el("table", { class: "steps" });
    t.appendChild(el("caption", {}, "Check, step by step"));
    const head = el("tr");
    ["Step", "Result", "What happened", "What to do"].forEach(function (h) { head.appendChild(el("th", { scope: "col" }, h)); });
    t.appendChild(el("thead")).appendChild(head);
    const body = t.appendChild(el("tbody"));
    steps.forEach(function (s) {
      const tr = el("tr", { class: "st-" + s.status, "data-step": s.step });
      tr.appendChild(el("th", { scope: "row" }, stepTitles[s.step] || s.step));
      const res = el("td");
      res.appendChild(el("span", { class: "badge " + s.status }, s.status));
      if (s.code !== "ok") { res.appendChild(document.createTextNode(" ")); res.appendChild(el("code", {}, s.code)); }
      tr.appendChild(res);
      const msg = el("td", {}, s.message);
      if (s.details && s.details.length) {
        const ul = msg.appendChild(el("ul", { class: "details" }));
        s.details.forEach(function (d) { ul.appendChild(el("li", {}, d)); });
      }
      tr.appendChild(msg);
      tr.appendChild(el("td", {}, s.remedy || ""));
      body.appendChild(tr);
    });
    wrap.appendChild(t);
    return wrap;
  }

  function problemBox(err) {
    const box = el("div", { class: "problem", role: "alert", id: "problem" });
    const p = box.appendChild(el("p", { class: "headline" }));
    p.appendChild(el("strong", {}, err.message));
    if (err.code) { p.appendChild(document.createTextNode(" ")); p.appendChild(el("code", {}, err.code)); }
    if (err.remedy) {
      const r = box.appendChild(el("p", { class: "remedy" }));
      r.appendChild(el("strong", {}, "What to do: "));
      r.appendChild(document.createTextNode(err.remedy));
    }
    if (err.checks && err.checks.length) box.appendChild(stepsTable(err.checks));
    return box;
  }

  // ---------------------------------------------------------------- Register Repository
  function registerForm(form) {
    const url = form.querySelector("#clone_url");
    const cred = form.querySelector("#credential");
    const branch = form.querySelector("#default_branch");
    const refresh = form.querySelector("#refresh");
    const list = form.querySelector("#branch_list");
    const hint = form.querySelector("#branch_hint");
    const result = form.querySelector("#refresh_result");
    const csrf = form.getAttribute("data-csrf");
    try { stepTitles = JSON.parse(form.getAttribute("data-step-titles") || "{}"); } catch (e) { stepTitles = {}; }
    let branches = [];
    let active = -1;
    let lastKey = "";
    let inflight = null;
    let timer = null;

    function closeList() { list.hidden = true; branch.setAttribute("aria-expanded", "false"); branch.removeAttribute("aria-activedescendant"); active = -1; }

    // Prefix matches first, then substring matches; at most MAX_SHOWN rendered.
    function matches(q) {
      q = q.toLowerCase();
      const pre = [], sub = [];
      let total = 0;
      for (let i = 0; i < branches.length; i++) {
        const b = branches[i], lb = b.toLowerCase();
        if (!q || lb.startsWith(q)) { total++; if (pre.length < MAX_SHOWN) pre.push(b); }
        else if (lb.indexOf(q) !== -1) { total++; if (sub.length < MAX_SHOWN) sub.push(b); }
      }
      return { shown: pre.concat(sub).slice(0, MAX_SHOWN), total: total };
    }

    function renderList() {
      if (!branches.length) return;
      const m = matches(branch.value);
      list.textContent = "";
      m.shown.forEach(function (b, i) {
        const li = el("li", { role: "option", id: "branch_opt_" + i, "aria-selected": "false" }, b);
        li.addEventListener("mousedown", function (ev) { ev.preventDefault(); choose(b); });
        list.appendChild(li);
      });
      if (m.total > m.shown.length) list.appendChild(el("li", { class: "more", "aria-disabled": "true" }, (m.total - m.shown.length) + " more: keep typing to narrow"));
      if (!m.shown.length) list.appendChild(el("li", { class: "more", "aria-disabled": "true" }, "No branch matches"));
      list.hidden = false;
      branch.setAttribute("aria-expanded", "true");
      active = -1;
    }

    function choose(b) { branch.value = b; closeList(); }

    function highlight(i) {
      const opts = list.querySelectorAll("li[role=option]");
      if (!opts.length) return;
      active = (i + opts.length) % opts.length;
      opts.forEach(function (o, j) { o.setAttribute("aria-selected", j === active ? "true" : "false"); });
      branch.setAttribute("aria-activedescendant", opts[active].id);
      opts[active].scrollIntoView({ block: "nearest" });
    }

    branch.addEventListener("input", renderList);
    branch.addEventListener("focus", renderList);
    branch.addEventListener("blur", function () { setTimeout(function () { if (document.activeElement !== branch) closeList(); }, 150); });
    branch.addEventListener("keydown", function (ev) {
      if (ev.key === "ArrowDown") { ev.preventDefault(); if (list.hidden) renderList(); highlight(active + 1); }
      else if (ev.key === "ArrowUp") { ev.preventDefault(); highlight(active - 1); }
      else if (ev.key === "Enter" && !list.hidden && active >= 0) {
        ev.preventDefault();
        const opt = list.querySelectorAll("li[role=option]")[active];
        if (opt) choose(opt.textContent);
      } else if (ev.key === "Escape") { closeList(); }
    });

    function doRefresh(auto) {
      const key = url.value.trim() + "\n" + cred.value;
      if (!url.value.trim() || !cred.value) {
        if (!auto) { hint.textContent = "Enter the Clone URL and choose Credentials first."; (url.value.trim() ? cred : url).focus(); }
        return;
      }
      if (auto && key === lastKey) return;
      lastKey = key;
      if (inflight) inflight.abort();
      inflight = new AbortController();
      refresh.disabled = true;
      form.setAttribute("aria-busy", "true");
      hint.textContent = "Listing the remote's branches…";
      result.textContent = "";
      const old = document.getElementById("problem");
      if (old) old.remove();
      fetch("/ui/remote-branches", {
        method: "POST",
        headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
        body: JSON.stringify({ clone_url: url.value, credential: cred.value }),
        credentials: "same-origin",
        signal: inflight.signal,
      }).then(function (r) {
        // The API's shapes: RemoteBranches on success, ErrorBody ({ error: … }) otherwise.
        return r.json().then(function (data) { return { ok: r.ok, data: data }; });
      }).then(function (answer) {
        const data = answer.data;
        if (answer.ok) {
          branches = (data.branches || []).map(function (b) { return b.name; });
          branch.disabled = false;
          const current = branch.value;
          if (!current || branches.indexOf(current) === -1) branch.value = data.default_branch && branches.indexOf(data.default_branch) !== -1 ? data.default_branch : (branches[0] || "");
          hint.textContent = branches.length + " branches on the remote" + (data.default_branch ? "; its default is " + data.default_branch : "") + ". Type to search.";
          branch.removeAttribute("list");
        } else {
          branches = [];
          branch.disabled = true;
          hint.textContent = "Refresh failed: see the steps below.";
          result.appendChild(problemBox(data.error || { message: "Refresh failed", code: "", remedy: "" }));
          lastKey = "";
        }
      }).catch(function (e) {
        if (e.name === "AbortError") return;
        hint.textContent = "Refresh failed: " + e.message;
        lastKey = "";
      }).finally(function () {
        refresh.disabled = false;
        form.removeAttribute("aria-busy");
      });
    }

    refresh.addEventListener("click", function (ev) { ev.preventDefault(); lastKey = ""; doRefresh(false); });
    function autoSoon() { clearTimeout(timer); timer = setTimeout(function () { doRefresh(true); }, 500); }
    url.addEventListener("change", autoSoon);
    url.addEventListener("paste", autoSoon);
    cred.addEventListener("change", autoSoon);
  }

  // ---------------------------------------------------------------- Create Credential
  function credentialForm(form) {
    const kind = form.querySelector("#kind");
    const notice = form.querySelector("#app_password_notice");
    function update() {
      const k = kind.value;
      notice.hidden = k !== "bitbucket_app_password";
      form.querySelectorAll("[data-kinds]").forEach(function (f) {
        f.hidden = f.getAttribute("data-kinds").split(" ").indexOf(k) === -1;
      });
    }
    kind.addEventListener("change", function () {
      // An answer about the previous type no longer applies.
      const old = document.getElementById("problem");
      if (old) old.remove();
      update();
    });
    update();
  }

  document.addEventListener("DOMContentLoaded", function () {
    const r = document.getElementById("register_form");
    if (r) registerForm(r);
    const c = document.getElementById("credential_form");
    if (c) credentialForm(c);
  });
})();
