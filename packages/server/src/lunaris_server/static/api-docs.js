// Starts Swagger UI on /api/docs. Writes made with the session cookie need the session's
// CSRF token in X-CSRF-Token: the page carries it in <meta name="csrf-token">.
(function () {
  "use strict";
  var meta = document.querySelector('meta[name="csrf-token"]');
  var token = meta ? meta.getAttribute("content") : "";
  var safe = { GET: true, HEAD: true, OPTIONS: true };
  window.ui = SwaggerUIBundle({
    url: "/api/openapi.json",
    dom_id: "#swagger-ui",
    layout: "BaseLayout",
    deepLinking: true,
    validatorUrl: null,
    presets: [SwaggerUIBundle.presets.apis],
    requestInterceptor: function (request) {
      if (token && !safe[String(request.method || "GET").toUpperCase()]) {
        request.headers["X-CSRF-Token"] = token;
      }
      return request;
    },
  });
})();
