// Live console: listens on /ws/console and asks the server for fresh HTML of whatever an
// event touched. Elements opt in with data-live="<topic> ..." (and data-live-src, the URL of
// their fragment; without it, the current page's URL, which answers htmx with the fragment).
// Topics: "device:<id>" (that device's row or panels), "devices" (a device list, refreshed
// when an event names a device it does not show), "fleet" (figures about the whole fleet);
// commands and deployments have theirs (see onCommandEvent).
// Nothing here builds HTML: htmx swaps in what the server renders.
(function () {
  "use strict";

  var REFRESH_DELAY_MS = 150; // coalesces a burst of events into one request per fragment
  var FLEET_DELAY_MS = 1000; // fleet-wide figures change with every event: refresh at most 1/s
  var BACKOFF_FIRST_MS = 500;
  var SESSION_ENDED = 4401; // the server closed the socket: this session has ended
  var BACKOFF_MAX_MS = 30000;

  var connection = { state: "connecting", text: "Connecting" };
  var pending = new Set();
  var refreshAll = false;
  var timer = null;
  var fleetTimer = null;
  var backoff = BACKOFF_FIRST_MS;
  var connectedBefore = false;

  function show(state, text) {
    connection = { state: state, text: text };
    paint();
  }

  // Looked up each time: going back swaps in a fresh page body, indicator included.
  function paint() {
    var indicator = document.getElementById("live-status");
    if (!indicator) return;
    indicator.dataset.state = connection.state;
    indicator.textContent = connection.text;
  }

  function byTopic(topic) {
    return Array.from(document.querySelectorAll('[data-live~="' + CSS.escape(topic) + '"]'));
  }

  function schedule(topic) {
    pending.add(topic);
    if (timer === null) timer = setTimeout(flush, REFRESH_DELAY_MS);
  }

  function scheduleFleet() {
    if (fleetTimer !== null) return;
    fleetTimer = setTimeout(function () {
      fleetTimer = null;
      schedule("fleet");
    }, FLEET_DELAY_MS);
  }

  function scheduleAll() {
    refreshAll = true;
    schedule("*");
  }

  function flush() {
    timer = null;
    var targets = new Set();
    if (refreshAll) {
      document.querySelectorAll("[data-live]").forEach(function (el) { targets.add(el); });
    } else {
      pending.forEach(function (topic) { byTopic(topic).forEach(function (el) { targets.add(el); }); });
    }
    pending.clear();
    refreshAll = false;
    targets.forEach(function (el) {
      // A fragment inside another one being refreshed comes along with it.
      var parent = el.parentElement && el.parentElement.closest("[data-live]");
      if (parent && targets.has(parent)) return;
      var src = el.dataset.liveSrc || window.location.pathname + window.location.search;
      // The element is also the source: htmx queues requests per source, and with the
      // default (the body) all but the first and the last refresh would be dropped.
      htmx.ajax("GET", src, { source: el, target: el, swap: "outerHTML" });
    });
  }

  // A list (elements with the topic "listTopic") is refreshed when an event names something
  // it does not show ("shown": the elements of that thing), e.g. a new one.
  function scheduleListsWithout(listTopic, shown) {
    byTopic(listTopic).forEach(function (list) {
      var inList = shown.some(function (el) { return list.contains(el); });
      if (!inList) schedule(listTopic);
    });
  }

  function onDeviceEvent(deviceId) {
    var topic = "device:" + deviceId;
    var shown = byTopic(topic);
    schedule(topic);
    scheduleListsWithout("devices", shown);
    scheduleFleet();
  }

  // Commands: "command:<id>" (its row in the list), "device-commands:<device id>" (a
  // device's commands panel), "commands" (the list: refreshed when an event names a command
  // it does not show, e.g. a new one). The device's panels follow too (history, updates).
  // A command of a deployment also refreshes "deployment:<id>" (its summary, its row in the
  // list of deployments), "deployment-commands:<id>" (its commands, when the command is not
  // among those shown) and "deployments" (the list, when it does not show the deployment).
  function onCommandEvent(data) {
    var topic = "command:" + data.command_id;
    var shown = byTopic(topic);
    schedule(topic);
    schedule("device-commands:" + data.device_id);
    schedule("device:" + data.device_id);
    scheduleListsWithout("commands", shown);
    if (data.deployment_id) {
      var deployment = "deployment:" + data.deployment_id;
      var shownDeployment = byTopic(deployment);
      schedule(deployment);
      scheduleListsWithout("deployment-commands:" + data.deployment_id, shown);
      scheduleListsWithout("deployments", shownDeployment);
    }
    // A policy's command moves its rollouts on.
    if (data.policy_id) schedule("policy:" + data.policy_id);
  }

  // Policies: "policy:<id>" (its preview and rollouts), "policies" (the list).
  function onPolicyEvent(data) {
    schedule("policy:" + data.policy_id);
    schedule("policies");
  }

  function onMessage(message) {
    var event;
    try { event = JSON.parse(message.data); } catch (e) { return; }
    var data = event.data || {};
    if (event.type === "RESYNC") scheduleAll();
    else if (event.type === "DEVICE_STATUS_UPDATE" || event.type === "DEVICE_UPDATES_CHANGED" ||
             event.type === "DEVICE_SOFTWARE_CHANGED") onDeviceEvent(data.device_id);
    else if (event.type === "COMMAND_UPDATED") onCommandEvent(data);
    else if (event.type === "POLICY_UPDATED") onPolicyEvent(data);
  }

  function connect() {
    var scheme = window.location.protocol === "https:" ? "wss://" : "ws://";
    // The first time, from when this page's request arrived: the server sends what changed
    // between rendering it and now. Later, what was missed is unknown: every fragment reloads.
    var rendered = document.body.dataset.liveSince;
    var query = !connectedBefore && rendered ? "?since=" + encodeURIComponent(rendered) : "";
    var socket = new WebSocket(scheme + window.location.host + "/ws/console" + query);
    socket.addEventListener("open", function () {
      backoff = BACKOFF_FIRST_MS;
      show("live", "Live");
      // Whatever happened while disconnected was missed: reload every fragment.
      if (connectedBefore) scheduleAll();
      connectedBefore = true;
    });
    socket.addEventListener("message", onMessage);
    socket.addEventListener("close", function (event) {
      // The session ended (logout elsewhere, an admin): reloading leads to the login page.
      if (event.code === SESSION_ENDED) { window.location.reload(); return; }
      show("offline", "Offline");
      var delay = Math.min(backoff, BACKOFF_MAX_MS) * (0.75 + Math.random() * 0.5);
      backoff = Math.min(backoff * 2, BACKOFF_MAX_MS);
      setTimeout(connect, delay);
    });
  }

  // Copy buttons: data-copy names the element whose text is copied.
  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-copy]");
    if (!button) return;
    var source = document.getElementById(button.dataset.copy);
    if (!source || !navigator.clipboard) return;
    navigator.clipboard.writeText(source.textContent.trim()).then(function () {
      button.textContent = "Copied";
      setTimeout(function () { button.textContent = "Copy"; }, 1500);
    });
  });

  document.addEventListener("htmx:historyRestore", paint);
  // The server deleted the row of a device that is gone (revoked): the list around it has
  // one device fewer, and its count and pages changed.
  document.addEventListener("lunaris:device-gone", function () { schedule("devices"); });
  connect();
})();
