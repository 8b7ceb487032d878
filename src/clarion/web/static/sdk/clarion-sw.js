/*
 * Clarion Web Push SDK: the service worker.
 *
 * Registered by clarion.js as  clarion-sw.js?api=<API base>&app=<app id>&key=<client key>
 * (the client key is publishable). Serve it from your site's origin.
 *
 * push              decrypted JSON from Clarion's Web Push provider (see
 *                   clarion/providers/webpush.py): title, body, subtitle,
 *                   image, icon, badge, url, tag, data, actions, push_id,
 *                   plus notification_id and device_id, which name the
 *                   delivery for the events API. Shows the notification,
 *                   then reports "received".
 * notificationclick opens the action's url or the push's url (focusing a
 *                   window already showing it) and reports "opened".
 * notificationclose reports "dismissed".
 * pushsubscriptionchange  registers the new subscription as a device.
 *
 * The handlers are also reachable as self.clarion.{showPush, openPush, resubscribe}
 * so an app's own worker can importScripts() this file and reuse them.
 */
/* global clients, registration */
(function () {
  "use strict";

  var params = new URL(self.location.href).searchParams;
  var API = (params.get("api") || self.location.origin).replace(/\/+$/, "");
  var APP = params.get("app") || "";
  var KEY = params.get("key") || "";
  var OPTION_KEYS = ["icon", "badge", "image", "tag", "requireInteraction", "renotify", "silent",
    "lang", "dir", "vibrate", "timestamp"];

  function openDb() {
    return new Promise(function (resolve, reject) {
      var request = indexedDB.open("clarion", 1);
      request.onupgradeneeded = function () { request.result.createObjectStore("state"); };
      request.onsuccess = function () { resolve(request.result); };
      request.onerror = function () { reject(request.error); };
    });
  }

  function stored(value) {
    return openDb().then(function (db) {
      return new Promise(function (resolve, reject) {
        var tx = db.transaction("state", value === undefined ? "readonly" : "readwrite");
        var request = value === undefined ? tx.objectStore("state").get(APP)
          : tx.objectStore("state").put(value, APP);
        tx.oncomplete = function () { db.close(); resolve(request.result); };
        tx.onerror = function () { db.close(); reject(tx.error); };
      });
    });
  }

  function api(method, path, body) {
    return fetch(API + "/v1/apps/" + encodeURIComponent(APP) + path, {
      method: method,
      headers: {"Authorization": "Bearer " + KEY, "Content-Type": "application/json"},
      mode: "cors", credentials: "omit",
      body: body === undefined ? undefined : JSON.stringify(body)
    }).then(function (response) {
      if (!response.ok) throw new Error("Clarion API " + path + ": " + response.status);
      return response.status === 204 ? null : response.json();
    });
  }

  function report(type, push) {
    if (!push || !push.notification_id) return Promise.resolve(null);
    var device = push.device_id
      ? Promise.resolve(push.device_id)
      : stored().then(function (state) { return state && state.deviceId; });
    return device.then(function (deviceId) {
      if (!deviceId) return null;
      return api("POST", "/events", {
        device_id: deviceId, notification_id: push.notification_id, type: type,
        at: new Date().toISOString()
      });
    }).catch(function (error) { console.warn("Clarion: could not report " + type, error); });
  }

  function parse(data) {
    if (!data) return {};
    try { return data.json(); } catch (e) { return {body: data.text()}; }
  }

  function showPush(push) {
    var title = push.title || "";
    var body = push.subtitle ? push.subtitle + (push.body ? "\n" + push.body : "") : (push.body || "");
    var options = {body: body, data: push};
    OPTION_KEYS.forEach(function (key) { if (push[key] !== undefined) options[key] = push[key]; });
    if (Array.isArray(push.actions)) {
      options.actions = push.actions.map(function (a) {
        return {action: a.action, title: a.title, icon: a.icon};
      });
    }
    var badge = typeof push.app_badge === "number" && self.navigator.setAppBadge
      ? self.navigator.setAppBadge(push.app_badge).catch(function () { /* unsupported */ })
      : Promise.resolve();
    return Promise.all([registration.showNotification(title, options), badge])
      .then(function () { return report("received", push); });
  }

  function targetUrl(push, action) {
    var chosen = (push.actions || []).filter(function (a) { return a.action === action; })[0];
    var url = (chosen && chosen.url) || push.url;
    if (!url) return null;
    var absolute = new URL(url, self.location.origin);
    return absolute.protocol === "https:" || absolute.protocol === "http:" ? absolute.href : null;
  }

  function focusOrOpen(url) {
    if (!url) return Promise.resolve(null);
    return clients.matchAll({type: "window", includeUncontrolled: true}).then(function (list) {
      var open = list.filter(function (c) { return c.url === url && "focus" in c; })[0];
      return open ? open.focus() : clients.openWindow(url);
    });
  }

  /* The click's work; opening may fail (no user activation), reporting still happens. */
  function openPush(notification, action) {
    var push = notification.data || {};
    notification.close();
    return Promise.allSettled([report("opened", push), focusOrOpen(targetUrl(push, action))]);
  }

  function resubscribe(oldSubscription, newSubscription) {
    var renewed = newSubscription ? Promise.resolve(newSubscription)
      : api("GET", "/webpush/public-key").then(function (found) {
        var raw = atob(found.vapid_public_key.replace(/-/g, "+").replace(/_/g, "/")
          + "===".slice((found.vapid_public_key.length + 3) % 4));
        var key = Uint8Array.from(raw, function (ch) { return ch.charCodeAt(0); });
        return registration.pushManager.subscribe({userVisibleOnly: true, applicationServerKey: key});
      });
    return Promise.all([renewed, stored()]).then(function (found) {
      var json = found[0].toJSON();
      var state = found[1] || {};
      var body = {
        platform: "webpush",
        token: {endpoint: json.endpoint, keys: {p256dh: json.keys.p256dh, auth: json.keys.auth}},
        consent: {status: "granted", source: "subscription_change"}
      };
      if (state.userId) body.user_id = state.userId;
      return api("POST", "/devices", body).then(function (device) {
        state.deviceId = device.id;
        state.consent = device.consent;
        return stored(state);
      });
    });
  }

  self.clarion = {showPush: showPush, openPush: openPush, resubscribe: resubscribe};

  self.addEventListener("install", function () { self.skipWaiting(); });
  self.addEventListener("activate", function (event) { event.waitUntil(clients.claim()); });
  self.addEventListener("push", function (event) {
    event.waitUntil(showPush(parse(event.data)));
  });
  self.addEventListener("notificationclick", function (event) {
    event.waitUntil(openPush(event.notification, event.action));
  });
  self.addEventListener("notificationclose", function (event) {
    event.waitUntil(report("dismissed", event.notification.data || {}));
  });
  self.addEventListener("pushsubscriptionchange", function (event) {
    event.waitUntil(resubscribe(event.oldSubscription, event.newSubscription));
  });
})();
