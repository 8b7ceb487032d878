// Pre-selects the browser's time zone for a recipient who has none stored.
// The page works without this script: the select then keeps the app's default.
(function () {
  "use strict";
  var select = document.querySelector("select[data-fill-from-browser]");
  if (!select || !window.Intl) return;
  var zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
  for (var i = 0; i < select.options.length; i++) {
    if (select.options[i].value === zone) {
      select.selectedIndex = i;
      return;
    }
  }
})();
