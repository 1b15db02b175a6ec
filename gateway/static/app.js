// The live results page: /polls/{id} follows one poll over Server-Sent Events; / lists
// recent polls. Plain DOM, no framework. Tests read [data-option-id][data-votes],
// #total[data-total], #final-badge and body[data-version].
"use strict";

(() => {
  const $ = (id) => document.getElementById(id);
  const numbers = new Intl.NumberFormat();
  const percent = new Intl.NumberFormat(undefined, { minimumFractionDigits: 1, maximumFractionDigits: 1 });
  const STATUS = { POLL_STATUS_OPEN: "open", POLL_STATUS_CLOSED: "closed", POLL_STATUS_SCHEDULED: "scheduled" };
  const RETRY_MS = 3000;

  const match = location.pathname.match(/^\/polls\/([^/]+)\/?$/);
  if (match) {
    follow(decodeURIComponent(match[1]));
  } else {
    pick();
  }

  function say(text) {
    const message = $("message");
    message.textContent = text;
    message.hidden = !text;
  }

  async function getJson(url) {
    const response = await fetch(url, { headers: { Accept: "application/json" } });
    const body = await response.json().catch(() => ({}));
    if (!response.ok) {
      const error = new Error((body.error && body.error.message) || response.statusText);
      error.status = response.status;
      throw error;
    }
    return body;
  }

  // -- one poll ----------------------------------------------------------------------------

  function follow(pollId) {
    const api = `/api/polls/${encodeURIComponent(pollId)}`;
    const labels = new Map();
    const rows = new Map();
    let shown = -1;
    let final = false;
    let latest = null;
    let receivedAt = 0;
    let source = null;

    $("results").hidden = false;
    $("poll-id").textContent = pollId;
    document.title = `${pollId} · live results`;

    loadPoll();
    connect();
    setInterval(freshness, 1000);

    async function loadPoll() {
      try {
        const poll = await getJson(api);
        $("title").textContent = poll.title || pollId;
        document.title = `${poll.title || pollId} · live results`;
        for (const option of poll.options || []) labels.set(option.option_id, option.label);
        for (const [id, row] of rows) row.querySelector(".label").textContent = labels.get(id) || id;
        say("");
      } catch (error) {
        say(error.status === 404 ? `No poll “${pollId}” (yet): retrying…` : `Cannot load the poll: ${error.message}`);
        setTimeout(loadPoll, RETRY_MS);
      }
    }

    function connect() {
      source = new EventSource(`${api}/events`);
      source.onopen = () => setConnection("open");
      source.onmessage = (event) => {
        render(JSON.parse(event.data));
        if (final) {
          // The server ends the stream after FINAL; closing here keeps EventSource from
          // reconnecting to a poll that will never change again.
          source.close();
          setConnection("done");
        }
      };
      source.onerror = () => {
        if (final) return;
        if (source.readyState === EventSource.CLOSED) {
          // Refused (unknown poll, gateway or query service down): EventSource gives up
          // on an HTTP error, so try again ourselves.
          setConnection("offline");
          setTimeout(connect, RETRY_MS);
        } else {
          setConnection("reconnecting");
        }
      };
    }

    function setConnection(state) {
      document.body.dataset.connection = state;
      freshness();
    }

    function row(optionId, index) {
      let item = rows.get(optionId);
      if (item) return item;
      item = document.createElement("li");
      item.className = "option";
      item.dataset.optionId = optionId;
      item.style.setProperty("--color", `var(--palette-${index % 8})`);
      item.innerHTML =
        '<div class="row"><span class="label"></span><span class="count">' +
        '<span class="votes">0</span><span class="share"></span></span></div>' +
        '<div class="track"><div class="bar"></div></div>';
      item.querySelector(".label").textContent = labels.get(optionId) || optionId;
      $("options").append(item);
      rows.set(optionId, item);
      return item;
    }

    function render(results) {
      const version = Number(results.version);
      if (version <= shown && !(results.final && !final)) return;
      shown = Math.max(shown, version);
      latest = results;
      receivedAt = Date.now();
      final = Boolean(results.final);

      const total = Number(results.total);
      const counts = (results.counts || []).map((c) => ({ id: c.option_id, votes: Number(c.votes) }));
      const top = Math.max(0, ...counts.map((c) => c.votes));
      counts.forEach((count, index) => {
        const item = row(count.id, index);
        const share = total ? (count.votes / total) * 100 : 0;
        item.dataset.votes = String(count.votes);
        item.classList.toggle("leader", top > 0 && count.votes === top);
        item.querySelector(".votes").textContent = numbers.format(count.votes);
        item.querySelector(".share").textContent = `${percent.format(share)}%`;
        item.querySelector(".bar").style.width = `${share}%`;
      });
      $("total").dataset.total = String(total);
      $("total").textContent = numbers.format(total);

      const status = STATUS[results.status] || "";
      $("status-badge").dataset.status = status;
      $("status-badge").textContent = final ? "closed" : status === "closed" ? "closed · recounting" : status;
      $("final-badge").hidden = !final;
      document.body.dataset.version = String(version);
      document.body.dataset.final = String(final);

      const recount = results.recount;
      if (final && recount && recount.recounted_at) {
        $("recount").hidden = false;
        $("recount").textContent = recount.matched
          ? "The recount from the source of truth matched the live count."
          : `The recount corrected the live count (${numbers.format(Number(recount.live_total))} live).`;
      }
      freshness();
    }

    // Freshness: how far behind the vote log the counts may be (staleness, measured by
    // the server when it sent the snapshot) and when the counts last changed.
    function freshness() {
      const indicator = $("freshness");
      const text = $("freshness-text");
      const connection = document.body.dataset.connection;
      if (!latest) {
        indicator.dataset.state = connection === "offline" ? "stale" : "unknown";
        text.textContent = connection === "offline" ? "cannot reach the results: retrying…" : "waiting for results…";
        return;
      }
      if (final) {
        indicator.dataset.state = "final";
        const at = latest.recount && latest.recount.recounted_at;
        text.textContent = at ? `final · recounted ${clock(at)}` : "final";
        return;
      }
      const staleness = seconds(latest.staleness);
      const changed = latest.updated_at ? ago(Date.parse(latest.updated_at)) : "no votes yet";
      const parts = [];
      if (connection === "open") {
        parts.push(staleness < 1 ? "live" : `live · up to ${span(staleness)} behind`);
        indicator.dataset.state = staleness < 2 ? "fresh" : staleness < 10 ? "lagging" : "stale";
      } else {
        parts.push(connection === "offline" ? "offline · retrying" : "reconnecting…");
        indicator.dataset.state = Date.now() - receivedAt < 10000 ? "lagging" : "stale";
      }
      parts.push(latest.updated_at ? `last change ${changed}` : changed);
      text.textContent = parts.join(" · ");
    }
  }

  function seconds(duration) {
    // proto3 JSON Duration: "1.250s"
    return duration ? Number.parseFloat(duration) || 0 : 0;
  }

  function span(s) {
    if (s < 60) return `${s.toFixed(1)} s`;
    if (s < 3600) return `${Math.round(s / 60)} min`;
    return "over an hour";
  }

  function ago(ms) {
    const s = Math.max(0, Math.round((Date.now() - ms) / 1000));
    if (s < 2) return "just now";
    if (s < 60) return `${s} s ago`;
    if (s < 3600) return `${Math.round(s / 60)} min ago`;
    return `${Math.round(s / 3600)} h ago`;
  }

  function clock(iso) {
    return new Date(iso).toLocaleTimeString();
  }

  // -- the poll list ---------------------------------------------------------------------

  async function pick() {
    $("picker").hidden = false;
    $("open-poll").addEventListener("submit", (event) => {
      event.preventDefault();
      const id = $("poll-input").value.trim();
      if (id) location.assign(`/polls/${encodeURIComponent(id)}`);
    });
    try {
      const { polls } = await getJson("/api/polls?page_size=20");
      for (const poll of polls || []) {
        const item = document.createElement("li");
        const link = document.createElement("a");
        link.href = `/polls/${encodeURIComponent(poll.poll_id)}`;
        link.textContent = poll.title || poll.poll_id;
        const when = document.createElement("span");
        when.className = "when";
        when.textContent = `${poll.poll_id} · ${STATUS[poll.status] || ""}`;
        item.append(link, when);
        $("polls").append(item);
      }
      if (!polls || !polls.length) say("No polls yet.");
    } catch (error) {
      say(`Cannot list polls: ${error.message}`);
    }
  }
})();
