/*
 * Clarion Web Push SDK: the page script.
 *
 *   <script src="https://clarion.example.com/sdk/clarion.js"></script>
 *   Clarion.init({apiBase: "https://clarion.example.com", appId: "app_...",
 *                 clientKey: "clr_cli_...", serviceWorker: "/clarion-sw.js",
 *                 userId: "u-42"});            // userId optional
 *   button.onclick = () => Clarion.subscribe(); // only from a user gesture
 *   Clarion.unsubscribe();
 *
 * subscribe() asks for permission, subscribes with the app's VAPID key
 * (GET /v1/apps/{app}/webpush/public-key), and registers the device
 * (POST /v1/apps/{app}/devices, platform "webpush", with the time zone,
 * locale and consent "granted" from "os_prompt"). The device id is kept in
 * IndexedDB (database "clarion"), where the service worker reads it too.
 * Permission changes are reported: denied at the prompt, or revoked later
 * in the browser's settings (noticed at once while a page is open, else at
 * the next init) → PUT .../devices/{id}/consent. unsubscribe() drops the
 * browser subscription and revokes consent.
 *
 * The service worker must be served from the page's origin; the SDK
 * registers it with ?api=&app=&key= in its URL so it can report
 * "received" and "opened" on its own.
 */
(function (global) {
  "use strict";

  var DB = "clarion";
  var STORE = "state";
  var config = null;
  var watching = false;

  function openDb() {
    return new Promise(function (resolve, reject) {
      var request = indexedDB.open(DB, 1);
      request.onupgradeneeded = function () { request.result.createObjectStore(STORE); };
      request.onsuccess = function () { resolve(request.result); };
      request.onerror = function () { reject(request.error); };
    });
  }

  function stored(key, value) {
    return openDb().then(function (db) {
      return new Promise(function (resolve, reject) {
        var tx = db.transaction(STORE, value === undefined ? "readonly" : "readwrite");
        var store = tx.objectStore(STORE);
        var request = value === undefined ? store.get(key)
          : value === null ? store.delete(key) : store.put(value, key);
        tx.oncomplete = function () { db.close(); resolve(request.result); };
        tx.onerror = function () { db.close(); reject(tx.error); };
      });
    });
  }

  function requireInit() {
    if (!config) throw new Error("call Clarion.init({apiBase, appId, clientKey}) first");
    return config;
  }

  function api(method, path, body) {
    var c = requireInit();
    var url = c.apiBase + "/v1/apps/" + encodeURIComponent(c.appId) + path;
    var headers = {"Authorization": "Bearer " + c.clientKey};
    if (body !== undefined) headers["Content-Type"] = "application/json";
    return fetch(url, {
      method: method, headers: headers, mode: "cors", credentials: "omit",
      body: body === undefined ? undefined : JSON.stringify(body)
    }).then(function (response) {
      if (!response.ok) {
        return response.text().then(function (text) {
          throw new Error("Clarion API " + method + " " + path + ": " + response.status + " " + text);
        });
      }
      return response.status === 204 ? null : response.json();
    });
  }

  function keyBytes(base64url) {
    var padded = (base64url + "===".slice((base64url.length + 3) % 4))
      .replace(/-/g, "+").replace(/_/g, "/");
    var raw = atob(padded);
    var bytes = new Uint8Array(raw.length);
    for (var i = 0; i < raw.length; i++) bytes[i] = raw.charCodeAt(i);
    return bytes;
  }

  function workerUrl(c) {
    var url = new URL(c.serviceWorker, location.href);
    url.searchParams.set("api", c.apiBase);
    url.searchParams.set("app", c.appId);
    url.searchParams.set("key", c.clientKey);
    return url.href;
  }

  function activeRegistration() {
    var c = requireInit();
    var options = c.scope ? {scope: c.scope} : undefined;
    return navigator.serviceWorker.register(workerUrl(c), options).then(function (reg) {
      if (reg.active) return reg;
      return new Promise(function (resolve) {
        var worker = reg.installing || reg.waiting;
        worker.addEventListener("statechange", function () {
          if (worker.state === "activated") resolve(reg);
        });
      });
    });
  }

  function profile(subscription, consent) {
    var json = subscription.toJSON();
    var body = {
      platform: "webpush",
      token: {endpoint: json.endpoint, keys: {p256dh: json.keys.p256dh, auth: json.keys.auth}},
      locale: navigator.language || undefined,
      consent: consent
    };
    try { body.timezone = Intl.DateTimeFormat().resolvedOptions().timeZone; } catch (e) { /* none */ }
    if (config.userId) body.user_id = config.userId;
    return body;
  }

  function remember(device) {
    var c = requireInit();
    return stored(c.appId, {
      deviceId: device.id, userId: c.userId || null, consent: device.consent,
      apiBase: c.apiBase, clientKey: c.clientKey
    });
  }

  function reportConsent(status, source) {
    var c = requireInit();
    return stored(c.appId).then(function (state) {
      if (!state || !state.deviceId || state.consent === status) return null;
      return api("PUT", "/devices/" + encodeURIComponent(state.deviceId) + "/consent",
        {status: status, source: source, client_time: new Date().toISOString()})
        .then(function () { state.consent = status; return stored(c.appId, state); });
    });
  }

  function onPermission(permission) {
    if (permission === "granted") return Promise.resolve(null);
    // Granted before and not now: the person took it back (settings, or reset to "ask").
    return stored(requireInit().appId).then(function (state) {
      if (!state || !state.deviceId) return null;
      var status = state.consent === "granted" ? "revoked" : "denied";
      return reportConsent(status, "browser_permission");
    });
  }

  function watchPermission() {
    if (watching || !navigator.permissions) return;
    watching = true;
    navigator.permissions.query({name: "notifications"}).then(function (status) {
      status.onchange = function () {
        onPermission(status.state === "prompt" ? "default" : status.state);
      };
    }).catch(function () { /* not supported: checked at each init instead */ });
  }

  var Clarion = {
    /** Configure; checks whether the permission changed since the last visit. */
    init: function (options) {
      ["apiBase", "appId", "clientKey"].forEach(function (name) {
        if (!options || !options[name]) throw new Error("Clarion.init needs " + name);
      });
      config = {
        apiBase: String(options.apiBase).replace(/\/+$/, ""),
        appId: options.appId,
        clientKey: options.clientKey,
        serviceWorker: options.serviceWorker || "/sdk/clarion-sw.js",
        scope: options.scope || null,
        userId: options.userId || null
      };
      watchPermission();
      return Clarion.isSupported() ? onPermission(Notification.permission) : Promise.resolve(null);
    },

    isSupported: function () {
      return "serviceWorker" in navigator && "PushManager" in global && "Notification" in global;
    },

    /** Ask, subscribe, register. Call it from a click: browsers ignore prompts without one. */
    subscribe: function () {
      var c = requireInit();
      if (!Clarion.isSupported()) return Promise.reject(new Error("Web Push is not supported here"));
      if (navigator.userActivation && !navigator.userActivation.isActive) {
        return Promise.reject(new Error("Clarion.subscribe() must run from a user gesture (a click)"));
      }
      return Notification.requestPermission().then(function (permission) {
        if (permission !== "granted") {
          return onPermission(permission).then(function () { return {status: permission}; });
        }
        return Promise.all([activeRegistration(), api("GET", "/webpush/public-key")])
          .then(function (found) {
            var reg = found[0];
            var key = found[1].vapid_public_key;
            return reg.pushManager.subscribe({userVisibleOnly: true, applicationServerKey: keyBytes(key)});
          })
          .then(function (subscription) {
            return api("POST", "/devices", profile(subscription, {status: "granted", source: "os_prompt"}));
          })
          .then(function (device) {
            return remember(device).then(function () {
              return {status: "granted", deviceId: device.id};
            });
          });
      });
    },

    /** Drop the browser's subscription and revoke consent for this device. */
    unsubscribe: function () {
      var c = requireInit();
      var drop = "serviceWorker" in navigator
        ? navigator.serviceWorker.getRegistration(workerUrl(c)).then(function (reg) {
          return reg ? reg.pushManager.getSubscription() : null;
        }).then(function (subscription) { return subscription ? subscription.unsubscribe() : false; })
        : Promise.resolve(false);
      return drop.then(function () {
        return reportConsent("revoked", "web_sdk_unsubscribe");
      }).then(function () {
        return stored(c.appId).then(function (state) {
          if (state) { state.deviceId = null; return stored(c.appId, state); }
          return null;
        });
      }).then(function () { return {status: "unsubscribed"}; });
    },

    /** The device id Clarion gave this browser, or null. */
    deviceId: function () {
      return stored(requireInit().appId).then(function (state) {
        return state ? state.deviceId : null;
      });
    }
  };

  global.Clarion = Clarion;
})(typeof self !== "undefined" ? self : this);
