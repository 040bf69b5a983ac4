// Berth: progressive enhancement. The Register Repository form (the clone URL read as it is
// pasted, Refresh without a page load, a typeahead over up to 50,000 branches), the Create
// Credential form (sent without leaving the page, so an error does not empty the token field)
// and the recovery codes' Copy button. Every page works without this script.
(function () {
  "use strict";

  function el(tag, attrs, text) {
    const e = document.createElement(tag);
    for (const k in attrs || {}) e.setAttribute(k, attrs[k]);
    if (text !== undefined) e.textContent = text;
    return e;
  }

  function plural(n, one, many) { return n + " " + (n === 1 ? one : many); }

  // As the server's pages word the API's messages (views::sentence): a capital first letter,
  // unless the first word is an identifier (a scope, a URL, a code).
  function sentence(text) {
    text = text || "";
    const first = (text.split(/\s/)[0] || "").replace(/[:.;,]+$/, "");
    return /^[\p{L}'-]+$/u.test(first) ? text.charAt(0).toUpperCase() + text.slice(1) : text;
  }

  // Step titles come from the server (the form's data-step-titles), so they read as on the
  // pages it renders.
  let stepTitles = {};

  function stepTable(rows, caption) {
    const wrap = el("div", { class: "tablewrap" });
    const t = wrap.appendChild(el("table", { class: "steps" }));
    if (caption) t.appendChild(el("caption", {}, caption));
    const cols = t.appendChild(el("colgroup"));
    ["c-step", "c-result", "", ""].forEach(function (c) { cols.appendChild(el("col", c ? { class: c } : {})); });
    const head = el("tr");
    ["Step", "Result", "What happened", "What to do"].forEach(function (h) { head.appendChild(el("th", { scope: "col" }, h)); });
    t.appendChild(el("thead")).appendChild(head);
    const body = t.appendChild(el("tbody"));
    rows.forEach(function (s) {
      const tr = el("tr", { class: "st-" + s.status, "data-step": s.step });
      tr.appendChild(el("th", { scope: "row" }, stepTitles[s.step] || s.step));
      const res = el("td", { "data-label": "Result" });
      res.appendChild(el("span", { class: "badge " + s.status }, s.status));
      if (s.code !== "ok") { res.appendChild(document.createTextNode(" ")); res.appendChild(el("code", {}, s.code)); }
      tr.appendChild(res);
      // A passing step's message is often a value first (a branch name): left as it is.
      const msg = el("td", { "data-label": "What happened" }, s.status === "pass" ? s.message : sentence(s.message));
      if (s.details && s.details.length) {
        const ul = msg.appendChild(el("ul", { class: "details" }));
        s.details.forEach(function (d) { ul.appendChild(el("li", {}, d)); });
      }
      tr.appendChild(msg);
      tr.appendChild(el("td", { "data-label": "What to do" }, sentence(s.remedy)));
      body.appendChild(tr);
    });
    return wrap;
  }

  // As the server's pages show steps: what failed or warned first, the rest folded.
  function stepsTable(steps) {
    const of = function (st) { return steps.filter(function (s) { return s.status === st; }); };
    const shown = of("fail").concat(of("warn"));
    const group = el("div", { class: "stepgroup" });
    if (shown.length) group.appendChild(stepTable(shown, "Check, step by step"));
    [["pass", "passed", "steps-passed"], ["skip", "not run", "steps-skipped"]].forEach(function (f) {
      const rows = of(f[0]);
      if (!rows.length) return;
      const d = group.appendChild(el("details", { class: "steps-folded " + f[2] }));
      d.appendChild(el("summary", {}, plural(rows.length, "step", "steps") + " " + f[1]));
      d.appendChild(stepTable(rows));
    });
    return group;
  }

  function problemBox(err) {
    const box = el("div", { class: "problem", role: "alert", id: "problem" });
    const p = box.appendChild(el("p", { class: "headline" }));
    p.appendChild(el("strong", {}, sentence(err.message)));
    if (err.code) { p.appendChild(document.createTextNode(" ")); p.appendChild(el("code", {}, err.code)); }
    if (err.remedy) {
      const r = box.appendChild(el("p", { class: "remedy" }));
      r.appendChild(el("strong", {}, "What to do: "));
      r.appendChild(document.createTextNode(sentence(err.remedy)));
    }
    if (err.checks && err.checks.length) box.appendChild(stepsTable(err.checks));
    return box;
  }

  // A field marked invalid by the server is unmarked once the person changes it.
  function unmarkOnEdit(root) {
    root.querySelectorAll("[aria-invalid=true]").forEach(function (f) {
      const clear = function () {
        f.removeAttribute("aria-invalid");
        const msg = document.getElementById(f.id === "cred_name" ? "cred_name_error" : f.id + "_error");
        if (msg) msg.remove();
      };
      f.addEventListener("input", clear, { once: true });
      f.addEventListener("change", clear, { once: true });
    });
  }

  function postJson(path, csrf, body, signal) {
    return fetch(path, {
      method: "POST",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
      body: JSON.stringify(body),
      credentials: "same-origin",
      signal: signal,
    }).then(function (r) { return r.json().then(function (data) { return { ok: r.ok, data: data }; }); });
  }

  // ---------------------------------------------------------------- branch typeahead
  // The whole list is scrollable from the first focus; only the rows in view are in the page
  // (fixed row height, padding for the rest), so 50,000 branches cost what 30 do.
  function typeahead(branch, popup, list, count) {
    const ROW = 30;
    let branches = [];
    let defaultBranch = null;
    let shown = [];
    let active = -1;
    let frame = 0;

    function filter(q) {
      q = q.toLowerCase();
      if (!q) {
        shown = defaultBranch === null ? branches.slice() : [defaultBranch].concat(branches.filter(function (b) { return b !== defaultBranch; }));
        return;
      }
      const pre = [], sub = [];
      for (let i = 0; i < branches.length; i++) {
        const lb = branches[i].toLowerCase();
        if (lb.startsWith(q)) pre.push(branches[i]);
        else if (lb.indexOf(q) !== -1) sub.push(branches[i]);
      }
      shown = pre.concat(sub);
      const d = shown.indexOf(defaultBranch);
      if (d > 0) { shown.splice(d, 1); shown.unshift(defaultBranch); }
    }

    function render() {
      frame = 0;
      const view = list.clientHeight || 16 * ROW;
      const first = Math.max(0, Math.floor(list.scrollTop / ROW) - 5);
      const last = Math.min(shown.length, first + Math.ceil(view / ROW) + 10);
      list.style.paddingTop = first * ROW + "px";
      list.style.paddingBottom = (shown.length - last) * ROW + "px";
      list.textContent = "";
      for (let i = first; i < last; i++) {
        const b = shown[i];
        const li = el("li", {
          role: "option", id: "branch_opt_" + i, "aria-selected": i === active ? "true" : "false",
          "aria-setsize": String(shown.length), "aria-posinset": String(i + 1), "data-value": b,
        });
        li.appendChild(el("span", { class: "name" }, b));
        if (b === defaultBranch) { li.classList.add("default"); li.appendChild(el("span", { class: "tag" }, "default")); }
        list.appendChild(li);
      }
      if (active >= first && active < last) branch.setAttribute("aria-activedescendant", "branch_opt_" + active);
      else branch.removeAttribute("aria-activedescendant");
    }

    function open(q, keepScroll) {
      if (!branches.length) return;
      filter(q);
      // Typing leaves nothing chosen until an arrow key moves; focusing starts at the value.
      active = q ? -1 : shown.indexOf(branch.value);
      if (!shown.length) count.textContent = "No branch matches " + JSON.stringify(q) + ".";
      else if (q) count.textContent = shown.length + " of " + plural(branches.length, "branch", "branches") + " match.";
      else count.textContent = plural(branches.length, "branch", "branches") + (defaultBranch !== null ? "; the remote's default is first, marked default." : ".");
      popup.hidden = false;
      branch.setAttribute("aria-expanded", "true");
      if (!keepScroll) list.scrollTop = active > 0 ? Math.max(0, active * ROW - 2 * ROW) : 0;
      render();
    }

    function close() {
      popup.hidden = true;
      branch.setAttribute("aria-expanded", "false");
      branch.removeAttribute("aria-activedescendant");
      active = -1;
    }

    function move(to) {
      if (!shown.length) return;
      active = Math.max(0, Math.min(shown.length - 1, to));
      const top = active * ROW;
      if (top < list.scrollTop) list.scrollTop = top;
      else if (top + ROW > list.scrollTop + list.clientHeight) list.scrollTop = top + ROW - list.clientHeight;
      render();
    }

    function choose(b) { branch.value = b; close(); }

    list.addEventListener("scroll", function () { if (!frame) frame = requestAnimationFrame(render); });
    // Clicks in the list (scrollbar included) keep the focus in the field.
    popup.addEventListener("mousedown", function (ev) {
      ev.preventDefault();
      const li = ev.target.closest("li[role=option]");
      if (li) choose(li.getAttribute("data-value"));
    });
    branch.addEventListener("focus", function () { open("", false); });
    branch.addEventListener("input", function () { list.scrollTop = 0; open(branch.value, true); });
    branch.addEventListener("blur", function () { setTimeout(function () { if (document.activeElement !== branch) close(); }, 150); });
    branch.addEventListener("keydown", function (ev) {
      const page = Math.max(1, Math.floor(list.clientHeight / ROW) - 1);
      if (ev.key === "ArrowDown") { ev.preventDefault(); if (popup.hidden) open(branch.value, false); move(active + 1); }
      else if (ev.key === "ArrowUp") { ev.preventDefault(); move(active - 1); }
      else if (ev.key === "PageDown" && !popup.hidden) { ev.preventDefault(); move(active + page); }
      else if (ev.key === "PageUp" && !popup.hidden) { ev.preventDefault(); move(active - page); }
      else if (ev.key === "Enter" && !popup.hidden && active >= 0) { ev.preventDefault(); choose(shown[active]); }
      else if (ev.key === "Escape") { close(); }
    });

    return {
      set: function (names, def) { branches = names; defaultBranch = def; close(); },
      clear: function () { branches = []; defaultBranch = null; close(); },
    };
  }

  // ---------------------------------------------------------------- Register Repository
  function registerForm(form) {
    const url = form.querySelector("#clone_url");
    const names = form.querySelector("#url_names");
    const name = form.querySelector("#name");
    const cred = form.querySelector("#credential");
    const branch = form.querySelector("#default_branch");
    const refresh = form.querySelector("#refresh");
    const hint = form.querySelector("#branch_hint");
    const result = form.querySelector("#refresh_result");
    const csrf = form.getAttribute("data-csrf");
    try { stepTitles = JSON.parse(form.getAttribute("data-step-titles") || "{}"); } catch (e) { stepTitles = {}; }
    let fields = { steps: {}, codes: {} };
    try { fields = JSON.parse(form.getAttribute("data-fields") || "{}"); } catch (e) { /* nothing marked */ }
    const ta = typeahead(branch, form.querySelector("#branch_popup"), form.querySelector("#branch_list"), form.querySelector("#branch_count"));
    unmarkOnEdit(form);
    let lastKey = "";
    let inflight = null;
    let timer = null;
    let lastUrl = null;
    // Branches are listed for the URL in the field (by this page's Refresh).
    let listed = false;

    // The URL as the server's parser reads it (the same rules registration applies): the
    // field gets the normalised form, and the host and repository it names are shown.
    function inspectUrl() {
      const raw = url.value.trim();
      if (raw === lastUrl) return Promise.resolve();
      lastUrl = raw;
      names.textContent = "";
      names.className = "url-names";
      if (!raw) return Promise.resolve();
      return postJson("/ui/clone-url", csrf, { clone_url: raw }).then(function (answer) {
        const d = answer.data;
        if (!answer.ok) return;
        if (!d.ok) {
          names.className = "url-names bad";
          names.appendChild(el("span", {}, d.message + " "));
          names.appendChild(el("code", {}, d.code));
          return;
        }
        if (url.value.trim() === raw && d.canonical !== url.value) url.value = d.canonical;
        lastUrl = d.canonical;
        names.appendChild(el("strong", {}, d.provider_label));
        names.appendChild(document.createTextNode(" · "));
        names.appendChild(el("span", { class: "mono" }, d.repository));
        if (d.existing) {
          names.className = "url-names bad";
          names.appendChild(document.createTextNode(" · already registered as "));
          names.appendChild(el("a", { href: d.existing.href, id: "existing_repo" }, d.existing.name));
        } else if (d.other_transport) {
          // Not a conflict: over the other transport it is another registration, with its own credential.
          names.appendChild(document.createTextNode(" · also registered over " + d.other_transport.transport + " as "));
          names.appendChild(el("a", { href: d.other_transport.href, id: "other_transport_repo" }, d.other_transport.name));
        }
        if (name && !name.value.trim()) name.value = d.name;
      }).catch(function () { lastUrl = null; });
    }

    // Marks the field a failed Refresh is about, as the server marks one after Register (the
    // same tables: the form's data-fields), with the failing step beside it.
    // Only the marks of an earlier Refresh: a refusal the server showed stays until edited.
    function unmarkAll() {
      form.querySelectorAll("[data-refresh-mark]").forEach(function (f) { f.removeAttribute("aria-invalid"); f.removeAttribute("data-refresh-mark"); });
      form.querySelectorAll(".field-error.from-refresh").forEach(function (e) { e.remove(); });
    }
    function markField(err) {
      const failed = (err.checks || []).filter(function (s) { return s.status === "fail"; })[0];
      const id = failed ? (fields.steps[failed.step] || fields.codes[failed.code] || "clone_url") : fields.codes[err.code];
      const f = id && form.querySelector("#" + id);
      if (!f) return;
      if (f.getAttribute("aria-invalid") === "true") return;
      f.setAttribute("aria-invalid", "true");
      f.setAttribute("data-refresh-mark", "");
      const msg = el("p", { class: "field-error from-refresh", id: id + "_error" });
      msg.appendChild(el("span", { class: "marker", "aria-hidden": "true" }, "!"));
      const text = failed ? (stepTitles[failed.step] || failed.step) + ": " + sentence(failed.message).replace(/[. ]+$/, "") + ". See the steps below." : sentence(err.message);
      msg.appendChild(el("span", {}, text));
      // Where the server puts it: after the field (its combo box) and what the URL names.
      let at = f.closest(".combo") || f;
      if (at.nextElementSibling && at.nextElementSibling.classList.contains("url-names")) at = at.nextElementSibling;
      at.insertAdjacentElement("afterend", msg);
      f.setAttribute("aria-describedby", id + "_error " + (f.getAttribute("aria-describedby") || "").replace(id + "_error", "").trim());
      unmarkOnEdit(form);
    }

    function doRefresh(auto) {
      const key = url.value.trim() + "\n" + cred.value;
      // An empty choice is "Choose by template" when the picker offers it.
      const byTemplate = !cred.value && cred.hasAttribute("data-templates");
      if (!url.value.trim() || (!cred.value && !byTemplate)) {
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
      unmarkAll();
      // "anonymous" is the "No credential (public repository)" choice; "" lets the templates choose.
      const anonymous = cred.value === "anonymous";
      postJson("/ui/remote-branches", csrf, { clone_url: url.value, credential: anonymous ? null : (cred.value || null), anonymous: anonymous }, inflight.signal).then(function (answer) {
        // The API's shapes: RemoteBranches on success, ErrorBody ({ error: … }) otherwise.
        const data = answer.data;
        if (answer.ok) {
          const list = (data.branches || []).map(function (b) { return b.name; });
          const def = data.default_branch && list.indexOf(data.default_branch) !== -1 ? data.default_branch : null;
          ta.set(list, def);
          listed = true;
          branch.disabled = false;
          const current = branch.value;
          if (!current || list.indexOf(current) === -1) branch.value = def !== null ? def : (list[0] || "");
          hint.textContent = plural(list.length, "branch", "branches") + " on the remote" + (data.default_branch ? "; its default is " + data.default_branch : "") + ". Focus the field to choose, or type to search.";
          // Say which credential a template chose ("credential ci, chosen by template …").
          const credStep = (data.checks || []).filter(function (s) { return s.step === "credential"; })[0];
          if (byTemplate && credStep && credStep.details && credStep.details[0]) hint.textContent += " Used " + credStep.details[0] + ".";
          branch.removeAttribute("list");
        } else {
          ta.clear();
          branch.disabled = true;
          hint.textContent = "Refresh failed: see the steps below.";
          const err = data.error || { message: "Refresh failed", code: "", remedy: "" };
          result.appendChild(problemBox(err));
          markField(err);
          // The same URL and credential are not retried by themselves: Refresh retries.
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

    refresh.addEventListener("click", function (ev) { ev.preventDefault(); lastKey = ""; inspectUrl().then(function () { doRefresh(false); }); });
    function autoSoon() { clearTimeout(timer); timer = setTimeout(function () { inspectUrl().then(function () { doRefresh(true); }); }, 300); }
    // What the field named, and the branches listed for it, no longer apply once it is edited:
    // a branch of the previous URL is not offered for the new one.
    url.addEventListener("input", function () {
      names.textContent = "";
      names.className = "url-names";
      lastUrl = null;
      if (listed) {
        listed = false;
        ta.clear();
        branch.value = "";
        branch.disabled = true;
        hint.textContent = "The URL changed: Refresh lists its branches.";
        lastKey = "";
      }
    });
    // A paste lands in the field after the event: read it on the next turn.
    url.addEventListener("paste", function () { setTimeout(autoSoon, 0); });
    url.addEventListener("change", autoSoon);
    cred.addEventListener("change", autoSoon);
    // A form the server sent back for another reason than a failed check lists the branches
    // again by itself (a failed check's steps stay as the server showed them).
    if (url.value.trim() && cred.value && branch.disabled && !result.querySelector("#problem")) autoSoon();
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
    unmarkOnEdit(form);

    // Sent from here so that a refusal (a name taken, a missing email) is shown without a page
    // load: the token typed stays in its field, as the server never writes a secret into a page.
    form.addEventListener("submit", function (ev) {
      if (!window.fetch || !window.DOMParser) return;
      ev.preventDefault();
      const save = form.querySelector("#save_credential");
      save.disabled = true;
      form.setAttribute("aria-busy", "true");
      fetch(form.action, { method: "POST", body: new URLSearchParams(new FormData(form)), credentials: "same-origin" })
        .then(function (r) {
          if (r.redirected) { window.location.assign(r.url); return; }
          return r.text().then(function (html) { showAnswer(form, html); });
        })
        .catch(function () { save.disabled = false; form.removeAttribute("aria-busy"); HTMLFormElement.prototype.submit.call(form); });
    });
  }

  // The refused form as the server rendered it, with the token typed put back in its field
  // (unless the refusal is about the token itself).
  function showAnswer(form, html) {
    // The keys pasted stay in the browser too: the server never writes them into a page.
    const kept = ["#secret", "#private_key", "#client_key"].map(function (id) {
      const el = form.querySelector(id);
      return [id, el ? el.value : ""];
    });
    const doc = new DOMParser().parseFromString(html, "text/html");
    const main = document.querySelector("main");
    const fresh = doc.querySelector("main");
    if (!fresh || !doc.getElementById("credential_form")) { document.open(); document.write(html); document.close(); return; }
    main.replaceChildren.apply(main, Array.from(fresh.childNodes).map(function (n) { return document.importNode(n, true); }));
    document.title = doc.title;
    const f = document.getElementById("credential_form");
    kept.forEach(function (k) {
      const el = f.querySelector(k[0]);
      if (el && el.getAttribute("aria-invalid") !== "true") el.value = k[1];
    });
    credentialForm(f);
    const bad = f.querySelector("[aria-invalid=true]") || document.getElementById("problem");
    if (bad) { bad.scrollIntoView({ block: "center" }); if (bad.focus) bad.focus(); }
  }

  // ---------------------------------------------------------------- recovery codes
  function recoveryCodes(box) {
    const button = box.querySelector("#copy_codes");
    const status = box.querySelector("#copy_status");
    const list = box.querySelector("#recovery_list");
    button.hidden = false;
    button.addEventListener("click", function () {
      const codes = Array.from(list.querySelectorAll("code")).map(function (c) { return c.textContent; });
      const done = function () { status.textContent = "Copied " + plural(codes.length, "code", "codes") + "."; };
      const byHand = function () {
        const range = document.createRange();
        range.selectNodeContents(list);
        const sel = window.getSelection();
        sel.removeAllRanges();
        sel.addRange(range);
        if (document.execCommand && document.execCommand("copy")) done();
        else status.textContent = "The codes are selected: copy them with your keyboard.";
      };
      if (navigator.clipboard && navigator.clipboard.writeText) navigator.clipboard.writeText(codes.join("\n")).then(done, byHand);
      else byHand();
    });
  }


  // Import repositories: All / None act on the rows the filter shows; the filter hides rows
  // whose full name does not contain its text.
  function importPick(form) {
    const filter = document.getElementById("pick_filter");
    const rows = Array.from(form.querySelectorAll("tr[data-full-name]"));
    const visible = function (tr) { return !tr.hidden; };
    form.querySelectorAll("button[data-pick]").forEach(function (b) {
      b.addEventListener("click", function () {
        const on = b.getAttribute("data-pick") === "all";
        rows.filter(visible).forEach(function (tr) {
          const box = tr.querySelector("input[type=checkbox]");
          if (box) box.checked = on;
        });
      });
    });
    if (filter) filter.addEventListener("input", function () {
      const q = filter.value.trim().toLowerCase();
      rows.forEach(function (tr) { tr.hidden = q !== "" && tr.getAttribute("data-full-name").toLowerCase().indexOf(q) < 0; });
    });
  }

  // While an import registers: read its progress (the API's Import) every second, move the
  // bar and the counts, and load the summary once it is done.
  function importProgress(section) {
    const id = section.getAttribute("data-import");
    const bar = document.getElementById("import_bar");
    const tick = function () {
      fetch("/ui/imports/" + encodeURIComponent(id), { credentials: "same-origin", headers: { "Accept": "application/json" } })
        .then(function (r) { return r.ok ? r.json() : Promise.reject(r.status); })
        .then(function (imp) {
          bar.max = Math.max(imp.total, 1);
          bar.value = imp.done;
          ["done", "total", "registered", "failed", "skipped"].forEach(function (k) {
            const span = section.querySelector("[data-count=" + k + "]");
            if (span) span.textContent = imp[k];
          });
          if (imp.state === "done") window.location.reload();
          else setTimeout(tick, 1000);
        })
        .catch(function () { setTimeout(tick, 3000); });
    };
    setTimeout(tick, 500);
  }

  document.addEventListener("DOMContentLoaded", function () {
    const r = document.getElementById("register_form");
    if (r) registerForm(r);
    const c = document.getElementById("credential_form");
    if (c) credentialForm(c);
    const codes = document.getElementById("recovery_codes");
    if (codes) recoveryCodes(codes);
    const pick = document.getElementById("import_pick");
    if (pick) importPick(pick);
    const progress = document.getElementById("import_progress");
    if (progress && progress.getAttribute("data-state") !== "done") importProgress(progress);
  });
})();
