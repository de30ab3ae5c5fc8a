// Starts Swagger UI (vendored under /static/vendor/swagger-ui) on this site's OpenAPI document.
// A file of its own because the Content-Security-Policy runs no inline script; the page names
// the document in data-openapi-url. No validator badge: it would be fetched from swagger.io.
const root = document.getElementById("swagger-ui");
SwaggerUIBundle({
  url: root.dataset.openapiUrl,
  dom_id: "#swagger-ui",
  layout: "BaseLayout",
  deepLinking: true,
  showExtensions: true,
  showCommonExtensions: true,
  validatorUrl: null,
  presets: [SwaggerUIBundle.presets.apis],
});
